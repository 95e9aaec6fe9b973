"""Ports: the interfaces the pure core talks through.

Adapters in ``adapters/`` implement them; ``functions/bootstrap.py`` picks which.
Nothing here does I/O. The store port is the document model of DESIGN.md: named
collections of JSON documents addressed by id.

Store semantics every adapter keeps (checked by ``tests/contract``):

* ``put`` replaces the whole document; ``get`` of a missing id is ``None``.
* ``query`` filters with ``Filter`` (``==``, ``<``, ``<=``, ``>``, ``>=`` on a
  top-level field, and ``array_contains`` on a top-level array field). With
  ``order_by`` the results are ordered by that field and then by document id;
  ``start_after`` takes the last ``Doc`` of the previous page, so that a loop of
  ``limit``-sized pages returns every matching document exactly once.
  Documents lacking the ``order_by`` field are not returned (as in Firestore).
* ``batch()`` collects writes and commits them atomically (all or nothing), at most
  ``MAX_BATCH_WRITES`` of them; an exception inside its ``with`` block discards it.
  Its ``add_to_array`` / ``remove_from_array`` change one array field against the
  document as it is at commit, so concurrent writers of one array lose nothing.
* ``transaction(fn)`` runs ``fn(tx)`` with optimistic conflict detection: if a
  document ``fn`` read was changed by someone else before commit, nothing of this
  attempt is written and ``fn`` runs again, up to ``max_attempts`` times, then
  ``TransactionConflict`` is raised. ``fn`` must read before it writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

MAX_BATCH_WRITES = 500

Op = Literal["==", "<", "<=", ">", ">=", "array_contains"]
T = TypeVar("T")


@dataclass(frozen=True)
class Filter:
    field: str
    op: Op
    value: Any


@dataclass(frozen=True)
class Doc:
    """One stored document: its collection, id and data."""

    collection: str
    id: str
    data: dict[str, Any]


class WriteBatch(Protocol):
    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None: ...

    def create(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        """Like put, but the whole batch fails with ``AlreadyExists`` if the id exists."""

    def delete(self, collection: str, doc_id: str) -> None: ...

    def add_to_array(self, collection: str, doc_id: str, field: str, values: Sequence[Any],
                     fields: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Add ``values`` not in it yet to the array ``field`` of the document (appended in
        order), atomically at commit whatever other writers do (Firestore's
        ``ArrayUnion``): set ``fields`` too, keep the document's other fields; a missing
        document is created, a missing or non-array ``field`` becomes an array. With no
        ``values``, only ``fields`` are set (the array is left as it is)."""

    def remove_from_array(self, collection: str, doc_id: str, field: str,
                          values: Sequence[Any]) -> None:  # fmt: skip
        """Remove every element equal to one of ``values`` from the array ``field``,
        atomically at commit (``ArrayRemove``); other fields are kept; a missing
        document is created with an empty array, a non-array ``field`` becomes one."""

    def commit(self) -> None: ...

    def __enter__(self) -> WriteBatch: ...

    def __exit__(self, *exc: object) -> None:
        """Commits when the block ends normally; discards everything otherwise."""


class Transaction(Protocol):
    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None: ...

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None: ...

    def delete(self, collection: str, doc_id: str) -> None: ...


class DocumentStore(Protocol):
    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None: ...

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The documents that exist among ``doc_ids``, by id."""

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None: ...

    def delete(self, collection: str, doc_id: str) -> None: ...

    def query(
        self,
        collection: str,
        where: Sequence[Filter] = (),
        *,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        start_after: Doc | None = None,
    ) -> list[Doc]: ...

    def scan(
        self,
        collection: str,
        where: Sequence[Filter] = (),
        *,
        order_by: str | None,
        page_size: int = 500,
    ) -> Iterator[Doc]:
        """Every matching document, fetched page by page with ``query`` (``order_by``
        None: in document id order)."""

    def batch(self) -> WriteBatch: ...

    def transaction(self, fn: Callable[[Transaction], T], *, max_attempts: int = 5) -> T: ...

    def close(self) -> None: ...


class Progress(Protocol):
    """Where a run reports what it is doing: a message, and for item work how far along."""

    def __call__(self, message: str, done: int = 0, total: int = 0) -> None: ...


def no_progress(message: str, done: int = 0, total: int = 0) -> None:
    pass


class Clock(Protocol):
    """The only way the core learns the time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


@dataclass(frozen=True)
class PeopleChanges:
    """What ``changes`` listed: raw People ``Person`` dicts (or what ``transform`` made
    of each), and the cursor to keep.

    ``complete`` is True for a full listing (no sync token was given), so a person
    missing from it is gone; incremental listings carry tombstones instead."""

    persons: list[Any]
    next_sync_token: str
    complete: bool


@dataclass(frozen=True)
class WriteResult:
    """One item of a batched write: the person written, or the error it got."""

    key: str  # the CRM id for creates, the resource name for updates
    person: dict[str, Any] | None
    error: Exception | None = None


@dataclass(frozen=True)
class MembersResult:
    not_found: tuple[str, ...] = ()
    last_group: tuple[str, ...] = ()  # could not be removed: it was their last group


class PeoplePort(Protocol):
    """The user's Google contacts (People API v1), in the terms the sync needs."""

    def find_group(self, name: str) -> str | None:
        """The resource name of the user's contact group called ``name``, if it exists."""

    def find_or_create_group(self, name: str) -> str:
        """The resource name of that group, created if needed."""

    def changes(
        self, sync_token: str | None, transform: Callable[[dict[str, Any]], Any] | None = None
    ) -> PeopleChanges:
        """Every contact (no token) or those changed since ``sync_token``.
        Raises ``SyncTokenExpired`` when the token is too old. With ``transform``, each
        raw person goes through it as its page arrives and only the result is kept (in
        ``persons``, in listing order), so that raw pages are freed page by page."""

    def has_changes(self, sync_token: str) -> bool:
        """Whether anything changed since ``sync_token``: True as soon as the listing
        ``changes(sync_token)`` reads holds a person (pages that come empty with a next
        page are followed), False when it holds none. Reads only, writes nothing.
        Raises what ``changes`` raises (``SyncTokenExpired``...). Our own writes of the
        last run show here as changes (echoes) until a run has read past them."""

    def get(self, resource_names: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def search(self, queries: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Contacts matching each query (prefix phrases of names, emails, phones...), at
        most 30 each, by query. Eventually consistent: a just-written contact may be
        missing or show its old values."""

    def create(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[WriteResult]:
        """Create persons (``(crm_id, person body)``), in calls of at most 200."""

    def update(self, items: Sequence[tuple[str, dict[str, Any]]], fields: str) -> list[WriteResult]:
        """Update persons (``(resource_name, body with etag)``), in calls of at most 200,
        writing the person ``fields`` (comma-separated; each replaced wholesale).
        A stale etag comes back as that item's ``EtagMismatch``."""

    def modify_members(
        self, group: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> MembersResult:
        """Add and remove members, in calls of at most 1000 names."""


@dataclass(frozen=True)
class EventChanges:
    """Events (single instances) listed by ``changes`` (or what ``transform`` made of
    each), and the cursor to keep."""

    events: list[Any]
    next_sync_token: str
    complete: bool


@dataclass(frozen=True)
class EventWrite:
    """One write to the user's primary calendar: ``insert`` (with our id), ``patch``
    (conditional on ``etag`` when given) or ``delete``."""

    kind: Literal["insert", "patch", "delete", "get"]
    event_id: str
    body: dict[str, Any] | None = None
    etag: str | None = None


class CalendarPort(Protocol):
    """The user's primary Google calendar (Calendar API v3)."""

    def account_email(self) -> str: ...

    def changes(
        self,
        sync_token: str | None,
        time_min: str,
        time_max: str,
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> EventChanges:
        """Single events in [time_min, time_max) (no token), or every change since the
        token. Raises ``SyncTokenExpired`` when the token is no longer valid. With
        ``transform``, each raw event goes through it as its page arrives and only the
        result is kept (in ``events``, in listing order): raw pages are freed page by page."""

    def has_changes(self, sync_token: str) -> bool:
        """Whether any event changed since ``sync_token``: True as soon as the listing
        ``changes`` reads with that token holds an event (pages that come empty with a
        next page are followed), False when it holds none. Reads only. Raises what
        ``changes`` raises (``SyncTokenExpired`` for a 410...). Echoes of the last run's
        own writes count as changes until a run has read past them."""

    def get(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def write(self, writes: Sequence[EventWrite]) -> list[WriteResult]:
        """Apply writes in HTTP batches; a result per write, keyed by event id."""


class WatchPort(Protocol):
    """Push notifications for the user's primary calendar."""

    def watch(self, channel_id: str, token: str, address: str, ttl_seconds: int) -> dict[str, Any]:
        """Open a channel; returns Google's Channel (id, resourceId, expiration ms)."""

    def stop(self, channel_id: str, resource_id: str) -> None: ...
