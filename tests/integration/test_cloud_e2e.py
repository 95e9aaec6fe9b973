"""End to end over the wire: Google's Pub/Sub and Firestore emulators, the sandbox, and
the two scheduled functions. Cloud Scheduler's tick is a real Pub/Sub message; Eventarc's
push is played by pulling each message and posting it as a CloudEvent to the function.
"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from functions_framework import create_app

from adapters.stores import open_store
from core import schedule
from core.model import SYNC_RUNS, SYNC_STATE
from functions import bootstrap, seed
from functions.accounts import connect
from functions.manual_logic import status
from tests import emulators
from tests.integration.crash import LaterClock
from tests.integration.test_scheduler import ROOT, cloud_event

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def firestore_emulator():
    yield from emulators.session("firestore")


@pytest.fixture(scope="module")
def pubsub_emulator():
    yield from emulators.session("pubsub")


def deliver(subscriber, subscription, client) -> int:
    """Pull what is waiting and post each message to the function, as Eventarc would."""
    answer = subscriber.pull(subscription=subscription, max_messages=100, timeout=5)
    for received in answer.received_messages:
        data = {
            "message": {
                "data": base64.b64encode(received.message.data).decode(),
                "messageId": received.message.message_id,
            }
        }
        assert cloud_event(client, data).status_code == 200
    if answer.received_messages:
        subscriber.acknowledge(
            subscription=subscription, ack_ids=[m.ack_id for m in answer.received_messages]
        )
    return len(answer.received_messages)


def test_a_tick_fans_out_over_pubsub_and_runs_land_in_firestore(
    firestore_emulator, pubsub_emulator, sandbox, account, monkeypatch, tmp_path
):
    from google.cloud import pubsub_v1

    started = time.monotonic()
    project = f"crmsync-e2e-{uuid.uuid4().hex[:8]}"
    jobs_topic = f"projects/{project}/topics/sync-jobs"
    for key, value in {
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        "PUBSUB_EMULATOR_HOST": pubsub_emulator.host,
        "GOOGLE_CLOUD_PROJECT": project,
        "CRMSYNC_STORE": "firestore",
        "CRMSYNC_QUEUE": f"pubsub:{jobs_topic}",
        "CRMSYNC_GOOGLE_ENDPOINT": sandbox.url,
        "CRMSYNC_TOKEN_KEY": Fernet.generate_key().decode(),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    subs = {}
    for name in ("sync-ticks", "sync-jobs"):
        topic = f"projects/{project}/topics/{name}"
        publisher.create_topic(name=topic)
        subs[name] = f"projects/{project}/subscriptions/{name}-eventarc"
        subscriber.create_subscription(name=subs[name], topic=topic)

    store = open_store("firestore")
    seed.seed(store, datetime.now(UTC))
    connect(bootstrap.Config.from_env(), seed.ALICE, account.refresh_token)
    dispatcher = create_app("dispatch_due", str(ROOT / "main.py"), "cloudevent").test_client()
    worker = create_app("run_sync_job", str(ROOT / "main.py"), "cloudevent").test_client()

    publisher.publish(f"projects/{project}/topics/sync-ticks", b"{}").result(timeout=30)
    assert deliver(subscriber, subs["sync-ticks"], dispatcher) == 1
    # first syncs are full runs: one message each (Alice: contacts, activities)
    assert deliver(subscriber, subs["sync-jobs"], worker) == 2
    runs = [d.data for d in store.query(SYNC_RUNS)]
    assert sorted((r["userId"], r["section"], r["ok"]) for r in runs) == [
        (seed.ALICE, "activities", True),
        (seed.ALICE, "contacts", True),
    ]
    assert sum(r["counts"].get("pushed", 0) for r in runs) == 6  # 4 contacts, 2 activities

    publisher.publish(f"projects/{project}/topics/sync-ticks", b"{}").result(timeout=30)
    assert deliver(subscriber, subs["sync-ticks"], dispatcher) == 1
    assert deliver(subscriber, subs["sync-jobs"], worker) == 0  # within the interval
    assert len(list(store.query(SYNC_RUNS))) == 2

    # at the next slots, idle: the looks of both sections come in one batch message, and
    # write only a syncChecks record, which the settings page reads back
    clock = LaterClock(timedelta(0))
    bootstrap.use_clock(clock)
    try:
        looked = False
        for _ in range(6):  # echoes first (runs that plan nothing), then looks
            wait = min(
                schedule.parse_timestamp(schedule.next_due(d.data, clock.now()))
                for d in store.query(SYNC_STATE)
                if d.data.get("slot")
            )
            clock.offset += wait - clock.now() + timedelta(seconds=30)
            sandbox.settle()
            publisher.publish(f"projects/{project}/topics/sync-ticks", b"{}").result(timeout=30)
            assert deliver(subscriber, subs["sync-ticks"], dispatcher) == 1
            assert deliver(subscriber, subs["sync-jobs"], worker) == 1  # one batch
            sections = status(store, seed.ALICE)["sections"].values()
            looked = any(s["lastCheckedAt"] > s["lastRunAt"] for s in sections)
            if looked:
                break
        assert looked and len(list(store.query(SYNC_RUNS))) == 2  # no run records
    finally:
        bootstrap.use_clock(None)
    print(f"end-to-end emulator test: {time.monotonic() - started:.1f} s")
