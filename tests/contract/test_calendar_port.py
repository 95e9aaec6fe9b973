"""The ``CalendarPort`` contract: what the activities engine relies on, one behaviour a test.

Each test runs against ``tests.fakes.FakeCalendar``, the real adapter over the sandbox
(default and realistic profiles) and, opt-in, over live Google (``conftest.calendar``).
Times are compared as instants: Google answers in the calendar's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import EtagMismatch, GoogleError, NotFound, SyncTokenExpired
from core.ports import EventWrite
from tests.contract.google_targets import DAY, new_event_id

WINDOW = ("2031-03-01T00:00:00Z", "2031-04-01T00:00:00Z")
KEY = "crmsync.activityId"


def at(day: int, hour: int = 10) -> dict[str, str]:
    return {"dateTime": f"2031-03-{day:02d}T{hour:02d}:00:00Z", "timeZone": "UTC"}


def body(title: str = "crmsync contract", day: int = 10, **extra) -> dict:
    return {"summary": title, "start": at(day), "end": at(day, 11), **extra}


def instant(when: dict[str, str]) -> datetime:
    return datetime.fromisoformat(when["dateTime"].replace("Z", "+00:00")).astimezone(UTC)


def insert(calendar, event_id: str | None = None, **fields) -> dict:
    event_id = event_id or new_event_id()
    [result] = calendar.port.write([EventWrite("insert", event_id, body(**fields))])
    assert result.error is None, result.error
    return result.person


def write_one(calendar, write: EventWrite):
    [result] = calendar.port.write([write])
    return result


def ids(events: list[dict]) -> set[str]:
    return {e["id"] for e in events}


def settled_token(calendar) -> str:
    token = calendar.port.changes(None, *WINDOW).next_sync_token
    return calendar.eventually(lambda: _quiet_after(calendar, token))


def _quiet_after(calendar, token: str) -> str:
    changes = calendar.port.changes(token, *WINDOW)
    assert not changes.events, "writes still arriving"
    return changes.next_sync_token


def test_account_email_is_the_calendars_owner(calendar):
    assert calendar.port.account_email() == calendar.email


# --- insert and get ----------------------------------------------------------------------


def test_an_event_inserted_with_our_id_reads_back_as_written(calendar):
    event_id = new_event_id()
    private = {"extendedProperties": {"private": {KEY: "act-1"}}}
    written = insert(calendar, event_id, title="crmsync contract one", **private)
    assert written["id"] == event_id and written["etag"]
    got = calendar.port.get([event_id])[event_id]
    assert got["summary"] == "crmsync contract one"
    assert got["status"] == "confirmed"
    assert got["extendedProperties"]["private"][KEY] == "act-1"
    assert got["organizer"]["self"] is True
    assert got["iCalUID"]
    assert instant(got["start"]) == datetime(2031, 3, 10, 10, tzinfo=UTC)
    assert instant(got["end"]) == datetime(2031, 3, 10, 11, tzinfo=UTC)


def test_an_all_day_event_keeps_its_dates(calendar):
    event_id = new_event_id()
    dates = {"start": {"date": "2031-03-14"}, "end": {"date": "2031-03-15"}}
    [result] = calendar.port.write([EventWrite("insert", event_id, {**body(), **dates})])
    assert result.error is None
    got = calendar.port.get([event_id])[event_id]
    assert (got["start"], got["end"]) == (dates["start"], dates["end"])


def test_attendees_get_a_response_status(calendar):
    event_id = new_event_id()
    insert(calendar, event_id, attendees=[{"email": "guest@example.com"}])
    [guest] = calendar.port.get([event_id])[event_id]["attendees"]
    assert guest["email"] == "guest@example.com"
    assert guest["responseStatus"] == "needsAction"


def test_inserting_a_taken_id_never_makes_a_second_event(calendar):
    """Google answers 409, or (ids it cannot yet see taken) acknowledges and keeps the
    first: either way a retried insert duplicates nothing."""
    event_id = new_event_id()
    insert(calendar, event_id, title="crmsync contract first")
    again = write_one(calendar, EventWrite("insert", event_id, body("crmsync contract second")))
    if again.error is not None:
        assert isinstance(again.error, GoogleError) and again.error.status == 409
    got = calendar.eventually(lambda: calendar.port.get([event_id])[event_id])
    assert got["summary"] == "crmsync contract first"


def test_a_deleted_events_id_stays_taken(calendar):
    event_id = new_event_id()
    insert(calendar, event_id)
    assert write_one(calendar, EventWrite("delete", event_id)).error is None
    again = write_one(calendar, EventWrite("insert", event_id, body()))
    assert isinstance(again.error, GoogleError) and again.error.status == 409


def test_get_leaves_out_events_that_never_existed(calendar):
    known = insert(calendar)["id"]
    missing = new_event_id()
    assert set(calendar.port.get([known, missing])) == {known}


# --- patch and delete --------------------------------------------------------------------


def test_a_patch_replaces_the_fields_it_names_and_keeps_the_rest(calendar):
    event_id = new_event_id()
    private = {"extendedProperties": {"private": {KEY: "act-2"}}}
    insert(calendar, event_id, location="Room 1", **private)
    patch = {"summary": "crmsync contract patched", "extendedProperties": {"private": {"x": "1"}}}
    result = write_one(calendar, EventWrite("patch", event_id, patch))
    assert result.error is None and result.person["summary"] == "crmsync contract patched"
    got = calendar.port.get([event_id])[event_id]
    assert got["location"] == "Room 1"
    assert got["extendedProperties"]["private"] == {KEY: "act-2", "x": "1"}  # merged by key


def test_a_patch_with_the_current_etag_applies_and_moves_the_etag(calendar):
    event = insert(calendar)
    write = EventWrite("patch", event["id"], {"location": "Room 2"}, etag=event["etag"])
    result = write_one(calendar, write)
    assert result.error is None and result.person["etag"] != event["etag"]


def test_a_patch_with_a_stale_etag_is_etag_mismatch_and_changes_nothing(calendar):
    event = insert(calendar)
    calendar.user_patch(event["id"], location="Set by the user")
    write = EventWrite("patch", event["id"], {"location": "From the CRM"}, etag=event["etag"])
    assert isinstance(write_one(calendar, write).error, EtagMismatch)
    assert calendar.port.get([event["id"]])[event["id"]]["location"] == "Set by the user"


def test_a_delete_with_a_stale_etag_is_etag_mismatch(calendar):
    event = insert(calendar)
    calendar.user_patch(event["id"], location="Set by the user")
    write = EventWrite("delete", event["id"], etag=event["etag"])
    assert isinstance(write_one(calendar, write).error, EtagMismatch)
    assert calendar.port.get([event["id"]])[event["id"]]["status"] == "confirmed"


def test_a_deleted_event_still_reads_as_cancelled(calendar):
    event_id = insert(calendar)["id"]
    result = write_one(calendar, EventWrite("delete", event_id))
    assert result.error is None and result.person == {}
    assert calendar.port.get([event_id])[event_id]["status"] == "cancelled"


def test_deleting_twice_is_not_found(calendar):
    event_id = insert(calendar)["id"]
    write_one(calendar, EventWrite("delete", event_id))
    assert isinstance(write_one(calendar, EventWrite("delete", event_id)).error, NotFound)


def test_patching_an_unknown_event_is_not_found(calendar):
    result = write_one(calendar, EventWrite("patch", new_event_id(), {"summary": "x"}))
    assert isinstance(result.error, NotFound)


def test_write_answers_one_result_per_write_in_order(calendar):
    patched, deleted = insert(calendar)["id"], insert(calendar)["id"]
    new, missing = new_event_id(), new_event_id()
    writes = [
        EventWrite("insert", new, body()),
        EventWrite("patch", patched, {"location": "Room 3"}),
        EventWrite("delete", deleted),
        EventWrite("get", missing),
        EventWrite("get", patched),
    ]
    results = calendar.port.write(writes)
    assert [r.key for r in results] == [new, patched, deleted, missing, patched]
    assert [r.error is None for r in results] == [True, True, True, False, True]
    assert isinstance(results[3].error, NotFound)
    assert results[4].person["location"] == "Room 3"


def test_more_writes_than_one_http_batch_all_apply(calendar):
    event_ids = [new_event_id() for _ in range(60)]  # the adapter batches 50 at a time
    results = calendar.port.write([EventWrite("insert", i, body()) for i in event_ids])
    assert [r.key for r in results] == event_ids
    assert all(r.error is None for r in results)
    assert set(calendar.port.get(event_ids)) == set(event_ids)


# --- listings and sync tokens ------------------------------------------------------------


def test_a_full_listing_holds_the_events_in_the_window_cancelled_ones_too(calendar):
    inside, cancelled, moved = (insert(calendar, day=d)["id"] for d in (10, 11, 12))
    calendar.user_delete(cancelled)
    late = {"start": {"dateTime": "2031-04-02T10:00:00Z"},
            "end": {"dateTime": "2031-04-02T11:00:00Z"}}  # fmt: skip
    calendar.user_patch(moved, **late)
    changes = calendar.port.changes(None, *WINDOW)
    assert changes.complete and changes.next_sync_token
    listed = {e["id"]: e for e in changes.events}
    assert {inside, cancelled} <= set(listed)
    assert moved not in listed
    assert listed[cancelled]["status"] == "cancelled"


def test_an_event_overlapping_the_window_start_is_listed(calendar):
    event_id = new_event_id()
    spans = {"start": {"dateTime": "2031-02-28T23:00:00Z"},
             "end": {"dateTime": "2031-03-01T01:00:00Z"}}  # fmt: skip
    calendar.port.write([EventWrite("insert", event_id, {**body(), **spans})])
    assert event_id in ids(calendar.port.changes(None, *WINDOW).events)


def test_changes_since_a_token_hold_what_changed_unclipped_and_not_the_rest(calendar):
    untouched, patched, deleted = (insert(calendar)["id"] for _ in range(3))
    token = settled_token(calendar)
    calendar.user_patch(patched, summary="crmsync contract edited")
    calendar.user_delete(deleted)
    far = new_event_id()  # outside the window of the full pass: still reported
    far_times = {"start": {"date": "2032-01-01"}, "end": {"date": "2032-01-02"}}
    calendar.port.write([EventWrite("insert", far, {**body(), **far_times})])

    def delta():
        changes = calendar.port.changes(token, *WINDOW)
        assert {patched, deleted, far} <= ids(changes.events)
        return changes

    changes = calendar.eventually(delta)
    assert not changes.complete
    assert untouched not in ids(changes.events)
    listed = {e["id"]: e for e in changes.events}
    assert listed[deleted]["status"] == "cancelled"
    assert listed[patched]["summary"] == "crmsync contract edited"


def test_our_own_writes_come_back_as_changes(calendar):
    event_id = insert(calendar)["id"]
    token = settled_token(calendar)
    write_one(calendar, EventWrite("patch", event_id, {"location": "Room 4"}))
    calendar.eventually(lambda: _holding(calendar, token, event_id))


def _holding(calendar, token: str, event_id: str):
    changes = calendar.port.changes(token, *WINDOW)
    assert event_id in ids(changes.events)
    return changes


def test_the_token_of_a_delta_reads_on_from_there(calendar):
    token = settled_token(calendar)
    first = insert(calendar)["id"]
    middle = calendar.eventually(lambda: _holding(calendar, token, first))
    second = insert(calendar)["id"]
    later = calendar.eventually(lambda: _holding(calendar, middle.next_sync_token, second))
    assert first not in ids(later.events)


def test_transform_sees_each_event_and_only_its_result_is_kept(calendar):
    event_id = insert(calendar)["id"]
    changes = calendar.port.changes(None, *WINDOW, transform=lambda e: e["id"])
    assert event_id in changes.events
    assert all(isinstance(e, str) for e in changes.events)


def test_has_changes_is_false_when_quiet_and_true_after_a_write_and_reads_only(calendar):
    event_id = insert(calendar)["id"]
    token = settled_token(calendar)
    assert calendar.port.has_changes(token) is False
    calendar.user_patch(event_id, location="Room 5")
    calendar.eventually(lambda: _has(calendar, token))
    assert calendar.port.has_changes(token) is True


def _has(calendar, token: str) -> None:
    assert calendar.port.has_changes(token) is True


def test_an_invalidated_token_raises_sync_token_expired(calendar):
    token = calendar.port.changes(None, *WINDOW).next_sync_token
    if not hasattr(calendar, "expire_tokens"):
        pytest.skip("Google's tokens cannot be invalidated on demand")
    calendar.expire_tokens()
    with pytest.raises(SyncTokenExpired):
        calendar.port.changes(token, *WINDOW)
    with pytest.raises(SyncTokenExpired):
        calendar.port.has_changes(token)


def test_a_token_older_than_four_weeks_raises_sync_token_expired(calendar):
    token = calendar.port.changes(None, *WINDOW).next_sync_token
    calendar.age(28 * DAY + 60)
    with pytest.raises(SyncTokenExpired):
        calendar.port.changes(token, *WINDOW)
