"""Crash injection: the run dies right after each external write in turn (every Google
write call and every store commit); a rerun must end in the state a run without a
crash reaches, with no duplicates on either side."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from adapters.clock import SystemClock
from core import contact_mapping as cm
from core.lease import LEASE_SECONDS
from core.model import CONTACTS
from tests.integration.contacts_world import ALICE, TAG, World

GOOGLE_WRITES = {"create", "update", "modify_members", "find_or_create_group"}


class Crash(BaseException):
    """Not an Exception: like a killed process, nothing gets to clean up after it."""


class Fuse:
    def __init__(self, at: int) -> None:
        self.at, self.count = at, 0

    def tick(self) -> None:
        self.count += 1
        if self.count == self.at:
            raise Crash(f"crash after external write #{self.at}")


class CrashingPeople:
    def __init__(self, port, fuse: Fuse) -> None:
        self.port, self.fuse = port, fuse

    def __getattr__(self, name):
        method = getattr(self.port, name)
        if name not in GOOGLE_WRITES:
            return method

        def write(*args, **kwargs):
            result = method(*args, **kwargs)
            self.fuse.tick()
            return result

        return write


class CrashingBatch:
    def __init__(self, batch, fuse: Fuse) -> None:
        self.batch, self.fuse = batch, fuse

    def __enter__(self):
        self.batch.__enter__()
        return self

    def __exit__(self, *exc):
        self.batch.__exit__(*exc)
        if exc[0] is None:
            self.fuse.tick()

    def __getattr__(self, name):
        return getattr(self.batch, name)


class CrashingStore:
    def __init__(self, store, fuse: Fuse) -> None:
        self.store, self.fuse = store, fuse

    def put(self, *args):
        self.store.put(*args)
        self.fuse.tick()

    def delete(self, *args):
        self.store.delete(*args)
        self.fuse.tick()

    def batch(self):
        return CrashingBatch(self.store.batch(), self.fuse)

    def transaction(self, fn, **kwargs):
        result = self.store.transaction(fn, **kwargs)
        self.fuse.tick()
        return result

    def __getattr__(self, name):
        return getattr(self.store, name)


class LaterClock:
    """Real time, moved past the lease a crashed run left behind."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return SystemClock().now() + self.offset


def make_changes(w: World) -> None:
    w.edit_contact("c-ada", jobTitle="Countess")
    w.edit_contact("c-alan", tagIds=[])
    radia = {"givenName": "Radia", "emails": [{"value": "rp@dec.example"}], "tagIds": [TAG]}
    w.store.put(CONTACTS, "c-new", {**radia, "modifiedAt": w.contact("c-ada")["modifiedAt"]})
    w.edit_person(w.links()["c-grace"], notes="moth")
    w.people.deleteContact(resourceName=w.links()["c-katherine"]).execute()
    w.create_person("Hedy", "hedy@lamarr.example", in_group=True)
    w.create_person("Dennis", "dmr@bell.example", in_group=True)  # links to c-dennis by email


def canonical(w: World) -> dict:
    contacts = [d.data for d in w.store.scan(CONTACTS, order_by="modifiedAt")]
    persons = w.persons()
    group = w.group()
    return {
        "crm": Counter(
            json.dumps([cm.normalize(c), TAG in c.get("tagIds", [])], sort_keys=True)
            for c in contacts
        ),
        "google": Counter(
            json.dumps([cm.from_person(p), group in cm.group_names(p)], sort_keys=True)
            for p in persons.values()
        ),
        "links": len(w.links()),
    }


@pytest.fixture
def fresh_world(tmp_path_factory, sandbox, make_account):
    made = []

    def make() -> World:
        sandbox.control("POST", "/_sandbox/reset")
        w = World(tmp_path_factory.mktemp("crash"), sandbox, make_account("alice@example.com"))
        w.run()
        make_changes(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def test_a_crash_after_any_external_write_then_a_rerun_ends_as_no_crash(fresh_world):
    reference = fresh_world()
    reference.run()
    expected = canonical(reference)
    assert expected["links"] == 5  # ada, grace, new, hedy, dennis (alan and katherine left)

    covered = 0
    for at in range(1, 60):
        w = fresh_world()
        fuse = Fuse(at)
        engine = w.engine(people=CrashingPeople(w.people_port(), fuse),
                          store=CrashingStore(w.store, fuse))  # fmt: skip
        try:
            engine.run(ALICE)
        except Crash:
            covered += 1
        else:
            break  # fewer writes than `at`: every crash point has been covered
        later = LaterClock(timedelta(seconds=LEASE_SECONDS + 1))
        w.engine(clock=later).run(ALICE)
        assert canonical(w) == expected, f"state after a crash at write #{at} differs"
        assert w.engine(clock=later).run(ALICE).plan == [], f"not settled after crash #{at}"
    assert covered >= 10
    print(f"crash points covered: {covered}")
