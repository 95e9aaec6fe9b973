"""Connecting a Google account: the authorization-code flow with PKCE.

``start`` builds Google's consent URL. Its ``state`` is sealed (``adapters.google_auth``:
encrypted, as it carries the PKCE verifier; authenticated; time-stamped), holds the user
id, and expires after 10 minutes: the callback needs no server-side session, and a
forged, stale or altered state is refused. ``finish`` exchanges the code, checks the
grant (scopes, the account's email), and stores the refresh token encrypted.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlencode

from adapters.google_api import SCOPES
from adapters.google_auth import (
    CodeRefused,
    StateRefused,
    authorization_uri,
    exchange_code,
    grant_info,
    missing_scopes,
    pkce,
    seal,
    unseal,
)
from core.model import USERS
from core.ports import DocumentStore
from functions import bootstrap
from functions.accounts import save_connection
from functions.http_errors import Rejected

STATE_SECONDS = 600
STATE = "oauth state"  # what the sealed state is (its key is derived from it, too)
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
    (verifier, challenge), nonce = pkce(), secrets.token_urlsafe(24)
    sealed = {"u": user_id, "v": verifier, "n": nonce}
    state = seal(bootstrap.session_secret(config), STATE, json.dumps(sealed).encode())
    user = store.get(USERS, user_id) or {}
    query = {
        "client_id": config.oauth_client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(("openid", "email", *SCOPES)),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
        "login_hint": (login_hint or "").strip()[:320] or user.get("email", ""),
    }
    return f"{authorization_uri(config.google_endpoint)}?{urlencode(query)}", nonce


def open_state(config: bootstrap.Config, state: str | None, nonce: str | None) -> dict[str, str]:
    try:
        sealed = json.loads(unseal(bootstrap.session_secret(config), STATE, state, STATE_SECONDS))
    except (StateRefused, ValueError, TypeError):
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
    try:
        grant = exchange_code(
            config.google_endpoint, config.oauth_client_id, config.oauth_client_secret,
            args["code"], redirect_uri, needs="refresh_token", verifier=sealed["v"],
        )  # fmt: skip
    except CodeRefused as refused:
        raise Rejected(400, str(refused), code="google_refused") from None
    info = grant_info(grant)
    missing = missing_scopes(set(info.scopes))
    if missing:
        raise Rejected(
            400, "access to " + ", ".join(missing) + " was not granted", code="scope_missing"
        )
    save_connection(config, store, sealed["u"], grant["refresh_token"], info)
    return sealed["u"]
