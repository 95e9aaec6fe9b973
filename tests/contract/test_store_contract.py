"""The document store contract (``core.ports.DocumentStore``), one suite for every
adapter: each test takes the ``store`` fixture, run once on SQLite and once on the
Firestore emulator. The last section holds SQLite-only checks (processes, forced
conflicts, query plans) that the emulator cannot do quickly or at all.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.store_base import check_query
from adapters.store_sqlite import SqliteStore, build_query
from adapters.stores import open_store
from core.errors import AlreadyExists, ConfigError, StoreError, TransactionConflict
from core.ports import MAX_BATCH_WRITES, Doc, DocumentStore, Filter, Transaction

C = "contacts"


def ts(minute: int, second: int = 0) -> str:
    return f"2024-05-01T10:{minute:02d}:{second:02d}Z"


def ids(docs: list[Doc]) -> list[str]:
    return [d.id for d in docs]


# --- documents ----------------------------------------------------------------------


def test_get_of_a_missing_document_is_none(store: DocumentStore) -> None:
    assert store.get(C, "nope") is None


def test_put_then_get_round_trips_every_json_type(store: DocumentStore) -> None:
    data = {
        "givenName": "Zoë",
        "age": 42,
        "score": 2.5,
        "whole": 3.0,
        "big": 2**62,
        "vip": True,
        "deletedAt": None,
        "tagIds": ["t1", "t2"],
        "emails": [{"value": "z@example.com", "type": "work"}],
        "address": {"city": "Zürich", "lines": ["a", "b"], "geo": {"lat": 47.3}},
        "empty": [],
        "none": {},
        "modifiedAt": ts(1),
    }
    store.put(C, "c1", data)
    got = store.get(C, "c1")
    assert got == data
    assert isinstance(got["whole"], float) and isinstance(got["age"], int)


def test_put_replaces_the_whole_document(store: DocumentStore) -> None:
    store.put(C, "c1", {"a": 1, "b": 2})
    store.put(C, "c1", {"c": 3})
    assert store.get(C, "c1") == {"c": 3}


def test_documents_are_copied_in_and_out(store: DocumentStore) -> None:
    data = {"tags": ["a"], "n": 1}
    store.put(C, "c1", data)
    data["tags"].append("b")
    got = store.get(C, "c1")
    assert got == {"tags": ["a"], "n": 1}
    got["n"] = 99
    assert store.get(C, "c1") == {"tags": ["a"], "n": 1}


def test_delete_removes_and_tolerates_a_missing_document(store: DocumentStore) -> None:
    store.put(C, "c1", {"a": 1})
    store.delete(C, "c1")
    assert store.get(C, "c1") is None
    store.delete(C, "c1")


def test_collections_are_separate_and_ids_may_contain_colons(store: DocumentStore) -> None:
    store.put("links", "u1:contacts:c1", {"googleId": "people/1"})
    store.put("syncState", "u1:contacts:c1", {"holder": None})
    assert store.get("links", "u1:contacts:c1") == {"googleId": "people/1"}
    assert store.get("syncState", "u1:contacts:c1") == {"holder": None}
    assert store.query("links") == [Doc("links", "u1:contacts:c1", {"googleId": "people/1"})]


def test_get_many_returns_the_existing_documents_by_id(store: DocumentStore) -> None:
    for i in range(5):
        store.put(C, f"c{i}", {"i": i})
    assert store.get_many(C, ["c1", "missing", "c3", "c1"]) == {"c1": {"i": 1}, "c3": {"i": 3}}
    assert store.get_many(C, []) == {}
    assert store.get_many("other", ["c1"]) == {}


@pytest.mark.parametrize(
    "data",
    [
        {"when": datetime(2024, 1, 1)},
        {"tags": {"a", "b"}},
        {"x": float("nan")},
        {"x": float("inf")},
        {1: "int key"},
        {"": "empty key"},
        {"__name__": "reserved"},
        {"nested": [[1, 2]]},
        {"huge": 2**70},
        {"blob": b"bytes"},
        {"big": "x" * 1_100_000},
        {"surrogate": "\ud800"},
    ],
    ids=[
        "datetime",
        "set",
        "nan",
        "inf",
        "int-key",
        "empty-key",
        "reserved-key",
        "nested-array",
        "int-overflow",
        "bytes",
        "over-1MiB",
        "lone-surrogate",
    ],
)
def test_non_json_or_oversized_documents_are_rejected(
    store: DocumentStore, data: dict[Any, Any]
) -> None:
    with pytest.raises(StoreError):
        store.put(C, "bad", data)
    assert store.get(C, "bad") is None


@pytest.mark.parametrize("doc_id", ["", "a/b", ".", "..", "__x__"])
def test_invalid_ids_are_rejected(store: DocumentStore, doc_id: str) -> None:
    with pytest.raises(StoreError):
        store.put(C, doc_id, {"a": 1})
    with pytest.raises(StoreError):
        store.get(C, doc_id)


# --- queries ------------------------------------------------------------------------


def seed(store: DocumentStore) -> None:
    rows: dict[str, dict[str, Any]] = {
        "c1": {"ownerId": "u1", "tagIds": ["t1", "t2"], "modifiedAt": ts(5), "n": 1},
        "c2": {"ownerId": "u1", "tagIds": ["t2"], "modifiedAt": ts(3), "n": 1.0},
        "c3": {"ownerId": "u2", "tagIds": ["t1"], "modifiedAt": ts(3), "n": True},
        "c4": {"ownerId": "u2", "tagIds": [], "modifiedAt": ts(9), "n": "1"},
        "c5": {"ownerId": "u1", "tagIds": ["t1", "t1"], "modifiedAt": ts(1), "n": 2},
        "c6": {"ownerId": None, "tags": "t1", "n": [1]},
    }
    with store.batch() as batch:
        for doc_id, data in rows.items():
            batch.put(C, doc_id, data)


def test_equality_filters_match_only_values_of_the_same_type(store: DocumentStore) -> None:
    seed(store)
    assert ids(store.query(C, [Filter("ownerId", "==", "u1")])) == ["c1", "c2", "c5"]
    assert ids(store.query(C, [Filter("n", "==", 1)])) == ["c1", "c2"]  # 1 == 1.0
    assert ids(store.query(C, [Filter("n", "==", True)])) == ["c3"]
    assert ids(store.query(C, [Filter("n", "==", "1")])) == ["c4"]
    assert ids(store.query(C, [Filter("ownerId", "==", None)])) == ["c6"]
    assert store.query(C, [Filter("missing", "==", "x")]) == []


def test_filters_combine_with_and(store: DocumentStore) -> None:
    seed(store)
    where = [Filter("ownerId", "==", "u1"), Filter("tagIds", "array_contains", "t1")]
    assert ids(store.query(C, where)) == ["c1", "c5"]


def test_array_contains_follows_every_write(store: DocumentStore) -> None:
    seed(store)
    t1 = [Filter("tagIds", "array_contains", "t1")]
    assert ids(store.query(C, t1)) == ["c1", "c3", "c5"]  # c5 once; c6's "tags" is no array
    store.put(C, "c1", {"ownerId": "u1", "tagIds": ["t2"], "modifiedAt": ts(6)})
    store.delete(C, "c3")
    with store.batch() as batch:
        batch.put(C, "c7", {"tagIds": ["t9", "t1"]})
    assert ids(store.query(C, t1)) == ["c5", "c7"]
    assert ids(store.query(C, [Filter("tagIds", "array_contains", "t2")])) == ["c1", "c2"]


def test_range_filters_order_by_the_field_then_id(store: DocumentStore) -> None:
    seed(store)
    after = [Filter("modifiedAt", ">", ts(3))]
    assert ids(store.query(C, after)) == ["c1", "c4"]
    assert ids(store.query(C, [Filter("modifiedAt", ">=", ts(3))])) == ["c2", "c3", "c1", "c4"]
    assert ids(store.query(C, [Filter("modifiedAt", "<", ts(3))])) == ["c5"]
    window = [Filter("modifiedAt", ">", ts(1)), Filter("modifiedAt", "<=", ts(5))]
    assert ids(store.query(C, window, order_by="modifiedAt")) == ["c2", "c3", "c1"]
    assert ids(store.query(C, window, descending=True)) == ["c1", "c3", "c2"]


def test_order_by_breaks_ties_by_id_and_skips_documents_without_the_field(
    store: DocumentStore,
) -> None:
    seed(store)
    assert ids(store.query(C, order_by="modifiedAt")) == ["c5", "c2", "c3", "c1", "c4"]
    descending = store.query(C, order_by="modifiedAt", descending=True)
    assert ids(descending) == ["c4", "c1", "c3", "c2", "c5"]
    assert ids(store.query(C)) == ["c1", "c2", "c3", "c4", "c5", "c6"]


def test_limit_and_start_after_page_through_ties(store: DocumentStore) -> None:
    seed(store)
    first = store.query(C, order_by="modifiedAt", limit=2)
    assert ids(first) == ["c5", "c2"]
    second = store.query(C, order_by="modifiedAt", limit=2, start_after=first[-1])
    assert ids(second) == ["c3", "c1"]
    last = store.query(C, order_by="modifiedAt", limit=2, start_after=second[-1])
    assert ids(last) == ["c4"]
    back = store.query(C, order_by="modifiedAt", descending=True, start_after=second[0])
    assert ids(back) == ["c2", "c5"]
    by_id = store.query(C, limit=3, start_after=first[0])
    assert ids(by_id) == ["c6"]


def test_scan_returns_every_match_page_by_page(store: DocumentStore) -> None:
    seed(store)
    scanned = store.scan(C, [Filter("ownerId", "==", "u1")], order_by="modifiedAt", page_size=1)
    assert ids(list(scanned)) == ["c5", "c2", "c1"]
    assert ids(list(store.scan(C, order_by="modifiedAt", page_size=5))) == [
        "c5",
        "c2",
        "c3",
        "c1",
        "c4",
    ]


@pytest.mark.parametrize(
    "where, options",
    [
        ([Filter("a", "!=", 1)], {}),  # type: ignore[arg-type]
        ([Filter("a", ">", 1), Filter("b", "<", 2)], {}),
        ([Filter("a", ">", 1)], {"order_by": "b"}),
        ([Filter("a", "==", [1])], {}),
        ([Filter("a", "==", {"b": 1})], {}),
        ([Filter("a", "<", None)], {}),
        ([Filter("a.b", "==", 1)], {}),
        ([Filter("__name__", "==", "x")], {}),
        ([], {"limit": 0}),
        ([], {"descending": True}),
        ([], {"order_by": "modifiedAt", "start_after": Doc(C, "x", {})}),
        ([], {"start_after": Doc("other", "x", {})}),
    ],
)
def test_invalid_queries_are_rejected(
    store: DocumentStore, where: list[Filter], options: dict[str, Any]
) -> None:
    with pytest.raises(StoreError):
        store.query(C, where, **options)


# --- batches ------------------------------------------------------------------------


def test_batch_commit_applies_puts_creates_and_deletes(store: DocumentStore) -> None:
    store.put(C, "old", {"a": 1})
    batch = store.batch()
    batch.put(C, "p", {"a": 2})
    batch.create(C, "new", {"a": 3})
    batch.delete(C, "old")
    assert store.get(C, "p") is None  # nothing before commit
    batch.commit()
    assert store.get_many(C, ["p", "new", "old"]) == {"p": {"a": 2}, "new": {"a": 3}}
    with pytest.raises(StoreError):
        batch.put(C, "again", {})


def test_batch_array_writes_add_and_remove_against_the_stored_document(
    store: DocumentStore,
) -> None:
    store.put(C, "e", {"email": "a@x.org", "ids": ["c1", "c2"], "other": ["u1"], "n": 1})
    with store.batch() as batch:
        batch.add_to_array(C, "e", "ids", ["c2", "c3", "c4"], {"email": "a@x.org"})
        batch.remove_from_array(C, "e", "ids", ["c1", "zz"])
        batch.add_to_array(C, "new", "ids", ["c9"], {"email": "b@x.org"})
    assert store.get(C, "e") == {"email": "a@x.org", "ids": ["c2", "c3", "c4"],
                                 "other": ["u1"], "n": 1}  # fmt: skip
    assert store.get(C, "new") == {"email": "b@x.org", "ids": ["c9"]}
    assert ids(store.query(C, [Filter("ids", "array_contains", "c3")])) == ["e"]
    assert ids(store.query(C, [Filter("ids", "array_contains", "c1")])) == []
    with store.batch() as batch:  # another writer's whole put in between is kept
        batch.add_to_array(C, "e", "other", ["u2"])
        store.put(C, "e", {"email": "a@x.org", "ids": ["c7"], "other": []})
    assert store.get(C, "e") == {"email": "a@x.org", "ids": ["c7"], "other": ["u2"]}
    with store.batch() as batch:  # no values: only the fields
        batch.add_to_array(C, "e", "ids", [], {"full": True})
    assert store.get(C, "e") == {"email": "a@x.org", "ids": ["c7"], "other": ["u2"], "full": True}
    with pytest.raises(StoreError):
        store.batch().add_to_array(C, "e", "ids", "c1")  # a string is not a list of values


def test_concurrent_array_writers_lose_nothing(store: DocumentStore) -> None:
    store.put(C, "e", {"ids": []})
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(5):
                with store.batch() as batch:
                    batch.add_to_array(C, "e", "ids", [f"w{n}-{i}"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(store.get(C, "e")["ids"]) == sorted(f"w{n}-{i}" for n in range(4)
                                                      for i in range(5))  # fmt: skip


def test_batch_block_commits_on_success(store: DocumentStore) -> None:
    with store.batch() as batch:
        batch.put(C, "a", {"n": 1})
        batch.put(C, "b", {"n": 2})
    assert store.get_many(C, ["a", "b"]) == {"a": {"n": 1}, "b": {"n": 2}}


def test_an_exception_inside_the_batch_block_discards_it(store: DocumentStore) -> None:
    with pytest.raises(RuntimeError), store.batch() as batch:
        batch.put(C, "a", {"n": 1})
        raise RuntimeError("boom")
    assert store.get(C, "a") is None


def test_a_failing_create_fails_the_whole_batch(store: DocumentStore) -> None:
    store.put(C, "taken", {"v": "original"})
    batch = store.batch()
    batch.put(C, "A", {"n": 1})
    batch.create(C, "taken", {"v": "new"})
    batch.put(C, "B", {"n": 2})
    with pytest.raises(AlreadyExists) as info:
        batch.commit()
    assert (info.value.collection, info.value.doc_id) == (C, "taken")
    assert store.get_many(C, ["A", "B", "taken"]) == {"taken": {"v": "original"}}


def test_batches_hold_at_most_500_writes(store: DocumentStore) -> None:
    with store.batch() as full:
        for i in range(MAX_BATCH_WRITES):
            full.put("full", f"d{i:03d}", {"i": i})
    assert len(store.query("full")) == MAX_BATCH_WRITES
    with pytest.raises(StoreError, match="at most 500 writes"), store.batch() as batch:
        for i in range(MAX_BATCH_WRITES + 1):
            batch.put("over", f"d{i:03d}", {"i": i})
    assert store.query("over") == []


# --- transactions -------------------------------------------------------------------


def increment(tx: Transaction) -> int:
    doc = tx.get("counters", "c") or {"n": 0}
    tx.put("counters", "c", {"n": doc["n"] + 1})
    return doc["n"] + 1


def test_transaction_reads_modifies_writes_and_returns(store: DocumentStore) -> None:
    assert store.transaction(increment) == 1
    assert store.transaction(increment) == 2
    assert store.get("counters", "c") == {"n": 2}


def test_transaction_can_delete_and_write_several_documents(store: DocumentStore) -> None:
    store.put("a", "x", {"v": 1})

    def move(tx: Transaction) -> None:
        value = tx.get("a", "x")
        assert tx.get("b", "x") is None
        tx.delete("a", "x")
        tx.put("b", "x", value or {})

    store.transaction(move)
    assert (store.get("a", "x"), store.get("b", "x")) == (None, {"v": 1})


def test_an_exception_inside_the_transaction_writes_nothing(store: DocumentStore) -> None:
    def fail(tx: Transaction) -> None:
        tx.get("counters", "c")
        tx.put("counters", "c", {"n": 100})
        raise ValueError("fn failed")

    with pytest.raises(ValueError, match="fn failed"):
        store.transaction(fail)
    assert store.get("counters", "c") is None


def test_transaction_reads_must_come_before_writes(store: DocumentStore) -> None:
    def read_after_write(tx: Transaction) -> None:
        tx.put("counters", "c", {"n": 1})
        tx.get("counters", "c")

    with pytest.raises(StoreError, match="reads before"):
        store.transaction(read_after_write)
    assert store.get("counters", "c") is None


def take_lease(store: DocumentStore, doc_id: str, holder: str, now: str) -> bool:
    def attempt(tx: Transaction) -> bool:
        state = tx.get("syncState", doc_id) or {}
        if state.get("holder") and state.get("expiresAt", "") > now:
            return False
        tx.put("syncState", doc_id, {**state, "holder": holder, "expiresAt": ts(59)})
        return True

    return store.transaction(attempt)


def test_racing_for_a_lease_exactly_one_wins(store: DocumentStore) -> None:
    """20 races, two threads each, all released at once by one barrier. (The races run
    side by side rather than one after the other because the Firestore emulator
    resolves each read-then-write deadlock only after a fixed 2 s lock timeout.)"""
    races, now = 20, ts(30)
    for race in range(1, races, 2):  # half the leases exist but have expired
        store.put("syncState", f"u{race}:contacts", {"holder": "old", "expiresAt": ts(10)})
    store.put("syncState", "live:contacts", {"holder": "old", "expiresAt": ts(40)})
    barrier = threading.Barrier(2 * races, timeout=30)
    won: dict[str, list[str]] = {f"u{race}:contacts": [] for race in range(races)}
    errors: list[BaseException] = []

    def contender(doc_id: str, holder: str) -> None:
        try:
            barrier.wait()
            if take_lease(store, doc_id, holder, now):
                won[doc_id].append(holder)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=contender, args=(doc_id, f"{doc_id}#{side}"))
        for doc_id in won
        for side in "ab"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    for doc_id, winners in won.items():
        assert len(winners) == 1, (doc_id, winners)
        assert store.get("syncState", doc_id) == {"holder": winners[0], "expiresAt": ts(59)}
    assert not take_lease(store, "live:contacts", "late", now)


def test_paging_2000_documents_returns_each_once_in_order(store: DocumentStore) -> None:
    total, page_size = 2000, 170
    docs = {
        f"c{(i * 7919) % total:04d}": {"modifiedAt": ts(i % 13, i % 3), "i": i}
        for i in range(total)
    }
    items = list(docs.items())
    for start in range(0, total, MAX_BATCH_WRITES):
        with store.batch() as batch:
            for doc_id, data in items[start : start + MAX_BATCH_WRITES]:
                batch.put(C, doc_id, data)
    expected = sorted(docs, key=lambda d: (docs[d]["modifiedAt"], d))

    seen: list[str] = []
    cursor: Doc | None = None
    while True:
        page = store.query(C, order_by="modifiedAt", limit=page_size, start_after=cursor)
        seen += ids(page)
        if len(page) < page_size:
            break
        cursor = page[-1]
    assert seen == expected

    since = ts(6)
    newer = [d for d in expected if docs[d]["modifiedAt"] >= since]
    where = [Filter("modifiedAt", ">=", since)]
    scanned = ids(list(store.scan(C, where, order_by="modifiedAt", page_size=page_size)))
    assert scanned == newer
    backwards: list[Doc] = []
    while page := store.query(
        C, where, descending=True, limit=page_size, start_after=backwards[-1] if backwards else None
    ):
        backwards += page
    assert ids(backwards) == newer[::-1]


# --- SQLite only --------------------------------------------------------------------


def test_sqlite_interleaved_transactions_the_loser_retries(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    store.put("counters", "c", {"n": 0})
    seen: list[int] = []

    def slow_increment(tx: Transaction) -> None:
        doc = tx.get("counters", "c") or {}
        seen.append(doc["n"])
        if len(seen) == 1:  # another writer gets in between our read and our commit
            store.transaction(increment)
        tx.put("counters", "c", {"n": doc["n"] + 10})

    store.transaction(slow_increment)
    assert seen == [0, 1]
    assert store.get("counters", "c") == {"n": 11}


def test_sqlite_transaction_conflict_after_max_attempts(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    calls: list[int] = []

    def always_loses(tx: Transaction) -> None:
        tx.get("counters", "c")
        calls.append(1)
        store.transaction(increment)
        tx.put("counters", "c", {"n": -1})

    with pytest.raises(TransactionConflict):
        store.transaction(always_loses, max_attempts=3)
    assert len(calls) == 3
    assert store.get("counters", "c") == {"n": 3}


def increment_many(path: str, times: int) -> None:
    """Runs in a spawned process."""
    store = SqliteStore(path)
    for _ in range(times):
        store.transaction(increment, max_attempts=200)
    store.close()


def test_sqlite_processes_incrementing_one_counter_lose_no_update(tmp_path: Path) -> None:
    path, processes, times = str(tmp_path / "shared.db"), 4, 50
    SqliteStore(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=increment_many, args=(path, times)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * processes
    store = SqliteStore(path)
    assert store.get("counters", "c") == {"n": processes * times}
    store.close()


def query_plan(store: SqliteStore, where: list[Filter], order_by: str | None = None) -> str:
    sql, params = build_query(check_query(C, where, order_by, False, None, None))
    with sqlite3.connect(store.path) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(row[3] for row in rows)


def test_sqlite_queries_use_indexes(sqlite_store: SqliteStore) -> None:
    seed(sqlite_store)
    since = query_plan(sqlite_store, [Filter("modifiedAt", ">", ts(3))])
    assert "USING INDEX docs_by_modifiedAt" in since and "TEMP B-TREE" not in since
    owner = query_plan(sqlite_store, [Filter("ownerId", "==", "u1")], "ownerId")
    assert "USING INDEX docs_by_ownerId" in owner
    tagged = query_plan(sqlite_store, [Filter("tagIds", "array_contains", "t1")])
    assert "array_values" in tagged and "SCAN docs" not in tagged


def test_sqlite_uses_wal_and_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    store = open_store(f"sqlite:///{path}")
    store.put(C, "c1", {"a": 1})
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "url", ["", "mysql://db", "sqlite://", "sqlite:///", "sqlite:///:memory:", "firestore:x"]
)
def test_open_store_rejects_unknown_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        open_store(url)


def test_open_store_firestore_needs_a_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        open_store("firestore")
