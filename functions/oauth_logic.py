"""Connecting a Google account: the authorization-code flow with PKCE.

``start`` builds Google's consent URL. Its ``state`` is sealed with a Fernet key derived
from the OAuth client secret (encrypted, as it carries the PKCE verifier; authenticated;
time-stamped), holds the user id, and expires after 10 minutes: the callback needs no
server-side session, and a forged, stale or altered state is refused. ``finish``
exchanges the code, checks the grant (scopes, the account's email), and stores the
refresh token encrypted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken
from google.auth import jwt
from google.auth.transport.requests import Request

from adapters.google_api import SCOPES, token_uri
from adapters.google_auth import TokenInfo
from core.model import USERS
from core.ports import DocumentStore
from functions import bootstrap
from functions.accounts import save_connection
from functions.http_errors import Rejected

STATE_SECONDS = 600
AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"


def state_cipher(config: bootstrap.Config) -> Fernet:
    digest = hashlib.sha256(b"crmsync oauth state|" + config.oauth_client_secret.encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


NONCE_COOKIE = "crmsync_oauth"


def start(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    redirect_uri: str,
    login_hint: str | None = None,
) -> tuple[str, str]:
    """The consent URL, and a nonce for an HttpOnly cookie: the callback accepts the state
    only from the browser that started the flow (no account-linking CSRF). Google's
    account chooser is hinted with ``login_hint`` (another account than the CRM email),
    else the user's CRM email."""
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    sealed = {"u": user_id, "v": verifier, "n": nonce}
    state = state_cipher(config).encrypt(json.dumps(sealed).encode())
    user = store.get(USERS, user_id) or {}
    base = f"{config.google_endpoint}/o/oauth2/v2/auth" if config.google_endpoint else AUTH_URL
    query = {
        "client_id": config.oauth_client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(("openid", "email", *SCOPES)),
        "state": state.decode(),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
        "login_hint": (login_hint or "").strip()[:320] or user.get("email", ""),
    }
    return f"{base}?{urlencode(query)}", nonce


def open_state(config: bootstrap.Config, state: str | None, nonce: str | None) -> dict[str, str]:
    try:
        raw = state_cipher(config).decrypt((state or "").encode(), ttl=STATE_SECONDS)
        sealed = json.loads(raw)
    except (InvalidToken, ValueError, TypeError):
        raise Rejected(
            400,
            "the sign-in state is forged, altered or expired; start again",
            code="state_expired",
        ) from None
    if not nonce or not secrets.compare_digest(str(sealed.get("n", "")), nonce):
        raise Rejected(
            400,
            "the sign-in state was started in another browser; start again",
            code="other_browser",
        )
    return sealed


def finish(
    config: bootstrap.Config,
    store: DocumentStore,
    args: dict[str, str],
    redirect_uri: str,
    nonce: str | None,
) -> str:
    sealed = open_state(config, args.get("state"), nonce)
    if args.get("error"):
        raise Rejected(
            400,
            f"Google did not connect the account: {args['error']}",
            code="cancelled" if args["error"] == "access_denied" else "not_completed",
        )
    if not args.get("code"):
        raise Rejected(400, "the callback carries no authorization code", code="not_completed")
    response = Request().session.post(
        token_uri(config.google_endpoint),
        data={
            "grant_type": "authorization_code",
            "code": args["code"],
            "redirect_uri": redirect_uri,
            "client_id": config.oauth_client_id,
            "client_secret": config.oauth_client_secret,
            "code_verifier": sealed["v"],
        },
        timeout=30,
    )
    grant = response.json() if response.content else {}
    if response.status_code != 200 or "refresh_token" not in grant:
        raise Rejected(
            400,
            f"Google refused the code: {grant.get('error', response.status_code)}",
            code="google_refused",
        )
    granted = set(grant.get("scope", "").split())
    missing = [s for s in SCOPES if s not in granted and s.removesuffix(".events") not in granted]
    if missing:
        raise Rejected(
            400, "access to " + ", ".join(missing) + " was not granted", code="scope_missing"
        )
    email = (
        jwt.decode(grant["id_token"], verify=False).get("email") if grant.get("id_token") else None
    )
    save_connection(
        config, store, sealed["u"], grant["refresh_token"], TokenInfo(email, tuple(sorted(granted)))
    )
    return sealed["u"]
