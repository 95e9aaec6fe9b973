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
        return _whole_record(base, crm, google, crm_newer)
    crm_takes = _crm_takes(policy, crm_newer)
    kinds = entries or {}
    out: dict[str, Any] = {}
    conflicts = []
    for key in crm.keys() | google.keys():
        c, g, b = crm.get(key), google.get(key), base.get(key)
        out[key], clash = _merge_field(b, c, g, kinds.get(key), crm_takes)
        if clash:
            conflicts.append(key)
    return Merged(out, tuple(sorted(conflicts)))


def _whole_record(base: dict, crm: dict, google: dict, crm_newer: bool) -> Merged:
    """``Policy.MOST_RECENT``: the whole record of the side edited (the newer one if
    both were)."""
    crm_moved, google_moved = _moved(base, crm), _moved(base, google)
    if crm_moved and google_moved:
        winner = crm if crm_newer else google  # both edited: the whole newer record
    else:
        winner = crm if crm_moved else google  # one side edited: that side
    conflicts = tuple(k for k in winner if _both_changed(k, base, crm, google))
    return Merged(dict(winner), conflicts)


def _moved(base: dict, side: dict) -> bool:
    return any(side.get(k) != base.get(k) for k in side.keys() | base.keys())


def _merge_field(b: Any, c: Any, g: Any, kind: Entries | None,
                 crm_takes: bool) -> tuple[Any, bool]:  # fmt: skip
    """One field's value from its base, CRM and Google values: (the value, a conflict?).
    A list of ``kind`` changed on both sides merges entry by entry."""
    if c == g or g == b:
        return c, False
    if c == b:
        return g, False
    if kind is not None:
        return merge_entries(kind, b or [], c or [], g or [], crm_takes)
    return (c if crm_takes else g), True


def merge_entries(kind: Entries, base: list[Entry], crm: list[Entry], google: list[Entry],
                  crm_takes: bool) -> tuple[list[Entry], bool]:  # fmt: skip
    """A list edited on both sides, merged entry by entry: (the list, any conflict).
    The CRM's order first, then what only Google keeps, in Google's order."""
    to_crm, to_google = kind.match(base, crm), kind.match(base, google)
    kept, clash = _base_entries(base, crm, google, to_crm, to_google, crm_takes)
    out = _in_crm_order(crm, to_crm, kept)
    google_of = {j: i for i, j in to_google.items()}
    for j, g in enumerate(google):
        i = google_of.get(j)
        if i is None:
            clash |= _add_from_google(out, g, kind, crm_takes)
        elif i in kept and i not in to_crm:
            out.append(kept[i])  # deleted in the CRM, edited in Google: kept
    return out, clash


def _base_entries(base: list[Entry], crm: list[Entry], google: list[Entry],
                  to_crm: dict[int, int], to_google: dict[int, int],
                  crm_takes: bool) -> tuple[dict[int, Entry], bool]:  # fmt: skip
    """Each base entry merged with what became of it on each side: (base index ->
    merged entry, the deleted ones left out; any conflict)."""
    kept: dict[int, Entry] = {}
    clash = False
    for i, b in enumerate(base):
        c, g = _matched(crm, to_crm, i), _matched(google, to_google, i)
        entry, conflict = _merge_entry(b, c, g, crm_takes)
        clash |= conflict
        if entry is not None:
            kept[i] = entry
    return kept, clash


def _matched(side: list[Entry], to_side: dict[int, int], i: int) -> Entry | None:
    return side[to_side[i]] if i in to_side else None


def _in_crm_order(crm: list[Entry], to_crm: dict[int, int], kept: dict[int, Entry]) -> list[Entry]:
    """The CRM's entries in its order: a base entry's as merged (left out if deleted),
    a new one as it is."""
    crm_of = {j: i for i, j in to_crm.items()}
    out = []
    for j, c in enumerate(crm):
        i = crm_of.get(j)
        if i is None:
            out.append(c)
        elif i in kept:
            out.append(kept[i])
    return out


def _add_from_google(out: list[Entry], g: Entry, kind: Entries, crm_takes: bool) -> bool:
    """An entry Google added, into ``out``: appended, unless the CRM added one with
    the same identity; added on both sides differently, the policy settles it (a
    conflict: True)."""
    twin = next((n for n, e in enumerate(out) if kind.identity(e) == kind.identity(g)), None)
    if twin is None:
        out.append(g)  # added in Google
        return False
    if out[twin] == g:
        return False
    if not crm_takes:
        out[twin] = g
    return True


def _merge_entry(b: Entry, c: Entry | None, g: Entry | None,
                 crm_takes: bool) -> tuple[Entry | None, bool]:  # fmt: skip
    """One base entry's fate: (the entry, or None when deleted; a conflict?)."""
    if c is None and g is None:
        return None, False
    if c is None or g is None:
        other = g if c is None else c
        return (None, False) if other == b else (other, True)  # deleted vs edited: kept
    return _merge_field(b, c, g, None, crm_takes)


def _both_changed(key: str, base: dict, crm: dict, google: dict) -> bool:
    c, g, b = crm.get(key), google.get(key), base.get(key)
    return c != g and c != b and g != b


def _crm_takes(policy: Policy, crm_newer: bool) -> bool:
    if policy is Policy.CRM_WINS:
        return True
    if policy is Policy.GOOGLE_WINS:
        return False
    return crm_newer
