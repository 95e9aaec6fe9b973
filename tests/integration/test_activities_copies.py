# ruff: noqa: F811  (the tests take the imported world fixture by name)
"""Attendees' copies and events left without a link: found by the second review of
issue 13 on the sandbox. A sync deletes only an event the user organizes, through a
link; it never re-creates someone else's meeting as the user's own; and an event the
user restored in Google is the user's later word."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import activity_mapping as am
from core.model import GOOGLE_ACCOUNTS
from tests.integration.activities_world import ALICE, BOB
from tests.integration.test_activities_undo import world  # noqa: F401  (a fixture)

KICKOFF = am.event_id("a-kickoff")


def kinds(report):
    return [type(a).__name__ for a in report.plan]


def test_an_attendee_s_copy_of_a_deleted_meeting_is_left_alone_by_the_attendee(world):
    world.sync()
    world.sync(BOB)
    day = world.day
    world.put_activity("a-m", title="Meet", organizerId=ALICE, participants=[{"userId": BOB}],
                       start=f"{day}T09:00:00Z", end=f"{day}T10:00:00Z")  # fmt: skip
    world.sync()
    world.sync(BOB)  # Bob links his copy
    world.edit_activity("a-m", deletedAt=world.now())  # Alice's sync has not run yet
    first = world.sync(BOB, full=True)
    again = [kinds(world.sync(BOB, full=True)) for _ in range(2)]
    assert again == [[], []], (kinds(first), again)  # no link, unlink, link again ...
    assert world.event(am.event_id("a-m"), BOB)["status"] == "confirmed"


@pytest.mark.parametrize("how", ["hide", "delete"])
def test_an_attendee_s_import_taken_out_of_the_crm_keeps_the_copy(world, how):
    carol = world.make_account("carol@outside.example")
    world.sync(BOB)
    start = datetime.combine(world.day, datetime.min.time(), UTC) + timedelta(hours=14)
    body = {"summary": "Vendor call", "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
            "attendees": [{"email": "bob@example.com"}]}  # fmt: skip
    event = carol.calendar.events().insert(calendarId="primary", sendUpdates="all",
                                           body=body).execute()  # fmt: skip
    world.sync(BOB)
    activity_id = am.import_id(BOB, event["id"])
    gone = {"showInCalendar": False} if how == "hide" else {"deletedAt": world.now()}
    world.edit_activity(activity_id, **gone)
    report = world.sync(BOB)  # incremental: the copy is not read
    assert kinds(report) == ["DropEventLink"], kinds(report)
    assert world.event(event["id"], BOB)["status"] == "confirmed"


def test_a_meeting_the_user_was_removed_from_is_not_created_again_as_theirs(world):
    world.sync(BOB)
    account = world.store.get(GOOGLE_ACCOUNTS, ALICE)
    world.store.put(GOOGLE_ACCOUNTS, ALICE, {**account, "status": "reauth_required"})
    event = world.insert_event(ALICE, summary="Design review",
                               attendees=[{"email": "bob@example.com"}])  # fmt: skip
    world.sync(BOB)  # Alice is not connected: Bob imports the meeting
    world.store.put(GOOGLE_ACCOUNTS, ALICE, account)
    world.sync(ALICE)  # Alice's sync links her event to Bob's import
    world.patch_event(event["id"], ALICE, attendees=[])  # she removes Bob
    world.sync(ALICE)
    for _ in range(2):
        world.sync(BOB)
    world.sync(BOB, full=True)
    mine = [e for e in world.events(BOB).values() if e.get("summary") == "Design review"]
    assert mine == []


def test_an_event_the_user_restored_in_google_is_not_deleted_again(world):
    world.sync()
    world.edit_activity("a-kickoff", showInCalendar=False)
    assert world.sync().counts["deletedInGoogle"] == 1
    world.patch_event(KICKOFF, status="confirmed")  # taken back out of Google's trash
    for _ in range(2):
        world.sync()
    assert world.event(KICKOFF)["status"] == "confirmed"
