"""What the engines share to gather the CRM's side: the records changed past a cursor.

A section's CRM cursor is the ``modifiedAt`` of the newest record the last run read.
A run reads the records modified at or after it less an overlap window (``crm_window``:
writes committed late with equal or earlier timestamps are never missed; re-reads are
free, since unchanged fingerprints plan nothing), then the records it was asked to read
again by id (those that failed last time, those a changed Google item points at).
Each is validated through its model as it is read: a malformed one is reported and
skipped, never taken as deleted. An id asked for that no longer exists at all was
hard-deleted (the CRM's webhook told us).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from core import email_index
from core.errors import MalformedDocument
from core.model import load, parse_timestamp
from core.ports import DocumentStore, Filter
from core.runs import RunLog

M = TypeVar("M")
# the run's own user's documents the caller has read already, by collection ("users",
# "syncSettings", "googleAccounts"): a present key is used instead of a store read
Preloaded = Mapping[str, dict[str, Any] | None]


def read_once(store: DocumentStore, preloaded: Preloaded, collection: str,
              doc_id: str) -> dict[str, Any] | None:  # fmt: skip
    """The run's user's document of ``collection``: as the caller preloaded it, if it did."""
    if collection in preloaded:
        return preloaded[collection]
    return store.get(collection, doc_id)


@dataclass(frozen=True)
class CrmRead:
    """What a read of CRM changes found, besides the records themselves."""

    seen: frozenset[str]  # read by the window's scan
    hard_deleted: frozenset[str]  # asked for by id, and not there
    cursor: str | None  # the next cursor: the newest modifiedAt read, never behind the last


def crm_window(cursor: str | None, read_at: str | None) -> list[Filter]:
    """The CRM records to read: those modified at or after the cursor less the overlap,
    so that writes committed late with equal or earlier timestamps are never missed.
    Once the cursor is older than the previous read less the overlap, every write up to
    it had committed before that read: then strictly newer ones are enough, and a bulk
    of equal timestamps is not read again and again (``email_index.since``)."""
    return email_index.since("modifiedAt", cursor, read_at)


def crm_changes(store: DocumentStore, collection: str, model: type[M], *, cursor: str | None,
                read_at: str | None, also: Iterable[str], log: RunLog,
                take: Callable[[M], Any]) -> CrmRead:  # fmt: skip
    """Hand ``take`` each valid record of ``collection`` changed past ``cursor`` (as its
    ``model``), then those of ``also`` not read yet; report the malformed ones."""
    seen: set[str] = set()
    newest: str | None = None
    for doc in store.scan(collection, crm_window(cursor, read_at), order_by="modifiedAt"):
        seen.add(doc.id)
        record = _load(model, collection, doc.id, doc.data, log)
        if record is not None:
            take(record)
            newest = _later(newest, record.modifiedAt)  # type: ignore[attr-defined]
    gone = read_by_id(store, collection, model, sorted(set(also) - seen), log, take)
    return CrmRead(frozenset(seen), gone, _later(newest, cursor) if newest else cursor)


def read_by_id(store: DocumentStore, collection: str, model: type[M], ids: list[str],
               log: RunLog, take: Callable[[M], Any]) -> frozenset[str]:  # fmt: skip
    """Hand ``take`` each valid record of these ids; report the malformed ones; return
    the ids not there at all.

    A complete read lists the records by ``modifiedAt``, and a store lists no record
    without one (Firestore's ordered queries): so the linked records it did not list
    are read by id before any is taken as deleted (a record without ``modifiedAt`` is
    malformed, reported, and its pair waits)."""
    extra = store.get_many(collection, ids) if ids else {}
    for doc_id, data in extra.items():
        record = _load(model, collection, doc_id, data, log)
        if record is not None:
            take(record)
    return frozenset(ids) - extra.keys()


def _load(model: type[M], collection: str, doc_id: str, data: Any, log: RunLog) -> M | None:
    try:
        return load(model, collection, doc_id, data)  # type: ignore[arg-type]
    except MalformedDocument as problem:
        log.skip(problem.doc_id, str(problem))
        return None


def _later(a: str | None, b: str | None) -> str | None:
    """The later of two timestamps (either may be missing)."""
    if a is None or b is None:
        return a or b
    return b if parse_timestamp(b) > parse_timestamp(a) else a
