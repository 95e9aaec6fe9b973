"""Activities against Google as the realistic sandbox profile has it: id collisions not
detected at insert time, pages short or empty, deltas that lag."""

from __future__ import annotations

import pytest

from core import activity_mapping as am
from tests.integration.activities_world import CalendarWorld


@pytest.fixture
def world(tmp_path, sandbox, make_account):
    sandbox.profile("realistic")
    w = CalendarWorld(tmp_path, sandbox, make_account)
    yield w
    w.close()


def test_showing_a_hidden_activity_again_restores_its_event_when_google_misses_the_collision(
    world,
):
    """Google may acknowledge an insert whose id is taken by the cancelled event and keep
    the cancelled one: the event must be brought back all the same."""
    world.sync()
    event_id = am.event_id("a-kickoff")
    world.edit_activity("a-kickoff", showInCalendar=False)
    world.sync()
    assert world.event(event_id)["status"] == "cancelled"
    world.edit_activity("a-kickoff", showInCalendar=True, title="Kick-off, back on")
    world.sync()
    event = world.event(event_id)
    assert (event["status"], event["summary"]) == ("confirmed", "Kick-off, back on")
    world.sandbox.settle()
    assert world.sync().plan == []
