"""A run started by hand, as Pub/Sub and crashes treat it: a redelivered message never
runs a finished run twice nor beside its live first delivery; a run that died under way
or was never sent says so in the history instead of "running" or "queued" forever."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.lease import LEASE_SECONDS
from core.model import SYNC_RUNS, SYNC_STATE, stamp
from core.schedule import Job
from functions import bootstrap, seed
from functions.jobs import RunUnderWay, run_job
from functions.manual_logic import history, run_detail, start_sync
from tests import emulators


def _job(run_id: str) -> Job:
    return Job(seed.ALICE, "contacts", "manual", run_id=run_id)  # type: ignore[arg-type]


def test_a_redelivered_message_of_a_finished_run_is_acknowledged_and_not_run_again(
    cloud_env, sandbox
):
    store, config = cloud_env, bootstrap.Config.from_env()
    run_id = uuid.uuid4().hex
    first = run_job(config, store, _job(run_id))
    assert first.counts["pushed"] == 4
    record = store.get(SYNC_RUNS, run_id)
    calls = sandbox.stats()["total"]
    assert run_job(config, store, _job(run_id)) is None  # the redelivery
    assert sandbox.stats()["total"] == calls  # Google not asked at all
    assert store.get(SYNC_RUNS, run_id) == record  # its record and journal kept as they were


def test_a_redelivery_beside_a_live_first_delivery_waits_and_takes_over_a_dead_one(
    cloud_env, sandbox
):
    store, config = cloud_env, bootstrap.Config.from_env()
    run_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    live = {"userId": seed.ALICE, "section": "contacts", "trigger": "manual",
            "outcome": "running", "reason": "running", "updatedAt": stamp(now)}  # fmt: skip
    store.put(SYNC_RUNS, run_id, live)
    with pytest.raises(RunUnderWay):  # Pub/Sub asks again later
        run_job(config, store, _job(run_id))
    assert store.get(SYNC_RUNS, run_id) == live  # the first delivery's record, untouched
    assert sandbox.stats()["total"] == 0

    dead = {**live, "updatedAt": stamp(now - timedelta(seconds=LEASE_SECONDS + 1))}
    store.put(SYNC_RUNS, run_id, dead)
    report = run_job(config, store, _job(run_id))
    assert report.counts["pushed"] == 4
    record = store.get(SYNC_RUNS, run_id)
    assert (record["outcome"], record["ok"]) == ("done", True)


def test_a_run_that_died_under_way_is_shown_interrupted(cloud_env):
    store = cloud_env
    long_ago = stamp(datetime.now(UTC) - timedelta(hours=2))
    store.put(SYNC_RUNS, "died", {
        "userId": seed.ALICE, "section": "contacts", "trigger": "manual",
        "startedAt": long_ago, "updatedAt": long_ago, "outcome": "running",
        "reason": "running", "phase": "pushing", "done": 3, "total": 9,
    })  # fmt: skip
    store.put(SYNC_RUNS, "lost", {
        "userId": seed.ALICE, "section": "activities", "trigger": "manual",
        "startedAt": long_ago, "queuedAt": long_ago, "outcome": "queued", "reason": "queued",
    })  # fmt: skip
    rows = {row["id"]: row for row in history(store, seed.ALICE)}
    assert (rows["died"]["outcome"], rows["died"]["reason"]) == ("failed", "interrupted")
    assert (rows["lost"]["outcome"], rows["lost"]["reason"]) == ("failed", "interrupted")
    assert run_detail(store, seed.ALICE, "died")["outcome"] == "failed"
    assert store.get(SYNC_RUNS, "died")["outcome"] == "running"  # shown so, not rewritten


def test_a_live_run_holding_its_lease_stays_running_in_the_history(cloud_env):
    store = cloud_env
    now = datetime.now(UTC)
    long_ago = stamp(now - timedelta(hours=1))
    store.put(SYNC_RUNS, "slow", {
        "userId": seed.ALICE, "section": "contacts", "trigger": "manual",
        "startedAt": long_ago, "updatedAt": long_ago, "outcome": "running", "reason": "running",
    })  # fmt: skip
    state = store.get(SYNC_STATE, f"{seed.ALICE}:contacts") or {}
    lease = {"holder": "slow@a1", "expiresAt": stamp(now + timedelta(minutes=5))}
    store.put(SYNC_STATE, f"{seed.ALICE}:contacts", {**state, "lease": lease})
    (row,) = [r for r in history(store, seed.ALICE) if r["id"] == "slow"]
    assert row["outcome"] == "running"


@pytest.fixture(scope="module")
def pubsub_emulator():
    yield from emulators.session("pubsub")


@pytest.mark.emulator
def test_runs_the_queue_refuses_are_recorded_failed_not_left_queued(
    cloud_env, pubsub_emulator, monkeypatch
):
    """The topic does not exist: publishing fails, and the queued records the page
    follows say so at once instead of waiting for an hour."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "crmsync-missing")
    monkeypatch.setenv("CRMSYNC_QUEUE", "pubsub:projects/crmsync-missing/topics/absent")
    store, config = cloud_env, bootstrap.Config.from_env()
    with pytest.raises(Exception):  # noqa: B017 - the client's NotFound, answered by the errorhandler
        start_sync(config, store, seed.ALICE, "all")
    records = [d.data for d in store.query(SYNC_RUNS)]
    assert len(records) == 2
    for record in records:
        assert (record["outcome"], record["ok"]) == ("failed", False)
        assert "could not be queued" in record["errors"][0]["message"]
