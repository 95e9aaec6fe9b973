"""``oauth_start`` and ``oauth_callback``: connecting a user's Google account.

``GET /oauth_start`` (signed in: a Google ID token, or the page's session) answers the
consent URL to send the browser to; Google comes back to ``GET /oauth_callback``, which
sends a browser back to the settings page.

Deployed, each function has its own host, and Terraform hands every function the
addresses it needs (``CRMSYNC_OAUTH_REDIRECT_URI``, ``CRMSYNC_OAUTH_START_URL``,
``CRMSYNC_PAGE_URL``). Unset, as under ``serve``, all functions share one host, each
at ``<root>/<target>``, and the addresses are derived from that layout (``links``).
"""

from __future__ import annotations

from urllib.parse import urlencode

import functions_framework
from flask import after_this_request, make_response, redirect

from adapters import logs
from core.errors import ConfigError
from functions import bootstrap
from functions.http_errors import Rejected
from functions.manual_logic import identify
from functions.oauth_logic import NONCE_COOKIE, STATE_SECONDS, finish, start
from functions.session import secure_cookies, security_headers

logs.setup()


def _root(config: bootstrap.Config, request) -> str:
    """Where the functions share one host, each at ``<root>/<target>``: beside a
    configured ``.../oauth_callback`` (functions behind one proxy host), else beside the
    function that took ``request`` (``serve`` mounts it at ``/<target>``)."""
    configured = (config.oauth_redirect_uri or "").rstrip("/")
    if configured.endswith("/oauth_callback"):
        return configured.removesuffix("/oauth_callback")
    return request.host_url.rstrip("/") + request.script_root.rstrip("/").rpartition("/")[0]


def links(config: bootstrap.Config, request) -> dict[str, str]:
    """The addresses of the connection flow: the configured ones (deployed), else the
    one-host layout (``_root``)."""
    if bootstrap.in_cloud() and not (config.oauth_start_url and config.page_url
                                     and config.oauth_redirect_uri):  # fmt: skip
        raise ConfigError("the connection flow's addresses (CRMSYNC_OAUTH_START_URL, "
                          "CRMSYNC_PAGE_URL, CRMSYNC_OAUTH_REDIRECT_URI) are not set: a "
                          "deployed function never builds them from the Host header")  # fmt: skip
    root = _root(config, request)
    return {
        "oauthStart": config.oauth_start_url or f"{root}/oauth_start",
        "page": config.page_url or f"{root}/manual_sync/",
        "oauthCallback": config.oauth_redirect_uri or f"{root}/oauth_callback",
    }


def callback_uri(request, config: bootstrap.Config | None = None) -> str:
    """The redirect URI Google comes back to: ``CRMSYNC_OAUTH_REDIRECT_URI``, or
    ``oauth_callback`` beside the function that took ``request``."""
    return links(config or bootstrap.Config.from_env(), request)["oauthCallback"]


@functions_framework.http
def oauth_start(request):
    after_this_request(security_headers)  # every answer, the error handler's too
    config = bootstrap.Config.from_env()
    store = bootstrap.shared_store(config)
    user, _ = identify(config, store, request, write=False)
    url, nonce = start(
        config, store, user, callback_uri(request, config), request.args.get("email")
    )
    response = make_response({"authorizationUrl": url}, 200)
    response.set_cookie(
        NONCE_COOKIE,
        nonce,
        max_age=STATE_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(config, request),  # deployed: Secure, though TLS ends before
    )
    return response


@functions_framework.http
def oauth_callback(request):
    after_this_request(security_headers)
    config = bootstrap.Config.from_env()
    try:
        user = finish(
            config,
            bootstrap.shared_store(config),
            request.args.to_dict(),
            callback_uri(request, config),
            request.cookies.get(NONCE_COOKIE),
        )
    except Rejected as rejected:
        if not _browser(request):
            raise  # answered by the error handler (functions.http_errors)
        page = links(config, request)["page"]  # back to the page, which says why
        return redirect(f"{page}?{urlencode({'connect_error': rejected.code or 'not_completed'})}")
    if _browser(request):  # back to the page
        return redirect(links(config, request)["page"])
    return {"connected": user, "status": "connected"}, 200


def _browser(request) -> bool:
    return "text/html" in request.headers.get("Accept", "")
