"""The OpenAPI 3.1 description of every crmsync HTTP endpoint, served by ``manual_sync``
at ``GET /openapi.json``.

The document is ``functions/openapi.json`` beside this module, kept by hand (JSON, so
that the deployed functions need no YAML parser); ``tests/integration/test_openapi.py``
validates it and holds it against the code: the router's routes, the request models,
real answers.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("openapi.json")


@cache
def _loaded() -> dict[str, Any]:
    return json.loads(PATH.read_text(encoding="utf-8"))


def document() -> dict[str, Any]:
    """The document, read once per process; each caller gets its own copy."""
    return copy.deepcopy(_loaded())
