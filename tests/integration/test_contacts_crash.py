"""Crash injection: the run dies right after each external write in turn (every Google
write call and every store commit); a rerun must end in the state a run without a
crash reaches, with no duplicates on either side."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from core import contact_mapping as cm
from core.lease import LEASE_SECONDS
from core.model import CONTACTS
from tests.integration.contacts_world import ALICE, TAG, World
from tests.integration.crash import Crash, CrashingPort, CrashingStore, Fuse

GOOGLE_WRITES = {"create", "update", "modify_members", "find_or_create_group"}


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


@pytest.fixture(params=["default", "realistic"])
def fresh_world(request, tmp_path_factory, sandbox, make_account):
    """A world with changes on both sides, under each sandbox realism profile; Google's
    deltas have caught up with the changes (``settle``) before the run under test."""
    made = []

    def make() -> World:
        sandbox.control("POST", "/_sandbox/reset")
        sandbox.profile(request.param)
        w = World(tmp_path_factory.mktemp("crash"), sandbox, make_account("alice@example.com"))
        w.run()
        make_changes(w)
        sandbox.settle()
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
        engine = w.engine(people=CrashingPort(w.people_port(), fuse, GOOGLE_WRITES),
                          store=CrashingStore(w.store, fuse))  # fmt: skip
        try:
            engine.run(ALICE)
        except Crash:
            covered += 1
        else:
            break  # fewer writes than `at`: every crash point has been covered
        w.sandbox.advance(LEASE_SECONDS + 1)  # the crashed run's lease has expired
        w.engine().run(ALICE)
        assert canonical(w) == expected, f"state after a crash at write #{at} differs"
        assert w.engine().run(ALICE).plan == [], f"not settled after crash #{at}"
    assert covered >= 10
    print(f"crash points covered: {covered}")
