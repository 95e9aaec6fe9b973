"""Who is calling: a Google ID token, verified with google-auth.

Real Google tokens are accepted from Google's issuers. Tokens of the local sandbox (its
base URL as issuer) are accepted only when ``CRMSYNC_GOOGLE_ENDPOINT`` points at that
sandbox; the issuer is checked before any key is fetched, so a foreign token never
causes a network call.
"""

from __future__ import annotations

from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from google.auth.transport.requests import Request
from google.oauth2 import id_token

from core.errors import CrmsyncError

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
GOOGLE_CERTS = "https://www.googleapis.com/oauth2/v1/certs"


class NotSignedIn(CrmsyncError):
    """No ID token, or one that is not valid for this service (HTTP 401)."""


def verified_email(header: str | None, audience: str, endpoint: str | None) -> str:
    token = (header or "")[7:].strip() if (header or "").lower().startswith("bearer ") else ""
    if not token:
        raise NotSignedIn("sign in: send 'Authorization: Bearer <Google ID token>'")
    try:
        issuer = jwt.decode(token, verify=False).get("iss")
    except (ValueError, auth_exceptions.GoogleAuthError):
        raise NotSignedIn("the ID token is malformed") from None
    if endpoint and issuer == endpoint.rstrip("/"):
        certs = f"{endpoint.rstrip('/')}/oauth2/v1/certs"
    elif issuer in GOOGLE_ISSUERS:
        certs = GOOGLE_CERTS
    else:
        raise NotSignedIn(f"ID tokens from issuer {issuer!r} are not accepted here")
    try:
        claims = id_token.verify_token(token, Request(), audience=audience, certs_url=certs)
    except (ValueError, auth_exceptions.GoogleAuthError) as exc:
        raise NotSignedIn(f"the ID token is not valid: {exc}") from None
    if claims.get("email_verified") not in (True, "true") or not claims.get("email"):
        raise NotSignedIn("the ID token carries no verified email")
    return claims["email"].lower()
