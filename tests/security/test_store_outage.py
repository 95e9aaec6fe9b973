"""Issue 14, item 4: a store outage during a run.

"A store outage longer than the batch deadline leaves no run record and holds the lease.
The error shown is the secondary one. Record the failure best-effort, with the primary
error. Release the lease when the store comes back."

The store here is the world's SQLite store behind a switch: from a chosen call on, every
call fails as Firestore's client does once its own deadline has passed (``StoreError``);
the outage ends after a chosen number of the run's waits (``clock.sleep``, on sandbox
time), or never. Each failure carries its number, so that the error a caller sees can be
told from the ones the store raised afterwards.
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from core import contact_mapping as cm
from core import runs
from core.errors import LeaseHeld, StoreError
from core.lease import LEASE_SECONDS
from core.model import SYNC_RUNS, SYNC_STATE, state_id
from core.schedule import Job
from functions import bootstrap, jobs
from tests.integration.contacts_world import ALICE, World
from tests.security.outage import Outage, OutageStore, WaitingClock

SID = state_id(ALICE, "contacts")
WRITES = ("put", "delete", "batch", "transaction")


@pytest.fixture
def world(tmp_path, sandbox, make_account):
    w = World(tmp_path, sandbox, make_account("alice@example.com"))
    yield w
    w.close()


def _run_in_outage(w: World, outage: Outage) -> tuple[StoreError, WaitingClock]:
    clock = WaitingClock(w, outage)
    engine = w.engine(store=OutageStore(w.store, outage), clock=clock)
    with pytest.raises(StoreError) as raised:
        engine.run(ALICE)
    return raised.value, clock


def _no_duplicates(w: World) -> None:
    persons = w.persons().values()
    ids = Counter(cm.client_data_id(p) for p in persons if cm.client_data_id(p))
    assert all(n == 1 for n in ids.values()), ids
    links = w.links()
    assert len(set(links.values())) == len(links)


def test_a_store_outage_mid_run_that_ends_soon_still_records_the_run_s_own_error(world):
    outage = Outage(("batch",), back_after=2)  # down at the run's first batch (its links)
    error, clock = _run_in_outage(world, outage)

    assert "(#1)" in str(error), "the error raised is the run's own, not a later one"
    assert getattr(error, "recorded", False) is True
    assert len(clock.waits) == 2 and sum(clock.waits) <= runs.RECORD_PATIENCE.total_seconds()
    record = next(d.data for d in world.store.scan(SYNC_RUNS, order_by="startedAt"))
    assert (record["outcome"], record["reason"], record["ok"]) == (
        "failed", "store_unavailable", False)  # fmt: skip
    assert "(#1)" in record["errors"][-1]["message"]
    state = world.store.get(SYNC_STATE, SID)
    assert state["lease"] is None, "the lease is released once the store is back"
    assert state["lastResult"]["ok"] is False

    rerun = world.run()  # at once: nothing holds the pair
    assert rerun.outcome["outcome"] == "done"
    _no_duplicates(world)
    assert world.run().plan == []


def test_a_store_outage_past_the_patience_raises_the_run_s_own_error_and_logs_it(world, caplog):
    outage = Outage(("batch",), back_after=None)
    with caplog.at_level(logging.ERROR, logger="crmsync.runs"):
        error, clock = _run_in_outage(world, outage)

    assert "(#1)" in str(error) and getattr(error, "recorded", True) is False
    assert sum(clock.waits) <= runs.RECORD_PATIENCE.total_seconds()
    assert outage.failures > 1, "the finish was tried again"
    said = [r for r in caplog.records if "not saved" in r.getMessage()]
    assert said and "(#1)" in said[0].getMessage()
    fields = said[0].fields  # type: ignore[attr-defined]
    assert fields["reason"] == "store_unavailable" and fields["storeError"] == "StoreError"
    runs_kept = list(world.store.scan(SYNC_RUNS, order_by="startedAt"))
    assert not runs_kept, "the store was down: nothing recorded"

    with pytest.raises(LeaseHeld):  # the dead run's lease holds a while...
        world.run()
    world.sandbox.advance(LEASE_SECONDS + 1)  # ... no longer than a lease's length
    assert world.run().outcome["outcome"] == "done"
    _no_duplicates(world)
    assert world.run().plan == []


def test_a_store_that_fails_at_the_run_s_finish_briefly_still_records_its_success(world):
    outage = Outage(("put",), back_after=1)  # the run record's put: the changes are made
    clock = WaitingClock(world, outage)
    report = world.engine(store=OutageStore(world.store, outage), clock=clock).run(ALICE)

    assert report.outcome["outcome"] == "done" and len(clock.waits) == 1
    record = world.store.get(SYNC_RUNS, report.run_id)
    assert record["ok"] is True and record["counts"] == report.counts
    assert world.store.get(SYNC_STATE, SID)["lease"] is None
    assert world.run().plan == []


def test_a_store_that_stays_down_at_the_run_s_finish_says_the_result_was_not_saved(world):
    outage = Outage(("put",), back_after=None)
    error, _ = _run_in_outage(world, outage)

    assert "(#1)" in str(error)
    world.sandbox.advance(LEASE_SECONDS + 1)
    again = world.run()  # the cursors were not kept: the rerun reads again, links what is
    assert again.outcome["outcome"] == "done"
    _no_duplicates(world)
    assert world.run().plan == []


def test_a_queued_run_whose_store_fails_raises_its_own_error_not_the_record_s(world, caplog):
    outage = Outage(("batch", "put"), start=10**6)  # armed below, once the run is claimed
    store = OutageStore(world.store, outage)
    job = Job(ALICE, "contacts", trigger="manual", run_id="r-outage")
    world.store.put(SYNC_RUNS, "r-outage", {"userId": ALICE, "section": "contacts",
                                            "trigger": "manual", "outcome": "queued"})  # fmt: skip
    outage.start, outage.back_after = 1, None
    outage.check = _after_claim(outage)  # type: ignore[method-assign]
    bootstrap.use_clock(WaitingClock(world, outage))  # the run's waits, in sandbox time
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(StoreError) as raised:
            jobs.run_job(world.config, store, job)
    finally:
        bootstrap.use_clock(None)

    assert "(#1)" in str(raised.value)
    said = [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()
            or "not saved" in r.getMessage()]  # fmt: skip
    assert said and all("(#1)" in m for m in said)


def _after_claim(outage: Outage):
    """The outage starts at the first write after the run's claim (a transaction)."""
    check, claimed = Outage.check.__get__(outage), []

    def after(name: str) -> None:
        if name == "transaction" and not claimed:
            claimed.append(name)
            return
        if claimed:
            check(name)

    return after
