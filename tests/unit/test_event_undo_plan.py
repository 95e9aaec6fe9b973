"""Taking an activities run back (``core.event_undo.plan_undo``), one test per row of its
table and per conflict, on plain data; and the planner's rows an undo relies on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import activity_mapping as am
from core.activities_plan import DeleteEvent, ImportEvent, ReconcileEvent, plan
from core.event_undo import Current, RemoveImport, plan_undo
from tests.unit.test_activities_plan import T0, act, ev, f, link, snap

ENDED = T0 + timedelta(minutes=1)  # the undone run ended then
LATER = T0 + timedelta(minutes=5)
IMPORT = am.import_id("u1", "e1")


def entry(change, side, fields=None, crm_id="a1", google_id="e1", name="Meeting"):
    out = {"change": change, "side": side, "crmId": crm_id, "googleId": google_id, "name": name}
    if fields:
        out["fields"] = {k: {"before": b, "after": a} for k, (b, a) in fields.items()}
    return out


def every(before, after=None):
    return {k: (before.get(k), (after or {}).get(k)) for k in am.FIELDS}


def now(crm=(), google=(), links=(), since=ENDED):
    return Current("u1", {a.id: a for a in crm}, {e.id: e for e in google},
                   {lk.activity_id: lk for lk in links}, since)  # fmt: skip


def one(plan_):
    assert not plan_.conflicts, plan_.conflicts
    return plan_.actions


def conflict(plan_):
    assert not plan_.actions, plan_.actions
    assert len(plan_.conflicts) == 1, plan_.conflicts
    return plan_.conflicts[0].reason


# --- pushed ------------------------------------------------------------------------------


def test_a_pushed_activity_s_event_is_deleted_and_the_next_sync_pushes_it_again():
    undo = plan_undo([entry("pushed", "google")], now([act()], [ev()], [link()]))
    assert one(undo) == [DeleteEvent(activity_id="a1", event_id="e1", etag="1")]
    assert undo.redone == ["a1"]  # still in the calendar


def test_a_pushed_activity_hidden_before_the_undo_is_a_conflict_not_redone():
    hidden = act(in_scope=False, gone=True, at=LATER)
    assert "saved again in the CRM" in conflict(
        plan_undo([entry("pushed", "google")], now([hidden], [ev()], [link()]))
    )


def test_a_pushed_event_edited_in_google_since_is_left_alone():
    edited = ev(fields=f(title="Moved"), at=LATER)
    reason = conflict(plan_undo([entry("pushed", "google")], now([act()], [edited], [link()])))
    assert "changed in Google" in reason


def test_a_pushed_event_saved_again_with_the_same_values_is_left_alone():
    saved = ev(at=LATER)
    reason = conflict(plan_undo([entry("pushed", "google")], now([act()], [saved], [link()])))
    assert reason == "saved again in Google since the run"


def test_a_pushed_event_already_deleted_and_unlinked_needs_nothing():
    undo = plan_undo([entry("pushed", "google")], now([act()], [ev(cancelled=True)]))
    assert undo.actions == [] and undo.conflicts == [] and undo.unchanged == ["a1"]


def test_a_pushed_activity_linked_to_another_event_since_is_left_alone():
    other = link(eid="e2")
    reason = conflict(plan_undo([entry("pushed", "google")], now([act()], [ev()], [other])))
    assert "another Google event (e2)" in reason


# --- imported ----------------------------------------------------------------------------


def test_an_imported_activity_is_removed_from_the_crm():
    undo = plan_undo([entry("imported", "crm", crm_id=IMPORT)],
                     now([act(IMPORT)], [ev()], [link(IMPORT)]))  # fmt: skip
    assert one(undo) == [RemoveImport(activity_id=IMPORT, event_id="e1")]


def test_an_imported_activity_edited_in_the_crm_since_is_left_alone():
    edited = act(IMPORT, fields=f(title="Mine now"), at=LATER)
    reason = conflict(plan_undo([entry("imported", "crm", crm_id=IMPORT)],
                                now([edited], [ev()], [link(IMPORT)])))  # fmt: skip
    assert "changed in the CRM" in reason


def test_an_import_over_an_earlier_activity_gives_the_crm_its_values_back_only():
    fields = every(f(title="Earlier"), f())
    undo = plan_undo([entry("imported", "crm", fields, crm_id=IMPORT)],
                     now([act(IMPORT)], [ev()], [link(IMPORT)]))  # fmt: skip
    [restore] = one(undo)
    assert isinstance(restore, ReconcileEvent) and restore.fields["title"] == "Earlier"
    assert restore.write_crm and not restore.write_google
    assert undo.redone == [IMPORT]  # Google still holds the import's values


def test_a_removed_import_comes_back_when_the_removal_is_undone():
    removed = act(IMPORT, in_scope=False, gone=True)
    undo = plan_undo([entry("removedFromCrm", "crm", every(f()), crm_id=IMPORT)],
                     now([removed], [ev()]))  # fmt: skip
    assert one(undo) == [ImportEvent(event_id="e1", etag="1", ical_uid="e1@google.com", fields=f())]


def test_a_removed_import_whose_event_was_cancelled_since_is_left_alone():
    removed = act(IMPORT, in_scope=False, gone=True)
    reason = conflict(plan_undo([entry("removedFromCrm", "crm", every(f()), crm_id=IMPORT)],
                                now([removed], [ev(cancelled=True, at=LATER)])))  # fmt: skip
    assert "no longer exists in Google" in reason


# --- fields ------------------------------------------------------------------------------


def test_a_crm_edit_goes_back_on_both_sides():
    run_set = {"title": ("Meeting", "Moved")}
    moved = f(title="Moved")
    undo = plan_undo(
        [entry("updatedInGoogle", "google", run_set)],
        now([act(fields=moved)], [ev(fields=moved)], [link(fields=moved)]),
    )
    [restore] = one(undo)
    assert restore.fields == f() and restore.write_google and restore.write_crm
    assert undo.redone == []


def test_a_field_changed_again_since_the_run_is_a_conflict_naming_it():
    run_set = {"title": ("Meeting", "Moved")}
    moved, again = f(title="Moved"), f(title="Moved again")
    reason = conflict(plan_undo([entry("updatedInGoogle", "google", run_set)],
                                now([act(fields=again)], [ev(fields=moved)],
                                    [link(fields=again)])))  # fmt: skip
    assert reason == "changed again in the CRM since the run: title"


def test_fields_back_already_need_nothing():
    run_set = {"title": ("Meeting", "Moved")}
    undo = plan_undo([entry("updatedInGoogle", "google", run_set)],
                     now([act()], [ev()], [link()]))  # fmt: skip
    assert undo.actions == [] and undo.conflicts == [] and undo.unchanged == ["a1"]


def test_a_copy_s_change_taken_into_the_crm_goes_back_in_the_crm_only():
    run_set = {"title": ("Meeting", "Moved")}
    moved = f(title="Moved")
    copy = ev(fields=moved, organizer_self=False, organizer="boss@else.org")
    undo = plan_undo([entry("updatedInCrm", "crm", run_set)],
                     now([act(fields=moved)], [copy], [link(fields=moved)]))  # fmt: skip
    [restore] = one(undo)
    assert restore.write_crm and not restore.write_google
    assert undo.redone == ["a1"]  # the copy still says "Moved"


def test_a_journal_without_values_is_a_conflict():
    omitted = {**entry("updatedInCrm", "crm"), "fieldsOmitted": ["description"]}
    reason = conflict(plan_undo([omitted], now([act()], [ev()], [link()])))
    assert "kept no values" in reason


# --- cancellations and deletions ---------------------------------------------------------


def test_a_cancellation_made_in_google_is_restored_on_both_sides():
    cancelled = ev(fields=f(canceled=True), cancelled=True)
    tomb = link(tombstone=True)
    undo = plan_undo([entry("canceled", "crm", every(f(), f(canceled=True)))],
                     now([act(fields=f(canceled=True))], [cancelled], [tomb]))  # fmt: skip
    [restore] = one(undo)
    assert restore.fields == f() and restore.write_google and restore.write_crm


def test_an_attendee_s_copy_cannot_be_restored():
    copy = ev(fields=f(canceled=True), cancelled=True, organizer_self=False)
    reason = conflict(plan_undo([entry("canceled", "crm", every(f(), f(canceled=True)))],
                                now([act(fields=f(canceled=True))], [copy],
                                    [link(tombstone=True)])))  # fmt: skip
    assert reason == "only its organizer can restore the event in Google"


def test_a_cancellation_whose_activity_was_planned_again_is_left_alone():
    cancelled = ev(fields=f(canceled=True), cancelled=True)
    reason = conflict(
        plan_undo(
            [entry("canceled", "crm", every(f(), f(canceled=True)))],
            now([act(at=LATER)], [cancelled], [link(tombstone=True)]),
        )
    )
    assert reason == "no longer cancelled in the CRM"


def test_an_event_purged_by_google_cannot_be_restored():
    reason = conflict(
        plan_undo(
            [entry("canceled", "crm", every(f(), f(canceled=True)))],
            now([act(fields=f(canceled=True))], [], [link(tombstone=True)]),
        )
    )
    assert reason == "the event no longer exists in Google"


def test_a_deleted_event_is_restored_and_the_next_sync_deletes_it_again():
    hidden = act(in_scope=False, gone=True)
    undo = plan_undo([entry("deletedInGoogle", "google", every(f()))],
                     now([hidden], [ev(fields=f(canceled=True), cancelled=True)]))  # fmt: skip
    [restore] = one(undo)
    assert restore.write_google and not restore.write_crm and restore.fields == f()
    assert undo.redone == ["a1"]


def test_a_deleted_event_linked_again_since_is_left_alone():
    undo = plan_undo(
        [entry("deletedInGoogle", "google", every(f()))],
        now([act()], [ev(fields=f(canceled=True), cancelled=True)], [link()]),
    )
    assert conflict(undo) == "linked again since the run"


def test_an_item_the_run_changed_twice_is_left_to_the_user():
    entries = [entry("pushed", "google"), entry("updatedInCrm", "crm", {"title": ("A", "B")})]
    reason = conflict(plan_undo(entries, now([act()], [ev()], [link()])))
    assert "more than once" in reason


@pytest.mark.parametrize("junk", [{}, {"crmId": 3}, "x", {"crmId": "a1", "change": 7}])
def test_malformed_entries_change_nothing(junk):
    undo = plan_undo([junk], now([act()], [ev()], [link()]))
    assert undo.actions == [] and undo.conflicts == []


# --- the sync's rows an undo relies on ---------------------------------------------------


def test_an_unlinked_event_whose_import_was_removed_is_not_imported_again():
    removed = snap(google=[ev()])
    removed = type(removed)(**{**removed.__dict__, "imported": {"e1": ""}})
    assert plan(removed) == []


def test_an_unlinked_event_carrying_a_deleted_activity_s_id_is_never_linked():
    gone = act(in_scope=False, gone=True)
    assert plan(snap([gone], [ev(activity_id="a1")])) == []


def test_the_event_our_own_insert_made_is_linked_and_goes_with_its_deleted_activity():
    gone = act(in_scope=False, gone=True)
    mirror = ev(am.event_id("a1"), activity_id="a1")
    [linked] = plan(snap([gone], [mirror]))
    assert isinstance(linked, ReconcileEvent) and linked.activity_id == "a1"


def test_an_unlinked_event_of_a_shared_meeting_whose_activity_is_gone_is_never_linked():
    gone = act("a9", in_scope=False, gone=True)
    shared = snap([gone], [ev(ical="meet@x")], shared={"meet@x": "a9"})
    assert plan(shared) == []
