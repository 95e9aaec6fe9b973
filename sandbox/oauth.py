"""OAuth 2.0 and OpenID Connect endpoints at Google's paths (GOOGLE_API.md section 6).

* ``GET /o/oauth2/v2/auth`` approves at once for the ``login_hint`` account and
  redirects to ``redirect_uri`` with ``code`` and ``state`` (PKCE S256/plain kept).
* ``POST /token``: ``authorization_code``, ``refresh_token`` and (``sandbox.delegation``)
  JWT-bearer grants; an ``id_token``
  when ``openid`` was granted. Revoked or unknown refresh tokens: 400 ``invalid_grant``;
  so are, with ``Behaviours.testing_mode_refresh_expiry``, refresh tokens 7 days old
  (sandbox time) unless they hold only openid/email/profile scopes.
* ``POST /revoke``: revokes a refresh or access token, cascading.
* ``GET /oauth2/v3/certs`` (JWKS) and ``/oauth2/v1/certs`` (PEM), for RS256 ID tokens.
* ``GET /oauth2/v2/userinfo`` and ``GET /oauth2/v3/userinfo``.
* ``POST /_sandbox/idtoken {"email", "audience", "ttlSeconds"?}`` mints an ID token
  directly (sign-in in tests). ID tokens use real time, since their verifiers do.

The issuer of sandbox ID tokens is the sandbox's base URL, never accounts.google.com,
so production code can refuse them unless it is pointed at the sandbox.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from sandbox import delegation
from sandbox.routing import PLAIN, ApiError, Call, Reply, Router, auth_error
from sandbox.state import RefreshGrant

CODE_SECONDS = 600
TESTING_REFRESH_SECONDS = 7 * 24 * 3600
SIGN_IN_SCOPES = frozenset(
    {
        "openid",
        "email",
        "profile",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
    }
)
ID_TOKEN_SECONDS = 3600
EXPIRES_IN = 3599


class SigningKey:
    """The RSA key that signs ID tokens, with its JWKS and PEM certificate forms."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(20)
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.signer = crypt.RSASigner.from_string(pem, key_id=self.kid)
        self.cert_pem = self._certificate().public_bytes(serialization.Encoding.PEM).decode()

    def _certificate(self) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crmsync-sandbox")])
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(self.key, hashes.SHA256())
        )

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": b64(numbers.n),
            "e": b64(numbers.e),
        }


def signing_key(call: Call) -> SigningKey:
    sandbox = call.sandbox
    key = getattr(sandbox, "signing_key", None)
    if key is None:
        key = sandbox.signing_key = SigningKey()
    return key


def oauth_error(error: str, description: str, status: int = 400) -> ApiError:
    return ApiError(status, {"error": error, "error_description": description})


def mint_id_token(
    call: Call, email: str, audience: str, nonce: str | None = None, ttl: int = ID_TOKEN_SECONDS
) -> str:
    account = call.sandbox.account(email)
    if account is None:
        raise oauth_error("invalid_request", f"unknown account {email}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": call.sandbox.base_url,
        "azp": audience,
        "aud": audience,
        "sub": account.numeric_id,
        "email": account.email,
        "email_verified": True,
        "iat": now if ttl > 0 else now + ttl - 60,
        "exp": now + ttl,
    }
    if nonce:
        claims["nonce"] = nonce
    return jwt.encode(signing_key(call).signer, claims).decode()


def authorize(call: Call) -> Reply:
    redirect_uri = call.arg("redirect_uri")
    if not redirect_uri or not urlsplit(redirect_uri).scheme:
        raise oauth_error("invalid_request", "Missing required parameter: redirect_uri")
    if call.arg("response_type") != "code":
        raise oauth_error("unsupported_response_type", "Only response_type=code is supported")
    scopes = frozenset((call.arg("scope") or "").split())
    if not scopes:
        raise oauth_error("invalid_request", "Missing required parameter: scope")
    params: dict[str, str] = {}
    if call.arg("state") is not None:
        params["state"] = call.arg("state") or ""
    account = _consenting_account(call)
    if account is None:
        return _redirect(redirect_uri, {"error": "access_denied", **params})
    code = "4/sbx-" + secrets.token_urlsafe(24)
    method = call.arg("code_challenge_method", "plain") or "plain"
    if method not in ("S256", "plain"):
        raise oauth_error("invalid_request", "Invalid code_challenge_method")
    from sandbox.state import CodeGrant

    call.sandbox.tokens.codes[code] = CodeGrant(
        account.email,
        scopes,
        call.arg("client_id") or "",
        redirect_uri,
        call.arg("code_challenge"),
        method,
        call.arg("nonce"),
        call.sandbox.clock.timestamp() + CODE_SECONDS,
    )
    call.sandbox.ext.setdefault("offline_codes", set())
    if call.arg("access_type") == "offline":
        call.sandbox.ext["offline_codes"].add(code)
    return _redirect(redirect_uri, {"code": code, "scope": " ".join(sorted(scopes)), **params})


def _consenting_account(call: Call):
    hint = call.arg("login_hint")
    if hint:
        return call.sandbox.account(hint)
    accounts = list(call.sandbox.accounts.values())
    return accounts[0] if len(accounts) == 1 else None


def _redirect(uri: str, params: dict[str, str]) -> Reply:
    separator = "&" if urlsplit(uri).query else "?"
    location = uri + separator + urlencode(params)
    return Reply(302, b"", {"Location": location, "Content-Length": "0"})


def token(call: Call) -> Reply:
    form = call.form()
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return _code_grant(call, form)
    if grant_type == "refresh_token":
        return _refresh_grant(call, form)
    if grant_type == delegation.JWT_BEARER:
        return delegation.jwt_grant(call, form)
    raise oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")


def _code_grant(call: Call, form: dict[str, str]) -> Reply:
    tokens = call.sandbox.tokens
    grant = tokens.codes.pop(form.get("code", ""), None)
    if grant is None or grant.expires_at < call.sandbox.clock.timestamp():
        raise oauth_error("invalid_grant", "Bad Request")
    if form.get("redirect_uri") != grant.redirect_uri:
        raise oauth_error("redirect_uri_mismatch", "Bad Request")
    if grant.code_challenge and not _pkce_ok(grant, form.get("code_verifier")):
        raise oauth_error("invalid_grant", "Invalid code verifier.")
    body = _access_body(call, grant.email, grant.scopes, grant.client_id, grant.nonce)
    offline = call.sandbox.ext.get("offline_codes", set())
    if form.get("code") in offline:
        refresh = tokens.issue_refresh(grant.email, grant.scopes, grant.client_id)
        body["access_token"] = tokens.issue_access(grant.email, grant.scopes, refresh)
        body["refresh_token"] = refresh
    return Reply.json(body)


def _pkce_ok(grant, verifier: str | None) -> bool:
    if not verifier:
        return False
    if grant.code_challenge_method == "plain":
        return secrets.compare_digest(verifier, grant.code_challenge)
    digest = hashlib.sha256(verifier.encode()).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return secrets.compare_digest(expected, grant.code_challenge)


def _refresh_grant(call: Call, form: dict[str, str]) -> Reply:
    refresh = form.get("refresh_token", "")
    grant = call.sandbox.tokens.live_refresh(refresh)
    if grant is None or _testing_expired(call, grant):
        raise oauth_error("invalid_grant", "Token has been expired or revoked.")
    body = _access_body(call, grant.email, grant.scopes, form.get("client_id") or grant.client_id)
    body["access_token"] = call.sandbox.tokens.issue_access(grant.email, grant.scopes, refresh)
    return Reply.json(body)


def _testing_expired(call: Call, grant: RefreshGrant) -> bool:
    """A "Testing"-status client's refresh token is past its 7 days (realism), unless it
    holds only sign-in scopes."""
    if not call.sandbox.behaviours.testing_mode_refresh_expiry or grant.scopes <= SIGN_IN_SCOPES:
        return False
    return call.sandbox.clock.timestamp() >= grant.issued_at + TESTING_REFRESH_SECONDS


def _access_body(
    call: Call, email: str, scopes: frozenset[str], client_id: str, nonce: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": call.sandbox.tokens.issue_access(email, scopes),
        "expires_in": EXPIRES_IN,
        "scope": " ".join(sorted(scopes)),
        "token_type": "Bearer",
    }
    if "openid" in scopes:
        body["id_token"] = mint_id_token(call, email, client_id or "sandbox-client", nonce)
    return body


def revoke(call: Call) -> Reply:
    value = call.form().get("token", "")
    if not call.sandbox.tokens.revoke(value):
        raise oauth_error("invalid_token", "Token expired or revoked")
    return Reply.json({})


def certs_v3(call: Call) -> Reply:
    return Reply.json({"keys": [signing_key(call).jwk()]})


def certs_v1(call: Call) -> Reply:
    key = signing_key(call)
    return Reply.json({key.kid: key.cert_pem})


def userinfo(call: Call) -> Reply:
    header = call.headers.get("authorization", "")
    grant = call.sandbox.tokens.access_grant(header[7:].strip())
    if grant is None:
        raise auth_error()
    account = call.sandbox.account(grant.email)
    if account is None:
        raise auth_error()
    return Reply.json(
        {
            "id": account.numeric_id,
            "sub": account.numeric_id,
            "email": account.email,
            "verified_email": True,
            "email_verified": True,
        }
    )


def id_token_for_tests(call: Call) -> Reply:
    body = call.json()
    email, audience = body.get("email"), body.get("audience")
    ttl = body.get("ttlSeconds", ID_TOKEN_SECONDS)
    if not isinstance(email, str) or not isinstance(audience, str) or not isinstance(ttl, int):
        raise oauth_error("invalid_request", "expected {'email', 'audience', 'ttlSeconds'?}")
    return Reply.json({"idToken": mint_id_token(call, email, audience, ttl=ttl)})


def register(router: Router) -> None:
    # method ids, for faults that name them (``POST /_sandbox/faults {"method":
    # "oauth2.revoke"}``); a ``*`` fault never reaches these routes
    routes = [
        ("GET", "/o/oauth2/v2/auth", "oauth2.authorize", authorize),
        ("POST", "/token", "oauth2.token", token),
        ("POST", "/revoke", "oauth2.revoke", revoke),
        ("GET", "/oauth2/v3/certs", "oauth2.certs", certs_v3),
        ("GET", "/oauth2/v1/certs", "oauth2.certs", certs_v1),
        ("GET", "/oauth2/v2/userinfo", "oauth2.userinfo", userinfo),
        ("GET", "/oauth2/v3/userinfo", "oauth2.userinfo", userinfo),
        ("POST", "/_sandbox/idtoken", "oauth2.idtoken", id_token_for_tests),
    ]
    for method, path, method_id, handler in routes:
        router.add(method, path, method_id, PLAIN, handler)
