"""Crash injection for activities: the run dies right after each external write in turn
(every Calendar write call and every store commit); a rerun ends as a run without a
crash would, with no duplicate event or activity."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from core.lease import LEASE_SECONDS
from tests.integration.activities_world import ALICE, CalendarWorld
from tests.integration.crash import Crash, CrashingPort, CrashingStore, Fuse


def make_changes(w: CalendarWorld) -> None:
    w.edit_activity("a-kickoff", title="Kick-off, take two")
    w.edit_activity("a-offsite", deletedAt="2030-01-01T00:00:00Z")
    w.put_activity("a-new", title="Retro", organizerId=ALICE, start=f"{w.day}T16:00:00Z",
                   end=f"{w.day}T17:00:00Z", participants=[{"contactId": "c-ada"}])  # fmt: skip
    w.insert_event(summary="From Google", attendees=[{"email": "grace@navy.example"}])


def canonical(w: CalendarWorld) -> dict:
    keep = ("title", "start", "end", "status", "allDay", "location", "deletedAt")
    activities = Counter(
        json.dumps([{k: a.get(k) for k in keep},
                    sorted(p.get("email", "") for p in a.get("participants", []))],
                   sort_keys=True)
        for a in w.activities().values()
    )  # fmt: skip
    events = Counter(
        json.dumps([e.get("summary"), e.get("status"), e["start"]], sort_keys=True)
        for e in w.events(showDeleted=True).values()
    )
    links = w.links()
    return {"activities": activities, "events": events, "links": len(links),
            "tombstones": sum(1 for link in links.values() if link.get("tombstone"))}  # fmt: skip


@pytest.fixture(params=["default", "realistic"])
def fresh_world(request, tmp_path_factory, sandbox, make_account):
    """A world with changes on both sides, under each sandbox realism profile; Google's
    deltas have caught up with the changes (``settle``) before the run under test."""
    made = []

    def make() -> CalendarWorld:
        sandbox.control("POST", "/_sandbox/reset")
        sandbox.profile(request.param)
        w = CalendarWorld(tmp_path_factory.mktemp("crash"), sandbox, make_account)
        w.sync()
        make_changes(w)
        sandbox.settle()
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def test_a_crash_after_any_external_write_then_a_rerun_ends_as_no_crash(fresh_world):
    reference = fresh_world()
    reference.sync()
    expected = canonical(reference)
    assert expected["links"] == 3  # kick-off, retro, the Google event (the offsite is gone)

    covered = 0
    for at in range(1, 60):
        w = fresh_world()
        fuse = Fuse(at)
        engine = w.engine(ALICE, calendar=CrashingPort(w.calendar_port(), fuse, {"write"}),
                          store=CrashingStore(w.store, fuse))  # fmt: skip
        try:
            engine.run(ALICE)
        except Crash:
            covered += 1
        else:
            break
        w.sandbox.advance(LEASE_SECONDS + 1)  # the crashed run's lease has expired
        w.engine(ALICE).run(ALICE)
        assert canonical(w) == expected, f"state after a crash at write #{at} differs"
        assert w.engine(ALICE).run(ALICE).plan == [], f"unsettled after #{at}"
    assert covered >= 6
    print(f"activities crash points covered: {covered}")
