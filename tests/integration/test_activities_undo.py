"""Undo of an activities run (``functions.undo``, ``core.activities_undo``): each kind
of change taken back on the sandbox through the real client, conflicts left alone,
and the undo of the undo."""

from __future__ import annotations

import pytest

from core import activity_mapping as am
from core.errors import UndoRefused
from core.runs import Options
from functions.undo import undo
from tests.integration.activities_world import ALICE, BOB, CalendarWorld

KICKOFF = am.event_id("a-kickoff")


@pytest.fixture
def world(tmp_path, sandbox, make_account):
    w = CalendarWorld(tmp_path, sandbox, make_account)
    w.make_account = make_account  # a third person, or another account of Alice's
    yield w
    w.close()


def take_back(world, run_id, **options):
    return undo(world.config, world.store, run_id, Options(**options))


def delete_event(world, event_id):
    world.google[ALICE].calendar.events().delete(
        calendarId="primary", eventId=event_id, sendUpdates="none"
    ).execute()


def synced(world, activity_id="a-kickoff"):
    """The pair as both sides hold it: (the CRM's fields, Google's fields)."""
    link = world.links()[activity_id]
    known = {a["email"] for a in link["fields"]["attendees"]}
    activity = world.activity(activity_id)
    return (activity["title"], activity["status"]), (
        am.from_event(world.event(link["googleId"]), known)["title"],
        world.event(link["googleId"])["status"],
    )


def test_a_pushed_activity_s_event_is_deleted_and_the_next_sync_says_so(world):
    pushed = world.sync()
    assert pushed.counts["pushed"] == 2
    report = take_back(world, pushed.run_id)
    assert report.trigger == "undo" and not report.errors, report.errors
    assert report.counts["deletedInGoogle"] == 2
    assert report.counts["redoneByNextSync"] == 2  # both still shown in the calendar
    assert world.event(KICKOFF)["status"] == "cancelled" and "a-kickoff" not in world.links()
    again = world.sync()  # the activity is still in the calendar: its event comes back
    assert world.event(KICKOFF)["status"] == "confirmed", again.counts
    assert world.activity("a-kickoff")["status"] == "planned"


def test_undoing_the_undo_of_a_push_brings_the_event_back(world):
    pushed = world.sync()
    taken = take_back(world, pushed.run_id)
    report = take_back(world, taken.run_id)
    assert not report.errors, report.errors
    assert report.counts["updatedInGoogle"] == 2
    event = world.event(KICKOFF)
    assert event["status"] == "confirmed" and event["summary"] == "Kick-off with Ada"
    assert world.links()["a-kickoff"]["googleId"] == KICKOFF
    assert world.sync().plan == []  # the pair is as the push left it


def test_an_imported_activity_is_deleted_and_not_imported_again(world):
    world.sync()
    created = world.insert_event(summary="Lunch")
    imported = world.sync()
    assert imported.counts["imported"] == 1
    activity_id = am.import_id(ALICE, created["id"])
    report = take_back(world, imported.run_id)
    assert not report.errors and report.counts["removedFromCrm"] == 1, report.errors
    assert world.activity(activity_id)["deletedAt"]
    assert activity_id not in world.links()
    assert world.event(created["id"])["status"] == "confirmed"  # Google's event stays
    after = world.sync(full=True)
    assert not after.plan and not after.errors, (after.plan, after.errors)
    assert world.activity(activity_id)["deletedAt"]  # not imported again


def test_undoing_the_undo_of_an_import_brings_the_activity_back_linked(world):
    world.sync()
    created = world.insert_event(summary="Lunch")
    imported = world.sync()
    taken = take_back(world, imported.run_id)
    report = take_back(world, taken.run_id)
    assert not report.errors and report.counts["imported"] == 1, report.errors
    activity = world.activity(am.import_id(ALICE, created["id"]))
    assert "deletedAt" not in activity and activity["showInCalendar"] is True
    assert activity["title"] == "Lunch"
    assert world.sync().plan == []


def test_an_edit_made_in_the_crm_goes_back_on_both_sides(world):
    world.sync()
    world.edit_activity("a-kickoff", title="Kick-off (moved)")
    edited = world.sync()
    assert edited.counts["updatedInGoogle"] == 1
    report = take_back(world, edited.run_id)
    assert not report.errors, report.errors
    assert synced(world) == (("Kick-off with Ada", "planned"), ("Kick-off with Ada", "confirmed"))
    assert world.sync().plan == []


def test_an_edit_made_in_google_goes_back_on_both_sides(world):
    world.sync()
    world.patch_event(KICKOFF, summary="Kick-off at the lab")
    edited = world.sync()
    assert edited.counts["updatedInCrm"] == 1
    report = take_back(world, edited.run_id)
    assert not report.errors, report.errors
    assert synced(world) == (("Kick-off with Ada", "planned"), ("Kick-off with Ada", "confirmed"))
    assert world.sync().plan == []


def test_a_cancellation_made_in_google_is_restored_on_both_sides_and_undone_again(world):
    world.sync()
    delete_event(world, KICKOFF)
    cancelled = world.sync()
    assert cancelled.counts["canceled"] == 1 and world.links()["a-kickoff"]["tombstone"]
    report = take_back(world, cancelled.run_id)
    assert not report.errors, report.errors
    assert synced(world) == (("Kick-off with Ada", "planned"), ("Kick-off with Ada", "confirmed"))
    assert not world.links()["a-kickoff"]["tombstone"]
    assert world.sync().plan == []
    again = take_back(world, report.run_id)  # the undo of the undo: Google's cancellation
    assert not again.errors, again.errors
    assert synced(world) == (("Kick-off with Ada", "canceled"), ("Kick-off with Ada", "cancelled"))
    assert world.links()["a-kickoff"]["tombstone"] and world.sync().plan == []
    third = take_back(world, again.run_id)  # and back once more
    assert not third.errors, third.errors
    assert synced(world) == (("Kick-off with Ada", "planned"), ("Kick-off with Ada", "confirmed"))
    assert not world.links()["a-kickoff"]["tombstone"] and world.sync().plan == []


def test_google_s_cancellation_put_back_by_an_undo_is_never_revived_by_the_crm(world):
    world.sync()
    delete_event(world, KICKOFF)
    cancelled = world.sync()
    restored = take_back(world, cancelled.run_id)
    take_back(world, restored.run_id)
    world.edit_activity("a-kickoff", status="planned")  # planned again in the CRM
    report = world.sync()
    assert report.counts.get("notPropagated") == 1, (report.plan, report.counts)
    assert world.event(KICKOFF)["status"] == "cancelled"  # as without the undos


def test_an_event_deleted_because_the_activity_left_the_calendar_is_restored(world):
    world.sync()
    world.edit_activity("a-kickoff", showInCalendar=False)
    deleted = world.sync()
    assert deleted.counts["deletedInGoogle"] == 1
    report = take_back(world, deleted.run_id)
    assert not report.errors, report.errors
    assert world.event(KICKOFF)["status"] == "confirmed"
    assert world.event(KICKOFF)["summary"] == "Kick-off with Ada"
    assert report.counts["redoneByNextSync"] == 1  # the activity is still hidden
    assert world.sync().counts["deletedInGoogle"] == 1


def test_undoing_the_restore_of_a_deleted_event_deletes_it_again(world):
    world.sync()
    world.edit_activity("a-kickoff", showInCalendar=False)
    deleted = world.sync()
    restored = take_back(world, deleted.run_id)
    again = take_back(world, restored.run_id)
    assert not again.errors and again.counts["deletedInGoogle"] == 1, again.errors
    assert world.event(KICKOFF)["status"] == "cancelled" and "a-kickoff" not in world.links()
    assert world.sync().plan == []


def test_an_item_changed_again_since_the_run_is_left_alone_and_listed(world):
    world.sync()
    world.edit_activity("a-kickoff", title="Kick-off (moved)")
    world.edit_activity("a-offsite", title="Offsite (moved)")
    edited = world.sync()
    world.patch_event(KICKOFF, summary="Kick-off, again")  # changed again in Google
    report = take_back(world, edited.run_id)
    assert [e["id"] for e in report.errors] == ["a-kickoff"], report.errors
    assert report.errors[0]["kind"] == "UndoConflict"
    assert report.outcome["reason"] == "undo_conflicts"
    assert world.event(KICKOFF)["summary"] == "Kick-off, again"  # left alone
    assert world.activity("a-offsite")["title"] != "Offsite (moved)"  # the other taken back


def test_an_undo_of_the_undo_twice_finds_nothing_to_do(world):
    world.sync()
    world.edit_activity("a-kickoff", title="Kick-off (moved)")
    edited = world.sync()
    first = take_back(world, edited.run_id)
    second = take_back(world, edited.run_id)
    assert not first.errors and not second.errors, (first.errors, second.errors)
    assert second.plan == []


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(world):
    pushed = world.sync()
    report = take_back(world, pushed.run_id, dry_run=True)
    assert sorted(type(a).__name__ for a in report.plan) == ["DeleteEvent", "DeleteEvent"]
    assert world.event(KICKOFF)["status"] == "confirmed"


def test_only_the_run_s_own_user_may_undo_it(world):
    pushed = world.sync()
    with pytest.raises(UndoRefused):
        undo(world.config, world.store, pushed.run_id, Options(), user_id=BOB)
    assert world.event(KICKOFF)["status"] == "confirmed"
