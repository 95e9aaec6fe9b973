"""Activities scope: who writes an activity to Google, the syncFrom window, batch sizes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import activity_mapping as am
from core.model import SYNC_SETTINGS, USERS
from tests.integration.activities_world import ALICE, CalendarWorld


@pytest.fixture
def world(tmp_path, sandbox, make_account):
    w = CalendarWorld(tmp_path, sandbox, make_account)
    yield w
    w.close()


def test_participant_pushes_when_the_organizer_has_no_google_connection(world):
    world.store.put(USERS, "u-carol", {"email": "carol@example.com", "timeZone": "UTC"})
    world.put_activity(
        "a-carols",
        title="Carol's review",
        organizerId="u-carol",
        start=f"{world.day}T08:00:00Z",
        end=f"{world.day}T09:00:00Z",
        participants=[{"userId": ALICE}],
    )
    report = world.sync()
    assert report.counts["pushed"] == 3  # the seed's two, and Carol's meeting Alice attends
    assert world.event(am.event_id("a-carols"))["summary"] == "Carol's review"


def test_activity_of_a_connected_organizer_is_left_to_them(world):
    world.put_activity(
        "a-bobs",
        title="Bob's review",
        organizerId="u-bob",
        start=f"{world.day}T08:00:00Z",
        end=f"{world.day}T09:00:00Z",
        participants=[{"userId": ALICE}],
    )
    report = world.sync()
    assert report.counts["pushed"] == 2 and "a-bobs" not in world.links()


def test_sync_from_changes_take_effect_on_the_next_run(world):
    past = world.day - timedelta(days=20)
    world.put_activity(
        "a-old",
        title="Old meeting",
        organizerId=ALICE,
        start=f"{past}T08:00:00Z",
        end=f"{past}T09:00:00Z",
    )
    world.sync()
    assert "a-old" not in world.links()  # before syncFrom (today)
    settings = world.store.get(SYNC_SETTINGS, ALICE)
    earlier = (past - timedelta(days=1)).isoformat()
    world.store.put(
        SYNC_SETTINGS,
        ALICE,
        {**settings, "activities": {**settings["activities"], "syncFrom": earlier}},
    )
    report = world.sync()
    assert report.full_pass and report.counts["pushed"] == 1
    assert world.event(am.event_id("a-old"))["summary"] == "Old meeting"
    assert len(world.links()) == 3


def test_writes_go_in_http_batches_of_at_most_50(world, sandbox):
    for i in range(120):
        world.put_activity(
            f"a-many{i:03d}",
            title=f"Many {i}",
            organizerId=ALICE,
            start=f"{world.day}T10:00:00Z",
            end=f"{world.day}T10:30:00Z",
        )
    sandbox.control("DELETE", "/_sandbox/stats")
    report = world.sync()
    assert report.counts["pushed"] == 122
    stats = sandbox.stats()
    assert stats["byMethod"]["calendar.events.insert"] == 122
    # 122 inserts: chunks of 200 activities, each sent in batches of 50 -> 3 batches
    assert stats["httpRequests"] == 1 + 3  # the listing, and the batches
