"""What never leaves crmsync in text it writes (logs, run records, the sync state's last
result): anything shaped like an OAuth access or refresh token, a JWT, or one of our
Fernet ciphertexts is replaced by ``[redacted]``. Pure."""

from __future__ import annotations

import re
from typing import Any

SECRETS = re.compile(r"(ya29\.[\w.-]+|1//[\w.-]+|eyJ[\w-]+\.[\w-]+\.[\w-]*|gAAAAA[\w=-]+)")


def scrub(text: str) -> str:
    return SECRETS.sub("[redacted]", text)


def scrub_error(error: dict[str, Any]) -> dict[str, Any]:
    """A run's per-item error with its text scrubbed."""
    return {k: scrub(v) if isinstance(v, str) else v for k, v in error.items()}
