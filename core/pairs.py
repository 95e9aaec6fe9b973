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
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from core.errors import SideEmpty
from core.merge import Entries, Merged, Policy, merge
from core.model import LINKS
from core.ports import MAX_BATCH_WRITES

T = TypeVar("T")

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


NONE = type(None)
LINK_KEYS = (("crmId", str), ("googleId", str), ("googleEtag", (str, NONE)),
             ("fingerprint", (str, NONE)), ("fields", (dict, NONE)))  # fmt: skip


class CorruptLink(ValueError):
    """A stored link that is not the shape crmsync writes (``links_from`` sets it aside)."""


def link_basics(doc: Mapping[str, Any], normalize: Any) -> tuple[str, str, str | None, str, Any]:
    """What every stored link holds, as its section's link record takes it first: the
    CRM id, the Google id, the etag, the fingerprint and the synced fields (in normal
    form; a link saved without a fingerprint gets theirs). ``CorruptLink`` when a
    document is not what crmsync writes."""
    for key, kinds in LINK_KEYS:
        if not isinstance(doc.get(key), kinds) or (kinds is str and not doc.get(key)):
            raise CorruptLink(f"its {key} is {type(doc.get(key)).__name__}")
    fields = normalize(doc.get("fields") or {})
    fp = doc.get("fingerprint") or fingerprint(fields)
    return doc["crmId"], doc["googleId"], doc.get("googleEtag"), fp, fields


def links_from(docs: Iterable[tuple[str, Mapping[str, Any]]], convert: Callable[[Any], T],
               log: Any) -> dict[str, T]:  # fmt: skip
    """The links of these (document id, document) pairs, by CRM id. A corrupt one is
    reported (its CRM id is skipped, so that its pair waits, never taken for an
    unlinked one) and listed in ``log.corrupt_links``: the run deletes it
    (``repair_links``), and the next full pass links the pair again by the ids the
    Google side carries (clientData, the event's activity id)."""
    out: dict[str, T] = {}
    for doc_id, doc in docs:
        try:
            out[doc["crmId"]] = convert(doc)
        except (CorruptLink, KeyError, TypeError, AttributeError, ValueError) as exc:
            if doc_id in log.corrupt_links:
                continue  # read twice this run: said once
            crm_id = doc.get("crmId") if isinstance(doc.get("crmId"), str) else doc_id
            log.skip(crm_id, f"links/{doc_id}: corrupt ({exc}); the next full pass makes "
                             "the link again from Google's side")  # fmt: skip
            log.corrupt_links.append(doc_id)
            log.corrupt_docs[doc_id] = doc
    return out


def repair_links(store: Any, log: Any) -> bool:
    """Delete the corrupt links the run set aside (``links_from``); True if any: the
    section's cursors are then dropped, so that the next run is a full pass that links
    those pairs again (never a second person or event: the Google side carries ours)."""
    corrupt = sorted(set(log.corrupt_links))
    for start in range(0, len(corrupt), MAX_BATCH_WRITES):

        def drop(tx: Any, ids: list[str] = corrupt[start : start + MAX_BATCH_WRITES]) -> None:
            # only a link still as the run found it: one made again in its place is kept
            found = {i: tx.get(LINKS, i) for i in ids}
            for doc_id, doc in found.items():
                if doc is not None and doc == log.corrupt_docs.get(doc_id, doc):
                    tx.delete(LINKS, doc_id)

        store.transaction(drop)
    return bool(corrupt)
