"""Scheduled syncs: dispatch_due and run_sync_job as CloudEvents in process, overlap and
redelivery through the lease, malformed messages, and ``python main.py run-due``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from functions_framework import create_app

from core import schedule
from core.model import SYNC_RUNS, SYNC_STATE
from core.schedule import Job
from functions import bootstrap, seed
from functions.jobs import dispatch, run_job
from functions.manual_logic import status
from tests.integration.crash import LaterClock

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(cloud_env):
    return cloud_env


def runs(store):
    return [d.data for d in store.scan(SYNC_RUNS, order_by="startedAt")]


def cloud_event(client, data=None):
    headers = {
        "ce-id": "1",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
        "Content-Type": "application/json",
    }
    return client.post("/", headers=headers, data=json.dumps(data or {"message": {}}))


def job_message(payload) -> dict:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return {"message": {"data": base64.b64encode(raw).decode(), "messageId": "m1"}}


def test_a_tick_runs_due_syncs_and_a_second_tick_within_the_interval_runs_nothing(env):
    client = create_app("dispatch_due", str(ROOT / "main.py"), "cloudevent").test_client()
    assert cloud_event(client).status_code == 200
    done = runs(env)
    assert {(r["userId"], r["section"]) for r in done} == {
        (seed.ALICE, "contacts"),
        (seed.ALICE, "activities"),
    }
    assert all(r["ok"] and r["trigger"] == "schedule" for r in done)
    state = env.get(SYNC_STATE, f"{seed.ALICE}:contacts")
    assert state["nextDueAt"] is None  # the due-at-once mark of the connection is served
    assert schedule.next_due(state, datetime.now(UTC)) > state["lastRunAt"]  # its slot
    assert cloud_event(client).status_code == 200
    assert len(runs(env)) == 2  # Bob's auto sync is off and he is not connected


def documents(store, collection):
    return {d.id: d.data for d in store.query(collection)}


def test_an_idle_pair_is_looked_at_at_each_slot_and_writes_nothing(env, sandbox):
    """After the first sync, the echo of its own writes is read once (a run that plans
    nothing: no run record); from then on each slot is a look that writes nothing but
    its share of one syncChecks record, and the page still says when crmsync looked."""
    clock = LaterClock(timedelta(0))
    bootstrap.use_clock(clock)
    config = bootstrap.Config.from_env()
    try:
        dispatch(config, env)  # the first sync of both sections
        sandbox.settle()  # Google's deltas catch up with what the first sync wrote
        state = env.get(SYNC_STATE, f"{seed.ALICE}:contacts")
        seen_runs = len(runs(env))

        def to_slot(section):
            doc = env.get(SYNC_STATE, f"{seed.ALICE}:{section}")
            due = schedule.parse_timestamp(schedule.next_due(doc, clock.now()))
            clock.offset += due - clock.now() + timedelta(seconds=1)

        clock.offset += timedelta(minutes=10)  # the seeded CRM is past the overlap window
        to_slot("contacts")
        sent = dispatch(config, env)
        assert Job(seed.ALICE, "contacts") in sent
        echo = env.get(SYNC_STATE, f"{seed.ALICE}:contacts")
        assert len(runs(env)) == seen_runs  # the echo planned nothing: no run record
        assert echo["emptyRuns"] == 1 and echo["lastCheckedAt"] > state["lastRunAt"]

        before = {c: documents(env, c) for c in (SYNC_STATE, SYNC_RUNS, "googleAccounts", "links")}
        to_slot("contacts")
        (job,) = [j for j in dispatch(config, env) if j.section == "contacts"]
        assert job.probe is not None  # a look, not a run
        after = {c: documents(env, c) for c in before}
        for collection in before:
            changed = {
                k for k in after[collection] if after[collection][k] != before[collection].get(k)
            }
            assert changed <= {f"{seed.ALICE}:activities"}, collection  # its own slot, maybe
        looked = status(env, seed.ALICE)["sections"]["contacts"]["lastCheckedAt"]
        assert looked > echo["lastCheckedAt"]

        env.put("contacts", "c-ada", {**env.get("contacts", "c-ada"), "jobTitle": "Countess",
                                      "modifiedAt": schedule.stamp(clock.now())})  # fmt: skip
        to_slot("contacts")
        dispatch(config, env)
        assert runs(env)[-1]["counts"].get("updatedInGoogle") == 1  # a change: a real run
    finally:
        bootstrap.use_clock(None)


def test_run_sync_job_runs_one_job_and_drops_malformed_messages(env):
    client = create_app("run_sync_job", str(ROOT / "main.py"), "cloudevent").test_client()
    ok = cloud_event(client, job_message({"userId": seed.ALICE, "section": "contacts"}))
    assert ok.status_code == 200 and runs(env)[0]["counts"]["pushed"] == 4
    for bad in (b"not json", {"userId": seed.ALICE, "section": "files"}, {"section": "contacts"}):
        assert cloud_event(client, job_message(bad)).status_code == 200  # acknowledged
    assert cloud_event(client, {"message": {}}).status_code == 200
    assert len(runs(env)) == 1


def test_run_sync_job_takes_a_raw_pubsub_push_as_its_subscription_sends_it(env):
    """Terraform pushes sync-jobs to run_sync_job through a plain push subscription (for
    its dead-letter policy): the raw push body, no CloudEvent headers, runs the job."""
    client = create_app("run_sync_job", str(ROOT / "main.py"), "cloudevent").test_client()
    data = base64.b64encode(json.dumps({"userId": seed.ALICE, "section": "contacts"}).encode())
    push = {"message": {"data": data.decode(), "messageId": "42", "attributes": {},
                        "publishTime": "2026-12-02T10:00:00Z"},
            "subscription": "projects/p/subscriptions/sync-jobs-push"}  # fmt: skip
    answer = client.post("/", json=push)
    assert answer.status_code == 200
    (run,) = runs(env)
    assert run["userId"] == seed.ALICE and run["counts"]["pushed"] == 4


def test_unknown_user_is_recorded_and_not_retried(env):
    config = bootstrap.Config.from_env()
    assert run_job(config, env, Job("nobody", "contacts")) is None
    (record,) = runs(env)
    assert record["ok"] is False and "unknown user" in record["skipped"]


def test_a_scheduled_pair_that_cannot_run_is_recorded_once_not_at_every_tick(env):
    """Bad settings (auto contacts sync without a tag) are met once per interval, not at
    every tick; a revoked connection takes the pair off the schedule."""
    settings = env.get("syncSettings", seed.ALICE)
    env.put("syncSettings", seed.ALICE, {**settings, "contacts": {**settings["contacts"],
                                                                  "tagId": None}})  # fmt: skip
    config = bootstrap.Config.from_env()
    dispatch(config, env)
    failed = [r for r in runs(env) if r["section"] == "contacts"]
    assert len(failed) == 1 and not failed[0]["ok"] and "tag" in failed[0]["skipped"]
    state = env.get(SYNC_STATE, f"{seed.ALICE}:contacts")
    assert state["nextDueAt"] is None and state["slot"]  # still scheduled, not due now
    dispatch(config, env)
    assert len([r for r in runs(env) if r["section"] == "contacts"]) == 1


def test_a_warm_instance_decrypts_each_token_once_and_reuses_its_access_token(
    env, sandbox, monkeypatch
):
    """Runs of one user on one instance: one decrypt and one token refresh in all; a
    reconnection (a new ciphertext) is a new entry."""
    from adapters import tokens
    from functions import accounts, sync

    sync.forget_credentials()
    decrypts = []
    real = tokens.FernetCipher.decrypt
    monkeypatch.setattr(tokens.FernetCipher, "decrypt",
                        lambda self, text: decrypts.append(text) or real(self, text))  # fmt: skip
    config = bootstrap.Config.from_env()
    run_job(config, env, Job(seed.ALICE, "contacts", "manual"))
    issued = len(sandbox.state.tokens.access)
    for trigger in ("manual", "webhook", "manual"):
        run_job(config, env, Job(seed.ALICE, "contacts", trigger))
        run_job(config, env, Job(seed.ALICE, "activities", trigger))
    assert len(decrypts) == 1 and len(sandbox.state.tokens.access) == issued
    refresh = sync.google_credentials(config, env, seed.ALICE).refresh_token
    accounts.save_connection(config, env, seed.ALICE, refresh, accounts.TokenInfo(None, ()))
    run_job(config, env, Job(seed.ALICE, "contacts", "manual"))
    assert len(decrypts) == 2


def test_ten_overlapping_triggers_do_the_work_exactly_once(env):
    config = bootstrap.Config.from_env()
    barrier = threading.Barrier(10)
    results = []

    def trigger():
        barrier.wait()
        results.append(run_job(config, env, Job(seed.ALICE, "contacts", "webhook")))

    threads = [threading.Thread(target=trigger) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ran = [r for r in results if r is not None]
    worked = [r for r in ran if r.plan]
    assert len(worked) == 1 and worked[0].counts["pushed"] == 4
    # the others met the lease, or (starting after the first had finished) had nothing to do
    skipped = [r for r in runs(env) if r.get("skipped")]
    assert len(skipped) + len(ran) == 10 and all("lease" in r["skipped"] for r in skipped)
    assert len(skipped) >= 5


def test_run_due_cli(env, sandbox):
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "run-due"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=os.getcwd(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "2 due sync(s) ran" in done.stdout
    again = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "run-due"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=os.getcwd(),
        timeout=120,
    )
    assert "0 due sync(s) ran" in again.stdout
