"""Three-way merge of synced fields, and the conflict policies.

``merge(base, crm, google, crm_time, google_time, policy)`` decides, field by field:
a field changed on one side only takes that change; a field changed on both sides
(to different values) is a conflict, settled by the policy. Equal timestamps favour
the CRM, the system of record, so the result never depends on input order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


class Policy(Enum):
    FIELD_MOST_RECENT = "merge"  # default: per-field three-way merge, newest side wins conflicts
    CRM_WINS = "crm_wins"
    GOOGLE_WINS = "google_wins"
    MOST_RECENT = "most_recent"  # whole record from the side edited last


@dataclass(frozen=True)
class Merged:
    fields: dict[str, Any]
    conflicts: tuple[str, ...]  # fields changed on both sides to different values


def newest_is_crm(crm_time: datetime | None, google_time: datetime | None) -> bool:
    if crm_time is None or google_time is None:
        return google_time is None
    return crm_time >= google_time


def merge(
    base: dict[str, Any],
    crm: dict[str, Any],
    google: dict[str, Any],
    crm_time: datetime | None,
    google_time: datetime | None,
    policy: Policy = Policy.FIELD_MOST_RECENT,
) -> Merged:
    crm_newer = newest_is_crm(crm_time, google_time)
    if policy is Policy.MOST_RECENT:
        crm_moved = any(crm.get(k) != base.get(k) for k in crm.keys() | base.keys())
        google_moved = any(google.get(k) != base.get(k) for k in google.keys() | base.keys())
        if crm_moved and google_moved:
            winner = crm if crm_newer else google  # both edited: the whole newer record
        else:
            winner = crm if crm_moved else google  # one side edited: that side
        conflicts = tuple(k for k in winner if _both_changed(k, base, crm, google))
        return Merged(dict(winner), conflicts)
    out: dict[str, Any] = {}
    conflicts = []
    for key in crm.keys() | google.keys():
        c, g, b = crm.get(key), google.get(key), base.get(key)
        if c == g or g == b:
            out[key] = c
        elif c == b:
            out[key] = g
        else:
            conflicts.append(key)
            out[key] = c if _crm_takes(policy, crm_newer) else g
    return Merged(out, tuple(sorted(conflicts)))


def _both_changed(key: str, base: dict, crm: dict, google: dict) -> bool:
    c, g, b = crm.get(key), google.get(key), base.get(key)
    return c != g and c != b and g != b


def _crm_takes(policy: Policy, crm_newer: bool) -> bool:
    if policy is Policy.CRM_WINS:
        return True
    if policy is Policy.GOOGLE_WINS:
        return False
    return crm_newer
