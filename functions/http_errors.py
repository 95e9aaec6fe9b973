"""Every error of an HTTP function answers JSON, never Flask's HTML page.

``Rejected`` is a request refused for its input (status, message, problems by field,
and a fixed ``code`` word), raised by the HTTP functions and the logic behind them.

``HANDLERS`` are registered with ``functions_framework.errorhandler`` by ``main.py``, the
module each function's app loads (``create_app`` runs it again for every app, and each
handler then serves every function of that app), so the functions map no error
themselves. ``Rejected`` answers its status with ``{"error", "fields"}`` (and its
``code``, if any); ``NotSignedIn`` 401 with ``{"error"}``; ``as_json`` the rest: an HTTP
error keeps its status; Google's passing trouble is 503 with ``Retry-After``; a lost
connection 409; bad settings 400; anything else 500, logged with its trace.
Each answer says what failed and the next action (``hint``). A CloudEvent function's
error still answers 5xx or 4xx, so Pub/Sub redelivers it as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException

from adapters.identity import NotSignedIn
from core import outcome
from core.errors import CrmsyncError
from core.redact import scrub

log = logging.getLogger("crmsync.http")
RETRY_AFTER_SECONDS = 60


class Rejected(CrmsyncError):
    """Bad input: answered with ``status`` and a JSON error; nothing written or queued."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None,
                 code: str | None = None):  # fmt: skip
        super().__init__(message)
        self.status = status
        self.fields = fields or {}  # problems by field path, for forms
        self.code = code  # a fixed word for what went wrong (redirects carry it, not text)


def as_json(error: Exception) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if isinstance(error, HTTPException):
        body = {"outcome": "failed", "reason": "http", "hint": None, "error": error.description}
        return body, error.code or 500, headers
    found = outcome.of_error(error)
    if found.reason == "internal":
        log.exception("unexpected error", exc_info=error)
    else:
        log.warning("request failed: %s", error, extra={"fields": {"reason": found.reason}})
    if found.status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # what failed, never the text of a fault: it may hold paths, ids or a token's text
    said = found.status < 500 and found.reason != "server_misconfigured"
    text = f"{type(error).__name__}: {scrub(str(error))}" if said else type(error).__name__
    body = {**found.fields(), "error": text}
    return body, found.status, headers


def rejected(error: Rejected) -> tuple[dict[str, Any], int]:
    body: dict[str, Any] = {"error": str(error), "fields": error.fields}
    if error.code:  # the OAuth and sign-in flows' fixed word
        body["code"] = error.code
    return body, error.status


def not_signed_in(error: NotSignedIn) -> tuple[dict[str, Any], int]:
    return {"error": str(error)}, 401


HANDLERS: dict[type[Exception], Callable[[Any], Any]] = {
    Rejected: rejected,
    NotSignedIn: not_signed_in,
    Exception: as_json,  # Flask picks the nearest class of the error's MRO
}
