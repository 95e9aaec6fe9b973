"""Browser sessions for the settings page: sign-in with Google (OpenID Connect code flow),
a sealed session cookie, and CSRF protection.

* ``/signin`` sends the browser to Google's consent page for ``openid email``; the
  callback exchanges the code, verifies the ID token with google-auth (the same check
  as the API's bearer tokens) and maps its email to a CRM user.
* The cookie holds ``{user, csrf}`` sealed (``adapters.google_auth.seal``: Fernet, under
  a key derived from the OAuth client secret); it is HttpOnly, SameSite=Lax, Secure
  over https, 8 hours.
* Writes made with the cookie must carry ``X-CSRF-Token`` equal to the session's token
  (the page reads it from ``/status``); a cross-site form can neither read nor send it.
"""

from __future__ import annotations

import hmac
import json
import secrets
from urllib.parse import urlencode

from adapters.google_auth import (
    CodeRefused,
    StateRefused,
    authorization_uri,
    exchange_code,
    seal,
    unseal,
)
from adapters.identity import verified_email
from core.model import USERS
from core.ports import DocumentStore, Filter
from functions import bootstrap
from functions.http_errors import Rejected

COOKIE = "crmsync_session"
SESSION_SECONDS = 8 * 3600
STATE_SECONDS = 600
SIGNIN_COOKIE = "crmsync_signin"


def signin_url(config: bootstrap.Config, redirect_uri: str, email: str | None) -> tuple[str, str]:
    """Google's sign-in URL, and a nonce for an HttpOnly cookie that binds the state to
    this browser (no login CSRF)."""
    nonce = secrets.token_urlsafe(24)
    state = seal(config.oauth_client_secret, "signin", nonce.encode())
    params = {
        "client_id": config.oauth_client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid email",
        "state": state,
    }
    if email:
        params["login_hint"] = email
    return f"{authorization_uri(config.google_endpoint)}?{urlencode(params)}", nonce


def finish_signin(
    config: bootstrap.Config,
    store: DocumentStore,
    args: dict[str, str],
    redirect_uri: str,
    nonce: str | None,
) -> str:
    """The user id behind a completed sign-in, or ``Rejected``."""
    try:
        sealed = unseal(config.oauth_client_secret, "signin", args.get("state"), STATE_SECONDS)
    except StateRefused:
        raise Rejected(
            400, "the sign-in state is forged or expired; sign in again", code="state_expired"
        ) from None
    if not nonce or not hmac.compare_digest(sealed, nonce.encode()):
        raise Rejected(
            400, "the sign-in was started in another browser; sign in again", code="other_browser"
        )
    if not args.get("code"):
        cancelled = args.get("error") == "access_denied"
        raise Rejected(
            400,
            f"sign-in was not completed: {args.get('error', 'no code')}",
            code="cancelled" if cancelled else "not_completed",
        )
    try:
        grant = exchange_code(
            config.google_endpoint, config.oauth_client_id, config.oauth_client_secret,
            args["code"], redirect_uri, needs="id_token",
        )  # fmt: skip
    except CodeRefused:
        raise Rejected(400, "Google did not confirm the sign-in", code="google_refused") from None
    email = verified_email(
        f"Bearer {grant['id_token']}", config.oauth_client_id, config.google_endpoint
    )
    found = store.query(USERS, [Filter("email", "==", email)])
    if not found:
        raise Rejected(403, f"{email} is not a CRM user", code="not_a_crm_user")
    return found[0].id


def new_session(config: bootstrap.Config, user_id: str) -> str:
    payload = {"u": user_id, "c": secrets.token_urlsafe(24)}
    return seal(config.oauth_client_secret, "session", json.dumps(payload).encode())


def open_session(config: bootstrap.Config, cookie: str | None) -> dict[str, str] | None:
    if not cookie:
        return None
    try:
        raw = unseal(config.oauth_client_secret, "session", cookie, SESSION_SECONDS)
    except StateRefused:
        return None
    return json.loads(raw)


def csrf_ok(session: dict[str, str], header: str | None) -> bool:
    given = (header or "").encode("utf-8", "replace")  # any text: compared as bytes
    return bool(header) and hmac.compare_digest(str(session["c"]).encode(), given)
