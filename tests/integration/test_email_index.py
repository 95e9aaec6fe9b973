"""The email index (core/email_index.py): keys, exact lookups between catch-ups,
catch_up, and store reads that do not grow with the CRM.

The read-count tests wrap a real SQLite store in a counting proxy (every document a
get asks for, every document a query returns, at least one per query) and run the
real engines against the sandbox, with 100 and with 2,000 CRM contacts and users."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.store_base import check_doc_id
from adapters.stores import open_store
from core import email_index as ix
from core.model import CONTACTS, GOOGLE_ACCOUNTS, USERS, stamp
from tests.integration.activities_world import CalendarWorld
from tests.integration.contacts_world import World

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'crm.db'}")
    yield s
    s.close()


def contact(email: str | list[str], at: datetime, **extra: Any) -> dict[str, Any]:
    emails = [email] if isinstance(email, str) else email
    return {"givenName": "X", "emails": [{"value": e} for e in emails],
            "modifiedAt": stamp(at), **extra}  # fmt: skip


def put_all(store, collection: str, docs: dict[str, dict]) -> None:
    items = list(docs.items())
    for start in range(0, len(items), 500):
        with store.batch() as batch:
            for doc_id, data in items[start : start + 500]:
                batch.put(collection, doc_id, data)


# --- keys ---------------------------------------------------------------------------


def test_keys_are_document_ids_one_per_email():
    emails = ["Ada@Example.com", "a/b@x.org", "50%@x.org", "%2F@x.org", ".", "..", "__x__",
              "__", "_a@x.org", "ü@bücher.de", "a b@x.org", "#h@x.org", "x" * 2000 + "@y.org",
              "y" * 2000 + "@y.org"]  # fmt: skip
    keys = [ix.key(e) for e in emails]
    for k in keys:
        assert check_doc_id(k) == k and "/" not in k
    assert len(set(keys)) == len(emails)  # distinct emails, distinct keys
    assert ix.key("  ADA@example.COM ") == ix.key("ada@example.com") == "ada@example.com"
    assert ix.key("a/b@x.org") == "a%2Fb@x.org" and ix.key("50%@x.org") == "50%25@x.org"
    assert ix.key("__x__") == "%5F_x__" and ix.key("..") == "%2E%2E"


# --- lookups and catch_up -------------------------------------------------------------


def test_lookup_is_exact_between_catch_ups(store):
    put_all(store, CONTACTS, {"c1": contact("one@x.org", T0), "c2": contact("two@x.org", T0),
                              "c3": contact(["three@x.org", "One@X.org"], T0)})  # fmt: skip
    assert ix.lookup(store, ["one@x.org"]).contacts == {"one@x.org": ["c1", "c3"]}  # not built
    ix.catch_up(store, T0 + timedelta(minutes=10))
    entry = store.get(ix.EMAIL_INDEX, "one@x.org")
    assert entry == {"email": "one@x.org", "contacts": ["c1", "c3"]}
    later = T0 + timedelta(minutes=11)
    # the CRM writes, with no catch-up since: a new holder, an email changed, a deletion
    gone = contact("three@x.org", later, deletedAt=stamp(later))
    put_all(store, CONTACTS, {"c4": contact("ONE@x.org", later),
                              "c1": contact("uno@x.org", later), "c3": gone})  # fmt: skip
    store.delete(CONTACTS, "c2")  # hard-deleted (the webhook says so)
    found = ix.lookup(store, ["one@x.org", "uno@x.org", "two@x.org", "nobody@x.org"])
    assert found.contacts == {"one@x.org": ["c4"], "uno@x.org": ["c1"]}
    assert set(found.contact_docs) == {"c1", "c4"}
    assert found.stale == {"one@x.org": {"contacts": ["c1", "c3"], "users": []},
                           "two@x.org": {"contacts": ["c2"], "users": []}}  # fmt: skip
    assert ix.prune(store, found.stale) == 2
    assert store.get(ix.EMAIL_INDEX, "one@x.org")["contacts"] == []
    ix.catch_up(store, later + timedelta(minutes=1))
    assert store.get(ix.EMAIL_INDEX, "one@x.org")["contacts"] == ["c4"]
    assert store.get(ix.EMAIL_INDEX, "uno@x.org")["contacts"] == ["c1"]
    assert ix.lookup(store, ["one@x.org"]).contacts == {"one@x.org": ["c4"]}


def test_lookup_reads_only_the_tail_once_the_cursor_has_settled(store):
    put_all(store, CONTACTS, {f"c{i}": contact(f"p{i}@x.org", T0) for i in range(300)})
    ix.catch_up(store, T0 + timedelta(minutes=10))  # the cursor is T0, read 10 min later
    found = ix.lookup(store, ["p7@x.org"], users=False)
    assert found.contacts == {"p7@x.org": ["c7"]}
    assert found.reads == 3  # the state, the entry, the contact (the tail is empty)
    store.put(CONTACTS, "new", contact("p7@x.org", T0 + timedelta(minutes=11)))
    found = ix.lookup(store, ["p7@x.org"], users=False)
    assert found.contacts == {"p7@x.org": ["c7", "new"]} and found.reads == 4
    ix.catch_up(store, T0 + timedelta(minutes=12))
    ix.catch_up(store, T0 + timedelta(minutes=30))  # both cursors settle
    settled = store.get(ix.INDEX_STATE, ix.STATE_ID)
    assert ix.catch_up(store, T0 + timedelta(minutes=31))["contacts"] == 0
    assert store.get(ix.INDEX_STATE, ix.STATE_ID) == settled  # an idle tick writes nothing


def test_a_long_catch_up_goes_on_at_the_next_call_and_lookups_stay_exact(store):
    put_all(store, CONTACTS, {f"c{i:04d}": contact(f"p{i}@x.org", T0) for i in range(1200)})
    now = T0 + timedelta(minutes=10)
    first = ix.catch_up(store, now, max_contacts=500, page_size=250)
    assert first["contacts"] == 500 and not first["done"]
    store.put(CONTACTS, "late", contact("p1100@x.org", now))  # meanwhile, by the CRM
    assert ix.lookup(store, ["p1100@x.org"]).contacts == {"p1100@x.org": ["c1100", "late"]}
    calls = [first]
    while not calls[-1]["done"]:
        calls.append(ix.catch_up(store, now + timedelta(minutes=len(calls)), max_contacts=500,
                                 page_size=250))  # fmt: skip
    assert sum(c["contacts"] for c in calls) == 1201
    assert store.get(ix.EMAIL_INDEX, "p1100@x.org")["contacts"] == ["c1100", "late"]
    state = store.get(ix.INDEX_STATE, ix.STATE_ID)["contacts"]
    assert state["pass"] is None and state["cursor"] <= stamp(now)  # from the pass's start
    assert ix.lookup(store, ["p3@x.org"]).contacts == {"p3@x.org": ["c0003"]}


def test_contacts_with_malformed_modified_at_are_skipped_and_never_become_the_cursor(store):
    later = T0 + timedelta(minutes=30)
    bad = {"zoned": "2026-03-01T14:00:00+02:00", "naive": "2026-03-01T12:00:00", "junk": "soon"}
    docs = {i: {**contact(f"{i}@x.org", T0), "modifiedAt": at} for i, at in bad.items()}
    put_all(store, CONTACTS, {"ok": contact("ok@x.org", T0), **docs})  # zoned: T0, sorts last
    counts = ix.catch_up(store, T0 + timedelta(minutes=10))
    assert counts["skipped"] == 3 and counts["done"] == 1
    assert store.get(ix.EMAIL_INDEX, "ok@x.org")["contacts"] == ["ok"]
    assert store.get(ix.EMAIL_INDEX, "zoned@x.org") is None
    cursor = store.get(ix.INDEX_STATE, ix.STATE_ID)["contacts"]["cursor"]
    assert cursor == stamp(T0)
    store.put(CONTACTS, "next", contact("next@x.org", later))  # within the +02:00 hours
    ix.catch_up(store, later + timedelta(minutes=1))
    assert store.get(ix.EMAIL_INDEX, "next@x.org")["contacts"] == ["next"]
    assert ix.lookup(store, ["next@x.org"]).contacts == {"next@x.org": ["next"]}


def test_a_future_dated_contact_does_not_hide_the_contacts_written_until_then(store):
    store.put(CONTACTS, "future", contact("f@x.org", T0 + timedelta(days=2)))
    now = T0 + timedelta(minutes=10)
    ix.catch_up(store, now)
    cursor = store.get(ix.INDEX_STATE, ix.STATE_ID)["contacts"]["cursor"]
    assert cursor <= stamp(now)
    store.put(CONTACTS, "soon", contact("s@x.org", now + timedelta(minutes=10)))
    ix.catch_up(store, now + timedelta(minutes=20))
    assert store.get(ix.EMAIL_INDEX, "s@x.org")["contacts"] == ["soon"]
    ix.catch_up(store, now + timedelta(minutes=40))
    assert ix.lookup(store, ["s@x.org", "f@x.org"]).contacts == {"s@x.org": ["soon"],
                                                                 "f@x.org": ["future"]}  # fmt: skip


@pytest.mark.parametrize("state", [
    {"usersBuilt": True, "contacts": {"cursor": "2026-03-01T12:00:00", "readAt": "x"},
     "accounts": {"cursor": "2026-03-01T14:00:00+02:00", "readAt": None}},
    {"usersBuilt": True, "contacts": "oops", "accounts": ["no"]},
    {"usersBuilt": True, "contacts": {"cursor": 5, "readAt": 7}, "accounts": {"cursor": {}}},
])  # fmt: skip
def test_lookup_never_raises_on_a_bad_index_state(store, state):
    store.put(CONTACTS, "c1", contact("one@x.org", T0))
    store.put(USERS, "u1", {"email": "u@corp.org"})
    store.put(ix.INDEX_STATE, ix.STATE_ID, state)
    store.put(ix.EMAIL_INDEX, "one@x.org", {"email": "one@x.org", "contacts": "c1"})
    store.put(ix.EMAIL_INDEX, "u@corp.org", {"email": "u@corp.org", "users": ["u1"]})
    found = ix.lookup(store, ["one@x.org", "u@corp.org"])
    assert found.contacts == {"one@x.org": ["c1"]} and found.users == {"u@corp.org": ["u1"]}
    ix.catch_up(store, T0 + timedelta(minutes=10))  # mends the state
    assert ix.lookup(store, ["one@x.org"]).contacts == {"one@x.org": ["c1"]}
    assert store.get(ix.EMAIL_INDEX, "one@x.org")["contacts"] == ["c1"]


def test_concurrent_entry_writers_lose_no_ids(store):
    store.put(CONTACTS, "c2", contact("one@x.org", T0))
    mine = ix.EntryWrites()  # crmsync's contact write, in a batch not committed yet
    for change in ix.contact_changes("c1", None, contact("one@x.org", T0)):
        mine.change(*change)
    with store.batch() as batch:
        batch.put(CONTACTS, "c1", contact("one@x.org", T0))
        mine.write(batch)
        ix.catch_up(store, T0 + timedelta(minutes=10))  # the tick adds c2 meanwhile
        assert store.get(ix.EMAIL_INDEX, "one@x.org")["contacts"] == ["c2"]
    assert sorted(store.get(ix.EMAIL_INDEX, "one@x.org")["contacts"]) == ["c1", "c2"]
    with store.batch() as first:  # two provisionings that read the entry before either wrote
        ix.index_user(first, "u1", ["one@x.org"], store)
        with store.batch() as second:
            ix.index_user(second, "u2", ["one@x.org"], store)
    entry = store.get(ix.EMAIL_INDEX, "one@x.org")
    assert sorted(entry["users"]) == ["u1", "u2"] and sorted(entry["contacts"]) == ["c1", "c2"]
    with store.batch() as batch:  # a removal leaves the others' ids
        drop = ix.EntryWrites()
        for change in ix.contact_changes("c1", contact("one@x.org", T0), contact("x@y.z", T0)):
            drop.change(*change)
        drop.write(batch)
        with store.batch() as other:
            ix.index_user(other, "u3", ["one@x.org"], store)
    entry = store.get(ix.EMAIL_INDEX, "one@x.org")
    assert entry["contacts"] == ["c2"] and sorted(entry["users"]) == ["u1", "u2", "u3"]
    assert store.get(ix.EMAIL_INDEX, "x@y.z")["contacts"] == ["c1"]


def test_prune_keeps_the_ids_that_hold_the_email_again(store):
    put_all(store, CONTACTS, {"c1": contact("one@x.org", T0), "c2": contact("one@x.org", T0)})
    put_all(store, USERS, {"u1": {"email": "one@x.org"}, "u2": {"email": "one@x.org"}})
    ix.catch_up(store, T0 + timedelta(minutes=10))
    later = T0 + timedelta(minutes=11)
    put_all(store, CONTACTS, {"c1": contact("uno@x.org", later), "c2": contact("u@x.org", later)})
    put_all(store, USERS, {"u1": {"email": "uno@x.org"}, "u2": {"email": "u@x.org"}})
    found = ix.lookup(store, ["one@x.org"])
    assert found.stale == {"one@x.org": {"contacts": ["c1", "c2"], "users": ["u1", "u2"]}}
    store.put(CONTACTS, "c1", contact("ONE@x.org", later))  # back, before the prune
    store.put(USERS, "u1", {"email": "One@x.org"})
    assert ix.prune(store, found.stale) == 1
    entry = store.get(ix.EMAIL_INDEX, "one@x.org")
    assert entry["contacts"] == ["c1"] and entry["users"] == ["u1"]
    found = ix.lookup(store, ["one@x.org"])
    assert found.contacts == {"one@x.org": ["c1"]} and found.users == {"one@x.org": ["u1"]}


def test_a_contact_write_touching_more_entries_than_a_batch_holds_is_split(store):
    from core.contacts_exec import ContactsExecutor

    executor = ContactsExecutor(store, None, None, user_id="u1", tag_id="t", group="g",
                                policy=None, log=None)  # fmt: skip  # only the store is used
    many = contact([f"m{i}@x.org" for i in range(1100)], T0)
    link = {"crmId": "c1"}
    zero, two = contact("zero@x.org", T0), contact("two@x.org", T0)
    executor._write_contacts([("c0", None, zero, link), ("c1", None, many, link),
                              ("c2", None, two, link)])  # fmt: skip
    assert store.get(CONTACTS, "c1") == many
    entries = store.get_many(ix.EMAIL_INDEX, [ix.key(f"m{i}@x.org") for i in range(1100)])
    assert len(entries) == 1100 and all(e["contacts"] == ["c1"] for e in entries.values())
    assert store.get(ix.EMAIL_INDEX, "two@x.org")["contacts"] == ["c2"]
    fewer = contact([f"m{i}@x.org" for i in range(600, 1100)], T0)
    executor._write_contacts([("c1", many, fewer, link)])  # 600 removals
    assert store.get(ix.EMAIL_INDEX, "m0@x.org")["contacts"] == []
    assert store.get(ix.EMAIL_INDEX, "m600@x.org")["contacts"] == ["c1"]


def test_an_entry_over_its_size_limit_is_marked_overfull_and_answered_by_a_scan(store, monkeypatch):
    monkeypatch.setattr(ix, "MAX_ENTRY_IDS", 5)  # 10,000 in production
    put_all(store, CONTACTS, {f"c{i}": contact(["shared@x.org", f"p{i}@x.org"], T0)
                              for i in range(8)})  # fmt: skip
    ix.catch_up(store, T0 + timedelta(minutes=10))
    entry = store.get(ix.EMAIL_INDEX, "shared@x.org")
    assert entry["overfull"] is True and len(entry["contacts"]) == 5
    assert store.get(ix.EMAIL_INDEX, "p7@x.org")["contacts"] == ["c7"]
    from core.contacts_exec import ContactsExecutor

    executor = ContactsExecutor(store, None, None, user_id="u1", tag_id="t", group="g",
                                policy=None, log=None)  # fmt: skip  # only the store is used
    executor._write_contacts([("c8", None, contact("Shared@x.org", T0), {"crmId": "c8"})])
    assert len(store.get(ix.EMAIL_INDEX, "shared@x.org")["contacts"]) == 5  # no more ids
    ix.catch_up(store, T0 + timedelta(minutes=30))
    found = ix.lookup(store, ["shared@x.org", "p1@x.org"])
    assert found.contacts == {"shared@x.org": [f"c{i}" for i in range(9)], "p1@x.org": ["c1"]}
    assert found.stale == {}
    tail = ix.Tail()  # a run scans for an overfull email once
    ix.lookup(store, ["shared@x.org"], tail=tail)
    assert ix.lookup(store, ["shared@x.org"], tail=tail).reads == 1  # the entry only


def test_users_by_crm_email_and_google_account_email(store):
    put_all(store, USERS, {"u1": {"email": "Ann@corp.org"}, "u2": {"email": "bo@corp.org"}})
    account = {"accountEmail": "ann.g@gmail.com", "status": "connected",
               "refreshTokenCiphertext": "x", "connectedAt": stamp(T0)}  # fmt: skip
    store.put(GOOGLE_ACCOUNTS, "u1", account)
    ix.catch_up(store, T0 + timedelta(minutes=10))  # the first one reads users and accounts
    assert store.get(ix.EMAIL_INDEX, "ann.g@gmail.com")["users"] == ["u1"]
    found = ix.lookup(store, ["ann@corp.org", "ANN.G@gmail.com", "bo@corp.org"])
    assert found.users == {"ann@corp.org": ["u1"], "ann.g@gmail.com": ["u1"],
                           "bo@corp.org": ["u2"]}  # fmt: skip
    assert found.account_docs["u1"]["status"] == "connected"
    # provisioned later (index_user), and connected later without it (connectedAt)
    with store.batch() as batch:
        batch.put(USERS, "u3", {"email": "cy@corp.org"})
        ix.index_user(batch, "u3", ["cy@corp.org"], store)
    bo_at = stamp(T0 + timedelta(minutes=20))
    bo = {**account, "accountEmail": "bo.g@gmail.com", "connectedAt": bo_at}
    store.put(GOOGLE_ACCOUNTS, "u2", bo)
    store.put(USERS, "u4", {"email": "di@corp.org"})  # neither provisioned nor caught up
    store.put(GOOGLE_ACCOUNTS, "u4", {**bo, "accountEmail": "di.g@gmail.com"})
    found = ix.lookup(store, ["cy@corp.org", "bo.g@gmail.com", "di@corp.org"])
    assert found.users == {"cy@corp.org": ["u3"], "bo.g@gmail.com": ["u2"], "di@corp.org": ["u4"]}
    ix.catch_up(store, T0 + timedelta(minutes=21))
    assert store.get(ix.EMAIL_INDEX, "bo.g@gmail.com")["users"] == ["u2"]
    store.put(USERS, "u3", {"email": "cyrus@corp.org"})  # re-addressed in the CRM
    found = ix.lookup(store, ["cy@corp.org"])
    assert found.users == {} and found.stale == {"cy@corp.org": {"contacts": [], "users": ["u3"]}}
    assert ix.ensure_user(store, "u3", ["cyrus@corp.org"])["cyrus@corp.org"]["users"] == ["u3"]
    assert ix.lookup(store, ["cyrus@corp.org"]).users == {"cyrus@corp.org": ["u3"]}


def test_users_the_crm_adds_or_re_addresses_are_found_after_the_daily_re_read(store):
    put_all(store, USERS, {"u1": {"email": "ann@corp.org"}})
    ix.catch_up(store, T0 + timedelta(minutes=10))  # built: every user read once
    put_all(store, USERS, {"u1": {"email": "Annie@Corp.org"}, "u2": {"email": "Bo@Corp.org"}})
    assert ix.lookup(store, ["annie@corp.org", "bo@corp.org"]).users == {}  # not yet
    assert ix.catch_up(store, T0 + timedelta(hours=12))["users"] == 0
    day = T0 + timedelta(days=1, minutes=10)
    assert ix.catch_up(store, day)["users"] == 2
    found = ix.lookup(store, ["annie@corp.org", "bo@corp.org", "ann@corp.org"])
    assert found.users == {"annie@corp.org": ["u1"], "bo@corp.org": ["u2"]}
    assert found.stale == {"ann@corp.org": {"contacts": [], "users": ["u1"]}}
    assert ix.catch_up(store, day + timedelta(minutes=1))["users"] == 0


# --- reads that do not grow with the CRM ----------------------------------------------


class CountingStore:
    """A real store underneath; counts the documents each collection's reads touch: each
    id a get asks for, each document a query returns (at least one per query)."""

    def __init__(self, store: Any) -> None:
        self.store, self.reads = store, Counter()

    def get(self, collection, doc_id):
        self.reads[collection] += 1
        return self.store.get(collection, doc_id)

    def get_many(self, collection, doc_ids):
        doc_ids = list(doc_ids)
        self.reads[collection] += len(doc_ids)
        return self.store.get_many(collection, doc_ids)

    def query(self, collection, where=(), **kwargs):
        docs = self.store.query(collection, where, **kwargs)
        self.reads[collection] += max(1, len(docs))
        return docs

    def scan(self, collection, where=(), *, order_by, page_size=500):
        count = 0
        for doc in self.store.scan(collection, where, order_by=order_by, page_size=page_size):
            count += 1
            yield doc
        self.reads[collection] += max(1, count)

    def transaction(self, fn, **kwargs):
        outer = self

        class Counted:
            def __init__(self, tx):
                self.tx = tx

            def get(self, collection, doc_id):
                outer.reads[collection] += 1
                return self.tx.get(collection, doc_id)

            def __getattr__(self, name):
                return getattr(self.tx, name)

        return self.store.transaction(lambda tx: fn(Counted(tx)), **kwargs)

    def __getattr__(self, name):
        return getattr(self.store, name)

    @property
    def total(self) -> int:
        return sum(self.reads.values())


def test_a_directory_scans_the_lookup_tail_once(store):
    from core.activities_engine import Directory

    put_all(store, CONTACTS, {f"c{i}": contact(f"p{i}@x.org", T0) for i in range(20)})
    ix.catch_up(store, T0 + timedelta(minutes=10))
    recent = T0 + timedelta(minutes=11)  # the CRM writes 30 contacts after the catch-up
    put_all(store, CONTACTS, {f"n{i}": contact(f"q{i}@x.org", recent) for i in range(30)})
    counting = CountingStore(store)
    directory = Directory(counting, "u1", {"email": "me@corp.org"}, None)
    directory.add(["q1@x.org", "p1@x.org"])
    first = counting.reads[CONTACTS]
    assert first == 30 + 1  # the tail, then the indexed contact
    for n in range(2, 8):
        directory.add([f"q{n}@x.org", f"p{n}@x.org"])
    assert counting.reads[CONTACTS] == first + 6  # each indexed contact, no tail again
    assert directory.contacts["q7@x.org"] == "n7" and directory.contacts["p7@x.org"] == "c7"


def crm_of_size(world: Any, n: int) -> None:
    """``n`` more CRM contacts and ``n`` more users (provisioned: ``index_user``), written
    as the CRM writes them; then time passes and the dispatch tick catches up."""
    now = world.clock.now()
    put_all(world.store, CONTACTS, {f"c-bulk-{i}": contact(f"bulk{i}@crm.example", now)
                                    for i in range(n)})  # fmt: skip
    users = {f"u-bulk-{i}": {"email": f"user{i}@crm.example", "timeZone": "UTC"}
             for i in range(n)}  # fmt: skip
    items = list(users.items())
    for start in range(0, n, 200):
        with world.store.batch() as batch:
            for uid, doc in items[start : start + 200]:
                batch.put(USERS, uid, doc)
                ix.index_user(batch, uid, [doc["email"]], world.store)


def settle(world: Any) -> None:
    """Ten minutes of sandbox time, and a tick's catch-up."""
    world.sandbox.advance(600)
    ix.catch_up(world.store, world.clock.now())


def import_reads(tmp_path, sandbox, make_account, n: int) -> tuple[int, Counter, Any]:
    sandbox.control("POST", "/_sandbox/reset")
    world = World(tmp_path / str(n), sandbox, make_account("alice@example.com"))
    try:
        crm_of_size(world, n)
        world.run()
        settle(world)
        world.run()  # the CRM cursor settles too
        world.create_person("Hedy", "hedy@lamarr.example", in_group=True)
        world.create_person("Bulk", "BULK7@crm.example", in_group=True)  # a CRM contact's
        counting = CountingStore(world.store)
        report = world.engine(store=counting).run("u-alice")
        assert report.counts.get("imported") == 1 and report.counts.get("linkedByEmail") == 1
        assert "c-bulk-7" in world.links()
        # the imported contact's email was indexed with it, before any catch-up
        crm_id = next(c for c in world.links() if c.startswith("g-"))
        assert ix.lookup(world.store, ["hedy@lamarr.example"]).contacts == {
            "hedy@lamarr.example": [crm_id]
        }
        assert world.store.get(ix.EMAIL_INDEX, "hedy@lamarr.example")["contacts"] == [crm_id]
        return counting.total, counting.reads, report
    finally:
        world.close()


def test_importing_a_contact_reads_as_much_with_2000_contacts_as_with_100(
    tmp_path, sandbox, make_account
):
    small, small_by, _ = import_reads(tmp_path, sandbox, make_account, 100)
    large, large_by, _ = import_reads(tmp_path, sandbox, make_account, 2000)
    print(f"\nimport run, documents read: {small} with 100, {large} with 2000: {dict(large_by)}")
    assert small == large, (small_by, large_by)


def event_reads(tmp_path, sandbox, make_account, n: int) -> tuple[int, Counter]:
    sandbox.control("POST", "/_sandbox/reset")
    world = CalendarWorld(tmp_path / str(n), sandbox, make_account)
    try:
        crm_of_size(world, n)
        world.sync()
        settle(world)
        world.sync()
        world.insert_event(summary="Review", attendees=[
            {"email": "bulk7@crm.example"}, {"email": "user9@crm.example"},
            {"email": "ada@analytical.example"}, {"email": "stranger@else.org"}])  # fmt: skip
        counting = CountingStore(world.store)
        report = world.engine("u-alice", store=counting).run("u-alice")
        assert report.counts.get("imported") == 1
        (activity,) = [a for i, a in world.activities().items() if i.startswith("gcal-")]
        assert sorted((p.get("contactId") or p.get("userId"), p["email"])
                      for p in activity["participants"]) == [
            ("c-ada", "ada@analytical.example"), ("c-bulk-7", "bulk7@crm.example"),
            ("u-bulk-9", "user9@crm.example")]  # fmt: skip
        return counting.total, counting.reads
    finally:
        world.close()


def test_one_changed_event_with_attendees_reads_as_much_with_2000_contacts_and_users(
    tmp_path, sandbox, make_account
):
    small, small_by = event_reads(tmp_path, sandbox, make_account, 100)
    large, large_by = event_reads(tmp_path, sandbox, make_account, 2000)
    print(f"\nevent run, documents read: {small} with 100, {large} with 2000: {dict(large_by)}")
    assert small == large, (small_by, large_by)
