"""``oauth_start`` and ``oauth_callback``: connecting a user's Google account.

``GET /oauth_start`` (signed in: a Google ID token, or the page's session) answers the
consent URL to send the browser to; Google comes back to ``GET /oauth_callback``. The callback's
address is ``CRMSYNC_OAUTH_REDIRECT_URI``, or the start URL with ``oauth_start`` swapped
for ``oauth_callback`` (as ``serve`` and the deployed functions lay them out).
"""

from __future__ import annotations

import os

import functions_framework
from flask import make_response, redirect

from adapters import logs
from adapters.identity import NotSignedIn
from functions import bootstrap
from functions.manual_logic import identify
from functions.oauth_logic import NONCE_COOKIE, STATE_SECONDS, finish, start
from functions.webhook_logic import Rejected

logs.setup()


def callback_uri(request) -> str:
    configured = os.environ.get("CRMSYNC_OAUTH_REDIRECT_URI")
    if configured:
        return configured
    here = request.base_url.rstrip("/")
    return here.removesuffix("oauth_start").removesuffix("oauth_callback") + "oauth_callback"


@functions_framework.http
def oauth_start(request):
    config = bootstrap.Config.from_env()
    store = bootstrap.shared_store(config)
    try:
        user, _ = identify(config, store, request, write=False)
    except NotSignedIn as exc:
        return {"error": str(exc)}, 401
    except Rejected as rejected:
        return {"error": str(rejected)}, rejected.status
    url, nonce = start(config, store, user, callback_uri(request))
    response = make_response({"authorizationUrl": url}, 200)
    response.set_cookie(
        NONCE_COOKIE,
        nonce,
        max_age=STATE_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=request.scheme == "https",
    )
    return response


@functions_framework.http
def oauth_callback(request):
    config = bootstrap.Config.from_env()
    try:
        user = finish(
            config,
            bootstrap.shared_store(config),
            request.args.to_dict(),
            callback_uri(request),
            request.cookies.get(NONCE_COOKIE),
        )
    except Rejected as rejected:
        return {"error": str(rejected)}, rejected.status
    if "text/html" in request.headers.get("Accept", ""):  # a browser: back to the page
        return redirect(callback_uri(request).removesuffix("oauth_callback") + "manual_sync/")
    return {"connected": user, "status": "connected"}, 200
