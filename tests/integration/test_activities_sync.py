"""The activities sync end to end: two users, the real client, the sandbox, SQLite."""

from __future__ import annotations

import pytest

from core import activity_mapping as am
from tests.integration.activities_world import ALICE, BOB, CalendarWorld


@pytest.fixture
def world(tmp_path, sandbox, make_account):
    w = CalendarWorld(tmp_path, sandbox, make_account)
    yield w
    w.close()


def test_crm_activities_reach_the_organizers_calendar_without_invitations(world, sandbox):
    report = world.sync()
    assert report.counts["pushed"] == 2  # the kick-off and the offsite; not the hidden note
    kickoff = world.event(am.event_id("a-kickoff"))
    assert kickoff["summary"] == "Kick-off with Ada"
    assert kickoff["extendedProperties"]["private"][am.ACTIVITY_KEY] == "a-kickoff"
    assert [a["email"] for a in kickoff["attendees"]] == ["ada@analytical.example"]
    offsite = world.event(am.event_id("a-offsite"))
    crm = world.activity("a-offsite")
    after = am.dt.date.fromisoformat(crm["end"]) + am.dt.timedelta(days=1)
    assert offsite["start"] == {"date": crm["start"]} and offsite["end"] == {
        "date": after.isoformat()
    }
    assert sandbox.control("GET", "/_sandbox/calendar/outbox") == {"messages": []}


def test_event_created_in_google_is_imported_with_known_attendees(world):
    world.sync()
    created = world.insert_event(
        summary="Lunch",
        attendees=[{"email": "ada@analytical.example"}, {"email": "stranger@else.org"}],
    )
    report = world.sync()
    assert report.counts["imported"] == 1
    activity = world.activity(f"gcal-{ALICE}-{created['id']}")
    assert activity["title"] == "Lunch" and activity["organizerId"] == ALICE
    assert [(p.get("contactId"), p["email"]) for p in activity["participants"]] == [
        ("c-ada", "ada@analytical.example")
    ]
    again = world.event(created["id"])
    assert {a["email"] for a in again["attendees"]} == {
        "ada@analytical.example",
        "stranger@else.org",
    }


def test_edits_on_each_side_reach_the_other(world):
    world.sync()
    world.edit_activity("a-kickoff", title="Kick-off (moved)")
    world.patch_event(am.event_id("a-offsite"), location="Lake house")
    report = world.sync()
    assert report.counts["updatedInGoogle"] == 1 and report.counts["updatedInCrm"] == 1
    assert world.event(am.event_id("a-kickoff"))["summary"] == "Kick-off (moved)"
    assert world.activity("a-offsite")["location"] == "Lake house"
    assert world.sync().plan == []


def test_no_op_run_makes_exactly_one_calendar_call(world, sandbox):
    world.sync()
    world.sync()  # reads the echoes of the first run's writes
    sandbox.control("DELETE", "/_sandbox/stats")
    assert world.sync().plan == []
    assert sandbox.stats()["byMethod"] == {"calendar.events.list": 1}


def test_cancelled_in_google_cancels_the_activity_and_never_recreates(world):
    world.sync()
    world.google[ALICE].calendar.events().delete(
        calendarId="primary", eventId=am.event_id("a-kickoff"), sendUpdates="none"
    ).execute()
    report = world.sync()
    assert report.counts["canceled"] == 1
    assert world.activity("a-kickoff")["status"] == "canceled"
    assert world.links()["a-kickoff"]["tombstone"] is True
    assert world.sync().plan == []  # our own status change is not a CRM edit
    world.edit_activity("a-kickoff", title="still wanted?")
    edited = world.sync()  # said once, per item, not dropped in silence
    assert edited.counts["notPropagated"] == 1 and edited.errors[0]["id"] == "a-kickoff"
    assert "cancelled in Google" in edited.errors[0]["message"]
    assert world.links()["a-kickoff"]["tombstone"] is True
    assert world.sync().plan == []
    assert world.event(am.event_id("a-kickoff"))["status"] == "cancelled"


def test_deleted_or_hidden_in_the_crm_deletes_the_event(world):
    world.sync()
    world.edit_activity("a-offsite", deletedAt="2030-01-01T00:00:00Z")
    world.edit_activity("a-kickoff", showInCalendar=False)
    report = world.sync()
    assert report.counts["deletedInGoogle"] == 2
    for activity_id in ("a-offsite", "a-kickoff"):
        assert world.event(am.event_id(activity_id))["status"] == "cancelled"
    assert world.links() == {}


def test_shared_meeting_created_in_the_crm_is_one_activity_for_both(world):
    world.put_activity(
        "a-shared",
        title="Planning",
        organizerId=ALICE,
        start=f"{world.day}T10:00:00Z",
        end=f"{world.day}T11:00:00Z",
        participants=[{"userId": BOB}, {"contactId": "c-grace"}],
    )
    world.sync(ALICE)
    copy = world.event(am.event_id("a-shared"), user=BOB)
    assert copy["organizer"]["email"] == "alice@example.com"
    before = set(world.activities())
    report = world.sync(BOB)
    assert report.counts.get("imported", 0) == 0 and set(world.activities()) == before
    assert world.links(BOB)["a-shared"]["googleId"] == am.event_id("a-shared")


def test_shared_meeting_created_in_google_is_imported_once_and_linked_by_the_attendee(world):
    created = world.insert_event(
        summary="Design review",
        attendees=[{"email": "bob@example.com"}, {"email": "grace@navy.example"}],
    )
    world.sync(BOB)  # Bob first: Alice, the organizer, is connected, so Bob leaves it to her
    assert not any(a.startswith("gcal-") for a in world.activities())
    world.sync(ALICE)
    activity_id = f"gcal-{ALICE}-{created['id']}"
    participants = world.activity(activity_id)["participants"]
    assert {p.get("userId") or p.get("contactId") for p in participants} == {BOB, "c-grace"}
    world.sync(BOB)
    assert world.links(BOB)[activity_id]["googleId"] == created["id"]
    assert len([a for a in world.activities() if a.startswith("gcal-")]) == 1


def test_a_participants_crm_edit_reaches_google_through_the_organizer(world):
    created = world.insert_event(summary="Design review", attendees=[{"email": "bob@example.com"}])
    world.sync(ALICE)
    world.sync(BOB)
    activity_id = f"gcal-{ALICE}-{created['id']}"
    world.edit_activity(activity_id, location="Room 7")  # Bob's edit, in the CRM
    world.sync(BOB)
    assert "location" not in world.event(created["id"]) or not world.event(created["id"]).get(
        "location"
    )
    world.sync(ALICE)
    assert world.event(created["id"])["location"] == "Room 7"
    assert world.event(created["id"], user=BOB)["location"] == "Room 7"


@pytest.mark.parametrize("order", [(BOB, ALICE, BOB, ALICE), (ALICE, BOB, ALICE, BOB)])
def test_removing_an_attendee_does_not_cancel_the_meeting_for_everyone(world, order):
    world.put_activity(
        "a-shared",
        title="Planning",
        organizerId=ALICE,
        start=f"{world.day}T10:00:00Z",
        end=f"{world.day}T11:00:00Z",
        participants=[{"userId": BOB}, {"contactId": "c-grace"}],
    )
    world.sync(ALICE)
    world.sync(BOB)
    event_id = am.event_id("a-shared")
    attendees = world.event(event_id)["attendees"]
    world.patch_event(event_id, attendees=[a for a in attendees if a["email"] != "bob@example.com"])
    for user in order:
        world.sync(user)
    assert world.activity("a-shared")["status"] != "canceled"
    assert world.event(event_id)["status"] == "confirmed"
    assert [p.get("contactId") for p in world.activity("a-shared")["participants"]] == ["c-grace"]
    assert "a-shared" not in world.links(BOB)


def calendar_writes(sandbox) -> dict[str, int]:
    reads = ("calendar.events.list", "calendar.events.get", "calendar.events.instances")
    return {k: v for k, v in sandbox.stats()["byMethod"].items() if k not in reads}


def test_attendees_unknown_to_the_crm_are_kept_when_a_crm_edit_patches_the_event(world, sandbox):
    world.sync()
    event_id = am.event_id("a-kickoff")
    guests = [{"email": "stranger@else.org"}, {"email": "Visitor@Else.org", "optional": True}]
    world.patch_event(event_id, attendees=world.event(event_id)["attendees"] + guests)
    world.sync()  # reads Google's change: the guests create nothing in the CRM
    assert [p["email"] for p in world.activity("a-kickoff")["participants"]] == [
        "ada@analytical.example"
    ]
    world.edit_activity("a-kickoff", title="Kick-off (agenda)")  # a CRM-only edit
    sandbox.control("DELETE", "/_sandbox/stats")
    report = world.sync()
    print("calendar calls of the CRM-only edit:", sandbox.stats()["byMethod"])
    assert report.counts["updatedInGoogle"] == 1
    event = world.event(event_id)
    assert event["summary"] == "Kick-off (agenda)"
    assert {a["email"].lower() for a in event["attendees"]} == {
        "ada@analytical.example",
        "stranger@else.org",
        "visitor@else.org",
    }
    assert world.sync().plan == []


def test_the_run_after_a_first_push_makes_no_calendar_writes_when_guests_are_unknown(
    world, sandbox
):
    world.put_activity(
        "a-guests",
        title="Review with outside guests",
        organizerId=ALICE,
        start=f"{world.day}T10:00:00Z",
        end=f"{world.day}T11:00:00Z",
        participants=[{"email": "stranger@else.org"}, {"contactId": "c-ada"}],
    )
    first = world.sync()
    assert first.counts["pushed"] == 3
    participants = world.activity("a-guests")["participants"]
    sandbox.control("DELETE", "/_sandbox/stats")
    report = world.sync()  # reads the echoes of the first push
    print("calendar calls of the run after the first push:", sandbox.stats()["byMethod"])
    assert report.plan == [] and calendar_writes(sandbox) == {}
    assert world.activity("a-guests")["participants"] == participants
    attendees = world.event(am.event_id("a-guests"))["attendees"]
    assert {a["email"] for a in attendees} == {"stranger@else.org", "ada@analytical.example"}


def test_a_crm_edit_of_a_link_without_stored_guests_reads_the_event_to_keep_them(world, sandbox):
    world.sync()
    event_id = am.event_id("a-kickoff")
    attendees = world.event(event_id)["attendees"] + [{"email": "stranger@else.org"}]
    world.patch_event(event_id, attendees=attendees)
    world.sync()
    link_key = f"{ALICE}:activities:a-kickoff"
    link = world.store.get("links", link_key)
    link.pop("googleOnlyAttendees", None)  # a link written before guests were stored
    world.store.put("links", link_key, link)
    world.edit_activity("a-kickoff", title="Kick-off (agenda)")
    world.sync()
    emails = {a["email"] for a in world.event(event_id)["attendees"]}
    assert emails == {"ada@analytical.example", "stranger@else.org"}
