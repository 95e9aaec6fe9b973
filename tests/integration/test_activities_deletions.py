"""Deletions and cancellations of activities, end to end (issue 9): the empty-side guard,
deleted recurring series, and cancelling then re-planning in the CRM. The real client,
the sandbox, SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from core import activity_mapping as am
from core.errors import GoogleError, SideEmpty
from core.model import ACTIVITIES
from core.ports import EventChanges
from core.runs import Options
from tests.integration.activities_world import ALICE, BOB, CalendarWorld


@pytest.fixture
def world(tmp_path, sandbox, make_account):
    w = CalendarWorld(tmp_path, sandbox, make_account)
    yield w
    w.close()


def delete_event(world: CalendarWorld, event_id: str, user: str = ALICE) -> None:
    world.google[user].calendar.events().delete(
        calendarId="primary", eventId=event_id, sendUpdates="none"
    ).execute()


# --- the empty-side guard ---------------------------------------------------------------


def forget_account(world: CalendarWorld, user: str = ALICE) -> None:
    """No Google address on record (a connection saved unverified): the run cannot
    confirm that the account is the one its links were made with."""
    for collection, doc_id in (("googleAccounts", user), ("syncState", f"{user}:activities")):
        doc = world.store.get(collection, doc_id) or {}
        world.store.put(collection, doc_id, {k: v for k, v in doc.items() if k != "accountEmail"})


@pytest.mark.parametrize("links", [1, 2])
def test_a_full_calendar_pass_listing_none_of_the_linked_events_stops_the_run(world, links):
    if links == 1:
        world.edit_activity("a-offsite", showInCalendar=False)
    world.sync()
    assert len(world.links()) == links
    forget_account(world)
    other_account = world.calendar_port(BOB)  # an unnoticed switch to another calendar
    engine = world.engine(ALICE, calendar=other_account)
    with pytest.raises(SideEmpty) as stopped:
        engine.run(ALICE, Options(full=True))
    assert (stopped.value.side, stopped.value.links, stopped.value.items) == (
        "Google",
        links,
        "activities",
    )
    assert world.activity("a-kickoff")["status"] == "planned" and len(world.links()) == links
    report = world.engine(ALICE, calendar=other_account).run(ALICE, Options(full=True, force=True))
    assert report.counts["canceled"] == links  # --force: the user says the events are gone


def test_a_full_crm_read_listing_none_of_the_linked_activities_stops_the_run(world):
    world.sync()
    forget_account(world)
    for activity_id in ("a-kickoff", "a-offsite"):
        world.store.delete(ACTIVITIES, activity_id)  # a wiped CRM, not soft deletions
    with pytest.raises(SideEmpty) as stopped:
        world.sync(full=True)
    assert (stopped.value.side, stopped.value.links) == ("CRM", 2)
    assert world.event(am.event_id("a-kickoff"))["status"] == "confirmed"
    report = world.sync(full=True, force=True)
    assert report.counts["deletedInGoogle"] == 2


def test_a_users_only_event_deleted_and_purged_in_google_does_not_stop_their_syncs(world, sandbox):
    """The account is confirmed: an only linked event gone on a full pass is the user's
    doing, so the run goes on instead of stopping every time (found by review)."""
    world.edit_activity("a-offsite", showInCalendar=False)
    world.sync()
    sandbox.behaviours(cancelled_event_ttl_seconds=60)
    delete_event(world, am.event_id("a-kickoff"))
    sandbox.advance(120)  # purged before any run read the deletion
    for _ in range(2):
        report = world.sync(full=True)
        assert not [e for e in report.errors if e.get("kind") == "SideEmpty"]
    assert world.activity("a-kickoff")["status"] == "canceled"


def test_every_linked_event_cancelled_in_google_cancels_the_activities_without_the_guard(world):
    world.sync()
    for activity_id in ("a-kickoff", "a-offsite"):
        delete_event(world, am.event_id(activity_id))
    report = world.sync()  # incremental: explicit cancellations, not absence
    assert report.counts["canceled"] == 2
    assert {world.activity(a)["status"] for a in ("a-kickoff", "a-offsite")} == {"canceled"}


def test_every_linked_event_cancelled_in_google_then_a_full_pass_cancels_without_the_guard(
    world, sandbox
):
    world.sync()
    for activity_id in ("a-kickoff", "a-offsite"):
        delete_event(world, am.event_id(activity_id))
    sandbox.control("POST", "/_sandbox/calendar/invalidateSyncTokens")
    report = world.sync()  # a full pass lists them as cancelled (showDeleted)
    assert report.full_pass and report.counts["canceled"] == 2


def test_a_malformed_activity_keeps_its_event_on_a_full_pass(world):
    world.sync()
    world.edit_activity("a-kickoff", start="not a time")
    report = world.sync(full=True)
    assert report.counts["skipped"] == 1 and report.errors[0]["id"] == "a-kickoff"
    assert report.counts.get("deletedInGoogle", 0) == 0
    assert world.event(am.event_id("a-kickoff"))["status"] == "confirmed"
    assert "a-kickoff" in world.links()


# --- recurring series deleted in Google -------------------------------------------------


def weekly_series(world: CalendarWorld, count: int = 4) -> tuple[str, list[str]]:
    created = world.insert_event(
        summary="Weekly sync",
        start={"dateTime": f"{world.day}T09:00:00", "timeZone": "America/New_York"},
        end={"dateTime": f"{world.day}T09:30:00", "timeZone": "America/New_York"},
        recurrence=[f"RRULE:FREQ=WEEKLY;COUNT={count}"],
    )
    world.sync()
    instances = sorted(
        a for a in world.activities() if a.startswith(f"gcal-{ALICE}-{created['id']}_")
    )
    assert len(instances) == count
    return created["id"], instances


class ReportsSeriesAsInstances:
    """Real Google's shape for a deleted series listed with singleEvents=true: no master,
    cancelled instances instead, and only some of them (about six months' worth)."""

    def __init__(self, port: Any, master: str, reported: list[str]) -> None:
        self.port, self.master, self.reported = port, master, reported

    def changes(self, *args: Any) -> EventChanges:
        listed = self.port.changes(*args)
        items = [e for e in listed.events if e["id"] != self.master]
        items += [{"kind": "calendar#event", "id": event_id, "status": "cancelled",
                   "recurringEventId": self.master} for event_id in self.reported]  # fmt: skip
        return EventChanges(items, listed.next_sync_token, listed.complete)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)


def all_canceled(world: CalendarWorld, activity_ids: list[str]) -> bool:
    return {world.activity(a)["status"] for a in activity_ids} == {"canceled"}


@pytest.mark.parametrize("run", ["incremental", "token lost", "--full"])
def test_deleting_a_recurring_series_in_google_cancels_every_instance_activity(world, sandbox, run):
    master, instances = weekly_series(world)
    delete_event(world, master)
    if run == "token lost":
        sandbox.control("POST", "/_sandbox/calendar/invalidateSyncTokens")
    report = world.sync(full=run == "--full")
    assert report.counts["canceled"] == 4 and all_canceled(world, instances)
    assert all(world.links()[a]["tombstone"] for a in instances)
    assert world.sync().plan == []


def test_a_deleted_series_reported_as_some_cancelled_instances_cancels_every_instance_activity(
    world,
):
    master, instances = weekly_series(world)
    delete_event(world, master)
    reported = [a.removeprefix(f"gcal-{ALICE}-") for a in instances[:2]]
    port = ReportsSeriesAsInstances(world.calendar_port(), master, reported)
    report = world.engine(ALICE, calendar=port).run(ALICE)
    assert report.counts["canceled"] == 4 and all_canceled(world, instances)


def test_one_deleted_occurrence_reported_alone_cancels_only_its_activity(world):
    _, instances = weekly_series(world)
    one = instances[1].removeprefix(f"gcal-{ALICE}-")
    delete_event(world, one)
    report = world.sync()
    assert report.counts["canceled"] == 1
    assert [world.activity(a)["status"] for a in instances] == [
        "planned",
        "canceled",
        "planned",
        "planned",
    ]


def test_a_deleted_series_in_the_sandboxs_instances_shape_cancels_every_instance_activity(
    world, sandbox
):
    behaviours = sandbox.behaviours()
    switch = next((k for k in ("seriesDeletionInstances", "seriesDeleteReportsInstances")
                   if k in behaviours), None)  # fmt: skip
    if switch is None:
        pytest.skip("the sandbox has no switch for Google's deleted-series shape yet")
    sandbox.control("POST", "/_sandbox/behaviours", {switch: True})
    master, instances = weekly_series(world)
    delete_event(world, master)
    listed = world.events(showDeleted=True)
    if master in listed or not any(e.startswith(f"{master}_") for e in listed):
        pytest.skip(f"the sandbox does not honour {switch} yet")
    report = world.sync()
    assert report.counts["canceled"] == 4 and all_canceled(world, instances)


# --- cancelled in the CRM, then planned again -------------------------------------------


def test_replanning_an_activity_cancelled_in_the_crm_brings_its_event_back(world):
    world.sync()
    event_id = am.event_id("a-kickoff")
    world.edit_activity("a-kickoff", status="canceled")
    world.sync()
    assert world.event(event_id)["status"] == "cancelled"
    echo = world.sync()  # our own cancellation comes back: not Google's
    assert echo.counts.get("canceled", 0) == 0 and not world.links()["a-kickoff"]["tombstone"]
    world.edit_activity("a-kickoff", status="planned")
    report = world.sync()
    assert report.errors == [] and world.event(event_id)["status"] == "confirmed"
    assert world.activity("a-kickoff")["status"] == "planned"
    assert world.sync().plan == []


def test_replanning_right_after_cancelling_in_the_crm_brings_its_event_back(world):
    world.sync()
    world.edit_activity("a-kickoff", status="canceled")
    world.sync()
    world.edit_activity("a-kickoff", status="planned")  # before the echo was read
    report = world.sync()
    assert report.errors == [] and world.event(am.event_id("a-kickoff"))["status"] == "confirmed"
    assert world.activity("a-kickoff")["status"] == "planned"


@pytest.mark.parametrize("run", ["incremental", "--full"])
def test_replanning_after_google_purged_our_cancelled_event_creates_it_again(world, sandbox, run):
    sandbox.behaviours(cancelled_event_ttl_seconds=60)
    world.sync()
    world.edit_activity("a-kickoff", status="canceled")
    world.sync()
    world.sync()  # the echo
    sandbox.advance(120)  # Google forgets the cancelled event
    world.sync(full=run == "--full")
    world.edit_activity("a-kickoff", status="planned", title="Kick-off, back on")
    first = world.sync()
    again = world.sync()
    assert {e["id"] for e in first.errors + again.errors} <= {"a-kickoff"}  # said, not dropped
    event = world.event(am.event_id("a-kickoff"))
    assert (event["status"], event["summary"]) == ("confirmed", "Kick-off, back on")
    assert world.activity("a-kickoff")["status"] == "planned"
    assert world.sync().plan == []


def test_a_refused_read_of_the_series_is_not_taken_for_its_deletion(world, sandbox):
    """One occurrence deleted; reading its master then fails with a 403 that is not a
    rate limit: the run fails and cancels nothing, rather than the whole series."""
    _, instances = weekly_series(world)
    delete_event(world, instances[0].removeprefix(f"gcal-{ALICE}-"))
    sandbox.fault("calendar.events.get", 403, count=5, reason="forbidden")
    with pytest.raises(GoogleError):
        world.sync()
    assert {world.activity(a)["status"] for a in instances} == {"planned"}
    sandbox.control("DELETE", "/_sandbox/faults")
    world.sync()
    assert [world.activity(a)["status"] for a in instances].count("canceled") == 1
