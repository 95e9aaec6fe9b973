"""``python main.py serve``: every HTTP function on one local server, each mounted at
``/<target>`` as its deployed URL would be (DESIGN.md, "CLI").

With no ``CRMSYNC_GOOGLE_ENDPOINT`` it is a self-contained playground: it starts the
Google API sandbox in process, seeds the sample CRM into an empty local store, connects
Alice's Google account, and prints an ID token to call the API with.
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from functions_framework import create_app
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import WSGIRequestHandler, run_simple
from werkzeug.wrappers import Response

from functions import bootstrap, seed
from functions.accounts import connect

HTTP_TARGETS = ("crm_webhook", "manual_sync", "oauth_start", "oauth_callback", "calendar_push")
MAIN = str(Path(__file__).resolve().parents[1] / "main.py")


def build_app():
    """One WSGI app: each function at ``/<target>``. A deployed function answers at its
    bare URL, so ``/<target>`` is served as ``/<target>/`` (Flask would answer 308)."""
    missing = Response(json.dumps({"error": "no such function"}), 404,
                       content_type="application/json")  # fmt: skip
    mounts = {f"/{target}": create_app(target, MAIN, "http") for target in HTTP_TARGETS}
    dispatcher = DispatcherMiddleware(missing, mounts)

    def app(environ, start_response):
        path = environ.get("PATH_INFO") or ""
        if path.strip("/") in HTTP_TARGETS and not path.endswith("/"):
            environ = {**environ, "PATH_INFO": path + "/"}
        return dispatcher(environ, start_response)

    return app


def _control(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def playground() -> tuple[object, str]:
    """Start the sandbox and prepare a sample user; returns (server, an ID token)."""
    from sandbox import SandboxServer

    server = SandboxServer().start()
    os.environ["CRMSYNC_GOOGLE_ENDPOINT"] = server.url
    config = bootstrap.Config.from_env()
    store = bootstrap.store(config)
    if not store.query("users", limit=1):
        seed.seed(store, datetime.now(UTC))
    store.close()
    account = _control(server.url, "/_sandbox/accounts", {"email": "alice@example.com"})
    connect(config, seed.ALICE, account["refreshToken"])
    token = _control(server.url, "/_sandbox/idtoken",
                     {"email": "alice@example.com", "audience": config.oauth_client_id,
                      "ttlSeconds": 3600})["idToken"]  # fmt: skip
    return server, token


def serve(port: int) -> int:
    token = None
    if not os.environ.get("CRMSYNC_GOOGLE_ENDPOINT"):
        sandbox, token = playground()
        print(f"Google API sandbox: {sandbox.url} (sample CRM seeded; Alice connected)")
    base = f"http://127.0.0.1:{port}"
    print(f"crmsync functions on {base}:")
    for target in HTTP_TARGETS:
        print(f"  {base}/{target}")
    if token:
        print(f"\nsettings page: {base}/manual_sync/  (sign in as alice@example.com)")
        print(f"try:  curl -H 'Authorization: Bearer {token}' {base}/manual_sync/status")
    run_simple("127.0.0.1", port, build_app(), threaded=True, use_reloader=False,
               request_handler=_QuietQuery)  # fmt: skip
    return 0


class _QuietQuery(WSGIRequestHandler):
    """The access log without query strings: an OAuth callback's ``code`` and
    ``state`` never reach the terminal or a log file."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s" %s %s', self.command, path, code, size)
