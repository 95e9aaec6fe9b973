"""The real clock, for the ``Clock`` port."""

from __future__ import annotations

from datetime import UTC, datetime

from core.model import stamp as rfc3339

__all__ = ["SystemClock", "rfc3339"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
