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
session cookie, and its writes carry ``X-CSRF-Token``. A body is read only once the
caller is known, and never past ``MAX_BODY`` (413). Every answer, the error handler's
too, carries the security headers (``session.security_headers``); the page's
Content-Security-Policy runs only its own inline script and style (``page_policy``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import functions_framework
from flask import after_this_request, redirect
from pydantic import BaseModel, ValidationError

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
MAX_BODY = 256 * 1024  # a request body past this is refused (413), never read whole


def _hashes(tag: str) -> str:
    """The CSP hashes of the page's inline ``<tag>`` blocks, as the browser hashes them."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", PAGE, re.DOTALL)
    digests = (hashlib.sha256(block.encode()).digest() for block in blocks)
    return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)


SCRIPTS, STYLES = _hashes("script"), _hashes("style")


def page_policy(config: Config) -> str:
    """The page's Content-Security-Policy: its own inline script and style only (by
    hash: no other script runs, injected or not), calls to its own host (and to the
    configured ``oauth_start``), no plug-ins, never framed. Forms are not limited: the
    sign-in form's answer is a redirect to Google."""
    connect = ["'self'"]
    start = urlsplit(config.oauth_start_url or "")
    if start.scheme in ("http", "https") and start.netloc:
        connect.append(f"{start.scheme}://{start.netloc}")
    return (f"default-src 'none'; script-src {SCRIPTS}; style-src {STYLES}; "
            f"connect-src {' '.join(connect)}; img-src 'self'; base-uri 'self'; "
            "object-src 'none'; frame-ancestors 'none'")  # fmt: skip


def _here(config: Config, request, path: str) -> str:
    """An address of this function: ``CRMSYNC_PAGE_URL`` when configured (deployed: never
    the Host header), else its mount point (``/manual_sync`` under ``serve``), plus
    ``path``."""
    if bootstrap.in_cloud() and not config.page_url:
        raise ConfigError("CRMSYNC_PAGE_URL is not set: a deployed function never builds "
                          "its addresses from the Host header")  # fmt: skip
    root = config.page_url or request.url_root
    return root.rstrip("/") + path


def _caller(request, config: Config, store: DocumentStore):
    """(user id, session or None) of the signed-in caller; writes need the CSRF token.
    Called before the body is read: a caller who is not signed in gets 401, never a
    word about the body."""
    asked_for = request.args.get("userId")
    write = request.method in ("POST", "PUT")
    return api.identify(config, store, request, write=write, asked_for=asked_for)


def _too_large(request) -> Rejected:
    """413 for a body past ``MAX_BODY``, whose rest is never read: functions_framework
    reads every request's body whole before answering (``read_request``), unless it has
    been read; it is now an empty one."""
    request.stream = io.BytesIO()  # werkzeug's cached property: what get_data() reads
    return Rejected(413, f"body larger than {MAX_BODY} bytes")


def _read(request) -> bytes:
    """The body, at most ``MAX_BODY`` bytes of it: a longer one (its Content-Length is
    checked first, ``manual_sync``; one without, chunked, is cut off here) is refused
    413."""
    chunks, size = [], 0
    while size <= MAX_BODY:
        chunk = request.stream.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY:
        raise _too_large(request)
    return b"".join(chunks)


def _model(request, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate_json(_read(request) or b"{}")
    except ValidationError as exc:  # a malformed body
        raise Rejected(400, f"invalid request: {exc}") from None


def _own(user: str, body: api.SyncIn) -> None:
    if body.userId not in (None, user):
        raise Rejected(403, "a user can only see and start their own syncs")


def _page(request, config: Config, store: DocumentStore):
    return PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}


def _openapi(request, config: Config, store: DocumentStore):  # public: the API's description
    return openapi.document(), 200


def _signin_start(request, config: Config, store: DocumentStore):
    callback = _here(config, request, "/signin/callback")
    url, nonce = web.signin_url(config, callback, request.args.get("email"))
    return web.set_cookie(redirect(url), config, request, web.SIGNIN_COOKIE, nonce,
                          web.STATE_SECONDS)  # fmt: skip


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
        session = web.new_session(config, store, user)
        web.set_cookie(response, config, request, web.COOKIE, session, web.SESSION_SECONDS)
    return web.delete_cookie(response, config, request, cookie)


def _signout(request, config: Config, store: DocumentStore):
    """Ends the caller's sessions (every one sealed so far), after the CSRF check: the
    page's form sends the token (a cross-site form cannot)."""
    session = web.open_session(config, store, request.cookies.get(web.COOKIE))
    if session is not None:  # the form is read only for a caller who is known
        token = request.headers.get("X-CSRF-Token") or request.form.get("csrf")
        if not web.csrf_ok(session, token):
            raise Rejected(403, "missing or wrong CSRF token")
        web.end_sessions(store, session["u"])
    return web.delete_cookie(redirect(_here(config, request, "/")), config, request, web.COOKIE)


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
    return api.save_settings(store, user, _read(request)), 200


def _sync(request, config: Config, store: DocumentStore):
    user, _ = _caller(request, config, store)
    body = _model(request, api.SyncIn)
    _own(user, body)
    return api.start_sync(config, store, user, body.section), 200


def _preview(request, config: Config, store: DocumentStore):
    user, _ = _caller(request, config, store)
    body = _model(request, api.SyncIn)
    _own(user, body)
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
    user, _ = _caller(request, config, store)
    body = _model(request, api.UndoIn)
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


def _hardened(known: dict[str, Config], page: bool, response):
    """Every answer with the security headers: the error handler's too (Flask runs this
    after it), even one before the configuration was read; the page with its own
    policy."""
    config = known.get("config")
    policy = page_policy(config) if page and config is not None else web.API_POLICY
    return web.security_headers(response, policy)


class _Capped(io.RawIOBase):
    """A request body cut off after ``left`` bytes: whatever reads it (a handler, the
    form parser, the framework's drain after the answer), nothing past the cap is read,
    whether or not the caller is known or the route reads a body."""

    def __init__(self, stream: Any, left: int) -> None:
        self.stream, self.left = stream, left

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        data = self.stream.read(min(len(buffer), self.left))
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)


@functions_framework.http
def manual_sync(request):
    request.stream = _Capped(request.stream, MAX_BODY + 1)  # werkzeug's cached property
    handler, params = route(request.method, _path(request))
    known: dict[str, Config] = {}
    after_this_request(functools.partial(_hardened, known, handler is _page))
    config = known["config"] = bootstrap.Config.from_env()
    if (request.content_length or 0) > MAX_BODY:  # before anything reads it
        raise _too_large(request)
    return handler(request, config, bootstrap.shared_store(config), **params)
