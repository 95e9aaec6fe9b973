"""Workspace domain-wide delegation: service accounts, and the JWT-bearer grant at
``POST /token`` (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``).

Control API (the administrator's side, which Google keeps in the Cloud console and the
Admin console):

* ``POST /_sandbox/delegations {"clientEmail", "publicKey", "domain", "scopes",
  "keyId"?, "clientId"?}`` registers the service account's public key (PEM: a public
  key or an X.509 certificate; ``keyId`` is the key file's ``private_key_id``) and
  delegates the ``scopes`` of the Workspace ``domain`` to it. Registering it again
  replaces key, domain and scopes (restores a revoked delegation).
  Answer: ``{"clientId", "clientEmail", "domain", "scopes"}``.
* ``DELETE /_sandbox/delegations/{clientId or clientEmail}`` revokes the delegation
  (the administrator removes the client id in the Admin console); the key stays.
* ``GET /_sandbox/delegations`` lists them.

The grant checks, in Google's order and with its answers (``oauth_error`` bodies):

1. the assertion is a JWT signed RS256 by a registered service account (``iss``):
   unknown account 400 ``invalid_grant`` "Invalid grant: account not found"; a
   signature no registered key verifies 400 ``invalid_grant`` "Invalid JWT Signature.";
2. ``aud`` is Google's token URI (google-auth always sends
   ``https://oauth2.googleapis.com/token``, whatever ``token_uri`` it posts to) or
   this sandbox's: else 400 ``invalid_grant`` "Invalid JWT: Failed audience check.";
3. ``iat``/``exp``: at most one hour apart, not expired, not issued in the future
   (real time, as the signer's clock is; a minute of skew): else 400 ``invalid_grant``
   "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable
   timeframe. ...";
4. ``scope`` present: else 400 ``invalid_scope`` "Empty or missing scope not allowed.";
5. with ``sub`` (delegation): the account has a delegation whose domain is the domain of
   ``sub`` and which grants every scope asked for: else 401 ``unauthorized_client``
   "Client is unauthorized to retrieve access tokens using this method, or client not
   authorized for any of the scopes requested." (so after a revocation); ``sub`` must
   be a sandbox account: else 400 ``invalid_grant`` "Invalid email or User ID".
   Sources: a ``sub`` outside every delegating Workspace (a consumer Gmail account)
   answers ``unauthorized_client`` as an unauthorized client does, as reported in
   googleapis/google-auth-library-nodejs#1001 and googleapis/google-api-php-client#950
   (observed behaviour; Google's reference names only the error codes).
   Without ``sub`` the token is the service account's own (its own sandbox account).

Success: ``{"access_token", "expires_in": 3599, "scope", "token_type": "Bearer"}``; the
access token acts as ``sub`` in People and Calendar. No refresh token: the client signs
a new assertion. Access tokens already issued live their hour after a revocation;
Google says a change of delegation can take up to 24 hours to apply, the sandbox
applies it to the next grant at once.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.routing import PLAIN, ApiError, Call, Reply, Router

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_AUDIENCES = frozenset(
    {
        "https://oauth2.googleapis.com/token",
        "https://www.googleapis.com/oauth2/v4/token",
        "https://accounts.google.com/o/oauth2/token",
    }
)
MAX_LIFETIME = 3600
SKEW = 60
EXPIRES_IN = 3599
UNAUTHORIZED = (
    "Client is unauthorized to retrieve access tokens using this method, or client not "
    "authorized for any of the scopes requested."
)
TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


@dataclass
class ServiceAccount:
    client_email: str
    client_id: str
    keys: dict[str, rsa.RSAPublicKey]  # by key id
    domain: str | None  # None: the delegation was revoked
    scopes: frozenset[str]

    def public(self) -> dict[str, Any]:
        return {"clientId": self.client_id, "clientEmail": self.client_email,
                "domain": self.domain, "scopes": sorted(self.scopes)}  # fmt: skip


def _error(error: str, description: str, status: int = 400) -> ApiError:
    return ApiError(status, {"error": error, "error_description": description})


def _bad(message: str) -> ApiError:
    return ApiError(400, {"error": {"code": 400, "message": message}})


def _accounts(call: Call) -> dict[str, ServiceAccount]:
    return call.sandbox.ext.setdefault("service_accounts", {})


def _public_key(pem: Any) -> rsa.RSAPublicKey:
    if not isinstance(pem, str):
        raise _bad("'publicKey' must be a PEM public key or certificate")
    try:
        if "CERTIFICATE" in pem:
            key: Any = x509.load_pem_x509_certificate(pem.encode()).public_key()
        else:
            key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise _bad("'publicKey' is not a readable PEM public key or certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise _bad("'publicKey' must be an RSA key")
    return key


def register(call: Call) -> Reply:
    body = call.json()
    email, domain, scopes = body.get("clientEmail"), body.get("domain"), body.get("scopes")
    if not isinstance(email, str) or "@" not in email:
        raise _bad("'clientEmail' must be the service account's email")
    if not isinstance(domain, str) or not domain or "@" in domain:
        raise _bad("'domain' must be a Workspace domain such as example.com")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise _bad("'scopes' must be a non-empty list of OAuth scopes")
    key = _public_key(body.get("publicKey"))
    key_id = body.get("keyId") or "default"
    accounts = _accounts(call)
    known = accounts.get(email.lower())
    client_id = body.get("clientId") or (known.client_id if known else _client_id())
    accounts[email.lower()] = ServiceAccount(
        email.lower(), str(client_id), {str(key_id): key}, domain.lower(), frozenset(scopes)
    )
    return Reply.json(accounts[email.lower()].public())


def _client_id() -> str:
    return str(10**20 + secrets.randbelow(9 * 10**20))  # 21 digits, as Google's


def revoke(call: Call) -> Reply:
    wanted = call.params["client"].lower()
    for account in _accounts(call).values():
        if wanted in (account.client_id, account.client_email):
            account.domain, account.scopes = None, frozenset()
            return Reply.json(account.public())
    raise ApiError(404, {"error": {"code": 404, "message": f"no service account {wanted}"}})


def listing(call: Call) -> Reply:
    return Reply.json({"delegations": [a.public() for a in _accounts(call).values()]})


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _decode(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    try:
        head, payload, signature = assertion.split(".")
        header, claims = json.loads(_b64(head)), json.loads(_b64(payload))
        sig = _b64(signature)
    except ValueError:
        raise _error("invalid_grant", "Invalid JWT Signature.") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _error("invalid_grant", "Invalid JWT Signature.")
    return header, claims, f"{head}.{payload}".encode(), sig


def _verified(account: ServiceAccount, header: dict[str, Any], signed: bytes, sig: bytes) -> bool:
    if header.get("alg") != "RS256":
        return False
    kid = header.get("kid")
    keys = [account.keys[kid]] if kid in account.keys else list(account.keys.values())
    for key in keys:
        try:
            key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


def _check_times(claims: dict[str, Any]) -> None:
    iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, exp))
    if not numbers or exp - iat > MAX_LIFETIME or exp <= now or iat > now + SKEW:  # type: ignore[operator]
        raise _error("invalid_grant", TIMEFRAME)


def jwt_grant(call: Call, form: dict[str, str]) -> Reply:
    header, claims, signed, sig = _decode(form.get("assertion", ""))
    account = _accounts(call).get(str(claims.get("iss", "")).lower())
    if account is None:
        raise _error("invalid_grant", "Invalid grant: account not found")
    if not _verified(account, header, signed, sig):
        raise _error("invalid_grant", "Invalid JWT Signature.")
    if claims.get("aud") not in GOOGLE_AUDIENCES | {f"{call.sandbox.base_url}/token"}:
        raise _error("invalid_grant", "Invalid JWT: Failed audience check.")
    _check_times(claims)
    scopes = frozenset(str(claims.get("scope") or "").split())
    if not scopes:
        raise _error("invalid_scope", "Empty or missing scope not allowed.")
    subject = claims.get("sub")
    if subject is None:  # the service account acting as itself
        email = call.sandbox.add_account(account.client_email).email
    else:
        email = _delegated(call, account, str(subject), scopes)
    body = {
        "access_token": call.sandbox.tokens.issue_access(email, scopes),
        "expires_in": EXPIRES_IN,
        "scope": " ".join(sorted(scopes)),
        "token_type": "Bearer",
    }
    return Reply.json(body)


def _delegated(call: Call, account: ServiceAccount, subject: str, scopes: frozenset[str]) -> str:
    """The account ``sub`` names, when the delegation covers its domain and the scopes."""
    domain = subject.rpartition("@")[2].lower()
    if account.domain is None or domain != account.domain or not scopes <= account.scopes:
        raise _error("unauthorized_client", UNAUTHORIZED, 401)
    found = call.sandbox.account(subject)
    if found is None:
        raise _error("invalid_grant", "Invalid email or User ID")
    return found.email


def register_routes(router: Router) -> None:
    routes = [
        ("POST", "/_sandbox/delegations", register),
        ("GET", "/_sandbox/delegations", listing),
        ("DELETE", "/_sandbox/delegations/(?P<client>[^/]+)", revoke),
    ]
    for method, path, handler in routes:
        router.add(method, path, "sandbox.control", PLAIN, handler)
