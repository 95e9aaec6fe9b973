"""Google OAuth: the authorization-code exchange, sealed states, checking and revoking a
refresh token, mapping auth failures.

``exchange_code`` trades an authorization code (with its PKCE verifier, if any) at the
endpoint's token URI; ``grant_info`` reads the account's email and the granted scopes
from what it answered. ``seal``/``unseal`` keep a state (or a cookie) with a Fernet key
derived from the OAuth client secret and a label: encrypted, authenticated, time-stamped,
so that a callback needs no server-side session and refuses a forged, altered or stale one.

``check_refresh_token`` refreshes once at the endpoint's token URI. It learns the
account's email from the ``id_token`` Google returns for the ``openid email`` scopes
(received directly from the token endpoint over TLS, so, as OpenID Connect allows,
its claims are read without a signature check) and the granted scopes, and refuses
a token that lacks the contacts or calendar-events scope.

``revoke_token`` posts the token to the endpoint's revoke URI (``token=`` form body,
GOOGLE_API.md section 6), through the same HTTP transport: True when Google revoked
it, False when Google answers it is already invalid or revoked (400 ``invalid_token``),
``Unavailable`` / ``QuotaExceeded`` for passing trouble (unreachable, 5xx, 429) after
a few quick tries, ``GoogleError`` for any other refusal.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken
from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from google.auth.transport.requests import Request

from adapters.delegation import DelegationRefused, refusal
from adapters.google_api import SCOPES, credentials, grant_now, token_uri
from core.errors import AuthRevoked, CrmsyncError, GoogleError, QuotaExceeded, Unavailable

GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_TIMEOUT = 30
GOOGLE_REVOKE_URI = "https://oauth2.googleapis.com/revoke"
REVOKE_TIMEOUT = 30
REVOKE_ATTEMPTS = 3
# Google's answers for a token it no longer knows: already revoked, expired, or never its
GONE_TOKEN_ERRORS = frozenset({"invalid_token", "invalid_grant"})


@dataclass(frozen=True)
class TokenInfo:
    account_email: str | None
    scopes: tuple[str, ...]


class StateRefused(CrmsyncError):
    """A sealed state or cookie that is forged, altered or older than its time to live."""


class CodeRefused(GoogleError):
    """Google's token endpoint did not grant what the code was exchanged for; ``error``
    is its OAuth error word, else the HTTP status."""

    def __init__(self, error: str | int) -> None:
        super().__init__(f"Google refused the code: {error}")
        self.error = error


def authorization_uri(endpoint: str | None) -> str:
    return f"{endpoint.rstrip('/')}/o/oauth2/v2/auth" if endpoint else GOOGLE_AUTH_URI


def _sealer(secret: str, label: str) -> Fernet:
    digest = hashlib.sha256(f"crmsync {label}|".encode() + secret.encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


def seal(secret: str, label: str, data: bytes) -> str:
    """``data`` sealed under a key derived from ``secret`` (the OAuth client secret) and
    ``label`` (what it is: a state of one flow, a session cookie)."""
    return _sealer(secret, label).encrypt(data).decode()


def unseal(secret: str, label: str, sealed: str | None, ttl: int) -> bytes:
    """What ``seal`` sealed, or ``StateRefused`` (forged, altered, or older than ``ttl``)."""
    try:
        return _sealer(secret, label).decrypt((sealed or "").encode(), ttl=ttl)
    except InvalidToken:
        raise StateRefused(f"the sealed {label} is forged, altered or expired") from None


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def exchange_code(
    endpoint: str | None,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    *,
    needs: str,
    verifier: str | None = None,
) -> dict[str, Any]:
    """Google's answer to the authorization code: a grant that carries ``needs``
    (``refresh_token``, ``id_token``), else ``CodeRefused``."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    response = Request().session.post(token_uri(endpoint), data=form, timeout=TOKEN_TIMEOUT)
    grant = response.json() if response.content else {}
    if response.status_code != 200 or not grant.get(needs):
        raise CodeRefused(grant.get("error", response.status_code))
    return grant


def grant_info(grant: dict[str, Any]) -> TokenInfo:
    """The account's email (from the ``id_token`` the token endpoint answered, over TLS:
    read without a signature check, as OpenID Connect allows) and the granted scopes."""
    email = (
        jwt.decode(grant["id_token"], verify=False).get("email") if grant.get("id_token") else None
    )
    return TokenInfo(email, tuple(sorted(set(grant.get("scope", "").split()))))


def missing_scopes(granted: set[str]) -> list[str]:
    """The scopes crmsync needs that ``granted`` does not cover."""
    return [s for s in SCOPES if s not in granted and _broader(s) not in granted]


def check_refresh_token(
    refresh_token: str, endpoint: str | None, client_id: str, client_secret: str
) -> TokenInfo:
    creds = credentials(refresh_token, endpoint, client_id, client_secret, scopes=SCOPES)
    grant_now(creds, auth_error)
    missing = missing_scopes(set(creds.granted_scopes or ()))
    if missing:
        raise GoogleError(
            "the Google account did not grant what crmsync needs; missing scopes: "
            + ", ".join(missing)
            + " (reconnect and accept access to contacts and calendar events)"
        )
    email = None
    if creds.id_token:
        claims = jwt.decode(creds.id_token, verify=False)
        email = claims.get("email")
    return TokenInfo(email, tuple(sorted(creds.granted_scopes or ())))


def _broader(scope: str) -> str:
    """``calendar`` covers ``calendar.events``."""
    return scope.removesuffix(".events")


def auth_error(exc: Exception) -> GoogleError:
    """``invalid_grant`` means revoked or expired: the user must reconnect. A refused
    grant of delegated credentials is the administrator's to fix (``adapters.delegation``)."""
    if isinstance(exc, DelegationRefused):
        return refusal(exc)
    text = str(exc)
    if "invalid_grant" in text:
        return AuthRevoked(
            "Google refused the refresh token (invalid_grant: revoked or expired); "
            "the user must reconnect their Google account",
            status=400,
            reason="invalid_grant",
        )
    return GoogleError(f"Google token refresh failed: {text}")


def revoke_uri(endpoint: str | None) -> str:
    return f"{endpoint.rstrip('/')}/revoke" if endpoint else GOOGLE_REVOKE_URI


def revoke_token(
    token: str,
    endpoint: str | None,
    *,
    attempts: int = REVOKE_ATTEMPTS,
    base_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Revoke a refresh (or access) token at Google; revoking cascades to every access
    token minted from it. True: revoked now; False: Google says it was already invalid
    or revoked (gone anyway). Raises ``Unavailable`` (unreachable, 5xx) or
    ``QuotaExceeded`` (429) once ``attempts`` quick tries failed, and ``GoogleError``
    for another refusal. The token never appears in an error's message."""
    body = urlencode({"token": token})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = Request()
    problem: GoogleError = Unavailable("Google's revoke endpoint was not tried")
    for attempt in range(1, max(attempts, 1) + 1):
        try:
            response = request(
                revoke_uri(endpoint), method="POST", body=body, headers=headers,
                timeout=REVOKE_TIMEOUT,
            )  # fmt: skip
        except auth_exceptions.TransportError as exc:
            problem = Unavailable(f"cannot reach Google's revoke endpoint: {type(exc).__name__}")
        else:
            status, error = response.status, _oauth_error(response.data)
            if status == 200:
                return True
            if status == 400 and error in GONE_TOKEN_ERRORS:
                return False
            text = f"Google's revoke endpoint answered {status} {error or ''}".strip()
            if status == 429:
                problem = QuotaExceeded(text, status=status, reason=error)
            elif status >= 500:
                problem = Unavailable(text, status=status, reason=error)
            else:
                raise GoogleError(text, status=status, reason=error)
        if attempt < attempts:
            sleep(base_seconds * 2 ** (attempt - 1))
    raise problem


def _oauth_error(data: bytes | str | None) -> str | None:
    """The ``error`` code of an OAuth error body (``{"error": "invalid_token", ...}``)."""
    try:
        body = json.loads(data or b"{}")
    except (ValueError, TypeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):  # a Google API style body
        return error.get("status") or error.get("message")
    return error if isinstance(error, str) else None
