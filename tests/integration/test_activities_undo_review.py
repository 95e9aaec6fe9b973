# ruff: noqa: F811  (the tests take the imported world fixture by name)
"""The independent review of the activities undo: each finding, as the scenario that
showed it, on the sandbox through the real client (``test_activities_undo`` holds the
undo's rows)."""

from __future__ import annotations

import uuid

import pytest

from core import activity_mapping as am
from core.activities_undo import ActivitiesUndo
from core.errors import UndoRefused
from core.model import ACTIVITIES
from core.runs import Options
from functions.accounts import connect
from tests.integration.activities_world import ALICE, BOB
from tests.integration.test_activities_undo import delete_event, take_back, world  # noqa: F401

KICKOFF = am.event_id("a-kickoff")


class EditFirst:
    """A calendar port whose first write is preceded by the user's edit: the edit lands
    between the undo's read and its write."""

    def __init__(self, port, edit):
        self.port, self.edit, self.done = port, edit, False

    def __getattr__(self, name):
        return getattr(self.port, name)

    def write(self, writes):
        if not self.done:
            self.done = True
            self.edit()
        return self.port.write(writes)


def undo_through(world, port, run_id):
    engine = ActivitiesUndo(world.store, port, world.clock, new_id=lambda: uuid.uuid4().hex,
                            undo_of=run_id)  # fmt: skip
    return engine.run(ALICE, Options(trigger="undo"))


def test_an_undone_import_a_colleague_shares_never_leads_to_deleting_the_event(world):
    world.sync()
    world.sync(BOB)
    created = world.insert_event(summary="Board", attendees=[{"email": "bob@example.com"}])
    imported = world.sync()
    world.sync(BOB)  # Bob links his copy to Alice's import (one meeting, one activity)
    report = take_back(world, imported.run_id)
    assert report.counts["removedFromCrm"] == 1 and not report.errors, report.errors
    assert not report.counts.get("redoneByNextSync")  # the event is not imported again
    world.patch_event(created["id"], location="Room 2")  # Alice's later edit lists it
    for _ in range(2):
        world.sync()
        world.sync(BOB)
    assert world.event(created["id"])["status"] == "confirmed"


def test_a_meeting_with_a_crm_user_as_participant_can_be_undone(world):
    world.sync()
    day = world.day
    world.put_activity("a-sync", title="Weekly", organizerId=ALICE, participants=[{"userId": BOB}],
                       start=f"{day}T09:00:00Z", end=f"{day}T10:00:00Z")  # fmt: skip
    world.sync()
    world.edit_activity("a-sync", title="Weekly (moved)")
    edited = world.sync()
    report = take_back(world, edited.run_id)
    assert not report.errors, report.errors
    assert world.activity("a-sync")["title"] == "Weekly"


def test_an_undone_import_restored_in_the_crm_is_linked_again_not_pushed_twice(world):
    world.sync()
    created = world.insert_event(summary="Lunch")
    imported = world.sync()
    activity_id = am.import_id(ALICE, created["id"])
    take_back(world, imported.run_id)
    doc = {k: v for k, v in world.activity(activity_id).items() if k != "deletedAt"}
    world.store.put(ACTIVITIES, activity_id, {**doc, "modifiedAt": world.now()})  # from the trash
    world.sync()
    lunches = [e for e in world.events().values() if e.get("summary") == "Lunch"]
    assert [e["id"] for e in lunches] == [created["id"]]
    assert world.links()[activity_id]["googleId"] == created["id"]


def test_a_cancelled_occurrence_of_the_user_s_own_series_is_restored(world):
    world.sync()
    master = world.insert_event(summary="Standup", recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    assert world.sync().counts["imported"] == 3
    occurrence = sorted(e for e in world.events() if e.startswith(master["id"]))[1]
    delete_event(world, occurrence)  # "delete this occurrence" in Google Calendar
    cancelled = world.sync()
    assert cancelled.counts["canceled"] == 1
    report = take_back(world, cancelled.run_id)
    assert not report.errors, report.errors
    assert world.event(occurrence)["status"] == "confirmed"


def test_an_event_edited_while_the_undo_runs_is_not_deleted(world):
    pushed = world.sync()
    edit = lambda: world.patch_event(KICKOFF, description="agenda typed in Google")  # noqa: E731
    report = undo_through(world, EditFirst(world.calendar_port(ALICE), edit), pushed.run_id)
    assert [e["id"] for e in report.errors] == ["a-kickoff"]
    assert report.errors[0]["kind"] == "UndoConflict"
    assert world.event(KICKOFF)["status"] == "confirmed"
    world.sync()
    assert world.activity("a-kickoff")["description"] == "agenda typed in Google"


def test_an_activity_edited_while_the_undo_runs_keeps_the_edit(world):
    world.sync()
    world.patch_event(KICKOFF, summary="Kick-off at the lab")
    edited = world.sync()
    note = lambda: world.edit_activity("a-kickoff", description="notes typed in the CRM")  # noqa: E731
    report = undo_through(world, EditFirst(world.calendar_port(ALICE), note), edited.run_id)
    assert report.errors and report.errors[0]["kind"] == "UndoConflict", report.errors
    assert world.activity("a-kickoff")["description"] == "notes typed in the CRM"
    world.sync()
    assert world.event(KICKOFF)["description"] == "notes typed in the CRM"


def test_a_run_made_with_another_google_account_is_not_undone(world):
    pushed = world.sync()
    other = world.make_account("alice.private@example.com")
    connect(world.config, ALICE, other.refresh_token)
    world.google[ALICE] = other
    world.sync()
    with pytest.raises(UndoRefused, match=r"connect alice@example\.com again"):
        take_back(world, pushed.run_id)
    theirs = other.calendar.events().get(calendarId="primary", eventId=KICKOFF).execute()
    assert theirs["status"] == "confirmed"


def test_an_event_our_crashed_insert_made_goes_with_its_deleted_activity(world):
    world.sync()
    day = world.day
    world.put_activity("a-new", title="Demo", organizerId=ALICE, participants=[],
                       start=f"{day}T09:00:00Z", end=f"{day}T10:00:00Z")  # fmt: skip
    fields = am.normalize({"title": "Demo", "start": f"{day}T09:00:00Z",
                           "end": f"{day}T10:00:00Z"})  # fmt: skip
    body = {**am.to_event(fields, "a-new"), "id": am.event_id("a-new")}
    world.google[ALICE].calendar.events().insert(calendarId="primary", body=body,
                                                 sendUpdates="none").execute()  # fmt: skip
    world.edit_activity("a-new", deletedAt=world.now())  # the link was never saved
    for _ in range(2):
        world.sync(full=True)
    assert world.event(am.event_id("a-new"))["status"] == "cancelled"
