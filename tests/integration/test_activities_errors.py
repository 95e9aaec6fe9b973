"""Activities sync against the sandbox's hard cases: 410, 412, 409, 403, time zones,
recurrence, faults, a revoked token and a malformed activity."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import activity_mapping as am
from core.errors import AuthRevoked, Unavailable
from core.model import ACTIVITIES, GOOGLE_ACCOUNTS, USERS, Activity, load
from tests.integration.activities_world import ALICE, CalendarWorld
from tests.integration.races import EditsAfterListing


@pytest.fixture
def world(tmp_path, sandbox, make_account):
    w = CalendarWorld(tmp_path, sandbox, make_account)
    yield w
    w.close()


def test_410_leads_to_a_full_pass_without_duplicates(world, sandbox):
    world.sync()
    world.patch_event(am.event_id("a-kickoff"), description="agenda attached")
    sandbox.control("POST", "/_sandbox/calendar/invalidateSyncTokens")
    report = world.sync()
    assert report.full_pass and report.counts.get("pushed", 0) == 0
    assert report.counts.get("imported", 0) == 0
    assert world.activity("a-kickoff")["description"] == "agenda attached"
    assert len(world.events()) == 2


def test_412_is_reread_remerged_and_retried_once(world):
    world.sync()
    world.edit_activity("a-kickoff", title="New title from the CRM")
    event_id = am.event_id("a-kickoff")
    port = EditsAfterListing(
        world.engine(ALICE).calendar, lambda: world.patch_event(event_id, location="Room 12")
    )
    report = world.engine(ALICE, calendar=port).run(ALICE)
    assert report.errors == []
    event = world.event(event_id)
    assert (event["summary"], event["location"]) == ("New title from the CRM", "Room 12")
    assert world.activity("a-kickoff")["location"] == "Room 12"


def test_409_on_a_retried_insert_is_taken_as_done(world):
    activity = load(Activity, ACTIVITIES, "a-kickoff", world.activity("a-kickoff"))
    fields = am.from_activity(activity, {}, "Europe/Berlin")
    body = {**am.to_event(fields, "a-kickoff"), "id": am.event_id("a-kickoff")}
    world.google[ALICE].calendar.events().insert(
        calendarId="primary", body=body, sendUpdates="none"
    ).execute()
    report = world.sync()  # the insert answers 409 (as after a crash): linked, not duplicated
    assert report.errors == [] and "a-kickoff" in world.links()
    assert len([e for e in world.events() if e == am.event_id("a-kickoff")]) == 1


def test_edit_only_a_read_only_copy_could_carry_is_recorded_once(world, make_account):
    client = make_account("client@else.org")  # a Google user who is nobody in the CRM
    start = f"{world.day}T15:00:00Z"
    created = (
        client.calendar.events()
        .insert(
            calendarId="primary",
            sendUpdates="none",
            body={
                "summary": "Client call",
                "start": {"dateTime": start},
                "end": {"dateTime": f"{world.day}T16:00:00Z"},
                "attendees": [{"email": "alice@example.com"}],
            },
        )
        .execute()
    )
    world.sync()
    activity_id = f"gcal-{ALICE}-{created['id']}"
    assert world.activity(activity_id)["organizerId"] == ALICE  # imported: organizer unknown
    world.edit_activity(activity_id, title="Renamed in the CRM")
    report = world.sync()
    assert report.counts.get("notPropagated") == 1
    assert "not propagated" in report.errors[0]["message"]
    assert world.sync().counts.get("notPropagated", 0) == 0  # not retried forever
    assert world.event(created["id"])["summary"] == "Client call"


def test_403_forbidden_for_non_organizer_is_recorded_not_retried(world, make_account):
    client = make_account("client@else.org")
    created = (
        client.calendar.events()
        .insert(
            calendarId="primary",
            sendUpdates="none",
            body={
                "summary": "Client call",
                "start": {"dateTime": f"{world.day}T15:00:00Z"},
                "end": {"dateTime": f"{world.day}T16:00:00Z"},
                "attendees": [{"email": "alice@example.com"}],
            },
        )
        .execute()
    )
    world.sync()
    link = world.links()[f"gcal-{ALICE}-{created['id']}"]
    # pretend the copy was ours (as if the organizer changed): the patch answers 403
    world.store.put(
        "links",
        f"{ALICE}:activities:gcal-{ALICE}-{created['id']}",
        {**link, "fingerprint": "stale", "fields": {}},
    )
    world.edit_activity(f"gcal-{ALICE}-{created['id']}", title="x")
    report = world.sync()
    assert report.counts.get("errors", 0) >= 1
    assert world.event(created["id"])["summary"] == "Client call"


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_all_day_and_timed_activities_keep_their_days_at_the_edges_of_the_globe(world, zone):
    world.store.put(USERS, ALICE, {**world.store.get(USERS, ALICE), "timeZone": zone})
    day = world.day.isoformat()
    world.put_activity("a-edge", title="Edge", organizerId=ALICE, allDay=True, start=day, end=day)
    world.put_activity(
        "a-timed",
        title="Timed",
        organizerId=ALICE,
        timeZone=zone,
        start=f"{day}T23:30:00" + ("+14:00" if "Kiri" in zone else "-12:00"),
        end=f"{day}T23:45:00" + ("+14:00" if "Kiri" in zone else "-12:00"),
    )
    world.sync()
    edge = world.event(am.event_id("a-edge"))
    assert edge["start"] == {"date": day}
    assert edge["end"] == {"date": (world.day + timedelta(days=1)).isoformat()}
    world.patch_event(am.event_id("a-edge"), summary="Edge (renamed)")
    world.patch_event(am.event_id("a-timed"), summary="Timed (renamed)")
    world.sync()
    assert (world.activity("a-edge")["start"], world.activity("a-edge")["end"]) == (day, day)
    timed = world.activity("a-timed")
    assert timed["start"].startswith(f"{day}T23:30:00")
    assert timed["title"] == "Timed (renamed)"


def test_recurring_series_instances_become_activities_and_follow_edits(world):
    first = world.day
    created = world.insert_event(
        summary="Weekly sync",
        start={"dateTime": f"{first}T09:00:00", "timeZone": "America/New_York"},
        end={"dateTime": f"{first}T09:30:00", "timeZone": "America/New_York"},
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"],
    )
    report = world.sync()
    instances = sorted(
        a for a in world.activities() if a.startswith(f"gcal-{ALICE}-{created['id']}_")
    )
    assert report.counts["imported"] == 4 and len(instances) == 4
    calendar = world.google[ALICE].calendar
    listed = calendar.events().instances(calendarId="primary", eventId=created["id"]).execute()
    one, other = listed["items"][1], listed["items"][2]
    calendar.events().delete(calendarId="primary", eventId=one["id"], sendUpdates="none").execute()
    calendar.events().patch(
        calendarId="primary",
        eventId=other["id"],
        sendUpdates="none",
        body={"summary": "Weekly sync (moved room)"},
    ).execute()
    world.sync()
    assert world.activity(f"gcal-{ALICE}-{one['id']}")["status"] == "canceled"
    assert world.activity(f"gcal-{ALICE}-{other['id']}")["title"] == "Weekly sync (moved room)"
    calendar.events().patch(
        calendarId="primary", eventId=created["id"], sendUpdates="none", body={"location": "Room 4"}
    ).execute()
    world.sync()
    exceptions = {f"gcal-{ALICE}-{one['id']}", f"gcal-{ALICE}-{other['id']}"}
    assert {world.activity(a).get("location") for a in set(instances) - exceptions} == {"Room 4"}
    assert world.activity(f"gcal-{ALICE}-{other['id']}")["title"] == "Weekly sync (moved room)"


def test_persistent_5xx_fails_with_cursors_untouched(world, sandbox):
    world.sync()
    before = world.store.get("syncState", f"{ALICE}:activities")
    sandbox.fault("calendar.events.list", 503, count=10, retryAfter=0)
    with pytest.raises(Unavailable):
        world.sync()
    after = world.store.get("syncState", f"{ALICE}:activities")
    assert after["googleCursor"] == before["googleCursor"] and after["lease"] is None


def test_revoked_token_marks_reauth_required(world, sandbox):
    sandbox.state.tokens.revoke(world.google[ALICE].refresh_token)
    with pytest.raises(AuthRevoked):
        world.sync()
    assert world.store.get(GOOGLE_ACCOUNTS, ALICE)["status"] == "reauth_required"


def test_malformed_activity_is_skipped_and_reported(world):
    world.put_activity("a-bad", title="Bad", organizerId=ALICE, start="tomorrow", end="later")
    report = world.sync()
    assert report.counts["skipped"] == 1 and report.counts["pushed"] == 2
    assert report.errors[0]["id"] == "a-bad" and "start" in report.errors[0]["message"]


def test_an_event_deleted_while_the_token_was_lost_still_cancels_its_activity(world, sandbox):
    world.sync()
    world.google[ALICE].calendar.events().delete(
        calendarId="primary", eventId=am.event_id("a-kickoff"), sendUpdates="none"
    ).execute()
    sandbox.control("POST", "/_sandbox/calendar/invalidateSyncTokens")
    report = world.sync()
    assert report.full_pass and report.counts.get("canceled") == 1
    assert world.activity("a-kickoff")["status"] == "canceled"


@pytest.mark.parametrize("profile", ["default", "realistic"])
def test_hiding_then_showing_an_activity_again_restores_its_event(world, sandbox, profile):
    """Also where Google may miss an id collision at insert time (realistic profile)."""
    sandbox.profile(profile)
    world.sync()
    event_id = am.event_id("a-kickoff")
    world.edit_activity("a-kickoff", showInCalendar=False)
    world.sync()
    assert world.event(event_id)["status"] == "cancelled"
    world.edit_activity("a-kickoff", showInCalendar=True, title="Kick-off, back on")
    report = world.sync()
    assert report.errors == [] and report.counts["pushed"] == 1
    event = world.event(event_id)
    assert (event["status"], event["summary"]) == ("confirmed", "Kick-off, back on")
    sandbox.settle()
    assert world.sync().plan == []
