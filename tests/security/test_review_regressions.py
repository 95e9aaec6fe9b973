"""Regressions from the independent review of issue 14's fixes: each test failed before
its fix.

1. A slow Google call (a batch retried for minutes) outlasted the 3-minute lease, which
   only the section's progress renewed: a second run took the pair and both pushed.
2. A run whose lease was taken mid-run had its own record replaced by a "skipped" one.
3. A saved success record was replaced by a failure when the lease release failed.
4. A webhook whose send failed while the store was down left a claim that coalesced
   the CRM's retry into a job that never left.
5. The last documented wait of the finish (15 s) was never taken.
6. More than 500 corrupt links stopped every run (one batch of deletes).
7. Corrupt state fields (``accountEmail``, ``nextDueAt``, ``emptyRuns``) crashed runs.
8. Times without an offset passed the checks, then crashed comparisons.
9. A corrupt lease owner crashed command-line runs.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from adapters.process import LocalProcess
from adapters.stores import open_store
from core import contact_mapping as cm
from core import lease, runs
from core.errors import LeaseHeld, StoreError
from core.model import LINKS, SYNC_RUNS, SYNC_STATE, stamp, state_id
from core.schedule import Job
from functions import bootstrap, jobs, seed
from functions.webhook_logic import Payload, accept
from tests.integration.contacts_world import ALICE, World
from tests.security.outage import Outage, OutageStore, WaitingClock

SID = state_id(ALICE, "contacts")
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(tmp_path, sandbox, make_account):
    w = World(tmp_path, sandbox, make_account("alice@example.com"))
    yield w
    w.close()


def _one_person_per_contact(w: World) -> Counter:
    ids = Counter(cm.client_data_id(p) for p in w.persons().values() if cm.client_data_id(p))
    assert ids and all(n == 1 for n in ids.values()), ids
    return ids


# --- 1. the lease outlives one slow Google call ------------------------------------------


class SlowPeople:
    """The first create takes 4 minutes (Google throttles us: retries and Retry-After
    waits), in steps of 20 s of the world's clock; meanwhile the next tick tries the pair."""

    def __init__(self, world: World, port) -> None:
        self.world, self.port, self.slow, self.other = world, port, True, None

    def __getattr__(self, name):
        return getattr(self.port, name)

    def create(self, items):
        if self.slow:
            self.slow = False
            for _ in range(12):
                self.world.sandbox.advance(20)
                time.sleep(0.05)  # the heartbeat thread looks at the clock meanwhile
            try:
                self.other = self.world.run(trigger="schedule")
            except LeaseHeld as held:
                self.other = held
        return self.port.create(items)


def test_one_slow_google_call_does_not_let_a_second_run_push_the_same_contacts(world, monkeypatch):
    monkeypatch.setattr(lease.Heartbeat, "POLL_SECONDS", 0.01)
    people = SlowPeople(world, world.people_port())
    first = world.engine(people=people).run(ALICE)

    assert isinstance(people.other, LeaseHeld), "the lease lapsed during the slow call"
    assert first.counts["pushed"] == len(_one_person_per_contact(world))


# --- 2, 3. a run's own record is never replaced ------------------------------------------


class Taker:
    """At the run's first batch (its links, after creating persons) time passes past
    its lease, and another run takes the pair."""

    def __init__(self, world: World) -> None:
        self.world, self.store, self.done = world, world.store, False

    def __getattr__(self, name):
        method = getattr(self.store, name)
        if name != "batch" or self.done:
            return method

        def call(*args, **kwargs):
            self.done = True
            self.world.sandbox.advance(lease.LEASE_SECONDS + 60)
            lease.acquire(self.store, SID, "another-run", self.world.clock.now())
            return method(*args, **kwargs)

        return call


def _run_job(world: World, store, job: Job, clock=None):
    bootstrap.use_clock(clock or world.clock)
    try:
        return jobs.run_job(world.config, store, job)
    finally:
        bootstrap.use_clock(None)


def test_a_manual_run_whose_lease_was_taken_keeps_its_own_record(world):
    world.store.put(SYNC_RUNS, "r-taken", {"userId": ALICE, "section": "contacts",
                                           "trigger": "manual", "outcome": "queued"})  # fmt: skip
    _run_job(world, Taker(world), Job(ALICE, "contacts", trigger="manual", run_id="r-taken"))
    final = world.store.get(SYNC_RUNS, "r-taken")
    assert world.links() and final.get("items"), final
    assert final["counts"].get("pushed")
    assert (final["outcome"], final["reason"]) == ("failed", "interrupted"), "not 'busy'"


def test_a_scheduled_run_whose_lease_was_taken_has_one_record(world):
    _run_job(world, Taker(world), Job(ALICE, "contacts", trigger="schedule"))
    assert len(list(world.store.scan(SYNC_RUNS, order_by="startedAt"))) == 1


class DownAfterRecord:
    """The store fails from the moment the run's record is saved until ``back``."""

    def __init__(self, store, run_id: str) -> None:
        self.store, self.run_id, self.down, self.saved = store, run_id, False, None

    def __getattr__(self, name):
        method = getattr(self.store, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            if self.down:
                raise StoreError("firestore: 503 unavailable")
            out = method(*args, **kwargs)
            if name == "put" and args[:2] == (SYNC_RUNS, self.run_id) and "itemPages" in args[2]:
                self.saved, self.down = dict(args[2]), True
            return out

        return call


def test_a_saved_success_record_is_not_replaced_when_the_release_fails(world, monkeypatch):
    world.store.put(SYNC_RUNS, "r-ok", {"userId": ALICE, "section": "contacts",
                                        "trigger": "manual", "outcome": "queued"})  # fmt: skip
    store = DownAfterRecord(world.store, "r-ok")
    unrecorded = runs._unrecorded

    def back(*args, **kwargs):  # the store is back just after the patience ran out
        store.down = False
        return unrecorded(*args, **kwargs)

    monkeypatch.setattr(runs, "_unrecorded", back)
    clock = WaitingClock(world, Outage(()))
    with pytest.raises(StoreError):
        _run_job(world, store, Job(ALICE, "contacts", trigger="manual", run_id="r-ok"), clock)
    final = world.store.get(SYNC_RUNS, "r-ok")
    assert store.saved["ok"] is True and store.saved["counts"].get("pushed")
    assert (final["itemPages"], final["counts"]) == (store.saved["itemPages"],
                                                     store.saved["counts"])  # fmt: skip


# --- 4. a failed webhook delivery leaves no claim that swallows its retry ----------------


class Down:
    def __init__(self, store) -> None:
        self.store, self.down = store, False

    def __getattr__(self, name):
        method = getattr(self.store, name)

        def call(*args, **kwargs):
            if self.down:
                raise StoreError("firestore: 503 unavailable")
            return method(*args, **kwargs)

        return call if callable(method) else method


def test_a_webhook_whose_send_and_release_failed_is_queued_by_the_crm_s_retry(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'crm.db'}")
    seed.seed(store, NOW)
    event = {"eventId": "e1", "entity": "contact", "recordId": "c-ada", "change": "updated"}
    payload = Payload.model_validate({"events": [event]})
    flaky = Down(store)

    def inline_run_in_outage(jobs_):
        flaky.down = True  # the inline run met the store outage
        raise ConnectionError("the inline run failed: store unreachable")

    with pytest.raises(ConnectionError):  # the send's error, not the release's
        accept(flaky, payload, NOW, inline_run_in_outage)
    flaky.down = False
    sent: list = []
    answer = accept(store, payload, NOW + timedelta(seconds=10), sent.extend)  # the retry
    assert sent and answer["queued"] and answer["replayed"] == []
    again = accept(store, payload, NOW + timedelta(seconds=20), sent.extend)
    assert again["replayed"] == ["e1"] and len(sent) == 1
    store.close()


# --- 5. every documented wait is taken ------------------------------------------------------


def test_an_outage_as_long_as_the_patience_is_still_recorded(world):
    outage = Outage(("batch",), back_after=len(runs.RECORD_WAITS))
    clock = WaitingClock(world, outage)
    with pytest.raises(StoreError) as raised:
        world.engine(store=OutageStore(world.store, outage), clock=clock).run(ALICE)
    assert clock.waits == list(runs.RECORD_WAITS)
    assert sum(runs.RECORD_WAITS) <= runs.RECORD_PATIENCE.total_seconds()
    assert getattr(raised.value, "recorded", False) is True
    assert world.store.get(SYNC_STATE, SID)["lease"] is None


# --- 6-8. corrupt crmsync documents ------------------------------------------------------


def test_more_than_a_batch_of_corrupt_links_are_repaired(world):
    world.sync()
    for start in (0, 400):
        with world.store.batch() as batch:
            for i in range(start, min(start + 400, 501)):
                batch.put(LINKS, f"{ALICE}:contacts:ghost{i}", {
                    "userId": ALICE, "section": "contacts", "crmId": f"ghost{i}",
                    "googleId": 5})  # fmt: skip
    report = world.sync(full=True)
    assert report.outcome["outcome"] == "done"
    assert not [d for d in world.store.scan(LINKS, order_by="crmId")
                if d.data["crmId"].startswith("ghost")]  # fmt: skip


def test_a_link_made_again_where_a_corrupt_one_was_is_kept(world):
    world.sync()
    doc = next(d for d in world.store.scan(LINKS, order_by="crmId") if d.data["crmId"] == "c-ada")
    world.store.put(LINKS, doc.id, {**doc.data, "fingerprint": 5})  # corrupt
    world.sync(full=True)  # set aside; the full pass finds c-ada's person by clientData
    world.sync(full=True)
    assert "c-ada" in world.links()
    _one_person_per_contact(world)


def _put_state(world: World, **fields) -> None:
    world.store.put(SYNC_STATE, SID, {**world.store.get(SYNC_STATE, SID), **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {"accountEmail": 5},
        {"nextDueAt": "soon"},
        {"emptyRuns": "many"},
        {"lastRunAt": "yesterday", "queuedAt": 7},
        {"lease": {"holder": "old-run", "expiresAt": "2020-01-01T00:00:00"}},
        {"crmCursor": "2020-01-01T00:00:00"},
    ],
    ids=["accountEmail", "nextDueAt", "emptyRuns", "webhook-marks", "lease-naive", "cursor-naive"],
)
def test_a_corrupt_state_field_does_not_stop_the_section(world, fields):
    world.sync()
    _put_state(world, **fields)
    world.edit_contact("c-grace", jobTitle="Admiral")
    report = world.sync(trigger="schedule")
    assert report.outcome["outcome"] == "done", (report.outcome, report.errors)
    assert world.sync(trigger="schedule").outcome["outcome"] == "done"  # a quiet run
    state = world.store.get(SYNC_STATE, SID)
    assert state.get("lease") is None
    for key in set(fields) - {"lease", "accountEmail", "crmCursor"}:
        assert state.get(key) != fields[key], f"{key} still corrupt"


def test_a_corrupt_lease_owner_is_no_crash(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    held = {"holder": "other", "expiresAt": stamp(NOW + timedelta(minutes=2)), "owner": "x"}
    store.put(SYNC_STATE, "u:contacts", {"lease": held})
    with pytest.raises(LeaseHeld):  # a live lease of another holder, owner unknown
        lease.acquire(store, "u:contacts", "me", NOW, process=LocalProcess())
    store.close()


def test_a_lease_of_another_pid_space_is_not_taken_over(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    me = LocalProcess()
    owner = {**me.owner, "pid": 2**22 - 1, "pids": "pid:[1]"}  # a gone pid, another space
    held = {"holder": "other", "expiresAt": stamp(NOW + timedelta(minutes=2)), "owner": owner}
    store.put(SYNC_STATE, "u:contacts", {"lease": held})
    with pytest.raises(LeaseHeld):
        lease.acquire(store, "u:contacts", "me", NOW, process=me)
    store.close()
