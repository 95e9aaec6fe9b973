"""Google OAuth helpers: checking and revoking a refresh token, mapping auth failures.

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

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from google.auth.transport.requests import Request

from adapters.google_api import SCOPES, credentials
from core.errors import AuthRevoked, GoogleError, QuotaExceeded, Unavailable

GOOGLE_REVOKE_URI = "https://oauth2.googleapis.com/revoke"
REVOKE_TIMEOUT = 30
REVOKE_ATTEMPTS = 3
# Google's answers for a token it no longer knows: already revoked, expired, or never its
GONE_TOKEN_ERRORS = frozenset({"invalid_token", "invalid_grant"})


@dataclass(frozen=True)
class TokenInfo:
    account_email: str | None
    scopes: tuple[str, ...]


def check_refresh_token(
    refresh_token: str, endpoint: str | None, client_id: str, client_secret: str
) -> TokenInfo:
    creds = credentials(refresh_token, endpoint, client_id, client_secret, scopes=SCOPES)
    try:
        creds.refresh(Request())
    except auth_exceptions.RefreshError as exc:
        raise auth_error(exc) from None
    except auth_exceptions.TransportError as exc:
        raise GoogleError(f"cannot reach Google's token endpoint: {exc}") from None
    granted = set(creds.granted_scopes or ())
    missing = [s for s in SCOPES if s not in granted and _broader(s) not in granted]
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
    """``invalid_grant`` means revoked or expired: the user must reconnect."""
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
