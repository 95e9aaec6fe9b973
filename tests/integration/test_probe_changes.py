"""``has_changes``: the read-only probe a scheduled run makes before taking its lease,
through the real client against the sandbox (default and realistic profiles).

A run saves the sync token it read at its start, so the listing after a run that
wrote to Google holds the echoes of those writes: the probe says "changed" once, and
after the run that reads them, nothing until Google really changes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from core.errors import SyncTokenExpired
from core.model import SYNC_STATE
from sandbox import realism
from tests.integration.activities_world import ALICE as CAL_ALICE
from tests.integration.activities_world import CalendarWorld
from tests.integration.contacts_world import ALICE, World

PEOPLE_LIST = "people.people.connections.list"
EVENTS_LIST = "calendar.events.list"


def calls(sandbox, method: str) -> int:
    return sandbox.stats()["byMethod"].get(method, 0)


def reset_stats(sandbox) -> None:
    sandbox.control("DELETE", "/_sandbox/stats")


def empty_first_page_seed(changed: int, *position_prefix: int) -> int:
    """A ``seed`` under which the realistic profile cuts the first page of a listing of
    ``changed`` items to nothing (and so gives a next page)."""
    base = realism.PROFILES["realistic"]
    for seed in range(10_000):
        behaviours = dataclasses.replace(base, seed=seed)
        if realism.page_length(behaviours, 1000, changed, changed, *position_prefix, 0) == 0:
            return seed
    raise AssertionError("no seed cuts the first page")


# --- People --------------------------------------------------------------------------


@pytest.fixture(params=["default", "realistic"])
def contacts(request, tmp_path, sandbox, account):
    sandbox.profile(request.param)
    w = World(tmp_path, sandbox, account)
    yield w
    w.close()


def people_token(world: World) -> str:
    return world.store.get(SYNC_STATE, f"{ALICE}:contacts")["googleCursor"]


def test_people_probe_sees_echoes_once_then_nothing_then_a_google_edit(contacts, sandbox):
    contacts.run()  # the first push: its creates come back in the next listing
    sandbox.settle()
    port = contacts.people_port()
    assert port.has_changes(people_token(contacts)) is True  # the push's echoes
    contacts.run()  # reads them, writes nothing
    sandbox.settle()
    token = people_token(contacts)
    reset_stats(sandbox)
    assert port.has_changes(token) is False
    assert calls(sandbox, PEOPLE_LIST) == 1
    assert sandbox.stats()["total"] == 1  # a read, and nothing else
    name = next(iter(contacts.links().values()))
    contacts.edit_person(name, jobTitle="Chief Probe Officer")
    sandbox.settle()
    assert port.has_changes(token) is True
    assert port.has_changes(token) is True  # the probe moves no cursor
    report = contacts.run()
    assert report.counts.get("updatedInCrm") == 1  # the run still sees the change


def test_people_probe_follows_an_empty_first_page(tmp_path, sandbox, account):
    sandbox.profile("realistic")
    world = World(tmp_path, sandbox, account)
    try:
        world.run()
        sandbox.settle()
        world.run()
        sandbox.settle()
        token = world.store.get(SYNC_STATE, f"{ALICE}:contacts")["googleCursor"]
        # one person changed: the delta lists one, and this seed gives it an empty
        # first page (position: listing length, offset, page index)
        sandbox.behaviours(seed=empty_first_page_seed(1, 0))
        world.edit_person(next(iter(world.links().values())), jobTitle="Late")
        sandbox.settle()
        first = world.google.people.people().connections().list(
            resourceName="people/me", personFields="names", pageSize=1000,
            requestSyncToken=True, syncToken=token,
        ).execute()  # fmt: skip
        assert not first.get("connections") and first.get("nextPageToken")
        reset_stats(sandbox)
        assert world.people_port().has_changes(token) is True
        assert calls(sandbox, PEOPLE_LIST) == 2
    finally:
        world.close()


def test_people_probe_raises_what_changes_raises_for_an_expired_token(contacts, sandbox):
    contacts.run()
    token = people_token(contacts)
    sandbox.advance(8 * 24 * 3600)  # People sync tokens last seven days
    port = contacts.people_port()
    with pytest.raises(SyncTokenExpired):
        port.changes(token)
    with pytest.raises(SyncTokenExpired):
        port.has_changes(token)


def test_people_changes_transform_keeps_only_what_it_returns(contacts, sandbox):
    contacts.run()
    port = contacts.people_port(retry=None)
    plain = port.changes(None)
    names = port.changes(None, transform=lambda p: p["resourceName"])
    assert names.persons == [p["resourceName"] for p in plain.persons]
    assert names.complete and plain.complete
    assert names.next_sync_token


# --- Calendar ------------------------------------------------------------------------


@pytest.fixture(params=["default", "realistic"])
def calendar(request, tmp_path, sandbox, make_account):
    sandbox.profile(request.param)
    w = CalendarWorld(tmp_path, sandbox, make_account)
    yield w
    w.close()


def calendar_token(world: CalendarWorld) -> str:
    return world.store.get(SYNC_STATE, f"{CAL_ALICE}:activities")["googleCursor"]


def put_meeting(world: CalendarWorld, activity_id: str = "a-probe") -> None:
    start = f"{world.day}T09:00:00+00:00"
    world.put_activity(activity_id, title="Probe", organizerId=CAL_ALICE, start=start,
                       end=f"{world.day}T10:00:00+00:00")  # fmt: skip


def patch_event(world: CalendarWorld, event_id: str, **body) -> None:
    events = world.google[CAL_ALICE].calendar.events()
    events.patch(calendarId="primary", eventId=event_id, body=body).execute()


def test_calendar_probe_sees_echoes_once_then_nothing_then_a_google_edit(calendar, sandbox):
    put_meeting(calendar)
    calendar.sync()  # the push: the insert comes back in the next listing
    port = calendar.calendar_port()
    assert port.has_changes(calendar_token(calendar)) is True
    calendar.sync()
    token = calendar_token(calendar)
    reset_stats(sandbox)
    assert port.has_changes(token) is False
    assert calls(sandbox, EVENTS_LIST) == 1
    assert sandbox.stats()["total"] == 1
    event_id = calendar.links()["a-probe"]["googleId"]
    patch_event(calendar, event_id, summary="Probe, moved")
    assert port.has_changes(token) is True
    assert port.has_changes(token) is True
    calendar.sync()
    assert calendar.activity("a-probe")["title"] == "Probe, moved"


def test_calendar_probe_follows_an_empty_first_page(tmp_path, sandbox, make_account):
    sandbox.profile("realistic")
    world = CalendarWorld(tmp_path, sandbox, make_account)
    try:
        put_meeting(world)
        world.sync()
        world.sync()
        token = calendar_token(world)
        sandbox.behaviours(seed=empty_first_page_seed(1))  # position: length, page index
        patch_event(world, world.links()["a-probe"]["googleId"], summary="Late")
        first = world.google[CAL_ALICE].calendar.events().list(
            calendarId="primary", singleEvents=True, showDeleted=True, maxResults=2500,
            syncToken=token,
        ).execute()  # fmt: skip
        assert not first.get("items") and first.get("nextPageToken")
        reset_stats(sandbox)
        assert world.calendar_port().has_changes(token) is True
        assert calls(sandbox, EVENTS_LIST) == 2
    finally:
        world.close()


def test_calendar_changes_transform_keeps_only_what_it_returns(calendar):
    put_meeting(calendar)
    put_meeting(calendar, "a-probe-2")
    calendar.sync()
    port = calendar.calendar_port()
    start = calendar.clock.now() - timedelta(days=1)
    window = (start.strftime("%Y-%m-%dT%H:%M:%SZ"),
              (start + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))  # fmt: skip
    plain = port.changes(None, *window)
    ids = port.changes(None, *window, transform=lambda e: e["id"])
    assert ids.events == [e["id"] for e in plain.events] and len(ids.events) >= 2
    assert ids.complete and ids.next_sync_token
