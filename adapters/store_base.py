"""Shared code of the document store adapters (SQLite and Firestore).

Both adapters keep the same contract (``core.ports.DocumentStore``), so what does not
depend on the backend lives here, written once:

* validation of collection names, document ids, documents (JSON-safe, and within
  Firestore's limits, so that SQLite never accepts what Firestore would reject) and
  queries (one range field, which must be the ``order_by`` field);
* ``BaseStore.scan``, built on ``query``;
* ``BaseBatch`` and ``BaseTransaction``, which collect writes and leave only the
  commit to the adapter.

The factory behind ``CRMSYNC_STORE`` is ``adapters.stores.open_store``: it imports the
adapters, which import this module (never the other way round).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from core.errors import BadStoreRequest, TransactionConflict
from core.model import id_problem
from core.ports import MAX_BATCH_WRITES, Doc, Filter

RANGE_OPS = frozenset({"<", "<=", ">", ">="})
ALL_OPS = RANGE_OPS | {"==", "array_contains"}
MAX_DOC_BYTES = 1_048_576  # Firestore's limit, counted as Firestore counts
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_RE = re.compile(r"__.*__")
isfinite = math.isfinite

Scalar = str | int | float | bool | None
WriteKind = Literal["put", "create", "delete", "array_add", "array_remove"]
T = TypeVar("T")


# --- validation ---------------------------------------------------------------------


def check_collection(name: str) -> str:
    """A collection name: a non-empty top-level name without '/'."""
    _check_name("collection name", name)
    return name


def check_doc_id(doc_id: str) -> str:
    """A document id as Firestore accepts it (':' is fine, '/' is not)."""
    _check_name("document id", doc_id)
    return doc_id


def _check_name(what: str, name: object) -> None:
    if not isinstance(name, str) or not name:
        raise BadStoreRequest(f"{what} must be a non-empty string, got {name!r}")
    _check_utf8(name, what)
    problem = id_problem(name)  # Firestore's rules, as the doors check them too
    if problem:
        raise BadStoreRequest(f"{what} {name[:40]!r} {problem}")


def check_field(field: str) -> str:
    """A queryable field: a top-level identifier such as ``modifiedAt``."""
    if not isinstance(field, str) or not FIELD_RE.fullmatch(field) or RESERVED_RE.fullmatch(field):
        raise BadStoreRequest(f"query field must be a top-level identifier, got {field!r}")
    return field


def check_document(collection: str, doc_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Validate a document and return a deep copy of it (later edits by the caller
    do not leak into a pending batch or transaction).

    Most documents are the executors' own (links, syncState, syncRuns): plain dicts of
    str, int, bool, None, lists and dicts. For those a tight walk (``_fast_map``)
    copies and sizes them in one pass on exact types, with no per-field path text. A
    document it cannot vouch for, whether wrong or only unusual (a tuple, a str
    subclass, a name starting with "_"...), goes through the detailed walk, which
    accepts it or says exactly what is wrong and where, as before."""
    check_collection(collection)
    check_doc_id(doc_id)
    where = f"{collection}/{doc_id}"
    if not isinstance(data, dict):
        raise BadStoreRequest(f"{where}: a document must be a dict, got {type(data).__name__}")
    try:
        copy, size = _fast_map(data)
    except _Unusual:
        copy = _copy_map(data, where)
        size = _map_size(copy)
    size += len(where.encode()) + 1 + 16 + 32
    if size > MAX_DOC_BYTES:
        raise BadStoreRequest(f"{where}: document is {size} bytes, over {MAX_DOC_BYTES}")
    return copy


class _Unusual(Exception):
    """The fast walk met something only the detailed walk may judge."""


def _text_size(text: str) -> int:
    """Firestore's size of a string (UTF-8 bytes + 1); ``_Unusual`` if not UTF-8."""
    if text.isascii():  # O(1) in CPython
        return len(text) + 1
    try:
        return len(text.encode()) + 1
    except UnicodeEncodeError:
        raise _Unusual from None


def _fast_value(value: Any) -> tuple[Any, int]:
    """(copy, Firestore size) of a value of an exact plain type (not in an array)."""
    cls = value.__class__
    if cls is str:
        return value, _text_size(value)
    if value is None or cls is bool:
        return value, 1
    if (cls is int and INT64_MIN <= value <= INT64_MAX) or (cls is float and isfinite(value)):
        return value, 8
    if cls is dict:
        return _fast_map(value)
    if cls is list:
        out, size = [], 0
        for item in value:
            kind = item.__class__
            if kind is str:
                size += len(item) + 1 if item.isascii() else _text_size(item)
            elif item is None or kind is bool:
                size += 1
            elif (kind is int and INT64_MIN <= item <= INT64_MAX) or (
                kind is float and isfinite(item)
            ):
                size += 8
            elif kind is dict:
                item, n = _fast_map(item)
                size += n
            else:
                raise _Unusual  # an array in an array, anything else: the walk
            out.append(item)
        return out, size
    raise _Unusual


def _fast_map(data: dict[Any, Any]) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    size = 0
    for key, value in data.items():
        if key.__class__ is not str or not key or key[0] == "_":
            raise _Unusual  # "_x" may be reserved ("__x__"): the walk tells
        size += len(key) + 1 if key.isascii() else _text_size(key)
        cls = value.__class__
        if cls is str:  # the common cases inlined: this runs for every field written
            size += len(value) + 1 if value.isascii() else _text_size(value)
        elif value is None or cls is bool:
            size += 1
        else:
            value, n = _fast_value(value)
            size += n
        out[key] = value
    return out, size


def _check_utf8(text: str, where: str) -> str:
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise BadStoreRequest(f"{where}: string is not valid Unicode ({exc.reason})") from exc
    return text


def _copy_value(value: Any, where: str, in_array: bool) -> Any:
    if isinstance(value, str):
        return _check_utf8(value, where)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise BadStoreRequest(f"{where}: integer {value} does not fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadStoreRequest(f"{where}: {value} is not a finite number")
        return value
    if isinstance(value, dict):
        return _copy_map(value, where)
    if isinstance(value, (list, tuple)):
        if in_array:
            raise BadStoreRequest(f"{where}: arrays directly inside arrays are not supported")
        return [_copy_value(v, f"{where}[{i}]", True) for i, v in enumerate(value)]
    raise BadStoreRequest(f"{where}: {type(value).__name__} is not a JSON value")


def _copy_map(data: dict[Any, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key or RESERVED_RE.fullmatch(key):
            raise BadStoreRequest(f"{where}: field name {key!r} is not allowed")
        _check_utf8(key, where)
        out[key] = _copy_value(value, f"{where}.{key}", False)
    return out


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode()) + 1
    if isinstance(value, dict):
        return _map_size(value)
    if isinstance(value, list):
        return sum(_value_size(v) for v in value)
    return 1 if value is None or isinstance(value, bool) else 8


def _map_size(data: dict[str, Any]) -> int:
    return sum(len(k.encode()) + 1 + _value_size(v) for k, v in data.items())


def _check_filter_value(flt: Filter) -> None:
    value = flt.value
    if isinstance(value, float) and not math.isfinite(value):
        raise BadStoreRequest(f"filter on {flt.field!r}: {value} is not a finite number")
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise BadStoreRequest(
            f"filter on {flt.field!r}: value must be a str, number, bool or None, "
            f"got {type(value).__name__}"
        )
    if value is None and flt.op != "==":
        raise BadStoreRequest(f"filter on {flt.field!r}: None can only be compared with '=='")


@dataclass(frozen=True)
class QuerySpec:
    """A validated query. ``order_by`` defaults to the range field, if any."""

    collection: str
    where: tuple[Filter, ...]
    order_by: str | None
    descending: bool
    limit: int | None
    start_after: Doc | None

    @property
    def cursor_value(self) -> Scalar:
        assert self.start_after is not None and self.order_by is not None
        return self.start_after.data[self.order_by]


def check_query(
    collection: str,
    where: Sequence[Filter],
    order_by: str | None,
    descending: bool,
    limit: int | None,
    start_after: Doc | None,
) -> QuerySpec:
    check_collection(collection)
    filters = tuple(where)
    for flt in filters:
        if flt.op not in ALL_OPS:
            raise BadStoreRequest(
                f"unknown filter operator {flt.op!r}; use one of {sorted(ALL_OPS)}"
            )
        check_field(flt.field)
        _check_filter_value(flt)
    order_by = _effective_order(filters, order_by)
    if descending and order_by is None:  # Firestore has no descending scan by id alone
        raise BadStoreRequest("descending=True needs order_by (or a range filter)")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BadStoreRequest(f"limit must be a positive integer, got {limit!r}")
    if start_after is not None:
        _check_cursor(collection, order_by, start_after)
    return QuerySpec(collection, filters, order_by, descending, limit, start_after)


def _effective_order(filters: tuple[Filter, ...], order_by: str | None) -> str | None:
    range_fields = {f.field for f in filters if f.op in RANGE_OPS}
    if len(range_fields) > 1:
        raise BadStoreRequest(f"range filters on several fields {sorted(range_fields)}; use one")
    if order_by is not None:
        check_field(order_by)
    if range_fields:
        (field,) = range_fields
        if order_by not in (None, field):
            raise BadStoreRequest(f"a range filter on {field!r} requires order_by={field!r}")
        return field
    return order_by


def _check_cursor(collection: str, order_by: str | None, cursor: Doc) -> None:
    if not isinstance(cursor, Doc) or cursor.collection != collection:
        raise BadStoreRequest(f"start_after must be a Doc of collection {collection!r}")
    if order_by is None:
        return
    if order_by not in cursor.data:
        raise BadStoreRequest(
            f"start_after document {cursor.id!r} lacks order_by field {order_by!r}"
        )
    value = cursor.data[order_by]
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise BadStoreRequest(f"cannot paginate on {order_by!r}: cursor value is not a scalar")


@dataclass(frozen=True)
class Backoff:
    """Delays between transaction attempts: exponential, with full jitter, so that
    two transactions that keep colliding drift apart."""

    base: float = 0.002
    cap: float = 0.1

    def sleep(self, attempt: int) -> None:
        """Sleep before retry number ``attempt + 1``."""
        time.sleep(random.uniform(0, min(self.cap, self.base * 2**attempt)))


def check_attempts(max_attempts: int) -> int:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise BadStoreRequest(f"max_attempts must be a positive integer, got {max_attempts!r}")
    return max_attempts


class Retry(Exception):
    """Raised by one transaction attempt that lost to a concurrent writer."""


def run_attempts(attempt: Callable[[], T], max_attempts: int, backoff: Backoff = Backoff()) -> T:
    """Run ``attempt`` until it does not raise ``Retry``, with jittered backoff between
    tries; ``TransactionConflict`` after ``max_attempts`` lost attempts."""
    last: Retry | None = None
    for number in range(check_attempts(max_attempts)):
        try:
            return attempt()
        except Retry as exc:
            last = exc
        if number + 1 < max_attempts:
            backoff.sleep(number)
    raise TransactionConflict(
        f"transaction lost to concurrent writers {max_attempts} times; gave up ({last})"
    ) from last


# --- shared behaviour ---------------------------------------------------------------


class BaseStore:
    """``scan`` once for every adapter, on top of the adapter's ``query``."""

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
        raise NotImplementedError

    def scan(
        self,
        collection: str,
        where: Sequence[Filter] = (),
        *,
        order_by: str | None,
        page_size: int = 500,
    ) -> Iterator[Doc]:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise BadStoreRequest(f"page_size must be a positive integer, got {page_size!r}")
        cursor: Doc | None = None
        while True:
            page = self.query(
                collection, where, order_by=order_by, limit=page_size, start_after=cursor
            )
            yield from page
            if len(page) < page_size:
                return
            cursor = page[-1]


@dataclass(frozen=True)
class Write:
    """One pending write of a batch or transaction."""

    kind: WriteKind
    collection: str
    doc_id: str
    data: dict[str, Any] | None = None
    field: str | None = None  # the array of an array write


def array_write(kind: WriteKind, collection: str, doc_id: str, field: str, values: Sequence[Any],
                fields: dict[str, Any] | None) -> Write:  # fmt: skip
    """A checked ``add_to_array`` / ``remove_from_array``: ``data`` holds ``fields`` and,
    under ``field``, the list of values (scalars or maps, as array elements may be)."""
    check_field(field)
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise BadStoreRequest(f"{collection}/{doc_id}: array values must be a list, got {values!r}")
    data = {**(fields or {}), field: list(values)}
    if fields and field in fields:
        raise BadStoreRequest(
            f"{collection}/{doc_id}: {field!r} is both the array and a field to set"
        )
    if any(isinstance(v, dict) for v in (fields or {}).values()):  # Firestore would merge deep
        raise BadStoreRequest(
            f"{collection}/{doc_id}: fields set with an array write must not be maps"
        )
    return Write(kind, collection, doc_id, check_document(collection, doc_id, data), field)


def apply_array(current: dict[str, Any] | None, write: Write) -> dict[str, Any]:
    """The document an array write leaves (the backends that have no such operation)."""
    assert write.data is not None and write.field is not None
    values = write.data[write.field]
    out = {**(current or {}), **write.data}
    if not values:  # no values: only the fields are set, the array is left as it is
        del out[write.field]
        if current is not None and write.field in current:
            out[write.field] = current[write.field]
        return out
    have = (current or {}).get(write.field)
    have = list(have) if isinstance(have, list) else []
    if write.kind == "array_add":
        for value in values:
            if not any(_same(value, v) for v in have):
                have.append(value)
    else:
        have = [v for v in have if not any(_same(v, value) for value in values)]
    out[write.field] = have
    return out


def _same(a: Any, b: Any) -> bool:
    """Equality as Firestore has it for array elements (True is not 1; 1 is 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


class BaseBatch:
    """Collects up to ``MAX_BATCH_WRITES`` writes; ``_apply`` commits them atomically."""

    def __init__(self) -> None:
        self._writes: list[Write] = []
        self._done = False

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self._add(Write("put", collection, doc_id, check_document(collection, doc_id, data)))

    def create(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self._add(Write("create", collection, doc_id, check_document(collection, doc_id, data)))

    def delete(self, collection: str, doc_id: str) -> None:
        self._add(Write("delete", check_collection(collection), check_doc_id(doc_id)))

    def add_to_array(self, collection: str, doc_id: str, field: str, values: Sequence[Any],
                     fields: dict[str, Any] | None = None) -> None:  # fmt: skip
        self._add(array_write("array_add", collection, doc_id, field, values, fields))

    def remove_from_array(self, collection: str, doc_id: str, field: str,
                          values: Sequence[Any]) -> None:  # fmt: skip
        self._add(array_write("array_remove", collection, doc_id, field, values, None))

    def _add(self, write: Write) -> None:
        self._check_open()
        if len(self._writes) >= MAX_BATCH_WRITES:
            raise BadStoreRequest(
                f"a batch holds at most {MAX_BATCH_WRITES} writes; split the work into "
                f"several batches (write {len(self._writes) + 1} rejected, nothing written)"
            )
        self._writes.append(write)

    def _check_open(self) -> None:
        if self._done:
            raise BadStoreRequest("this batch was already committed or discarded; start a new one")

    def commit(self) -> None:
        self._check_open()
        self._done = True
        if len(self._writes) > MAX_BATCH_WRITES:  # unreachable through _add; kept as a guard
            raise BadStoreRequest(f"a batch holds at most {MAX_BATCH_WRITES} writes")
        if self._writes:
            self._apply(list(self._writes))

    def discard(self) -> None:
        self._done = True
        self._writes.clear()

    def _apply(self, writes: list[Write]) -> None:
        raise NotImplementedError

    def __enter__(self) -> BaseBatch:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


class BaseTransaction:
    """The ``Transaction`` handed to ``fn``: reads through ``_read``, buffers writes.

    As in Firestore, every read must come before the first write."""

    def __init__(self) -> None:
        self.writes: list[Write] = []

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        if self.writes:
            raise BadStoreRequest("a transaction must do all its reads before its first write")
        return self._read(check_collection(collection), check_doc_id(doc_id))

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self.writes.append(
            Write("put", collection, doc_id, check_document(collection, doc_id, data))
        )

    def delete(self, collection: str, doc_id: str) -> None:
        self.writes.append(Write("delete", check_collection(collection), check_doc_id(doc_id)))

    def _read(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        raise NotImplementedError
