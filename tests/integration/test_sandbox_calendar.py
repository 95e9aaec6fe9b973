"""Calendar API v3 of the sandbox, driven through the real google-api-python-client.

Every behaviour is exercised with discovery-built services (``account.calendar``);
raw HTTP is used only for the sandbox control API and to receive push notifications.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from adapters import google_api

DAY = 86400
NY = "America/New_York"


# -- helpers -------------------------------------------------------------------------


def timed(start: str, end: str, tz: str | None = None) -> dict[str, Any]:
    extra = {"timeZone": tz} if tz else {}
    return {"start": {"dateTime": start, **extra}, "end": {"dateTime": end, **extra}}


def body(summary: str = "Meeting", day: str = "2026-06-01", hour: int = 9, **extra: Any):
    start = f"{day}T{hour:02d}:00:00Z"
    end = f"{day}T{hour + 1:02d}:00:00Z"
    return {"summary": summary, **timed(start, end), **extra}


def insert(account, event: dict[str, Any], **params: Any) -> dict[str, Any]:
    return account.calendar.events().insert(calendarId="primary", body=event, **params).execute()


def events(account):
    return account.calendar.events()


def list_all(account, **params: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every item over all pages, and the last page."""
    items, token = [], None
    while True:
        page = events(account).list(calendarId="primary", pageToken=token, **params).execute()
        items += page["items"]
        token = page.get("nextPageToken")
        if not token:
            return items, page


def error(caught: pytest.ExceptionInfo[HttpError]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, first entry of ``error.errors``) of an HttpError."""
    payload = json.loads(caught.value.content)["error"]
    assert payload["message"] == payload["errors"][0]["message"]
    return caught.value.resp.status, payload["errors"][0]


def with_header(request, name: str, value: str):
    request.headers[name] = value
    return request


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def etag_number(event: dict[str, Any]) -> int:
    assert re.fullmatch(r'"\d+"', event["etag"]), event["etag"]
    return int(event["etag"].strip('"'))


@pytest.fixture
def bob(make_account):
    return make_account("bob@example.com")


@pytest.fixture
def carol(make_account):
    return make_account("carol@example.com")


class Receiver:
    """A tiny loopback HTTP server that records push notification headers."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(
                    ({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def wait(self, sandbox, count: int, timeout: float = 5) -> list[dict[str, str]]:
        sandbox.state.notifier.drain()
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return [headers for headers, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


# -- calendars.get, insert and the Event resource -------------------------------------


def test_calendars_get_primary_and_own_email(account):
    primary = account.calendar.calendars().get(calendarId="primary").execute()
    assert primary["kind"] == "calendar#calendar"
    assert primary["id"] == primary["summary"] == "alice@example.com"
    assert primary["timeZone"] == "UTC" and primary["etag"].startswith('"')
    by_email = account.calendar.calendars().get(calendarId="alice@example.com").execute()
    assert by_email == primary


def test_insert_returns_google_shaped_event(account):
    event = insert(account, body(description="Agenda", location="Room 1"))
    assert re.fullmatch(r"[a-v0-9]{26}", event["id"])
    assert event["kind"] == "calendar#event" and event["status"] == "confirmed"
    assert event["iCalUID"] == f"{event['id']}@google.com"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", event["created"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["updated"])
    assert event["creator"] == event["organizer"] == {"email": "alice@example.com", "self": True}
    assert event["sequence"] == 0 and event["eventType"] == "default"
    assert event["reminders"] == {"useDefault": True}
    assert event["start"] == {"dateTime": "2026-06-01T09:00:00Z"}
    etag_number(event)
    eid = event["htmlLink"].split("eid=")[1]
    decoded = base64.urlsafe_b64decode(eid + "=" * (-len(eid) % 4)).decode()
    assert decoded == f"{event['id']} alice@example.com"
    assert events(account).get(calendarId="primary", eventId=event["id"]).execute() == event


def test_insert_with_client_id_and_ical_uid(account):
    event = insert(account, body(id="crm0act0001", iCalUID="crm-1@example.com"))
    assert event["id"] == "crm0act0001" and event["iCalUID"] == "crm-1@example.com"
    five = insert(account, body(id="abcde"))
    assert five["iCalUID"] == "abcde@google.com"


@pytest.mark.parametrize("bad_id", ["abcd", "ABCDEF", "abcdw1", "abc_def", "abc-def", "a" * 1025])
def test_insert_rejects_invalid_ids(account, bad_id):
    with pytest.raises(HttpError) as caught:
        insert(account, body(id=bad_id))
    assert error(caught) == (
        400,
        {"domain": "global", "reason": "invalid", "message": "Invalid resource id value."},
    )


def test_insert_duplicate_id_is_409(account):
    insert(account, body(id="dup00001"))
    with pytest.raises(HttpError) as caught:
        insert(account, body(id="dup00001"))
    status, err = error(caught)
    assert status == 409 and err["reason"] == "duplicate"
    assert err["message"] == "The requested identifier already exists."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": None}, "Missing start time."),
        ({"end": None}, "Missing end time."),
        ({"start": {"date": "2026-06-01"}}, "Start and end times must either both be"),
        (timed("2026-06-01T09:00:00", "2026-06-01T10:00:00"), "Missing time zone definition"),
        (timed("2026-06-01T09:00:00", "2026-06-01T10:00:00", "Mars/Olympus"), "Invalid time zone"),
        ({"start": {"dateTime": "June 1st"}}, "Invalid start time."),
        ({"start": {"date": "2026-02-30"}, "end": {"date": "2026-03-01"}}, "Invalid start time."),
        (timed("2026-06-01T10:00:00Z", "2026-06-01T09:00:00Z"), "The specified time range is"),
    ],
)
def test_insert_validates_start_and_end(account, change, message):
    event = {k: v for k, v in {**body(), **change}.items() if v is not None}
    with pytest.raises(HttpError) as caught:
        insert(account, event)
    status, err = error(caught)
    assert status == 400 and err["message"].startswith(message)


def test_send_updates_records_would_be_emails(account, bob, sandbox):
    guests = [{"email": "bob@example.com"}, {"email": "dave@elsewhere.org"}]
    quiet = insert(account, body(attendees=guests), sendUpdates="none")
    insert(account, body(attendees=guests))  # the default sends nothing either
    events(account).patch(
        calendarId="primary", eventId=quiet["id"], body={"summary": "x"}, sendUpdates="none"
    ).execute()
    events(account).delete(calendarId="primary", eventId=quiet["id"], sendUpdates="none").execute()
    assert sandbox.control("GET", "/_sandbox/calendar/outbox")["messages"] == []
    assert sandbox.state.ext["calendar"].outbox == []
    insert(account, body("Ext", attendees=guests), sendUpdates="externalOnly")
    sent = sandbox.control("GET", "/_sandbox/calendar/outbox")["messages"]
    assert [(m["to"], m["action"]) for m in sent] == [("dave@elsewhere.org", "invitation")]
    event = insert(account, body("All", attendees=guests), sendUpdates="all")
    events(account).delete(calendarId="primary", eventId=event["id"], sendUpdates="all").execute()
    sent = sandbox.control("GET", "/_sandbox/calendar/outbox")["messages"][1:]
    assert sorted((m["to"], m["action"], m["sendUpdates"]) for m in sent) == [
        ("bob@example.com", "cancellation", "all"),
        ("bob@example.com", "invitation", "all"),
        ("dave@elsewhere.org", "cancellation", "all"),
        ("dave@elsewhere.org", "invitation", "all"),
    ]


# -- get, patch, update, delete; etags and conditional requests -----------------------


def test_if_match_on_get_patch_update_delete(account):
    event = insert(account, body(id="cond00001"))
    stale = event["etag"]
    fresh = events(account).patch(calendarId="primary", eventId="cond00001", body={}).execute()
    requests = [
        events(account).get(calendarId="primary", eventId="cond00001"),
        events(account).patch(calendarId="primary", eventId="cond00001", body={"summary": "x"}),
        events(account).update(calendarId="primary", eventId="cond00001", body=body("y")),
        events(account).delete(calendarId="primary", eventId="cond00001"),
    ]
    for request in requests:
        with pytest.raises(HttpError) as caught:
            with_header(request, "If-Match", stale).execute()
        assert error(caught) == (
            412,
            {
                "domain": "global",
                "reason": "conditionNotMet",
                "message": "Precondition Failed",
                "locationType": "header",
                "location": "If-Match",
            },
        )
    request = events(account).patch(
        calendarId="primary", eventId="cond00001", body={"summary": "ok"}
    )
    patched = with_header(request, "If-Match", fresh["etag"]).execute()
    assert patched["summary"] == "ok"
    request = events(account).delete(calendarId="primary", eventId="cond00001")
    with_header(request, "If-Match", patched["etag"]).execute()
    current = events(account).get(calendarId="primary", eventId="cond00001").execute()
    assert current["status"] == "cancelled" and current["etag"] != patched["etag"]


def test_if_none_match_on_get_gives_304_when_unchanged(account):
    event = insert(account, body())
    request = events(account).get(calendarId="primary", eventId=event["id"])
    with pytest.raises(HttpError) as caught:
        with_header(request, "If-None-Match", event["etag"]).execute()
    assert caught.value.resp.status == 304
    request = events(account).get(calendarId="primary", eventId=event["id"])
    assert with_header(request, "If-None-Match", '"1"').execute()["id"] == event["id"]


def test_every_write_gives_new_etag_and_updated(account):
    event = insert(account, body())
    seen = [event]
    calls = [
        lambda: events(account).patch(calendarId="primary", eventId=event["id"], body={}),
        lambda: events(account).update(calendarId="primary", eventId=event["id"], body=body()),
        lambda: events(account).patch(calendarId="primary", eventId=event["id"], body={}),
    ]
    for make in calls:
        seen.append(make().execute())
    events(account).delete(calendarId="primary", eventId=event["id"]).execute()
    seen.append(events(account).get(calendarId="primary", eventId=event["id"]).execute())
    etags = [etag_number(e) for e in seen]
    updated = [e["updated"] for e in seen]
    assert etags == sorted(set(etags)) and updated == sorted(set(updated))
    assert {e["created"] for e in seen} == {event["created"]}


def test_patch_merges_fields_and_property_maps_update_replaces(account):
    event = insert(
        account,
        body(
            description="keep me",
            extendedProperties={"private": {"a": "1", "b": "2"}, "shared": {"s": "1"}},
        ),
    )
    change = {"summary": "Renamed", "extendedProperties": {"private": {"b": "3", "c": "4"}}}
    patched = (
        events(account).patch(calendarId="primary", eventId=event["id"], body=change).execute()
    )
    assert patched["summary"] == "Renamed" and patched["description"] == "keep me"
    assert patched["extendedProperties"] == {
        "private": {"a": "1", "b": "3", "c": "4"},
        "shared": {"s": "1"},
    }
    assert patched["start"] == event["start"] and patched["sequence"] == 0
    new = body("Replaced", hour=11, extendedProperties={"private": {"z": "9"}})
    updated = events(account).update(calendarId="primary", eventId=event["id"], body=new).execute()
    assert updated["summary"] == "Replaced" and "description" not in updated
    assert updated["extendedProperties"] == {"private": {"z": "9"}}
    assert updated["start"] == {"dateTime": "2026-06-01T11:00:00Z"} and updated["sequence"] == 1
    assert updated["id"] == event["id"] and updated["created"] == event["created"]
    without_times = events(account).update(
        calendarId="primary", eventId=event["id"], body={"summary": "x"}
    )
    with pytest.raises(HttpError) as caught:
        without_times.execute()
    assert error(caught) == (
        400,
        {"domain": "global", "reason": "invalid", "message": "Missing start time."},
    )


def test_deleted_event_keeps_id_and_can_be_restored(account):
    event = insert(account, body("Doomed", id="gone00001"))
    assert events(account).delete(calendarId="primary", eventId="gone00001").execute() == ""
    got = events(account).get(calendarId="primary", eventId="gone00001").execute()
    assert got["status"] == "cancelled" and got["summary"] == "Doomed"
    with pytest.raises(HttpError) as caught:
        events(account).delete(calendarId="primary", eventId="gone00001").execute()
    assert error(caught) == (
        410,
        {"domain": "global", "reason": "deleted", "message": "Resource has been deleted"},
    )
    with pytest.raises(HttpError) as caught:
        insert(account, body(id="gone00001"))
    assert error(caught)[0] == 409 and error(caught)[1]["reason"] == "duplicate"
    restored = (
        events(account)
        .patch(calendarId="primary", eventId="gone00001", body={"status": "confirmed"})
        .execute()
    )
    assert restored["status"] == "confirmed" and restored["summary"] == "Doomed"
    assert restored["created"] == event["created"]
    events(account).delete(calendarId="primary", eventId="gone00001").execute()
    again = events(account).update(calendarId="primary", eventId="gone00001", body=body("Back"))
    assert again.execute()["status"] == "confirmed"
    with pytest.raises(HttpError) as caught:
        events(account).get(calendarId="primary", eventId="never0001").execute()
    assert error(caught) == (
        404,
        {"domain": "global", "reason": "notFound", "message": "Not Found"},
    )


# -- events.list ---------------------------------------------------------------------


def insert_many(account, sandbox, count: int) -> list[str]:
    """``count`` events inserted through HTTP batches (fast); their ids."""
    ids = [f"bulk{i:05d}" for i in range(count)]
    for first in range(0, count, 500):
        batch = google_api.new_batch("calendar", sandbox.url)
        for event_id in ids[first : first + 500]:
            day = 1 + int(event_id[4:]) % 28
            batch.add(
                events(account).insert(
                    calendarId="primary", body=body(id=event_id, day=f"2026-07-{day:02d}")
                )
            )
        batch.execute()
    return ids


def test_list_envelope_paging_and_tokens(account, sandbox):
    ids = insert_many(account, sandbox, 260)
    first = events(account).list(calendarId="primary").execute()
    assert {k: first[k] for k in ("kind", "summary", "timeZone", "accessRole")} == {
        "kind": "calendar#events",
        "summary": "alice@example.com",
        "timeZone": "UTC",
        "accessRole": "owner",
    }
    assert first["etag"].startswith('"') and first["updated"].endswith("Z")
    assert isinstance(first["defaultReminders"], list)
    assert len(first["items"]) == 250 and "nextPageToken" in first
    assert "nextSyncToken" not in first
    seen, pages, token = [], 0, None
    while True:
        page = events(account).list(calendarId="primary", maxResults=70, pageToken=token).execute()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        assert ("nextPageToken" in page) != ("nextSyncToken" in page)
        token = page.get("nextPageToken")
        if token is None:
            break
    assert pages == 4 and sorted(seen) == ids
    clamped = events(account).list(calendarId="primary", maxResults=5000).execute()
    assert len(clamped["items"]) == 260 and "nextSyncToken" in clamped
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary", maxResults=0).execute()
    assert error(caught)[0] == 400
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary", pageToken="garbage").execute()
    assert error(caught)[0] == 400


def test_list_time_bounds_are_exclusive(account):
    insert(account, body("ends at min", hour=8))  # 08-09
    insert(account, body("inside", hour=10))  # 10-11
    insert(account, body("starts at max", hour=12))  # 12-13
    insert(
        account,
        {"summary": "all day", "start": {"date": "2026-06-01"}, "end": {"date": "2026-06-02"}},
    )
    found = (
        events(account)
        .list(calendarId="primary", timeMin="2026-06-01T09:00:00Z", timeMax="2026-06-01T12:00:00Z")
        .execute()
    )
    assert sorted(item["summary"] for item in found["items"]) == ["all day", "inside"]
    found = (
        events(account).list(calendarId="primary", timeMin="2026-06-02T00:00:00+00:00").execute()
    )
    assert found["items"] == []
    with pytest.raises(HttpError) as caught:
        events(account).list(
            calendarId="primary", timeMin="2026-06-01T12:00:00Z", timeMax="2026-06-01T12:00:00Z"
        ).execute()
    assert error(caught) == (
        400,
        {
            "domain": "calendar",
            "reason": "timeRangeEmpty",
            "message": "The specified time range is empty.",
            "locationType": "parameter",
            "location": "timeMax",
        },
    )
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary", timeMin="2026-06-01T12:00:00").execute()
    assert error(caught)[0] == 400
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary", timeZone="Nowhere/Special").execute()
    assert error(caught)[0] == 400


def test_list_order_by(account):
    late = insert(account, body("late", hour=15))
    insert(account, body("early", hour=8))
    insert(account, body("middle", hour=11))
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary", orderBy="startTime").execute()
    assert error(caught) == (
        400,
        {
            "domain": "global",
            "reason": "invalid",
            "message": "The requested ordering is not available for the particular query.",
            "locationType": "parameter",
            "location": "orderBy",
        },
    )
    by_start = (
        events(account).list(calendarId="primary", orderBy="startTime", singleEvents=True).execute()
    )
    assert [e["summary"] for e in by_start["items"]] == ["early", "middle", "late"]
    events(account).patch(calendarId="primary", eventId=late["id"], body={}).execute()
    by_updated = events(account).list(calendarId="primary", orderBy="updated").execute()
    assert [e["summary"] for e in by_updated["items"]] == ["early", "middle", "late"]


def test_list_filters_extended_properties_ical_uid_q_and_updated_min(account, sandbox):
    a = insert(
        account, body("Budget review", extendedProperties={"private": {"crm": "1", "k": "x"}})
    )
    insert(
        account,
        body("Standup", description="daily budget", extendedProperties={"private": {"crm": "1"}}),
    )
    insert(account, body("Lunch", location="Cafe", extendedProperties={"shared": {"crm": "1"}}))

    def summaries(**params: Any) -> list[str]:
        found = events(account).list(calendarId="primary", **params).execute()
        return sorted(item["summary"] for item in found["items"])

    assert summaries(privateExtendedProperty="crm=1") == ["Budget review", "Standup"]
    assert summaries(privateExtendedProperty=["crm=1", "k=x"]) == ["Budget review"]
    assert summaries(sharedExtendedProperty="crm=1") == ["Lunch"]
    assert summaries(privateExtendedProperty="crm=2") == []
    assert summaries(iCalUID=a["iCalUID"]) == ["Budget review"]
    assert summaries(q="budget") == ["Budget review", "Standup"]
    assert summaries(q="cafe") == ["Lunch"]
    mark = sandbox.control("POST", "/_sandbox/clock", {"advanceSeconds": 1})["now"]
    events(account).patch(calendarId="primary", eventId=a["id"], body={}).execute()
    assert summaries(updatedMin=mark) == ["Budget review"]


def test_list_show_deleted_and_updated_min_include_cancelled(account, sandbox):
    keep = insert(account, body("keep"))
    gone = insert(account, body("gone"))
    mark = sandbox.control("POST", "/_sandbox/clock", {"advanceSeconds": 1})["now"]
    events(account).delete(calendarId="primary", eventId=gone["id"]).execute()
    default = events(account).list(calendarId="primary").execute()["items"]
    assert [e["id"] for e in default] == [keep["id"]]
    shown = events(account).list(calendarId="primary", showDeleted=True).execute()["items"]
    cancelled = next(e for e in shown if e["id"] == gone["id"])
    assert cancelled["status"] == "cancelled" and cancelled["summary"] == "gone"
    since = events(account).list(calendarId="primary", updatedMin=mark).execute()["items"]
    assert [(e["id"], e["status"]) for e in since] == [(gone["id"], "cancelled")]
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary", updatedMin="2020-01-01T00:00:00Z").execute()
    assert error(caught) == (
        410,
        {
            "domain": "calendar",
            "reason": "updatedMinTooLongAgo",
            "message": "The requested minimum modification time lies too far in the past.",
            "locationType": "parameter",
            "location": "updatedMin",
        },
    )


# -- sync tokens ---------------------------------------------------------------------


def full_sync(account, **params: Any) -> tuple[list[dict[str, Any]], str]:
    items, last = list_all(account, **params)
    return items, last["nextSyncToken"]


def test_incremental_sync_returns_changes_and_tombstones(account):
    keep = insert(account, body("unchanged"))
    edit = insert(account, body("to edit"))
    doomed = insert(account, body("to delete"))
    items, token = full_sync(account)
    assert {e["id"] for e in items} == {keep["id"], edit["id"], doomed["id"]}
    events(account).patch(
        calendarId="primary", eventId=edit["id"], body={"summary": "edited"}
    ).execute()
    events(account).delete(calendarId="primary", eventId=doomed["id"]).execute()
    created = insert(account, body("new"))
    changes, last = list_all(account, syncToken=token)
    by_id = {e["id"]: e for e in changes}
    assert set(by_id) == {edit["id"], doomed["id"], created["id"]}
    assert by_id[edit["id"]]["summary"] == "edited"
    tombstone = by_id[doomed["id"]]
    assert set(tombstone) == {"kind", "etag", "id", "status"}
    assert tombstone["status"] == "cancelled" and tombstone["kind"] == "calendar#event"
    detailed, _ = list_all(account, syncToken=token, showDeleted=True)
    full = next(e for e in detailed if e["id"] == doomed["id"])
    assert full["status"] == "cancelled" and full["summary"] == "to delete"
    quiet = events(account).list(calendarId="primary", syncToken=last["nextSyncToken"]).execute()
    assert quiet["items"] == [] and "nextPageToken" not in quiet
    assert quiet["nextSyncToken"]


def test_incremental_sync_pages_and_token_only_on_last_page(account, sandbox):
    _, token = full_sync(account)
    insert_many(account, sandbox, 25)
    pages, seen, page_token = [], [], None
    while True:
        page = (
            events(account)
            .list(calendarId="primary", syncToken=token, maxResults=10, pageToken=page_token)
            .execute()
        )
        pages.append(page)
        seen += [e["id"] for e in page["items"]]
        if len(pages) == 1:
            insert(account, body("during paging"))  # must not be lost
        page_token = page.get("nextPageToken")
        if page_token is None:
            break
    assert len(pages) == 3 and len(seen) == 25 == len(set(seen))
    assert all("nextSyncToken" not in p and "nextPageToken" in p for p in pages[:-1])
    assert "nextSyncToken" in pages[-1] and "nextPageToken" not in pages[-1]
    later, _ = list_all(account, syncToken=pages[-1]["nextSyncToken"])
    assert [e["summary"] for e in later] == ["during paging"]


@pytest.mark.parametrize(
    "param",
    [
        {"timeMin": "2026-01-01T00:00:00Z"},
        {"timeMax": "2026-01-01T00:00:00Z"},
        {"updatedMin": "2026-01-01T00:00:00Z"},
        {"q": "x"},
        {"orderBy": "updated"},
        {"iCalUID": "x@google.com"},
        {"privateExtendedProperty": "a=1"},
        {"sharedExtendedProperty": "a=1"},
    ],
)
def test_sync_token_rejects_incompatible_filters(account, param):
    _, token = full_sync(account)
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary", syncToken=token, **param).execute()
    status, err = error(caught)
    assert status == 400 and err["reason"] == "invalid" and err["location"] == next(iter(param))


FULL_SYNC_REQUIRED = {
    "domain": "calendar",
    "reason": "fullSyncRequired",
    "message": "Sync token is no longer valid, a full sync is required.",
    "locationType": "parameter",
    "location": "syncToken",
}


@pytest.mark.parametrize("token", ["garbage", "CPjflvfe1YEDEPjflvfe1YEDGAUg0_uyjwI=", "!!"])
def test_garbage_sync_token_is_410_full_sync_required(account, token):
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary", syncToken=token).execute()
    assert error(caught) == (410, FULL_SYNC_REQUIRED)


def test_invalidate_control_route_fails_every_outstanding_token(account, bob, sandbox):
    _, alice_token = full_sync(account)
    _, bob_token = full_sync(bob)
    assert sandbox.control("POST", "/_sandbox/calendar/invalidateSyncTokens")["generation"] == 1
    for who, token in ((account, alice_token), (bob, bob_token)):
        with pytest.raises(HttpError) as caught:
            events(who).list(calendarId="primary", syncToken=token).execute()
        assert error(caught) == (410, FULL_SYNC_REQUIRED)
    _, fresh = full_sync(account)
    assert events(account).list(calendarId="primary", syncToken=fresh).execute()["items"] == []


def test_sync_tokens_expire_after_28_days_of_sandbox_time(account, sandbox):
    _, old = full_sync(account)
    sandbox.advance(20 * DAY)
    _, younger = full_sync(account)
    assert events(account).list(calendarId="primary", syncToken=old).execute()["items"] == []
    sandbox.advance(9 * DAY)  # old is 29 days old, younger 9
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary", syncToken=old).execute()
    assert error(caught) == (410, FULL_SYNC_REQUIRED)
    assert events(account).list(calendarId="primary", syncToken=younger).execute()["items"] == []


def test_sync_token_of_another_account_is_410(account, bob):
    _, token = full_sync(account)
    with pytest.raises(HttpError) as caught:
        events(bob).list(calendarId="primary", syncToken=token).execute()
    assert error(caught) == (410, FULL_SYNC_REQUIRED)


def test_incremental_results_are_not_clipped_to_the_first_window(account):
    inside = insert(account, body("inside", day="2026-06-10"))
    outside = insert(account, body("outside", day="2026-01-10"))
    items, token = full_sync(account, timeMin="2026-06-01T00:00:00Z")
    assert [e["id"] for e in items] == [inside["id"]]
    events(account).patch(
        calendarId="primary", eventId=outside["id"], body={"summary": "x"}
    ).execute()
    changes, _ = list_all(account, syncToken=token)
    assert [e["id"] for e in changes] == [outside["id"]]


# -- recurring events ----------------------------------------------------------------


def weekly(summary: str = "Weekly", **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        **timed("2026-03-02T09:00:00", "2026-03-02T10:00:00", NY),
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
        **extra,
    }


def instances(account, event_id: str, **params: Any) -> list[dict[str, Any]]:
    return (
        events(account)
        .instances(calendarId="primary", eventId=event_id, **params)
        .execute()["items"]
    )


def test_recurring_instances_ids_fields_and_dst_wall_clock(account):
    master = insert(account, weekly(id="series001"))
    assert master["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=4"]
    found = instances(account, "series001", timeZone=NY)
    assert [i["id"] for i in found] == [
        "series001_20260302T140000Z",
        "series001_20260309T130000Z",  # New York switched to EDT on 2026-03-08
        "series001_20260316T130000Z",
        "series001_20260323T130000Z",
    ]
    assert [i["start"]["dateTime"][11:] for i in found] == ["09:00:00-05:00"] + [
        "09:00:00-04:00"
    ] * 3
    first = found[0]
    assert first["recurringEventId"] == "series001" and "recurrence" not in first
    assert first["originalStartTime"] == {"dateTime": "2026-03-02T09:00:00-05:00", "timeZone": NY}
    assert first["iCalUID"] == master["iCalUID"] and first["summary"] == "Weekly"
    single = events(account).get(calendarId="primary", eventId="series001_20260309T130000Z")
    assert single.execute()["start"] == {"dateTime": "2026-03-09T13:00:00Z", "timeZone": NY}
    with pytest.raises(HttpError) as caught:
        events(account).get(calendarId="primary", eventId="series001_20260309T140000Z").execute()
    assert error(caught)[0] == 404


def test_all_day_series_ids_and_exdate(account):
    insert(
        account,
        {
            "id": "annual001",
            "summary": "Holiday",
            "start": {"date": "2026-12-30"},
            "end": {"date": "2026-12-31"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=4", "EXDATE;VALUE=DATE:20261231"],
        },
    )
    found = instances(account, "annual001")
    assert [i["id"] for i in found] == [
        "annual001_20261230",
        "annual001_20270101",
        "annual001_20270102",
    ]
    assert found[1]["start"] == {"date": "2027-01-01"} and found[1]["end"] == {"date": "2027-01-02"}
    assert found[1]["originalStartTime"] == {"date": "2027-01-01"}


def test_until_exdate_and_rdate_on_a_timed_series(account):
    insert(
        account,
        {
            **weekly(id="rules0001"),
            "recurrence": [
                "RRULE:FREQ=DAILY;UNTIL=20260305T235959Z",
                "EXDATE;TZID=America/New_York:20260303T090000",
                "RDATE:20260310T140000Z",
            ],
        },
    )
    found = instances(account, "rules0001", timeZone=NY)
    assert [i["start"]["dateTime"] for i in found] == [
        "2026-03-02T09:00:00-05:00",
        "2026-03-04T09:00:00-05:00",
        "2026-03-05T09:00:00-05:00",
        "2026-03-10T10:00:00-04:00",
    ]


def test_recurring_timed_event_requires_time_zone_and_valid_rule(account):
    for change in (
        timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"),
        {"recurrence": ["RRULE:FREQ=SOMETIMES"]},
        {"recurrence": ["DTSTART:20260302T090000Z"]},
    ):
        with pytest.raises(HttpError) as caught:
            insert(account, {**weekly(), **change})
        assert error(caught)[0] == 400, change


def test_instances_window_paging_and_single_events_list(account):
    insert(account, {**weekly(id="paged0001"), "recurrence": ["RRULE:FREQ=DAILY;COUNT=10"]})
    windowed = instances(
        account, "paged0001", timeMin="2026-03-04T15:00:00Z", timeMax="2026-03-07T14:00:00Z"
    )
    # timeMin is inclusive on the end for instances: the 03-04 instance ends at 15:00Z
    assert [i["id"][-16:-8] for i in windowed] == ["20260304", "20260305", "20260306"]
    page = events(account).instances(calendarId="primary", eventId="paged0001", maxResults=4)
    first = page.execute()
    assert len(first["items"]) == 4 and "nextSyncToken" not in first
    rest = (
        events(account)
        .instances(calendarId="primary", eventId="paged0001", pageToken=first["nextPageToken"])
        .execute()
    )
    assert len(rest["items"]) == 6 and "nextPageToken" not in rest
    expanded, _ = list_all(account, singleEvents=True, orderBy="startTime")
    assert [e["id"] for e in expanded] == [i["id"] for i in first["items"] + rest["items"]]
    listed, _ = list_all(account)
    assert [e["id"] for e in listed] == ["paged0001"]


def test_instance_patch_and_delete_become_exceptions(account):
    insert(account, weekly(id="moved0001"))
    _, token = full_sync(account, singleEvents=True)
    moved = (
        events(account)
        .patch(
            calendarId="primary",
            eventId="moved0001_20260309T130000Z",
            body={"summary": "Moved", **timed("2026-03-10T15:00:00Z", "2026-03-10T16:00:00Z", NY)},
        )
        .execute()
    )
    assert moved["id"] == "moved0001_20260309T130000Z" and moved["recurringEventId"] == "moved0001"
    assert moved["originalStartTime"]["dateTime"] == "2026-03-09T13:00:00Z"
    events(account).delete(calendarId="primary", eventId="moved0001_20260316T130000Z").execute()
    cancelled = get(account, "moved0001_20260316T130000Z")
    assert cancelled == {
        "kind": "calendar#event",
        "etag": cancelled["etag"],
        "id": "moved0001_20260316T130000Z",
        "status": "cancelled",
        "recurringEventId": "moved0001",
        "originalStartTime": {"dateTime": "2026-03-16T13:00:00Z", "timeZone": NY},
    }
    expanded = instances(account, "moved0001")
    assert [i.get("summary") for i in expanded] == ["Weekly", "Moved", "Weekly"]
    with_deleted = instances(account, "moved0001", showDeleted=True)
    assert [i["status"] for i in with_deleted] == [
        "confirmed",
        "confirmed",
        "cancelled",
        "confirmed",
    ]
    single, _ = list_all(account, singleEvents=True, orderBy="startTime")
    assert [e.get("summary") for e in single] == ["Weekly", "Moved", "Weekly"]
    plain, _ = list_all(account)  # cancelled exceptions show even without showDeleted
    assert sorted((e["id"], e["status"]) for e in plain) == [
        ("moved0001", "confirmed"),
        ("moved0001_20260309T130000Z", "confirmed"),
        ("moved0001_20260316T130000Z", "cancelled"),
    ]
    changes, _ = list_all(account, syncToken=token, singleEvents=True)
    assert sorted((e["id"], e["status"]) for e in changes) == [
        ("moved0001_20260309T130000Z", "confirmed"),
        ("moved0001_20260316T130000Z", "cancelled"),
    ]
    with pytest.raises(HttpError) as caught:
        events(account).delete(calendarId="primary", eventId="moved0001_20260316T130000Z").execute()
    assert error(caught)[0] == 410


def test_series_change_shows_up_expanded_in_incremental_sync(account):
    insert(account, weekly(id="change001"))
    _, token = full_sync(account, singleEvents=True)
    events(account).patch(
        calendarId="primary", eventId="change001", body={"summary": "Renamed"}
    ).execute()
    changes, _ = list_all(account, syncToken=token, singleEvents=True)
    assert len(changes) == 4 and {e["summary"] for e in changes} == {"Renamed"}
    assert all(e["recurringEventId"] == "change001" for e in changes)
    _, token = full_sync(account, singleEvents=True)
    events(account).delete(calendarId="primary", eventId="change001").execute()
    changes, _ = list_all(account, syncToken=token, singleEvents=True)
    assert [(e["id"], e["status"]) for e in changes] == [("change001", "cancelled")]


def test_infinite_rule_expansion_is_bounded(account):
    insert(account, {**weekly(id="forever01"), "recurrence": ["RRULE:FREQ=DAILY"]})
    started = time.monotonic()
    expanded, last = list_all(account, singleEvents=True, maxResults=2500)
    assert 300 < len(expanded) <= 730 and "nextSyncToken" in last
    assert len(instances(account, "forever01", maxResults=2500)) == len(expanded)
    window = instances(
        account, "forever01", timeMin="2030-01-01T00:00:00Z", timeMax="2030-01-03T00:00:00Z"
    )
    assert [i["id"] for i in window] == ["forever01_20300101T140000Z", "forever01_20300102T140000Z"]
    assert time.monotonic() - started < 5


# -- time zones ----------------------------------------------------------------------


def test_extreme_time_zones_round_trip(account):
    kiritimati = insert(
        account,
        {
            "summary": "UTC+14",
            **timed("2026-05-01T09:00:00", "2026-05-01T10:00:00", "Pacific/Kiritimati"),
        },
    )
    minus12 = insert(
        account,
        {
            "summary": "UTC-12",
            **timed("2026-05-01T09:00:00-12:00", "2026-05-01T10:00:00-12:00", "Etc/GMT+12"),
        },
    )
    assert kiritimati["start"] == {
        "dateTime": "2026-04-30T19:00:00Z",
        "timeZone": "Pacific/Kiritimati",
    }
    assert minus12["start"] == {"dateTime": "2026-05-01T21:00:00Z", "timeZone": "Etc/GMT+12"}
    local = (
        events(account)
        .get(calendarId="primary", eventId=kiritimati["id"], timeZone="Pacific/Kiritimati")
        .execute()
    )
    assert local["start"]["dateTime"] == "2026-05-01T09:00:00+14:00"
    local = events(account).get(calendarId="primary", eventId=minus12["id"], timeZone="Etc/GMT+12")
    assert local.execute()["end"]["dateTime"] == "2026-05-01T10:00:00-12:00"
    listed = {
        e["summary"]: e for e in events(account).list(calendarId="primary").execute()["items"]
    }
    assert listed["UTC+14"]["start"] == kiritimati["start"]
    assert listed["UTC-12"]["end"] == minus12["end"]


def test_all_day_events_keep_their_dates(account):
    event = insert(
        account, {"summary": "NYE", "start": {"date": "2026-12-31"}, "end": {"date": "2027-01-02"}}
    )
    assert event["start"] == {"date": "2026-12-31"} and event["end"] == {"date": "2027-01-02"}
    for tz in ("Pacific/Kiritimati", "Etc/GMT+12"):
        listed = events(account).list(calendarId="primary", timeZone=tz).execute()["items"]
        assert listed[0]["start"] == {"date": "2026-12-31"} and listed[0]["end"] == {
            "date": "2027-01-02"
        }


def test_timed_event_across_dst_transition_round_trips(account):
    event = insert(
        account, {"summary": "DST", **timed("2026-03-08T01:30:00", "2026-03-08T03:30:00", NY)}
    )
    assert event["start"] == {"dateTime": "2026-03-08T06:30:00Z", "timeZone": NY}
    assert event["end"] == {"dateTime": "2026-03-08T07:30:00Z", "timeZone": NY}  # one real hour
    local = events(account).get(calendarId="primary", eventId=event["id"], timeZone=NY).execute()
    assert local["start"]["dateTime"] == "2026-03-08T01:30:00-05:00"
    assert local["end"]["dateTime"] == "2026-03-08T03:30:00-04:00"


# -- attendee copies -----------------------------------------------------------------


def meeting(*guests: str, **extra: Any) -> dict[str, Any]:
    return body("Shared", id="shared001", attendees=[{"email": g} for g in guests], **extra)


def get(account, event_id: str = "shared001") -> dict[str, Any]:
    return events(account).get(calendarId="primary", eventId=event_id).execute()


def test_attendee_gets_a_copy_with_the_same_id(account, bob):
    original = insert(account, meeting("bob@example.com", "dave@elsewhere.org"))
    copy = get(bob)
    assert copy["id"] == original["id"] and copy["iCalUID"] == original["iCalUID"]
    assert copy["organizer"] == {"email": "alice@example.com"}
    assert copy["creator"] == {"email": "alice@example.com"}
    assert copy["summary"] == "Shared" and copy["start"] == original["start"]
    mine = {a["email"]: a for a in copy["attendees"]}
    assert mine["bob@example.com"] == {
        "email": "bob@example.com",
        "responseStatus": "needsAction",
        "self": True,
    }
    assert "self" not in mine["dave@elsewhere.org"]
    assert all("self" not in a for a in original["attendees"])
    assert [e["id"] for e in events(bob).list(calendarId="primary").execute()["items"]] == [
        "shared001"
    ]
    trimmed = events(bob).get(calendarId="primary", eventId="shared001", maxAttendees=1).execute()
    assert trimmed["attendeesOmitted"] is True
    assert [a["email"] for a in trimmed["attendees"]] == ["bob@example.com"]


def test_organizer_edits_reach_copies_and_attendee_sync(account, bob):
    insert(account, meeting("bob@example.com"))
    _, token = full_sync(bob)
    events(account).patch(
        calendarId="primary", eventId="shared001", body={"summary": "Moved"}
    ).execute()
    changes, last = list_all(bob, syncToken=token)
    assert [(e["id"], e["summary"]) for e in changes] == [("shared001", "Moved")]
    token = last["nextSyncToken"]
    events(account).patch(
        calendarId="primary",
        eventId="shared001",
        body={"extendedProperties": {"private": {"a": "1"}}},
    ).execute()
    quiet, last = list_all(bob, syncToken=token)
    assert quiet == []  # the organizer's private properties are not shared
    events(account).patch(
        calendarId="primary", eventId="shared001", body={"attendees": []}
    ).execute()
    changes, last = list_all(bob, syncToken=last["nextSyncToken"])
    assert [(e["id"], e["status"]) for e in changes] == [("shared001", "cancelled")]
    events(account).patch(
        calendarId="primary",
        eventId="shared001",
        body={"attendees": [{"email": "bob@example.com"}]},
    ).execute()
    assert get(bob)["status"] == "confirmed"
    events(account).delete(calendarId="primary", eventId="shared001").execute()
    changes, _ = list_all(bob, syncToken=last["nextSyncToken"])
    assert [(e["id"], e["status"]) for e in changes] == [("shared001", "cancelled")]
    assert get(bob)["status"] == "cancelled"


def test_attendee_response_propagates_to_organizer_and_other_copies(account, bob, carol):
    insert(account, meeting("bob@example.com", "carol@example.com"))
    _, alice_token = full_sync(account)
    copy = get(bob)
    for attendee in copy["attendees"]:
        if attendee.get("self"):
            attendee["responseStatus"] = "accepted"
    answered = (
        events(bob)
        .patch(calendarId="primary", eventId="shared001", body={"attendees": copy["attendees"]})
        .execute()
    )
    assert answered["etag"] != copy["etag"]

    def status_of(event: dict[str, Any]) -> str:
        return next(a for a in event["attendees"] if a["email"] == "bob@example.com")[
            "responseStatus"
        ]

    assert status_of(answered) == status_of(get(account)) == status_of(get(carol)) == "accepted"
    changes, _ = list_all(account, syncToken=alice_token)
    assert [e["id"] for e in changes] == ["shared001"]
    whole = get(bob)  # update: the full resource back, with only personal changes
    for attendee in whole["attendees"]:
        if attendee.get("self"):
            attendee["responseStatus"] = "tentative"
    whole["reminders"] = {"useDefault": False, "overrides": [{"method": "popup", "minutes": 5}]}
    full = events(bob).update(calendarId="primary", eventId="shared001", body=whole).execute()
    assert status_of(full) == status_of(get(account)) == "tentative"
    assert full["reminders"]["useDefault"] is False
    assert get(account)["reminders"] == {"useDefault": True}


@pytest.mark.parametrize(
    "change",
    [
        {"summary": "Hijacked"},
        timed("2026-06-01T12:00:00Z", "2026-06-01T13:00:00Z"),
        {"attendees": [{"email": "bob@example.com"}, {"email": "eve@elsewhere.org"}]},
        {"extendedProperties": {"shared": {"k": "v"}}},
        {"description": "notes"},
    ],
)
def test_attendee_may_not_change_anything_but_their_response(account, bob, change):
    insert(account, meeting("bob@example.com"))
    with pytest.raises(HttpError) as caught:
        events(bob).patch(calendarId="primary", eventId="shared001", body=change).execute()
    assert error(caught) == (
        403,
        {
            "domain": "calendar",
            "reason": "forbiddenForNonOrganizer",
            "message": "Shared properties can only be changed by the organizer of the event.",
        },
    )
    assert get(account)["summary"] == get(bob)["summary"] == "Shared"


def test_attendee_private_properties_stay_on_their_copy(account, bob):
    insert(account, meeting("bob@example.com", extendedProperties={"shared": {"s": "1"}}))
    mine = (
        events(bob)
        .patch(
            calendarId="primary",
            eventId="shared001",
            body={"extendedProperties": {"private": {"note": "mine"}}},
        )
        .execute()
    )
    assert mine["extendedProperties"] == {"private": {"note": "mine"}, "shared": {"s": "1"}}
    assert get(account)["extendedProperties"] == {"shared": {"s": "1"}}
    events(account).patch(
        calendarId="primary", eventId="shared001", body={"summary": "Renamed"}
    ).execute()
    assert get(bob)["extendedProperties"]["private"] == {"note": "mine"}


def test_attendee_deleting_their_copy_declines(account, bob):
    insert(account, meeting("bob@example.com"))
    events(bob).delete(calendarId="primary", eventId="shared001").execute()
    assert get(bob)["status"] == "cancelled"
    organizer_view = get(account)
    assert organizer_view["status"] == "confirmed"
    assert organizer_view["attendees"][0]["responseStatus"] == "declined"
    with pytest.raises(HttpError) as caught:
        events(bob).delete(calendarId="primary", eventId="shared001").execute()
    assert error(caught)[0] == 410


def test_recurring_invitation_instances_on_the_copy(account, bob):
    insert(account, weekly(id="team00001", attendees=[{"email": "bob@example.com"}]))
    assert len(instances(bob, "team00001")) == 4
    answer = {"attendees": [{"email": "bob@example.com", "responseStatus": "declined"}]}
    events(bob).patch(
        calendarId="primary", eventId="team00001_20260316T130000Z", body=answer
    ).execute()
    organizer_view = get(account, "team00001_20260316T130000Z")
    assert organizer_view["attendees"][0]["responseStatus"] == "declined"
    assert get(account, "team00001")["attendees"][0]["responseStatus"] == "needsAction"
    events(account).delete(calendarId="primary", eventId="team00001_20260309T130000Z").execute()
    assert get(bob, "team00001_20260309T130000Z")["status"] == "cancelled"
    assert len(instances(bob, "team00001")) == 3


# -- push notifications --------------------------------------------------------------


def test_watch_sends_sync_then_exists_and_stop(account, bob, sandbox, receiver):
    channel = (
        events(account)
        .watch(
            calendarId="primary",
            body={"id": "chan-1", "type": "web_hook", "address": receiver.url, "token": "secret"},
        )
        .execute()
    )
    assert channel["kind"] == "api#channel" and channel["id"] == "chan-1"
    assert channel["resourceId"] and channel["token"] == "secret"
    assert channel["resourceUri"].endswith("/calendar/v3/calendars/primary/events?alt=json")
    now_ms = time.time() * 1000
    assert 6 * DAY * 1000 < int(channel["expiration"]) - now_ms <= 7 * DAY * 1000 + 5000
    first = receiver.wait(sandbox, 1)
    assert first[0]["x-goog-resource-state"] == "sync"
    assert first[0]["x-goog-message-number"] == "1"
    insert(account, body())
    insert(bob, meeting("alice@example.com"))  # a copy lands in Alice's calendar
    received = receiver.wait(sandbox, 3)
    assert len(received) == 3
    for headers in received[1:]:
        assert headers["x-goog-resource-state"] == "exists"
        assert headers["x-goog-channel-id"] == "chan-1"
        assert headers["x-goog-channel-token"] == "secret"
        assert headers["x-goog-resource-id"] == channel["resourceId"]
        assert headers["x-goog-resource-uri"] == channel["resourceUri"]
        assert headers["x-goog-channel-expiration"].endswith(" GMT")
    numbers = [int(h["x-goog-message-number"]) for h in received]
    assert numbers == sorted(set(numbers))
    assert all(body == b"" for _, body in receiver.received)
    stop = {"id": "chan-1", "resourceId": channel["resourceId"]}
    with pytest.raises(HttpError) as caught:
        bob.calendar.channels().stop(body=stop).execute()  # not Bob's channel
    assert error(caught)[0] == 404
    assert account.calendar.channels().stop(body=stop).execute() == ""
    insert(account, body())
    assert len(receiver.wait(sandbox, 4, timeout=0.2)) == 3  # stopped: nothing more
    with pytest.raises(HttpError) as caught:
        account.calendar.channels().stop(body=stop).execute()
    assert error(caught)[0] == 404


def test_watch_requires_a_loopback_address_and_a_unique_id(account, receiver):
    for address in ("https://example.com/hook", "ftp://127.0.0.1/x", "http://10.0.0.1/hook"):
        with pytest.raises(HttpError) as caught:
            events(account).watch(
                calendarId="primary", body={"id": "c", "type": "web_hook", "address": address}
            ).execute()
        assert error(caught)[0] == 400, address
    channel = {"id": "once", "type": "webhook", "address": receiver.url}
    events(account).watch(calendarId="primary", body=channel).execute()
    with pytest.raises(HttpError) as caught:
        events(account).watch(calendarId="primary", body=channel).execute()
    assert error(caught)[1]["reason"] == "channelIdNotUnique"


def test_expired_channel_stops_notifying(account, sandbox, receiver):
    channel = (
        events(account)
        .watch(
            calendarId="primary",
            body={
                "id": "short",
                "type": "web_hook",
                "address": receiver.url,
                "params": {"ttl": "60"},
            },
        )
        .execute()
    )
    assert int(channel["expiration"]) - time.time() * 1000 <= 61_000
    insert(account, body())
    assert len(receiver.wait(sandbox, 2)) == 2
    sandbox.advance(120)
    insert(account, body())
    assert len(receiver.wait(sandbox, 3, timeout=0.2)) == 2


# -- batch, faults, quota, isolation -------------------------------------------------


def test_batch_of_inserts_and_patches_with_one_failing_part(account, sandbox):
    insert(account, body(id="taken0001"))
    results: dict[str, Any] = {}

    def collect(request_id, response, exception):
        results[request_id] = exception or response

    batch = google_api.new_batch("calendar", sandbox.url, callback=collect)
    batch.add(
        events(account).insert(calendarId="primary", body=body("one", id="batch0001")),
        request_id="a",
    )
    batch.add(
        events(account).insert(calendarId="primary", body=body("dup", id="taken0001")),
        request_id="b",
    )
    batch.add(
        events(account).patch(calendarId="primary", eventId="taken0001", body={"summary": "p"}),
        request_id="c",
    )
    batch.add(events(account).insert(calendarId="primary", body=body("two")), request_id="d")
    batch.execute()
    assert results["a"]["id"] == "batch0001" and results["d"]["summary"] == "two"
    assert results["c"]["summary"] == "p"
    assert isinstance(results["b"], HttpError) and results["b"].resp.status == 409
    assert json.loads(results["b"].content)["error"]["errors"][0]["reason"] == "duplicate"
    assert sandbox.stats()["byMethod"]["calendar.events.insert"] == 4


def test_injected_faults_and_quota(account, sandbox):
    sandbox.fault("calendar.events.insert", 403, reason="rateLimitExceeded")
    with pytest.raises(HttpError) as caught:
        insert(account, body())
    assert caught.value.reason == "Rate Limit Exceeded"
    assert error(caught) == (
        403,
        {"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "Rate Limit Exceeded"},
    )
    sandbox.fault("calendar.events.list", 429)
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary").execute()
    assert error(caught)[0] == 429
    insert(account, body())  # faults are used up
    sandbox.control("POST", "/_sandbox/faults", {"quotaPerMinute": 2})
    events(account).list(calendarId="primary").execute()
    events(account).list(calendarId="primary").execute()
    with pytest.raises(HttpError) as caught:
        events(account).list(calendarId="primary").execute()
    assert error(caught)[0] == 403 and error(caught)[1]["reason"] == "rateLimitExceeded"


def test_accounts_are_isolated(account, bob):
    event = insert(account, body(id="private01"))
    for request in (
        events(bob).list(calendarId="alice@example.com"),
        events(bob).get(calendarId="alice@example.com", eventId=event["id"]),
        events(bob).get(calendarId="primary", eventId=event["id"]),
        events(bob).insert(calendarId="alice@example.com", body=body()),
        bob.calendar.calendars().get(calendarId="alice@example.com"),
        events(bob).instances(calendarId="primary", eventId=event["id"]),
    ):
        with pytest.raises(HttpError) as caught:
            request.execute()
        assert error(caught)[0] == 404
    assert events(bob).list(calendarId="primary").execute()["items"] == []
    assert get(account, "private01")["id"] == "private01"


def test_stats_count_calendar_calls_by_method_id(account, sandbox):
    event = insert(account, body())
    events(account).get(calendarId="primary", eventId=event["id"]).execute()
    events(account).list(calendarId="primary").execute()
    events(account).delete(calendarId="primary", eventId=event["id"]).execute()
    assert sandbox.stats()["byMethod"] == {
        "calendar.events.delete": 1,
        "calendar.events.get": 1,
        "calendar.events.insert": 1,
        "calendar.events.list": 1,
    }
