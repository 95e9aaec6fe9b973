"""Browser sessions for the settings page: sign-in with Google (OpenID Connect code flow),
a sealed session cookie, and CSRF protection.

* ``/signin`` sends the browser to Google's consent page for ``openid email``; the
  callback exchanges the code, verifies the ID token with google-auth (the same check
  as the API's bearer tokens) and maps its email to a CRM user.
* The cookie holds ``{user, csrf}`` sealed with Fernet under a key derived from the
  OAuth client secret; it is HttpOnly, SameSite=Lax, Secure over https, 8 hours.
* Writes made with the cookie must carry ``X-CSRF-Token`` equal to the session's token
  (the page reads it from ``/status``); a cross-site form can neither read nor send it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken
from google.auth.transport.requests import Request

from adapters.google_api import token_uri
from adapters.identity import verified_email
from core.model import USERS
from core.ports import DocumentStore, Filter
from functions import bootstrap
from functions.http_errors import Rejected

COOKIE = "crmsync_session"
SESSION_SECONDS = 8 * 3600
STATE_SECONDS = 600


def _sealer(config: bootstrap.Config, label: bytes) -> Fernet:
    digest = hashlib.sha256(b"crmsync " + label + b"|" + config.oauth_client_secret.encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


SIGNIN_COOKIE = "crmsync_signin"


def signin_url(config: bootstrap.Config, redirect_uri: str, email: str | None) -> tuple[str, str]:
    """Google's sign-in URL, and a nonce for an HttpOnly cookie that binds the state to
    this browser (no login CSRF)."""
    nonce = secrets.token_urlsafe(24)
    state = _sealer(config, b"signin").encrypt(nonce.encode()).decode()
    base = config.google_endpoint or "https://accounts.google.com"
    params = {
        "client_id": config.oauth_client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid email",
        "state": state,
    }
    if email:
        params["login_hint"] = email
    return f"{base}/o/oauth2/v2/auth?{urlencode(params)}", nonce


def finish_signin(
    config: bootstrap.Config,
    store: DocumentStore,
    args: dict[str, str],
    redirect_uri: str,
    nonce: str | None,
) -> str:
    """The user id behind a completed sign-in, or ``Rejected``."""
    try:
        sealed = (
            _sealer(config, b"signin")
            .decrypt(args.get("state", "").encode(), ttl=STATE_SECONDS)
            .decode()
        )
    except InvalidToken:
        raise Rejected(
            400, "the sign-in state is forged or expired; sign in again", code="state_expired"
        ) from None
    if not nonce or not hmac.compare_digest(sealed, nonce):
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
    answer = Request().session.post(
        token_uri(config.google_endpoint),
        data={
            "grant_type": "authorization_code",
            "code": args["code"],
            "redirect_uri": redirect_uri,
            "client_id": config.oauth_client_id,
            "client_secret": config.oauth_client_secret,
        },
        timeout=30,
    )
    id_token = (answer.json() if answer.content else {}).get("id_token")
    if answer.status_code != 200 or not id_token:
        raise Rejected(400, "Google did not confirm the sign-in", code="google_refused")
    email = verified_email(f"Bearer {id_token}", config.oauth_client_id, config.google_endpoint)
    found = store.query(USERS, [Filter("email", "==", email)])
    if not found:
        raise Rejected(403, f"{email} is not a CRM user", code="not_a_crm_user")
    return found[0].id


def new_session(config: bootstrap.Config, user_id: str) -> str:
    payload = {"u": user_id, "c": secrets.token_urlsafe(24)}
    return _sealer(config, b"session").encrypt(json.dumps(payload).encode()).decode()


def open_session(config: bootstrap.Config, cookie: str | None) -> dict[str, str] | None:
    if not cookie:
        return None
    try:
        raw = _sealer(config, b"session").decrypt(cookie.encode(), ttl=SESSION_SECONDS)
    except InvalidToken:
        return None
    return json.loads(raw)


def csrf_ok(session: dict[str, str], header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(session["c"], header or "")
