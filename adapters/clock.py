"""The real clock, for the ``Clock`` port."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from core.model import stamp as rfc3339

__all__ = ["SystemClock", "rfc3339"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Wait (``core.runs`` gives a refusing store time to come back)."""
        time.sleep(seconds)
