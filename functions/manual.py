"""``manual_sync``: the settings page and its API, for the signed-in user only.

    GET  /                   the page (functions/page.html)
    GET  /signin, /signin/callback, POST /signout    browser sign-in with Google
    GET  /oauth_start, /oauth_callback   connecting Google, on the page's host (as the
                             functions of the same names, which API clients call)
    GET  /status             settings, private tags, last sync per section, account
    PUT  /settings           validate and save
    POST /sync {"section"}   run (inline) or queue a sync
    POST /preview {"section"}  the dry-run plan; changes nothing
    POST /disconnect         revoke the Google connection; the CRM keeps every record
    GET  /runs, /runs/<id>   the last 20 runs, and one run's details
    POST /runs/<id>/undo {"dryRun"}  take a contacts run back (or say what that would do)

API clients send a Google ID token (``Authorization: Bearer``); the page uses the
session cookie, and its writes carry ``X-CSRF-Token``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import functions_framework
from flask import redirect
from pydantic import ValidationError

from adapters import logs
from adapters.identity import NotSignedIn
from core.errors import ConfigError
from core.model import id_problem
from core.ports import DocumentStore
from functions import accounts, bootstrap, delegation, oauth, openapi
from functions import manual_logic as api
from functions import session as web
from functions.http_errors import Rejected

PAGE = (Path(__file__).parent / "page.html").read_text()
logs.setup()
Config = bootstrap.Config


def _here(config: Config, request, path: str) -> str:
    """An address of this function: ``CRMSYNC_PAGE_URL`` when configured (deployed: never
    the Host header), else its mount point (``/manual_sync`` under ``serve``), plus
    ``path``."""
    if bootstrap.in_cloud() and not config.page_url:
        raise ConfigError("CRMSYNC_PAGE_URL is not set: a deployed function never builds "
                          "its addresses from the Host header")  # fmt: skip
    root = config.page_url or request.url_root
    return root.rstrip("/") + path


def _cookie(response, request, name: str, value: str, seconds: int):
    response.set_cookie(name, value, max_age=seconds, httponly=True, samesite="Lax",
                        secure=request.scheme == "https")  # fmt: skip
    return response


def _caller(request, config: Config, store: DocumentStore, body: api.SyncIn | None = None):
    """(user id, session or None) of the signed-in caller; writes need the CSRF token."""
    asked_for = request.args.get("userId") or (body.userId if body else None)
    write = request.method in ("POST", "PUT")
    return api.identify(config, store, request, write=write, asked_for=asked_for)


def _sync_in(request) -> api.SyncIn:
    try:
        return api.SyncIn.model_validate_json(request.get_data() or b"{}")
    except ValidationError as exc:  # a malformed body
        raise Rejected(400, f"invalid request: {exc}") from None


def _page(request, config: Config, store: DocumentStore):
    return PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}


def _openapi(request, config: Config, store: DocumentStore):  # public: the API's description
    return openapi.document(), 200


def _signin_start(request, config: Config, store: DocumentStore):
    callback = _here(config, request, "/signin/callback")
    url, nonce = web.signin_url(config, callback, request.args.get("email"))
    return _cookie(redirect(url), request, web.SIGNIN_COOKIE, nonce, web.STATE_SECONDS)


def _signin_finish(request, config: Config, store: DocumentStore):
    callback, cookie = _here(config, request, "/signin/callback"), web.SIGNIN_COOKIE
    try:
        user = web.finish_signin(config, store, request.args.to_dict(), callback,
                                 request.cookies.get(cookie))  # fmt: skip
    except (Rejected, NotSignedIn) as failed:  # the browser gets the page, which says why
        # a fixed word, never text from the request
        code = getattr(failed, "code", None) or (
            "google_refused" if isinstance(failed, NotSignedIn) else "not_completed"
        )
        response = redirect(_here(config, request, "/") + "?" + urlencode({"signin_error": code}))
    else:
        response = redirect(_here(config, request, "/"))
        _cookie(
            response, request, web.COOKIE, web.new_session(config, store, user), web.SESSION_SECONDS
        )
    response.delete_cookie(cookie)
    return response


def _signout(request, config: Config, store: DocumentStore):
    """Ends the caller's sessions (every one sealed so far), after the CSRF check: the
    page's form sends the token (a cross-site form cannot)."""
    session = web.open_session(config, store, request.cookies.get(web.COOKIE))
    token = request.headers.get("X-CSRF-Token") or request.form.get("csrf")
    if session is not None:
        if not web.csrf_ok(session, token):
            raise Rejected(403, "missing or wrong CSRF token")
        web.end_sessions(store, session["u"])
    response = redirect(_here(config, request, "/"))
    response.delete_cookie(web.COOKIE)
    return response


# the browser's connection flow, on the page's own host: its session and nonce cookies
# reach it (gen2 functions each have their own host)
def _oauth_start(request, config: Config, store: DocumentStore):
    return oauth.oauth_start(request)


def _oauth_callback(request, config: Config, store: DocumentStore):
    return oauth.oauth_callback(request)


def _status(request, config: Config, store: DocumentStore):
    user, session = _caller(request, config, store)
    delegation.ensure(config, store, user)  # a delegated domain's user: connected now
    return {**api.status(store, user, config), "links": oauth.links(config, request),
            "csrf": session["c"] if session else None}, 200  # fmt: skip


def _settings(request, config: Config, store: DocumentStore):
    user, _ = _caller(request, config, store)
    return api.save_settings(store, user, request.get_data()), 200


def _sync(request, config: Config, store: DocumentStore):
    body = _sync_in(request)
    user, _ = _caller(request, config, store, body)
    return api.start_sync(config, store, user, body.section), 200


def _preview(request, config: Config, store: DocumentStore):
    body = _sync_in(request)
    user, _ = _caller(request, config, store, body)
    return api.preview(config, store, user, body.section), 200


def _disconnect(request, config: Config, store: DocumentStore):
    user, _ = _caller(request, config, store)
    return accounts.disconnect(config, store, user), 200


def _runs(request, config: Config, store: DocumentStore):
    user, _ = _caller(request, config, store)
    return {"runs": api.history(store, user)}, 200


def _known_run(run_id: str) -> str:
    """A run id as the path gives it; one no run can have is no run."""
    if id_problem(run_id):
        raise Rejected(404, "no such run")
    return run_id


def _run(request, config: Config, store: DocumentStore, run_id: str):
    user, _ = _caller(request, config, store)
    return api.run_detail(store, user, _known_run(run_id)), 200


def _undo(request, config: Config, store: DocumentStore, run_id: str):
    try:
        body = api.UndoIn.model_validate_json(request.get_data() or b"{}")
    except ValidationError as exc:  # a malformed body
        raise Rejected(400, f"invalid request: {exc}") from None
    user, _ = _caller(request, config, store)
    return api.undo_run(config, store, user, _known_run(run_id), body.dryRun), 200


def _no_route(request, config: Config, store: DocumentStore):
    _caller(request, config, store)  # signed in first, as for every route of the API
    return {"error": f"no route {request.method} {_path(request)}"}, 404


Handler = Callable[..., Any]  # (request, config, store, **the path's parameters)
ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/"): _page,
    ("GET", "/openapi.json"): _openapi,
    ("GET", "/signin"): _signin_start,
    ("GET", "/signin/callback"): _signin_finish,
    ("POST", "/signout"): _signout,
    ("GET", "/oauth_start"): _oauth_start,
    ("GET", "/oauth_callback"): _oauth_callback,
    ("GET", "/status"): _status,
    ("PUT", "/settings"): _settings,
    ("POST", "/sync"): _sync,
    ("POST", "/preview"): _preview,
    ("POST", "/disconnect"): _disconnect,
    ("GET", "/runs"): _runs,
    ("GET", "/runs/<run_id>"): _run,
    ("POST", "/runs/<run_id>/undo"): _undo,
}
_MATCHERS = [
    (method, re.compile(re.sub(r"<(\w+)>", r"(?P<\1>.+)", pattern)), handler)
    for (method, pattern), handler in ROUTES.items()
]


def _path(request) -> str:
    return request.path.rstrip("/") or "/"


def route(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler of (method, path), with the path's parameters; else ``_no_route``."""
    for wanted, pattern, handler in _MATCHERS:
        found = pattern.fullmatch(path)
        if found and method == wanted:
            return handler, found.groupdict()
    return _no_route, {}


@functions_framework.http
def manual_sync(request):
    config = bootstrap.Config.from_env()
    handler, params = route(request.method, _path(request))
    return handler(request, config, bootstrap.shared_store(config), **params)
