"""Logs as Cloud Logging reads them from stdout: one JSON object per line with
``severity``, ``message``, ``time``, the run's trace id and structured fields (user and
section ids, counts). Never personal data beyond ids; as a safety net, anything shaped
like an OAuth token or a JWT is replaced by ``[redacted]`` before a line is written.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from core.redact import scrub  # one rule for logs and stored run records


class CloudJsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None) or {}
        entry.update(fields)
        run_id = fields.get("runId")
        project = os.environ.get("GOOGLE_CLOUD_PROJECT")
        if run_id and project:
            entry["logging.googleapis.com/trace"] = f"projects/{project}/traces/{run_id}"
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str))


def setup(level: int = logging.INFO, stream: Any = None) -> logging.Handler:
    """Route the ``crmsync`` loggers to one JSON handler (idempotent)."""
    logger = logging.getLogger("crmsync")
    for handler in list(logger.handlers):
        if isinstance(handler.formatter, CloudJsonFormatter):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(CloudJsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler
