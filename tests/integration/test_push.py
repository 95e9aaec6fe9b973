"""Calendar push: channels opened, renewed and stopped as settings say; the sandbox's
notifications reach ``calendar_push`` and start an activities sync; bad ones do not."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from functions_framework import create_app
from werkzeug.serving import make_server

from core.model import SYNC_RUNS, SYNC_SETTINGS, SYNC_STATE
from functions import bootstrap, seed
from functions.channels import CHANNELS, maintain_channel
from tests.integration.test_scheduler import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def receiver(cloud_env, monkeypatch):
    """calendar_push served on 127.0.0.1, as Google would reach it."""
    app = create_app("calendar_push", str(ROOT / "main.py"), "http")
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CRMSYNC_PUSH_URL", f"http://127.0.0.1:{server.server_port}/")
    yield cloud_env
    server.shutdown()
    thread.join(timeout=5)


def channel(store):
    return (store.get(SYNC_STATE, f"{seed.ALICE}:activities") or {}).get("channel")


def test_channel_is_opened_kept_renewed_and_stopped(receiver):
    store, config, now = receiver, bootstrap.Config.from_env(), datetime.now(UTC)
    assert maintain_channel(config, store, seed.ALICE, now) == "opened"
    first = channel(store)
    assert store.get(CHANNELS, first["id"])["userId"] == seed.ALICE
    assert maintain_channel(config, store, seed.ALICE, now + timedelta(days=1)) == "kept"
    assert maintain_channel(config, store, seed.ALICE, now + timedelta(days=6, hours=1)) == (
        "renewed"
    )
    second = channel(store)
    assert second["id"] != first["id"] and store.get(CHANNELS, first["id"]) is None
    settings = store.get(SYNC_SETTINGS, seed.ALICE)
    store.put(
        SYNC_SETTINGS,
        seed.ALICE,
        {**settings, "activities": {**settings["activities"], "auto": False}},
    )
    assert maintain_channel(config, store, seed.ALICE, now) == "stopped"
    assert channel(store) is None and store.get(CHANNELS, second["id"]) is None


def test_a_change_in_google_pushes_a_prompt_activities_sync(receiver, sandbox, account):
    store = receiver
    maintain_channel(bootstrap.Config.from_env(), store, seed.ALICE, datetime.now(UTC))
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    account.calendar.events().insert(
        calendarId="primary",
        sendUpdates="none",
        body={
            "summary": "Pushed",
            "start": {"dateTime": f"{day}T10:00:00Z"},
            "end": {"dateTime": f"{day}T11:00:00Z"},
        },
    ).execute()
    deadline = time.monotonic() + 20
    imported = 0
    while time.monotonic() < deadline and not imported:
        sandbox.state.notifier.drain()
        runs = [d.data for d in store.query(SYNC_RUNS) if d.data["trigger"] == "push"]
        imported = sum(r["counts"].get("imported", 0) for r in runs)
        time.sleep(0.05)
    assert imported == 1 and {r["section"] for r in runs} == {"activities"}


def test_unknown_channels_and_bad_tokens_queue_nothing(receiver):
    store = receiver
    maintain_channel(bootstrap.Config.from_env(), store, seed.ALICE, datetime.now(UTC))
    client = create_app("calendar_push", str(ROOT / "main.py"), "http").test_client()
    headers = {"X-Goog-Resource-State": "exists", "X-Goog-Channel-Token": "guess"}
    assert client.post("/", headers={**headers, "X-Goog-Channel-ID": "nope"}).status_code == 404
    known = {**headers, "X-Goog-Channel-ID": channel(store)["id"]}
    assert client.post("/", headers=known).status_code == 403
    assert client.post("/").status_code == 404
    assert [d for d in store.query(SYNC_RUNS)] == []
