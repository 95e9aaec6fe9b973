"""Firestore document store: the system of record (``CRMSYNC_STORE=firestore``).

A thin mapping of the store port onto ``google.cloud.firestore``: queries with
``FieldFilter``, ordered by the field and then ``__name__`` (the document id) in the
same direction, ``start_after`` with the cursor document's values; batches through
``client.batch()``; transactions through ``@firestore.transactional``. The client
honours ``FIRESTORE_EMULATOR_HOST`` (anonymous credentials, plain-text gRPC).

Transactions: each attempt is one Firestore transaction (``max_attempts=1``); this
module does the retrying, with jittered backoff, so that ``ABORTED`` from a read as
well as from the commit counts as a lost attempt. Firestore locks what a transaction
reads (pessimistic), so two transactions that read and then write the same document
can deadlock; the server aborts one of them (the emulator only after a fixed 2 s lock
timeout, and now and then both), and the loser's next attempt reads the winner's
write. The backoff between attempts is long enough to keep two aborted attempts from
colliding again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.auth.exceptions import GoogleAuthError
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from adapters.store_base import (
    Backoff,
    BaseBatch,
    BaseStore,
    BaseTransaction,
    QuerySpec,
    Retry,
    Write,
    check_collection,
    check_doc_id,
    check_document,
    check_query,
    run_attempts,
)
from core.errors import AlreadyExists, ConfigError, StoreError
from core.ports import Doc, Filter

T = TypeVar("T")

GET_MANY_CHUNK = 300
EXHAUSTED = "Failed to commit transaction"  # the client's ValueError after its attempts
EXISTING_PATH = re.compile(r"(?:documents/|path=/)([^/\s}]+)/([^/\s}]+)")


@contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Firestore RPC failures as ``StoreError``."""
    try:
        yield
    except (gexc.GoogleAPIError, GoogleAuthError) as exc:
        raise StoreError(f"firestore {what}: {exc}") from exc


def make_client(project: str, database: str | None = None) -> firestore.Client:
    try:
        return firestore.Client(project=project, database=database)
    except GoogleAuthError as exc:
        raise ConfigError(
            f"no Google credentials for Firestore project {project!r} ({exc}); "
            "set FIRESTORE_EMULATOR_HOST for the emulator"
        ) from exc


class FirestoreStore(BaseStore):
    """``DocumentStore`` on Firestore, in ``project`` (or on a ready-made ``client``)."""

    # An attempt takes a few round trips; when both sides of a deadlock are aborted at
    # once, delays of this order keep their next attempts from overlapping again.
    backoff = Backoff(base=0.1, cap=2.0)

    def __init__(
        self,
        project: str | None = None,
        *,
        database: str | None = None,
        client: firestore.Client | None = None,
    ) -> None:
        if client is None:
            if not project:
                raise ConfigError("FirestoreStore needs a project id (GOOGLE_CLOUD_PROJECT)")
            client = make_client(project, database)
        self.client = client

    def _ref(self, collection: str, doc_id: str) -> firestore.DocumentReference:
        return self.client.collection(check_collection(collection)).document(check_doc_id(doc_id))

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        ref = self._ref(collection, doc_id)
        with api_errors(f"get {ref.path}"):
            snapshot = ref.get()
        return snapshot.to_dict() if snapshot.exists else None

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        refs = [self._ref(collection, i) for i in dict.fromkeys(doc_ids)]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(refs), GET_MANY_CHUNK):
            with api_errors(f"get_many {collection}"):
                snapshots = list(self.client.get_all(refs[start : start + GET_MANY_CHUNK]))
            found.update((s.id, s.to_dict()) for s in snapshots if s.exists)
        return found

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        document = check_document(collection, doc_id, data)
        ref = self._ref(collection, doc_id)
        with api_errors(f"put {ref.path}"):
            ref.set(document)

    def delete(self, collection: str, doc_id: str) -> None:
        ref = self._ref(collection, doc_id)
        with api_errors(f"delete {ref.path}"):
            ref.delete()

    def query(
        self,
        collection: str,
        where: Sequence[Filter] = (),
        *,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        start_after: Doc | None = None,
    ) -> list[Doc]:
        spec = check_query(collection, where, order_by, descending, limit, start_after)
        with api_errors(f"query {collection}"):
            snapshots = list(self._build(spec).stream())
        return [Doc(collection, s.id, s.to_dict() or {}) for s in snapshots]

    def _build(self, spec: QuerySpec) -> firestore.Query:
        query: Any = self.client.collection(spec.collection)
        for flt in spec.where:
            query = query.where(filter=FieldFilter(flt.field, flt.op, flt.value))
        direction = firestore.Query.DESCENDING if spec.descending else firestore.Query.ASCENDING
        if spec.order_by is not None:
            query = query.order_by(spec.order_by, direction=direction)
        query = query.order_by("__name__", direction=direction)
        if spec.limit is not None:
            query = query.limit(spec.limit)
        if spec.start_after is not None:
            cursor: dict[str, Any] = {"__name__": spec.start_after.id}
            if spec.order_by is not None:
                cursor = {spec.order_by: spec.cursor_value, **cursor}
            query = query.start_after(cursor)
        return query

    def batch(self) -> FirestoreBatch:
        return FirestoreBatch(self)

    def transaction(self, fn: Callable[[FirestoreTransaction], T], *, max_attempts: int = 5) -> T:
        return run_attempts(lambda: self._attempt(fn), max_attempts, self.backoff)

    def _attempt(self, fn: Callable[[FirestoreTransaction], T]) -> T:
        @firestore.transactional
        def run(transaction: firestore.Transaction) -> T:
            tx = FirestoreTransaction(self, transaction)
            result = fn(tx)
            tx.flush()
            return result

        try:
            return run(self.client.transaction(max_attempts=1))
        except (ValueError, gexc.GoogleAPIError, GoogleAuthError) as exc:
            if lost_attempt(exc):
                raise Retry(str(exc)) from exc
            if isinstance(exc, ValueError):
                raise  # from fn itself
            raise StoreError(f"firestore transaction: {exc}") from exc

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"FirestoreStore(project={self.client.project!r})"


class FirestoreBatch(BaseBatch):
    def __init__(self, store: FirestoreStore) -> None:
        super().__init__()
        self._store = store

    def _apply(self, writes: list[Write]) -> None:
        batch = self._store.client.batch()
        for write in writes:
            ref = self._store._ref(write.collection, write.doc_id)
            if write.kind == "put":
                batch.set(ref, write.data)
            elif write.kind in ("array_add", "array_remove"):
                assert write.data is not None and write.field is not None
                op = firestore.ArrayUnion if write.kind == "array_add" else firestore.ArrayRemove
                values = write.data[write.field]
                data = {k: v for k, v in write.data.items() if k != write.field}
                if values:  # Firestore refuses an empty ArrayUnion / ArrayRemove
                    data[write.field] = op(values)
                batch.set(ref, data, merge=True)
            elif write.kind == "create":
                batch.create(ref, write.data)
            else:
                batch.delete(ref)
        try:
            batch.commit()
        except gexc.Aborted as exc:
            raise StoreError(
                f"firestore batch aborted by contention, nothing written: {exc}"
            ) from exc
        except gexc.Conflict as exc:  # AlreadyExists, from a create
            raise AlreadyExists(*existing_doc(exc, writes)) from exc
        except (gexc.GoogleAPIError, GoogleAuthError) as exc:
            raise StoreError(f"firestore batch of {len(writes)} writes failed: {exc}") from exc


def lost_attempt(exc: BaseException | None) -> bool:
    """Whether ``exc`` means "this attempt lost to another transaction": ``ABORTED``
    from a read or the commit (which the client wraps in a ValueError), possibly
    hidden behind a failed rollback of the aborted transaction."""
    if isinstance(exc, gexc.Aborted):
        return True
    if isinstance(exc, ValueError) and str(exc).startswith(EXHAUSTED):
        return isinstance(exc.__cause__, gexc.Aborted)
    if isinstance(exc, gexc.GoogleAPIError):
        return lost_attempt(exc.__context__)
    return False


def existing_doc(exc: Exception, writes: Sequence[Write]) -> tuple[str, str]:
    """The (collection, id) a failed create names, else the batch's first create."""
    match = EXISTING_PATH.search(str(exc))
    if match:
        return match.group(1), match.group(2)
    first = next((w for w in writes if w.kind == "create"), writes[0])
    return first.collection, first.doc_id


class FirestoreTransaction(BaseTransaction):
    """Reads inside the Firestore transaction; writes are handed over at the end."""

    def __init__(self, store: FirestoreStore, transaction: firestore.Transaction) -> None:
        super().__init__()
        self._store = store
        self._transaction = transaction

    def _read(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        snapshot = self._store._ref(collection, doc_id).get(transaction=self._transaction)
        return snapshot.to_dict() if snapshot.exists else None

    def flush(self) -> None:
        for write in self.writes:
            ref = self._store._ref(write.collection, write.doc_id)
            if write.kind == "delete":
                self._transaction.delete(ref)
            else:
                self._transaction.set(ref, write.data)
