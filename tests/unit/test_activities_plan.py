"""The activities decision table, one test per row, on plain data."""

from datetime import UTC, datetime, timedelta

import pytest

from core import activity_mapping as am
from core.activities_plan import (
    ActivitySnapshot,
    CalEvent,
    CancelActivity,
    CrmActivity,
    DeleteEvent,
    DropEventLink,
    EventLink,
    ImportEvent,
    InsertEvent,
    NotPropagated,
    ReconcileEvent,
    plan,
)
from core.errors import SideEmpty
from tests.unit.actions import positional

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)

# the actions, built positionally in their fields' order
do = positional(
    InsertEvent,
    ImportEvent,
    ReconcileEvent,
    CancelActivity,
    DeleteEvent,
    DropEventLink,
    NotPropagated,
)


def f(**fields):
    base = {"title": "Meeting", "allDay": False, "start": "2026-05-04T09:00:00Z",
            "end": "2026-05-04T10:00:00Z", "timeZone": "Europe/Berlin"}  # fmt: skip
    return am.normalize({**base, **fields})


def act(aid="a1", fields=None, in_scope=True, gone=False, owned=True, at=T0):
    return CrmActivity(aid, fields or f(), in_scope, gone, owned, at)


def ev(
    eid="e1",
    fields=None,
    organizer_self=True,
    organizer="u@example.com",
    cancelled=False,
    in_window=True,
    at=T0,
    activity_id=None,
    ical=None,
    etag="1",
):
    return CalEvent(eid, etag, fields or f(), ical or f"{eid}@google.com", organizer_self,
                    organizer, cancelled, in_window, at, activity_id)  # fmt: skip


def link(aid="a1", eid="e1", fields=None, etag="1", tombstone=False, not_propagated=None):
    fields = fields or f()
    return EventLink(aid, eid, etag, am.fingerprint(fields), fields, tombstone, not_propagated)


def minimal(eid="e1", etag="2"):
    """A cancelled event as an incremental listing may give it: id and status only."""
    return CalEvent(eid, etag, am.normalize({"canceled": True}), "", False, "", True, False)


def snap(
    crm=(),
    google=(),
    links=(),
    shared=None,
    connected=(),
    crm_complete=False,
    google_complete=False,
    gone=(),
):
    return ActivitySnapshot({a.id: a for a in crm}, {e.id: e for e in google},
                            {lk.activity_id: lk for lk in links}, crm_complete, google_complete,
                            shared or {}, frozenset(connected), frozenset(gone))  # fmt: skip


# --- unlinked ----------------------------------------------------------------------------------


def test_owned_activity_in_scope_is_inserted():
    assert plan(snap([act()])) == [do.InsertEvent("a1", f())]


def test_activity_out_of_scope_or_not_owned_is_not_inserted():
    assert plan(snap([act(in_scope=False), act("a2", owned=False)])) == []


def test_event_the_user_organizes_is_imported():
    assert plan(snap(google=[ev()])) == [do.ImportEvent("e1", "1", "e1@google.com", f())]


def test_event_outside_the_window_or_cancelled_is_ignored():
    assert plan(snap(google=[ev(in_window=False), ev("e2", cancelled=True)])) == []


def test_retried_insert_is_linked_by_our_activity_id():
    got = plan(snap([act()], [ev(am.event_id("a1"), activity_id="a1")]))
    assert got == [
        do.ReconcileEvent("a1", am.event_id("a1"), "1", f(), False, False, reason="ours")
    ]


def test_event_whose_ical_uid_another_user_linked_is_linked_not_recreated():
    copy = ev("e9", organizer_self=False, organizer="u@example.com", ical="x@google.com")
    got = plan(snap(google=[copy], shared={"x@google.com": "a7"}, connected={"u@example.com"}))
    assert got == [do.ReconcileEvent("a7", "e9", "1", f(), False, False, reason="shared")]


def test_attendee_copy_is_left_to_a_connected_organizer():
    copy = ev(organizer_self=False, organizer="boss@example.com")
    assert plan(snap(google=[copy], connected={"boss@example.com"})) == []


def test_attendee_copy_of_an_outside_organizer_is_imported():
    copy = ev(organizer_self=False, organizer="client@else.org")
    assert plan(snap(google=[copy])) == [do.ImportEvent("e1", "1", "e1@google.com", f())]


# --- linked ------------------------------------------------------------------------------------


def test_no_change_plans_nothing_and_an_etag_move_only_refreshes():
    assert plan(snap([act()], [ev()], [link()])) == []
    got = plan(snap([act()], [ev(etag="2")], [link()]))
    assert got == [do.ReconcileEvent("a1", "e1", "2", f(), False, False, reason="etag")]


def test_crm_edit_goes_to_google_and_google_edit_to_the_crm():
    got = plan(snap([act(fields=f(title="New"))], [], [link()]))
    assert got == [do.ReconcileEvent("a1", "e1", "1", f(title="New"), True, False)]
    got = plan(snap([], [ev(fields=f(location="Room 2"), etag="2")], [link()]))
    assert got == [do.ReconcileEvent("a1", "e1", "2", f(location="Room 2"), False, True)]


@pytest.mark.parametrize(("crm_later", "winner"), [(True, "CRM"), (False, "Google")])
def test_both_edit_the_same_field_most_recent_wins(crm_later, winner):
    later = T0 + timedelta(minutes=1)
    got = plan(snap([act(fields=f(title="CRM"), at=later if crm_later else T0)],
                    [ev(fields=f(title="Google"), at=T0 if crm_later else later)],
                    [link()]))  # fmt: skip
    assert got[0].fields["title"] == winner and got[0].conflicts == ("title",)


def test_cancelled_in_google_cancels_the_activity():
    got = plan(snap([act()], [ev(cancelled=True)], [link()]))
    assert got == [do.CancelActivity("a1", "e1")]


def test_tombstoned_link_never_comes_back_and_a_crm_edit_is_said_once():
    edited = act(fields=f(title="edited"))
    got = plan(snap([edited], [ev()], [link(tombstone=True)]))
    assert got == [do.NotPropagated("a1", "e1", edited.fp, cancelled=True)]
    assert plan(snap([edited], [ev()], [link(tombstone=True, not_propagated=edited.fp)])) == []
    assert plan(snap([act(fields=f(canceled=True))], [], [link(tombstone=True)])) == []


def test_deleted_in_the_crm_deletes_the_organizers_event():
    got = plan(snap([act(gone=True)], [], [link()]))
    assert got == [do.DeleteEvent("a1", "e1", "1")]
    full = snap([act("a2")], [], [link(), link("a2", "e2")], crm_complete=True)
    assert plan(full) == [do.DeleteEvent("a1", "e1", "1")]  # absent from a full CRM read


def test_deleted_in_the_crm_only_drops_an_attendees_link():
    copy = ev(organizer_self=False, organizer="boss@example.com")
    got = plan(snap([act(gone=True, owned=False)], [copy], [link()]))
    assert got == [do.DropEventLink("a1")]


def test_crm_edit_of_a_connected_organizers_meeting_is_left_to_them():
    got = plan(snap([act(fields=f(title="V edits"), owned=False)],
                    [ev(organizer_self=False, organizer="u@example.com")], [link()],
                    connected={"u@example.com"}))  # fmt: skip
    assert got == []


def test_crm_edit_reachable_only_through_a_read_only_copy_is_recorded_once():
    copy = ev(organizer_self=False, organizer="client@else.org")
    edited = act(fields=f(title="edited"), owned=True)
    got = plan(snap([edited], [copy], [link()]))
    assert got == [do.NotPropagated("a1", "e1", edited.fp)]
    assert plan(snap([edited], [copy], [link(not_propagated=edited.fp)])) == []


def test_copy_changed_by_an_outside_organizer_updates_the_crm():
    copy = ev(organizer_self=False, organizer="client@else.org", fields=f(title="moved"), etag="2")
    got = plan(snap([act()], [copy], [link()]))
    assert got == [do.ReconcileEvent("a1", "e1", "2", f(title="moved"), False, True, reason="copy")]


def test_cancelled_in_google_and_gone_in_the_crm_drops_the_link():
    assert plan(snap([act(gone=True)], [ev(cancelled=True)], [link()])) == [do.DropEventLink("a1")]


def test_a_removed_attendees_cancelled_copy_only_drops_their_link():
    copy_link = EventLink("a1", "e1", "1", am.fingerprint(f()), f(), read_only=True,
                          organizer_email="boss@example.com")  # fmt: skip
    tombstone = CalEvent("e1", "2", f(), "", False, "", True, True)  # minimal: id, status
    got = plan(snap([act(owned=False)], [tombstone], [copy_link], connected={"boss@example.com"}))
    assert got == [do.DropEventLink("a1")]
    outside = EventLink("a1", "e1", "1", am.fingerprint(f()), f(), read_only=True,
                        organizer_email="client@else.org")  # fmt: skip
    assert plan(snap([act()], [tombstone], [outside])) == [do.CancelActivity("a1", "e1")]


# --- the empty-side guard ------------------------------------------------------------------


def test_a_full_calendar_read_lacking_the_only_linked_event_stops_the_run():
    lacking = snap([act()], [], [link()], google_complete=True, gone={"e1"})
    with pytest.raises(SideEmpty) as stopped:
        plan(lacking)
    assert (stopped.value.side, stopped.value.links, stopped.value.items) == (
        "Google",
        1,
        "activities",
    )
    assert plan(lacking, force=True) == [do.CancelActivity("a1", "e1")]


def test_a_full_calendar_read_listing_one_linked_event_cancelled_does_not_stop_the_run():
    listed = snap([act(), act("a2")], [ev(cancelled=True)], [link(), link("a2", "e2")],
                  google_complete=True, gone={"e2"})  # fmt: skip
    assert plan(listed) == [do.CancelActivity("a1", "e1"), do.CancelActivity("a2", "e2")]


def test_gone_events_on_an_incremental_run_never_stop_it():
    assert plan(snap([act()], [], [link()], gone={"e1"})) == [do.CancelActivity("a1", "e1")]


def test_linked_events_outside_a_full_reads_window_do_not_stop_the_run():
    assert plan(snap([act()], [], [link()], google_complete=True)) == []


def test_a_full_crm_read_lacking_every_linked_activity_stops_the_run():
    wiped = snap([], [], [link(), link("a2", "e2")], crm_complete=True)
    with pytest.raises(SideEmpty) as stopped:
        plan(wiped)
    assert (stopped.value.side, stopped.value.links) == ("CRM", 2)
    assert plan(wiped, force=True) == [
        do.DeleteEvent("a1", "e1", "1"),
        do.DeleteEvent("a2", "e2", "1"),
    ]


def test_links_tombstoned_by_google_cancellations_do_not_count_for_the_guard():
    assert plan(snap([], [], [link(tombstone=True)], crm_complete=True)) == []


# --- deleted series, echoes of our own cancellations ----------------------------------------


def test_instances_of_a_deleted_series_not_listed_are_cancelled():
    got = plan(snap([], [], [link("a1", "m_20260504T090000Z"), link("a2", "m_20260511T090000Z")],
                    gone={"m_20260504T090000Z", "m_20260511T090000Z"}))  # fmt: skip
    assert got == [do.CancelActivity("a1", "m_20260504T090000Z"),
                   do.CancelActivity("a2", "m_20260511T090000Z")]  # fmt: skip


def test_the_echo_of_our_own_cancellation_is_not_a_cancellation_made_in_google():
    synced = link(fields=f(canceled=True))
    canceled = act(fields=f(canceled=True))
    assert plan(snap([], [ev(fields=f(canceled=True), cancelled=True)], [synced])) == []
    assert plan(snap([canceled], [minimal()], [synced])) == [
        do.ReconcileEvent("a1", "e1", "2", f(canceled=True), False, False, reason="etag")
    ]


def test_planning_again_an_activity_cancelled_in_the_crm_restores_its_event():
    synced = link(fields=f(canceled=True))
    got = plan(snap([act()], [minimal()], [synced]))
    assert got == [do.ReconcileEvent("a1", "e1", "2", f(), True, False)]
    healed = link(fields=f(canceled=True), tombstone=True)  # tombstoned by an old echo
    assert plan(snap([act()], [], [healed])) == [
        do.ReconcileEvent("a1", "e1", "1", f(), True, False)
    ]


def test_cancelled_on_both_sides_is_agreed_not_tombstoned():
    got = plan(snap([act(fields=f(canceled=True))], [ev(fields=f(canceled=True), cancelled=True,
                                                          etag="2")], [link()]))  # fmt: skip
    assert got == [do.ReconcileEvent("a1", "e1", "2", f(canceled=True), False, False)]


def test_planned_again_after_google_lost_the_cancelled_event_gets_a_new_one():
    got = plan(snap([act()], [], [link(fields=f(canceled=True))], gone={"e1"}))
    assert got == [do.InsertEvent("a1", f())]
    still = plan(snap([act(fields=f(canceled=True))], [], [link(fields=f(canceled=True))],
                      gone={"e1"}))  # fmt: skip
    assert still == [do.DropEventLink("a1")]  # over on both sides: no get on every full pass
