"""Google OAuth helpers: checking a refresh token and mapping auth failures.

``check_refresh_token`` refreshes once at the endpoint's token URI. It learns the
account's email from the ``id_token`` Google returns for the ``openid email`` scopes
(received directly from the token endpoint over TLS, so, as OpenID Connect allows,
its claims are read without a signature check) and the granted scopes, and refuses
a token that lacks the contacts or calendar-events scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from google.auth.transport.requests import Request

from adapters.google_api import SCOPES, credentials
from core.errors import AuthRevoked, GoogleError


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
