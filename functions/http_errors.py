"""Every error of an HTTP function answers JSON, never Flask's HTML page.

``as_json`` is registered with ``functions_framework.errorhandler`` by ``main.py`` (the
module each function's app loads), for what the functions do not answer themselves:
an HTTP error keeps its status; Google's passing trouble is 503 with ``Retry-After``;
a lost connection 409; bad settings 400; anything else 500, logged with its trace.
Each answer says what failed and the next action (``hint``). A CloudEvent function's
error still answers 5xx or 4xx, so Pub/Sub redelivers it as before.
"""

from __future__ import annotations

import logging
from typing import Any

from werkzeug.exceptions import HTTPException

from core.errors import (
    AuthRevoked,
    ConfigError,
    GoogleError,
    MalformedDocument,
    NotConnected,
    QuotaExceeded,
    SyncTokenExpired,
    Unavailable,
    UnknownUser,
)

log = logging.getLogger("crmsync.http")
RETRY_AFTER_SECONDS = 60


def as_json(error: Exception) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if isinstance(error, HTTPException):
        body = {"outcome": "failed", "reason": "http", "error": error.description}
        return body, error.code or 500, headers
    status, reason, hint = _classify(error)
    if status >= 500 and reason == "internal":
        log.exception("unexpected error", exc_info=error)
    else:
        log.warning("request failed: %s", error, extra={"fields": {"reason": reason}})
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    body = {"outcome": "failed", "reason": reason, "hint": hint,
            "error": f"{type(error).__name__}: {error}"}  # fmt: skip
    return body, status, headers


def _classify(error: Exception) -> tuple[int, str, str]:
    if isinstance(error, (QuotaExceeded, Unavailable, SyncTokenExpired)):
        return 503, "google_unavailable", "Google is busy or unavailable; try again in a minute"
    if isinstance(error, (AuthRevoked, NotConnected)):
        return 409, "not_connected", "reconnect your Google account"
    if isinstance(error, (ConfigError, MalformedDocument)):
        return 400, "bad_settings", "check the sync settings"
    if isinstance(error, UnknownUser):
        return 403, "unknown_user", "sign in as a CRM user"
    if isinstance(error, GoogleError):
        return 502, "google_error", "try again later; if it persists, tell your administrator"
    return 500, "internal", "try again later; if it persists, tell your administrator"
