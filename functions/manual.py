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

API clients send a Google ID token (``Authorization: Bearer``); the page uses the
session cookie, and its writes carry ``X-CSRF-Token``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import functions_framework
from flask import redirect

from adapters import logs
from adapters.identity import NotSignedIn
from functions import accounts, bootstrap, oauth, openapi
from functions import manual_logic as api
from functions import session as web
from functions.http_errors import Rejected

PAGE = (Path(__file__).parent / "page.html").read_text()
logs.setup()


def _here(config: bootstrap.Config, request, path: str) -> str:
    """An address of this function: ``CRMSYNC_PAGE_URL`` when configured (deployed: never
    the Host header), else its mount point (``/manual_sync`` under ``serve``), plus
    ``path``."""
    root = config.page_url or request.url_root
    return root.rstrip("/") + path


def _signin(request, config, store):
    secure = request.scheme == "https"
    if request.path.rstrip("/") == "/signin":
        url, nonce = web.signin_url(
            config, _here(config, request, "/signin/callback"), request.args.get("email")
        )
        response = redirect(url)
        response.set_cookie(
            web.SIGNIN_COOKIE,
            nonce,
            max_age=web.STATE_SECONDS,
            httponly=True,
            samesite="Lax",
            secure=secure,
        )
        return response
    try:
        user = web.finish_signin(
            config,
            store,
            request.args.to_dict(),
            _here(config, request, "/signin/callback"),
            request.cookies.get(web.SIGNIN_COOKIE),
        )
    except (Rejected, NotSignedIn) as failed:  # the browser gets the page, which says why
        # a fixed word, never text from the request
        code = getattr(failed, "code", None) or (
            "google_refused" if isinstance(failed, NotSignedIn) else "not_completed"
        )
        back = _here(config, request, "/") + "?" + urlencode({"signin_error": code})
        response = redirect(back)
        response.delete_cookie(web.SIGNIN_COOKIE)
        return response
    response = redirect(_here(config, request, "/"))
    response.set_cookie(
        web.COOKIE,
        web.new_session(config, user),
        max_age=web.SESSION_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
    response.delete_cookie(web.SIGNIN_COOKIE)
    return response


@functions_framework.http
def manual_sync(request):
    config = bootstrap.Config.from_env()
    store = bootstrap.shared_store(config)
    method, path = request.method, request.path.rstrip("/") or "/"
    try:
        if method == "GET" and path == "/":
            return PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}
        if (method, path) == ("GET", "/openapi.json"):  # public: the API's description
            return openapi.document(), 200
        if method == "GET" and path in ("/signin", "/signin/callback"):
            return _signin(request, config, store)
        if method == "GET" and path in ("/oauth_start", "/oauth_callback"):
            # the browser's connection flow, on the page's own host: its session and
            # nonce cookies reach it (gen2 functions each have their own host)
            handler = oauth.oauth_start if path == "/oauth_start" else oauth.oauth_callback
            return handler(request)
        if method == "POST" and path == "/signout":
            response = redirect(_here(config, request, "/"))
            response.delete_cookie(web.COOKIE)
            return response
        write = method in ("POST", "PUT")
        body = (
            api.SyncIn.model_validate_json(request.get_data() or b"{}")
            if (path in ("/sync", "/preview"))
            else None
        )
        user, session = api.identify(
            config,
            store,
            request,
            write=write,
            asked_for=request.args.get("userId") or (body.userId if body else None),
        )
        if (method, path) == ("GET", "/status"):
            return {**api.status(store, user), "links": oauth.links(config, request),
                    "csrf": session["c"] if session else None}, 200  # fmt: skip
        if (method, path) == ("POST", "/disconnect"):
            return accounts.disconnect(config, store, user), 200
        if (method, path) == ("PUT", "/settings"):
            return api.save_settings(store, user, request.get_data()), 200
        if (method, path) == ("POST", "/sync"):
            return api.start_sync(config, store, user, body.section), 200
        if (method, path) == ("POST", "/preview"):
            return api.preview(config, store, user, body.section), 200
        if (method, path) == ("GET", "/runs"):
            return {"runs": api.history(store, user)}, 200
        if method == "GET" and path.startswith("/runs/"):
            return api.run_detail(store, user, path.removeprefix("/runs/")), 200
        return {"error": f"no route {method} {path}"}, 404
    except NotSignedIn as exc:
        return {"error": str(exc)}, 401
    except Rejected as rejected:
        return {"error": str(rejected), "fields": rejected.fields}, rejected.status
    except ValueError as exc:  # pydantic: a malformed body
        return {"error": f"invalid request: {exc}"}, 400
