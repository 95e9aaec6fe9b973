# ruff: noqa: F811  (the tests take the imported world fixture by name)
"""A CRM record the sync cannot read is reported and left out of the run, never taken
as deleted nor as new: its pair waits, untouched, until the record is fixed."""

from __future__ import annotations

import pytest

from core.model import CONTACTS, LINKS
from tests.integration.test_undo import world  # noqa: F401  (a fixture)

BROKEN = {
    "a number for a name": {"givenName": 123},
    "emails as a string": {"emails": "ada@example.com"},
    "tag ids as a string": {"tagIds": "t-alice-private"},
    "a modifiedAt not in UTC": {"modifiedAt": "2099-12-07T10:00:00+02:00"},
}


def link_of(world, crm_id: str) -> dict:
    return next(d.data for d in world.store.scan(LINKS, order_by="crmId")
                if d.data["crmId"] == crm_id)  # fmt: skip


def live_contacts(world) -> set[str]:
    return {d.id for d in world.store.scan(CONTACTS, order_by="modifiedAt")
            if not d.data.get("deletedAt")}  # fmt: skip


@pytest.mark.parametrize("broken", list(BROKEN))
@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_malformed_crm_contact_never_gets_its_person_imported_as_a_duplicate(world, broken, full):
    world.sync()
    name, link = world.links()["c-ada"], link_of(world, "c-ada")
    contacts = live_contacts(world)
    world.edit_contact("c-ada")  # its modifiedAt moves past the cursor
    good = world.contact("c-ada")
    world.store.put(CONTACTS, "c-ada", {**good, **BROKEN[broken]})
    world.edit_person(name, notes="edited in Google meanwhile")
    report = world.sync(full=full)
    assert report.counts.get("skipped") == 1, (report.counts, report.errors)
    assert not report.counts.get("imported"), report.plan
    assert live_contacts(world) == contacts  # no second CRM contact for Ada's person
    assert link_of(world, "c-ada") == link  # the pair waits, untouched
    world.store.put(CONTACTS, "c-ada", good)  # fixed
    world.edit_contact("c-ada")
    again = world.sync()
    assert not again.errors and not again.counts.get("imported"), (again.errors, again.plan)
    assert world.contact("c-ada").get("notes") == "edited in Google meanwhile"
