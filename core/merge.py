"""Three-way merge of synced fields, and the conflict policies.

``merge(base, crm, google, crm_time, google_time, policy)`` decides, field by field:
a field changed on one side only takes that change; a field changed on both sides
(to different values) is a conflict, settled by the policy. Equal timestamps favour
the CRM, the system of record, so the result never depends on input order.

Lists named in ``entries`` (a contact's emails, phones, addresses) merge entry by entry
when both sides changed them, the same way: ``Entries`` tells entries apart (by an
identity, then a fallback such as an address's type, so that an edit is matched to
the entry it edits). An entry edited on one side only takes that edit; added on either
side, it is kept; deleted on one side and untouched on the other, it is deleted;
edited on both (or added on both with the same identity), the policy settles it.
Deleted on one side and edited on the other, the edit is kept (nothing is lost).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

Entry = dict[str, Any]


class Policy(Enum):
    FIELD_MOST_RECENT = "merge"  # default: per-field three-way merge, newest side wins conflicts
    CRM_WINS = "crm_wins"
    GOOGLE_WINS = "google_wins"
    MOST_RECENT = "most_recent"  # whole record from the side edited last


@dataclass(frozen=True)
class Merged:
    fields: dict[str, Any]
    conflicts: tuple[str, ...]  # fields changed on both sides to different values


@dataclass(frozen=True)
class Entries:
    """How a list's entries are told apart: equal ``identity`` is the same entry; an
    entry left unmatched is matched on ``fallback`` (an edit that changed its identity)."""

    identity: Callable[[Entry], Hashable]
    fallback: Callable[[Entry], Hashable] | None = None

    def match(self, base: list[Entry], side: list[Entry]) -> dict[int, int]:
        """Base index -> side index of the same entry."""
        pairs: dict[int, int] = {}
        for key in (self.identity, self.fallback):
            if key is None:
                continue
            free = [j for j in range(len(side)) if j not in pairs.values()]
            for i, entry in enumerate(base):
                j = next((j for j in free if key(side[j]) == key(entry)), None)
                if i not in pairs and j is not None:
                    pairs[i] = j
                    free.remove(j)
        return pairs


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
    entries: Mapping[str, Entries] | None = None,
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
        elif entries and key in entries:
            out[key], clash = merge_entries(entries[key], b or [], c or [], g or [],
                                            _crm_takes(policy, crm_newer))  # fmt: skip
            if clash:
                conflicts.append(key)
        else:
            conflicts.append(key)
            out[key] = c if _crm_takes(policy, crm_newer) else g
    return Merged(out, tuple(sorted(conflicts)))


def merge_entries(kind: Entries, base: list[Entry], crm: list[Entry], google: list[Entry],
                  crm_takes: bool) -> tuple[list[Entry], bool]:  # fmt: skip
    """A list edited on both sides, merged entry by entry: (the list, any conflict).
    The CRM's order first, then what only Google keeps, in Google's order."""
    to_crm, to_google = kind.match(base, crm), kind.match(base, google)
    kept: dict[int, Entry] = {}  # base index -> merged entry
    clash = False
    for i, b in enumerate(base):
        c = crm[to_crm[i]] if i in to_crm else None
        g = google[to_google[i]] if i in to_google else None
        entry, conflict = _merge_entry(b, c, g, crm_takes)
        clash |= conflict
        if entry is not None:
            kept[i] = entry
    crm_of = {j: i for i, j in to_crm.items()}
    out = [kept[crm_of[j]] if j in crm_of else crm[j] for j in range(len(crm))
           if j not in crm_of or crm_of[j] in kept]  # fmt: skip
    google_of = {j: i for i, j in to_google.items()}
    for j, g in enumerate(google):
        i = google_of.get(j)
        if i is not None:
            if i in kept and i not in to_crm:
                out.append(kept[i])  # deleted in the CRM, edited in Google: kept
            continue
        twin = next((n for n, e in enumerate(out) if kind.identity(e) == kind.identity(g)), None)
        if twin is None:
            out.append(g)  # added in Google
        elif out[twin] != g:  # added on both sides, differently
            clash = True
            if not crm_takes:
                out[twin] = g
    return out, clash


def _merge_entry(b: Entry, c: Entry | None, g: Entry | None,
                 crm_takes: bool) -> tuple[Entry | None, bool]:  # fmt: skip
    """One base entry's fate: (the entry, or None when deleted; a conflict?)."""
    if c is None and g is None:
        return None, False
    if c is None or g is None:
        other = g if c is None else c
        return (None, False) if other == b else (other, True)  # deleted vs edited: kept
    if c == g or g == b:
        return c, False
    if c == b:
        return g, False
    return (c if crm_takes else g), True


def _both_changed(key: str, base: dict, crm: dict, google: dict) -> bool:
    c, g, b = crm.get(key), google.get(key), base.get(key)
    return c != g and c != b and g != b


def _crm_takes(policy: Policy, crm_newer: bool) -> bool:
    if policy is Policy.CRM_WINS:
        return True
    if policy is Policy.GOOGLE_WINS:
        return False
    return crm_newer
