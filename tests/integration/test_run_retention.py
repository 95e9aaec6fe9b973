"""Run records and their journals are kept RUNS_KEPT: the tick forgets older ones, a
page at a time, journal pages first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.model import SYNC_RUN_ITEMS, SYNC_RUNS, stamp
from functions import bootstrap
from functions.jobs import RUNS_KEPT, dispatch


def _run(store, run_id, started, pages):
    store.put(SYNC_RUNS, run_id, {"userId": "u1", "section": "contacts", "trigger": "manual",
                                  "startedAt": stamp(started), "itemPages": pages})  # fmt: skip
    for n in range(pages):
        store.put(SYNC_RUN_ITEMS, f"{run_id}-{n:04d}", {"runId": run_id, "items": [{}]})


def test_the_tick_forgets_runs_older_than_kept_with_their_journal(cloud_env):
    now = datetime.now(UTC)
    _run(cloud_env, "old", now - RUNS_KEPT - timedelta(days=1), pages=3)
    _run(cloud_env, "recent", now - RUNS_KEPT + timedelta(days=1), pages=2)
    dispatch(bootstrap.Config.from_env(), cloud_env, send=lambda jobs: None)
    assert cloud_env.get(SYNC_RUNS, "old") is None
    assert not [d for d in cloud_env.query(SYNC_RUN_ITEMS) if d.data["runId"] == "old"]
    assert cloud_env.get(SYNC_RUNS, "recent") is not None
    assert len([d for d in cloud_env.query(SYNC_RUN_ITEMS) if d.data["runId"] == "recent"]) == 2


def test_the_tick_forgets_webhook_event_ids_older_than_kept(cloud_env):
    from functions.jobs import WEBHOOK_EVENTS_KEPT
    from functions.webhook_logic import EVENTS, record, seen

    now = datetime.now(UTC)
    record(cloud_env, ["old"], now - WEBHOOK_EVENTS_KEPT - timedelta(hours=1))
    record(cloud_env, ["recent"], now - timedelta(hours=1))
    dispatch(bootstrap.Config.from_env(), cloud_env, send=lambda jobs: None)
    assert seen(cloud_env, ["old", "recent"]) == {"recent"}
    assert cloud_env.get(EVENTS, "old") is None
