"""Planner actions built positionally, in their fields' order, as the planner tests
spell them: the actions themselves take keywords only."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any


def positional(*classes: type) -> SimpleNamespace:
    return SimpleNamespace(**{cls.__name__: _builder(cls) for cls in classes})


def _builder(cls: type) -> Callable[..., Any]:
    names = [f.name for f in dataclasses.fields(cls)]

    def build(*args: Any, **kwargs: Any) -> Any:
        return cls(**dict(zip(names, args, strict=False)), **kwargs)

    return build
