"""SQLite document store: the embedded default (``CRMSYNC_STORE=sqlite:///PATH``).

Same documents, collections and ids as Firestore, stored as JSON text in one table.

* Concurrency: WAL mode, one connection per thread (per process), ``busy_timeout``;
  every write runs in ``BEGIN IMMEDIATE``. Safe for several threads and processes.
* Transactions are optimistic. Every write stamps the documents it touches with the
  next value of a database-wide sequence (``meta.seq``), which is their version. A
  transaction records the version of each document it reads (0 when absent) and, at
  commit, under the write lock, checks that none changed; if one did, nothing is
  written and ``fn`` runs again.
* Indexes: expression indexes on ``json_extract(data, '$.F')`` for the fields in
  ``indexed_fields`` (``modifiedAt`` and the common equality fields), and a side table
  ``array_values`` of (collection, field, scalar element, id), rewritten on every write,
  so that ``array_contains`` is an indexed lookup.
* Comparisons follow Firestore for values of one type: a filter only matches values of
  its own type (numbers are one type: 1 == 1.0). Ordering across mixed types follows
  SQLite's, not Firestore's.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from adapters.store_base import (
    BaseBatch,
    BaseStore,
    BaseTransaction,
    QuerySpec,
    Retry,
    Write,
    apply_array,
    check_collection,
    check_doc_id,
    check_document,
    check_field,
    check_query,
    run_attempts,
)
from core.errors import AlreadyExists, StoreError
from core.ports import Doc, Filter

T = TypeVar("T")

DEFAULT_INDEXED_FIELDS = (
    "modifiedAt",
    "ownerId",
    "userId",
    "organizerId",
    "email",
    "nextDueAt",
    "slot",
    "renewAt",
    "checkedAt",
    "receivedAt",
)
GET_MANY_CHUNK = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0), ('schema', 1);
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE TABLE IF NOT EXISTS array_values (
    collection TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (collection, field, value, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS array_values_by_doc ON array_values (collection, id);
"""

# json_type() of a stored value, for each Python type a filter may compare against.
TYPE_GUARDS = {
    bool: "IN ('true', 'false')",
    int: "IN ('integer', 'real')",
    float: "IN ('integer', 'real')",
    str: "= 'text'",
}
SQL_OPS = {"==": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


# --- SQL building (pure; module-level so that tests can EXPLAIN it) -------------------


def extract(field: str) -> str:
    """The expression the indexes are built on; ``field`` is a checked identifier."""
    return f"json_extract(data, '$.{check_field(field)}')"


def json_type(field: str) -> str:
    return f"json_type(data, '$.{check_field(field)}')"


def index_sql(field: str) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS docs_by_{check_field(field)} "
        f"ON docs (collection, {extract(field)}, id)"
    )


def scalar_key(value: Any) -> str:
    """How an array element is keyed in ``array_values`` (and looked up): typed, with
    integral floats folded onto ints, as Firestore compares 1 == 1.0."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        value = int(value)
    if isinstance(value, (int, float)):
        return f"n:{value!r}"
    return f"s:{value}"


def sql_param(value: Any) -> Any:
    """A filter or cursor value as SQLite sees ``json_extract`` results (true -> 1)."""
    return int(value) if isinstance(value, bool) else value


def filter_sql(collection: str, flt: Filter) -> tuple[str, list[Any]]:
    if flt.op == "array_contains":
        sql = "id IN (SELECT id FROM array_values WHERE collection = ? AND field = ? AND value = ?)"
        return sql, [collection, flt.field, scalar_key(flt.value)]
    if flt.value is None:
        return f"{json_type(flt.field)} = 'null'", []
    guard = f"{json_type(flt.field)} {TYPE_GUARDS[type(flt.value)]}"
    return f"{guard} AND {extract(flt.field)} {SQL_OPS[flt.op]} ?", [sql_param(flt.value)]


def cursor_sql(spec: QuerySpec) -> tuple[str, list[Any]]:
    """Rows strictly after ``start_after`` in the (order_by, id) order, nulls first."""
    assert spec.start_after is not None
    after = "<" if spec.descending else ">"
    cursor_id = spec.start_after.id
    if spec.order_by is None:
        return f"id {after} ?", [cursor_id]
    expr, value = extract(spec.order_by), spec.cursor_value
    if value is None:
        if spec.descending:
            return f"({expr} IS NULL AND id < ?)", [cursor_id]
        return f"(({expr} IS NULL AND id > ?) OR {expr} IS NOT NULL)", [cursor_id]
    sql = f"({expr}, id) {after} (?, ?)"
    if spec.descending:
        sql = f"({sql} OR {expr} IS NULL)"
    return sql, [sql_param(value), cursor_id]


def build_query(spec: QuerySpec) -> tuple[str, list[Any]]:
    """The SELECT for a checked query, and its parameters."""
    clauses, params = ["collection = ?"], [spec.collection]
    for flt in spec.where:
        sql, args = filter_sql(spec.collection, flt)
        clauses.append(sql)
        params += args
    direction = "DESC" if spec.descending else "ASC"
    order = f"id {direction}"
    if spec.order_by is not None:
        clauses.append(f"{json_type(spec.order_by)} IS NOT NULL")
        order = f"{extract(spec.order_by)} {direction}, {order}"
    if spec.start_after is not None:
        sql, args = cursor_sql(spec)
        clauses.append(sql)
        params += args
    sql = f"SELECT id, data FROM docs WHERE {' AND '.join(clauses)} ORDER BY {order}"
    if spec.limit is not None:
        sql += " LIMIT ?"
        params.append(spec.limit)
    return sql, params


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def array_rows(collection: str, doc_id: str, data: dict[str, Any]) -> set[tuple[str, ...]]:
    """The ``array_values`` rows of a document: one per distinct scalar element."""
    return {
        (collection, field, scalar_key(element), doc_id)
        for field, value in data.items()
        if isinstance(value, list)
        for element in value
        if not isinstance(element, dict)
    }


# --- connections ----------------------------------------------------------------------


class _ThreadConnection:
    """One thread's connection; closed when the thread (and so its holder) goes away.
    A child process never uses nor closes a connection inherited through fork."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pid = os.getpid()

    def close(self) -> None:
        if self.pid == os.getpid():
            self.conn.close()

    def __del__(self) -> None:
        try:  # noqa: SIM105 (no module globals here: at shutdown they may be gone already)
            self.close()
        except Exception:
            pass


@contextmanager
def sql_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store {path}: {exc}") from exc


# --- the store ------------------------------------------------------------------------


class SqliteStore(BaseStore):
    """``DocumentStore`` on one SQLite file; parent directories are created."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        indexed_fields: Sequence[str] = DEFAULT_INDEXED_FIELDS,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._indexed_fields = tuple(check_field(f) for f in indexed_fields)
        self._local = threading.local()
        self._holders: weakref.WeakSet[_ThreadConnection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        with sql_errors(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _private(self.path)  # it holds tokens' ciphertext and every CRM record
            self._init_schema()

    # connections and transactions

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"sqlite store {self.path}: cannot enable WAL (mode is {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"sqlite store {self.path} is closed")
        holder: _ThreadConnection | None = getattr(self._local, "holder", None)
        if holder is None or holder.pid != os.getpid():
            holder = _ThreadConnection(self._connect())
            self._local.holder = holder
            with self._lock:
                self._holders.add(holder)
        return holder.conn

    @contextmanager
    def _txn(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """A SQL transaction; ``IMMEDIATE`` takes the write lock up front."""
        with sql_errors(self.path):
            conn = self._conn()
            conn.execute(f"BEGIN {mode}")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _init_schema(self) -> None:
        with self._txn() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for field in self._indexed_fields:
                conn.execute(index_sql(field))

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with sql_errors(self.path):
            return self._conn().execute(sql, params).fetchall()

    # writes

    def _apply(self, conn: sqlite3.Connection, writes: Sequence[Write]) -> None:
        """Apply ``writes`` inside the caller's write transaction."""
        (version,) = conn.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value"
        ).fetchone()
        for write in writes:
            key = (write.collection, write.doc_id)
            if write.kind == "create" and self._version(conn, *key):
                raise AlreadyExists(*key)
            if write.kind in ("array_add", "array_remove"):
                # read-modify-write, under this transaction's write lock (IMMEDIATE)
                row = conn.execute(
                    "SELECT data FROM docs WHERE collection = ? AND id = ?", key
                ).fetchone()
                data = apply_array(json.loads(row[0]) if row else None, write)
                write = Write("put", *key, check_document(*key, data))
            conn.execute("DELETE FROM array_values WHERE collection = ? AND id = ?", key)
            if write.kind == "delete":
                conn.execute("DELETE FROM docs WHERE collection = ? AND id = ?", key)
                continue
            assert write.data is not None
            conn.execute(
                "INSERT INTO docs (collection, id, data, version) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (collection, id)"
                " DO UPDATE SET data = excluded.data, version = excluded.version",
                (*key, dumps(write.data), version),
            )
            conn.executemany(
                "INSERT INTO array_values (collection, field, value, id) VALUES (?, ?, ?, ?)",
                array_rows(*key, write.data),
            )

    @staticmethod
    def _version(conn: sqlite3.Connection, collection: str, doc_id: str) -> int:
        row = conn.execute(
            "SELECT version FROM docs WHERE collection = ? AND id = ?", (collection, doc_id)
        ).fetchone()
        return row[0] if row else 0

    def _write(self, writes: Sequence[Write]) -> None:
        with self._txn() as conn:
            self._apply(conn, writes)

    # DocumentStore

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT data FROM docs WHERE collection = ? AND id = ?",
            (check_collection(collection), check_doc_id(doc_id)),
        )
        return json.loads(rows[0][0]) if rows else None

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        check_collection(collection)
        ids = list(dict.fromkeys(check_doc_id(i) for i in doc_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), GET_MANY_CHUNK):
            chunk = ids[start : start + GET_MANY_CHUNK]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT id, data FROM docs WHERE collection = ? AND id IN ({marks})"
            found.update((i, json.loads(d)) for i, d in self._read(sql, [collection, *chunk]))
        return found

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self._write([Write("put", collection, doc_id, check_document(collection, doc_id, data))])

    def delete(self, collection: str, doc_id: str) -> None:
        self._write([Write("delete", check_collection(collection), check_doc_id(doc_id))])

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
        sql, params = build_query(spec)
        return [Doc(collection, i, json.loads(d)) for i, d in self._read(sql, params)]

    def batch(self) -> SqliteBatch:
        return SqliteBatch(self)

    def transaction(self, fn: Callable[[SqliteTransaction], T], *, max_attempts: int = 5) -> T:
        def attempt() -> T:
            tx = SqliteTransaction(self)
            result = fn(tx)
            self._commit_transaction(tx)
            return result

        return run_attempts(attempt, max_attempts)

    def _commit_transaction(self, tx: SqliteTransaction) -> None:
        if not tx.writes and len(tx.versions) < 2:
            return  # nothing to write, and a single read is consistent by itself
        with self._txn("IMMEDIATE" if tx.writes else "DEFERRED") as conn:
            for (collection, doc_id), seen in tx.versions.items():
                if self._version(conn, collection, doc_id) != seen:
                    raise Retry(f"{collection}/{doc_id} changed since it was read")
            if tx.writes:
                self._apply(conn, tx.writes)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            holders = list(self._holders)
        for holder in holders:
            holder.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"


class SqliteBatch(BaseBatch):
    def __init__(self, store: SqliteStore) -> None:
        super().__init__()
        self._store = store

    def _apply(self, writes: list[Write]) -> None:
        self._store._write(writes)


class SqliteTransaction(BaseTransaction):
    """Reads outside any SQL transaction, remembering each document's version."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__()
        self._store = store
        self.versions: dict[tuple[str, str], int] = {}

    def _read(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        rows = self._store._read(
            "SELECT data, version FROM docs WHERE collection = ? AND id = ?",
            (collection, doc_id),
        )
        version = rows[0][1] if rows else 0
        seen = self.versions.setdefault((collection, doc_id), version)
        if seen != version:
            raise Retry(f"{collection}/{doc_id} changed while the transaction ran")
        return json.loads(rows[0][0]) if rows else None


def _private(path: Path) -> None:
    """Create the database file readable by its owner only (0600), before SQLite does
    with the process's umask; an existing file keeps its mode."""
    if str(path) == ":memory:" or path.exists():
        return
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
