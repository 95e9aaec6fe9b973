"""Browser sessions for the settings page: sign-in with Google (OpenID Connect code flow),
a sealed session cookie, and CSRF protection.

* ``/signin`` sends the browser to Google's consent page for ``openid email``; the
  callback exchanges the code, verifies the ID token with google-auth (the same check
  as the API's bearer tokens) and maps its email to a CRM user.
* The cookie holds ``{user, csrf, version}`` sealed (``adapters.google_auth.seal``:
  Fernet, under ``CRMSYNC_SESSION_KEY``, ``bootstrap.session_secret``); it is HttpOnly,
  SameSite=Lax, Secure over https and whenever deployed (``secure_cookies``), 8 hours.
  A session counts only while its user exists and has not signed out since
  (``webSessions/{user}.version``; a corrupt count holds no session).
* Writes made with the cookie must carry ``X-CSRF-Token`` equal to the session's token
  (the page reads it from ``/status``); a cross-site form can neither read nor send it.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any
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
from core.model import USERS, id_problem
from core.ports import DocumentStore, Filter
from functions import bootstrap
from functions.http_errors import Rejected

COOKIE = "crmsync_session"
SESSIONS = "webSessions"  # per user: {version}, bumped by each sign-out
SESSION_SECONDS = 8 * 3600
STATE_SECONDS = 600
SIGNIN_COOKIE = "crmsync_signin"
FRESH = 2**40  # sign-out counts after a corrupt one: beyond any count reached by sign-outs


def secure_cookies(config: bootstrap.Config, request: Any) -> bool:
    """Whether cookies get ``Secure``: over https, and whenever the page is served over
    https (``CRMSYNC_PAGE_URL``) or the function runs deployed (Cloud Run ends TLS in
    front of it, so the request itself says http). Local ``serve`` over http: not."""
    page = (config.page_url or "").strip().lower()
    return request.scheme == "https" or page.startswith("https://") or bootstrap.in_cloud()


def set_cookie(response: Any, config: bootstrap.Config, request: Any, name: str, value: str,
               seconds: int) -> Any:  # fmt: skip
    """An HttpOnly, SameSite=Lax cookie, Secure as ``secure_cookies`` says."""
    response.set_cookie(name, value, max_age=seconds, httponly=True, samesite="Lax",
                        secure=secure_cookies(config, request))  # fmt: skip
    return response


def delete_cookie(response: Any, config: bootstrap.Config, request: Any, name: str) -> Any:
    """The cookie removed, with the attributes it was set with."""
    response.delete_cookie(name, httponly=True, samesite="Lax",
                           secure=secure_cookies(config, request))  # fmt: skip
    return response


def signin_url(config: bootstrap.Config, redirect_uri: str, email: str | None) -> tuple[str, str]:
    """Google's sign-in URL, and a nonce for an HttpOnly cookie that binds the state to
    this browser (no login CSRF)."""
    nonce = secrets.token_urlsafe(24)
    state = seal(bootstrap.session_secret(config), "signin", nonce.encode())
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
        sealed = unseal(bootstrap.session_secret(config), "signin", args.get("state"),
                        STATE_SECONDS)  # fmt: skip
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


def _version(doc: Any) -> int | None:
    """The user's sign-out count (``webSessions/{user}.version``): 0 when absent, None
    when it is not a whole number crmsync wrote (no session counts at such a version)."""
    value = doc.get("version", 0) if isinstance(doc, dict) else 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def new_session(config: bootstrap.Config, store: DocumentStore, user_id: str) -> str:
    """A session for the user, at the user's current sign-out count: a sign-out ends
    every session sealed before it. A corrupt count is first replaced (as by a
    sign-out), so the new session can be ended like any other."""
    version = _version(store.get(SESSIONS, user_id))
    if version is None:
        end_sessions(store, user_id)
        version = _version(store.get(SESSIONS, user_id))
    payload = {"u": user_id, "c": secrets.token_urlsafe(24), "v": version}
    return seal(bootstrap.session_secret(config), "session", json.dumps(payload).encode())


def open_session(config: bootstrap.Config, store: DocumentStore,
                 cookie: str | None) -> dict[str, Any] | None:  # fmt: skip
    """The session the cookie holds, if it is sealed by us, not expired, of a user who
    exists, and not ended by a sign-out since; else None."""
    if not cookie:
        return None
    try:
        session = json.loads(unseal(bootstrap.session_secret(config), "session", cookie,
                                    SESSION_SECONDS))  # fmt: skip
    except (StateRefused, ValueError):
        return None
    user = session.get("u") if isinstance(session, dict) else None
    if not isinstance(user, str) or id_problem(user) or store.get(USERS, user) is None:
        return None
    version, sealed = _version(store.get(SESSIONS, user)), session.get("v", 0)
    if version is None or type(sealed) is not int or sealed != version:
        return None  # signed out since (or the count is corrupt: no session counts)
    return session


def end_sessions(store: DocumentStore, user_id: str) -> None:
    """Sign-out: every session of the user sealed so far stops working."""

    def bump(tx: Any) -> None:
        version = _version(tx.get(SESSIONS, user_id))
        # a corrupt count: a fresh one that no session sealed so far can hold
        fresh = version + 1 if version is not None else FRESH + secrets.randbelow(FRESH)
        tx.put(SESSIONS, user_id, {"version": fresh})

    store.transaction(bump)


def csrf_ok(session: dict[str, str], header: str | None) -> bool:
    given = (header or "").encode("utf-8", "replace")  # any text: compared as bytes
    return bool(header) and hmac.compare_digest(str(session["c"]).encode(), given)


# every answer of the page's functions: never framed, never sniffed, never cached
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def security_headers(response: Any, policy: str = API_POLICY) -> Any:
    """``response`` with the security headers: the Content-Security-Policy ``policy``
    (the page has its own, ``functions.manual.page_policy``), no framing, no MIME
    sniffing, and no caching (each answer is the caller's own)."""
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
