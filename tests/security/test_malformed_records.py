# ruff: noqa: F811  (the tests take the imported world fixture by name)
"""A CRM record the sync cannot read is reported and left out of the run, never taken
as deleted nor as new: its pair waits, untouched, until the record is fixed."""

from __future__ import annotations

import pytest

from core import contact_mapping as cm
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


def test_a_contact_without_modified_at_is_reported_on_a_full_pass_not_taken_as_deleted(world):
    world.sync()
    name, link = world.links()["c-ada"], link_of(world, "c-ada")
    doc = {k: v for k, v in world.contact("c-ada").items() if k != "modifiedAt"}
    world.store.put(CONTACTS, "c-ada", doc)
    report = world.sync(full=True)
    assert report.counts.get("skipped") == 1, (report.counts, report.plan)
    assert not [a for a in report.plan if type(a).__name__ in ("LeaveGroup", "Untag")]
    assert world.links()["c-ada"] == name and link_of(world, "c-ada") == link
    assert world.group() in cm.group_names(world.person_of("c-ada"))  # still in the group


def test_an_activity_without_modified_at_keeps_its_event_on_a_full_pass(tmp_path, sandbox,
                                                                         make_account):  # fmt: skip
    from core import activity_mapping as am
    from core.model import ACTIVITIES
    from tests.integration.activities_world import CalendarWorld

    w = CalendarWorld(tmp_path, sandbox, make_account)
    try:
        w.sync()
        doc = {k: v for k, v in w.activity("a-kickoff").items() if k != "modifiedAt"}
        w.store.put(ACTIVITIES, "a-kickoff", doc)
        report = w.sync(full=True)
        assert report.counts.get("skipped") == 1, (report.counts, report.plan)
        assert not [a for a in report.plan if type(a).__name__ == "DeleteEvent"], report.plan
        assert w.event(am.event_id("a-kickoff"))["status"] == "confirmed"
        assert "a-kickoff" in w.links()
    finally:
        w.close()
