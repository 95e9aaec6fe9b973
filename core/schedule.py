"""Which (user, section) syncs are due: a pure function of settings, accounts and state.

A pair is due when its section syncs automatically, the user's Google account is
connected (not ``reauth_required``), no live lease holds it, and its interval has
passed since its last run. The interval is read from the settings at every dispatch,
so a change takes effect from the next one; ``nextDueAt`` in ``syncState`` is kept
for display and is derived the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.errors import MalformedDocument
from core.model import SECTIONS, Section, SyncSettings, load, parse_timestamp


@dataclass(frozen=True, order=True)
class Job:
    user_id: str
    section: Section
    trigger: str = "schedule"


def interval(settings: SyncSettings, section: Section) -> timedelta:
    return timedelta(minutes=getattr(settings, section).intervalMinutes)


def next_due(settings: SyncSettings, section: Section, state: Mapping[str, Any]) -> datetime | None:
    """When the pair is next due; None when it never ran (due at once)."""
    last = state.get("lastRunAt")
    return parse_timestamp(last) + interval(settings, section) if last else None


def due_jobs(
    settings: Mapping[str, Mapping[str, Any]],
    accounts: Mapping[str, Mapping[str, Any]],
    states: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> tuple[list[Job], list[MalformedDocument]]:
    """The due jobs, in a stable order, and the settings documents that did not load.

    ``settings`` and ``accounts`` are by user id, ``states`` by ``{user}:{section}``."""
    jobs: list[Job] = []
    problems: list[MalformedDocument] = []
    for user_id in sorted(settings):
        try:
            parsed = load(SyncSettings, "syncSettings", user_id, settings[user_id])
        except MalformedDocument as problem:
            problems.append(problem)
            continue
        if (accounts.get(user_id) or {}).get("status") != "connected":
            continue
        for section in SECTIONS:
            if not getattr(parsed, section).auto:
                continue
            state = states.get(f"{user_id}:{section}") or {}
            if _leased(state, now):
                continue
            when = next_due(parsed, section, state)
            if when is None or when <= now:
                jobs.append(Job(user_id, section))
    return jobs, problems


def _leased(state: Mapping[str, Any], now: datetime) -> bool:
    lease = state.get("lease") or {}
    return bool(lease.get("expiresAt")) and parse_timestamp(lease["expiresAt"]) > now
