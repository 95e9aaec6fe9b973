"""What the contacts and activities planners share, pure: how one side of a linked
pair is classified against the link's last synced state, and the three-way reconcile
of a pair changed on either side.

Each side of a linked pair is in one of four states (``Side``):

    ABSENT   not read this run (an incremental read lists only what changed): as synced
    GONE     deleted, or no longer in sync's scope (untagged, out of the group, ...)
    SAME     read, and its synced fields are the link's (by content: the fingerprint)
    CHANGED  read, and its synced fields differ from the link's

A side counts as changed only when the fingerprint of its synced fields differs from
the link's: echoes of our own writes and etag churn are no-ops. Fields equal to the
link's are its content (a link's fingerprint is that of its fields, as the executors
save it), so the hash is only taken for fields that differ: an unchanged pair costs
one dict comparison a side.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from core.errors import SideEmpty
from core.merge import Entries, Merged, Policy, merge

Fields = Mapping[str, Any]


class Side(Enum):
    ABSENT = "absent"
    GONE = "gone"
    SAME = "same"
    CHANGED = "changed"


QUIET = (Side.ABSENT, Side.SAME)  # a side that asks nothing of the other


def fingerprint(fields: Fields) -> str:
    """A stable hash of fields in normal form."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def same(fields: Fields, synced: Fields, synced_fp: str) -> bool:
    """Whether ``fields`` are the last synced content (``synced``, whose fingerprint is
    ``synced_fp``)."""
    return fields == synced or fingerprint(fields) == synced_fp


def differ(a: Fields, b: Fields) -> bool:
    """Whether two sets of fields differ in content (their fingerprints)."""
    return a != b and fingerprint(a) != fingerprint(b)


def side(*, read: bool, gone: bool, fields: Fields | None, synced: Fields, synced_fp: str) -> Side:
    """One side of a linked pair, classified. ``read``: the item was in this run's
    read; ``gone``: it left sync's scope (a complete read without it included)."""
    if gone:
        return Side.GONE
    if not read or fields is None:
        return Side.ABSENT
    return Side.SAME if same(fields, synced, synced_fp) else Side.CHANGED


def reconcile(
    synced: Fields,
    crm: Fields,
    google: Fields,
    crm_time: datetime | None,
    google_time: datetime | None,
    policy: Policy,
    entries: Mapping[str, Entries] | None = None,
) -> Merged:
    """The three-way merge of a pair changed on either side, against the fields it was
    last synced with (``core.merge``)."""
    return merge(dict(synced), dict(crm), dict(google), crm_time, google_time, policy,
                 entries)  # fmt: skip


def first_link(crm: Fields, google: Fields, crm_newer: bool, *, fill: bool) -> dict[str, Any]:
    """The fields of a pair linked for the first time (no last synced state): the
    newer side wins each difference. With ``fill``, a field empty on one side is
    filled from the other; otherwise the keys are the CRM's."""
    if not fill:
        return {key: (crm[key] if crm_newer else google[key]) for key in crm}
    fields: dict[str, Any] = {}
    for key in crm.keys() | google.keys():
        c, g = crm.get(key), google.get(key)
        fields[key] = (c if crm_newer else g) if (c and g) else (c or g)
    return fields


def newest_is_crm(crm_time: datetime, google_time: datetime | None) -> bool:
    """Whether the CRM's side is the newer on first link (no Google time: the CRM's)."""
    return google_time is None or crm_time >= google_time


# --- the empty-side guard ----------------------------------------------------------------

GUARD_MIN_LINKS = 5  # links all gone at once that a confirmed account's run refuses


def guarded(links: int, force: bool, account_confirmed: bool) -> bool:
    """Whether a run with ``links`` linked pairs is held to the empty-side guard: one
    side suddenly holding none of them means a broken side (another Google account, a
    wiped CRM), not a user's intent. ``--force`` lifts it; so does a run on the links'
    own (confirmed) account with fewer than ``GUARD_MIN_LINKS``: a user who deleted
    their only synced items is not stuck."""
    if force or not links:
        return False
    return not (account_confirmed and links < GUARD_MIN_LINKS)


def refuse_empty(side: str, links: int, items: str, *, complete: bool, holds_any: bool) -> None:
    """Stop the run when a complete read of ``side`` holds none of the linked items."""
    if complete and not holds_any:
        raise SideEmpty(side, links, items)


# --- links as stored ---------------------------------------------------------------------


def link_basics(doc: Mapping[str, Any], normalize: Any) -> tuple[str, str, str | None, str, Any]:
    """What every stored link holds, as its section's link record takes it first: the
    CRM id, the Google id, the etag, the fingerprint and the synced fields (in normal
    form; a link saved without a fingerprint gets theirs)."""
    fields = normalize(doc.get("fields") or {})
    fp = doc.get("fingerprint") or fingerprint(fields)
    return doc["crmId"], doc["googleId"], doc.get("googleEtag"), fp, fields
