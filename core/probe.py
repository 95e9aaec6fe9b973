"""A scheduled run's look for changes, before it takes a lease: the pure decisions.

``default_date_moved``: with no "sync from" date set, a new day is a change (a run lists
the window from today again). ``crm_verdict``: the CRM records modified past
the cursor are the whole collection's, not the user's; each is *relevant* to the
user's section when the sync would act on it, otherwise the look may move the cursor
past it without a run.

    contacts     carries the user's tag, or is linked for the user (a removed tag,
                 a deletion: the person must leave the group)
    activities   the user organizes it or takes part in it, or it is linked for
                 the user (a participant removed)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Verdict = Literal["changed", "unchanged", "unknown"]
PAGE = 20  # CRM records a look examines; a full page means a run


def default_date_moved(setting: str | None, used: str | None, time_zone: str | None,
                       now: dt.datetime) -> bool:  # fmt: skip
    """With no "sync from" date set, a run syncs from today in the user's zone: a new
    day is a change (the window is listed again, as a run would)."""
    if setting:
        return False
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date().isoformat() != used


def relevant(section: str, user_id: str, tag_id: str | None, doc: Mapping[str, Any]) -> bool:
    """Relevant without looking at links (see the module docstring)."""
    if section == "contacts":
        return bool(tag_id) and tag_id in (doc.get("tagIds") or [])
    if doc.get("organizerId") == user_id:
        return True
    return any(isinstance(p, dict) and p.get("userId") == user_id
               for p in doc.get("participants") or [])  # fmt: skip


def crm_verdict(section: str, user_id: str, tag_id: str | None,
                docs: Sequence[tuple[str, Mapping[str, Any]]],
                linked: set[str] | None) -> Verdict:  # fmt: skip
    """``docs``: the records past the cursor (at most ``PAGE``); ``linked``: which of the
    others are linked for the user (None: not looked up yet). "unknown" asks for the
    links of the records that are not relevant by themselves."""
    if not docs:
        return "unchanged"
    if len(docs) >= PAGE or any(relevant(section, user_id, tag_id, d) for _, d in docs):
        return "changed"
    if linked is None:
        return "unknown"
    return "changed" if linked else "unchanged"
