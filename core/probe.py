"""A scheduled run's look for changes, before it takes a lease: the pure decisions.

``settings_changed``: the settings the last run used (tag, "sync from" date) against
the current ones; a difference is a change (a new tag reads every CRM contact, a new
date lists the calendar window again). ``crm_verdict``: the CRM records modified past
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

from core.model import SyncSettings

Verdict = Literal["changed", "unchanged", "unknown"]
PAGE = 20  # CRM records a look examines; a full page means a run


def effective_sync_from(settings: SyncSettings, time_zone: str | None, now: dt.datetime) -> str:
    """The date a run would use: the setting, or today in the user's zone."""
    if settings.activities.syncFrom:
        return settings.activities.syncFrom
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date().isoformat()


def settings_changed(section: str, settings: SyncSettings, tag_id: str | None,
                     sync_from: str | None, time_zone: str | None,
                     now: dt.datetime) -> bool:  # fmt: skip
    if section == "contacts":
        return settings.contacts.tagId != tag_id
    return effective_sync_from(settings, time_zone, now) != sync_from


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
