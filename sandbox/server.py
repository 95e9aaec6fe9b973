"""Serves a ``Sandbox`` over HTTP on 127.0.0.1 (a werkzeug threaded WSGI server).

``SandboxServer`` runs it in a background thread for tests and the demo;
``python main.py sandbox --port N`` runs it in the foreground.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from werkzeug.serving import WSGIRequestHandler, make_server

from sandbox.app import Sandbox

MAX_BODY = 64 * 1024 * 1024


def wsgi_app(sandbox: Sandbox) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if raw:
            path, _, query = raw.partition("?")
        else:
            path = quote(environ.get("PATH_INFO", "/").encode("latin-1"))
            query = environ.get("QUERY_STRING", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(min(length, MAX_BODY)) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        reply = sandbox.dispatch(environ["REQUEST_METHOD"], path, query, headers, body)
        reply_headers = {"Content-Length": str(len(reply.body)), **reply.headers}
        start_response(f"{reply.status} {_reason(reply.status)}", list(reply_headers.items()))
        return [reply.body]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def _reason(status: int) -> str:
    from sandbox.batch import REASONS

    return REASONS.get(status, "Status")


class SandboxServer:
    """A sandbox on 127.0.0.1, served from a background thread. Use as a context manager.

    ``profile`` is the realism profile of a new sandbox (see ``Sandbox``); it is not
    applied to a ``sandbox`` passed in.
    """

    def __init__(
        self, port: int = 0, sandbox: Sandbox | None = None, profile: str | None = None
    ) -> None:
        self.sandbox = sandbox or Sandbox(profile=profile)
        self._server = make_server(
            "127.0.0.1",
            port,
            wsgi_app(self.sandbox),
            threaded=True,
            request_handler=_QuietHandler,
        )
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox.base_url = self.url
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-http", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
