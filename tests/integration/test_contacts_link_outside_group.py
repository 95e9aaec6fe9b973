"""A tagged CRM contact whose email a Google contact outside the group already holds is
linked to it and moved into the group, not created a second time (issue 9, item 7):
the real client, the sandbox (people.searchContacts) and a SQLite CRM."""

from __future__ import annotations

import pytest

from core import contact_mapping as cm
from core import schedule
from core.contacts_engine import CRM_OVERLAP
from core.model import CONTACTS
from core.runs import RECHECK_AFTER
from tests.integration.contacts_world import TAG, World


@pytest.fixture
def world(tmp_path, sandbox, account):
    w = World(tmp_path, sandbox, account)
    w.sync()
    yield w
    w.close()


def outside(world: World, given: str, email: str, **extra) -> str:
    """A contact the user keeps in Google outside the CRM group, seen by one sync."""
    body = {**cm.to_person({"givenName": given, "emails": [{"value": email}]}), **extra}
    name = world.people.createContact(body=body).execute()["resourceName"]
    world.sync()  # its change is consumed: later incremental runs do not list it
    return name


def tag(world: World, crm_id: str) -> None:
    world.edit_contact(crm_id, tagIds=[TAG])


def test_a_tagged_contact_whose_email_a_google_contact_outside_the_group_holds_is_linked(world):
    name = outside(world, "Dennis M.", "DMR@Bell.example", nicknames=[{"value": "dmr"}])
    before = len(world.persons())
    tag(world, "c-dennis")
    world.sandbox.control("DELETE", "/_sandbox/stats")
    report = world.sync()
    assert not report.full_pass and report.counts.get("pushed", 0) == 0
    assert report.counts["linkedByEmail"] == 1
    calls = world.calls()["byMethod"]
    assert calls["people.people.searchContacts"] == 2  # the warmup, then the one email
    assert world.links()["c-dennis"] == name and name in world.members()
    assert len(world.persons()) == before
    person = world.people.get(resourceName=name, personFields="names,nicknames").execute()
    assert person["nicknames"][0]["value"] == "dmr"  # what only Google held is still there
    assert cm.from_person(world.person_of("c-dennis")) == cm.normalize(world.contact("c-dennis"))
    assert world.sync().plan == []


def test_on_a_full_pass_the_listing_finds_it_without_searching(world):
    name = outside(world, "Dennis", "dmr@bell.example")
    tag(world, "c-dennis")
    world.sandbox.control("DELETE", "/_sandbox/stats")
    report = world.sync(full=True)
    assert world.links()["c-dennis"] == name and report.counts.get("pushed", 0) == 0
    assert "people.people.searchContacts" not in world.calls()["byMethod"]


def test_a_prefix_match_is_not_the_same_email(world):
    name = outside(world, "Dennis", "dmr@bell.example.org")
    tag(world, "c-dennis")
    report = world.sync()
    assert report.counts["pushed"] == 1 and world.links()["c-dennis"] != name


def test_several_google_contacts_with_its_email_create_nothing_and_the_run_says_so(world):
    first = outside(world, "Dennis", "dmr@bell.example")
    second = outside(world, "D. Ritchie", "dmr@bell.example")
    before = len(world.persons())
    tag(world, "c-dennis")
    report = world.sync()
    (error,) = [e for e in report.errors if e["id"] == "c-dennis"]
    assert error["kind"] == "AmbiguousEmail" and error["googleIds"] == sorted([first, second])
    assert report.counts["ambiguous"] == 1 and report.counts.get("pushed", 0) == 0
    assert "c-dennis" not in world.links() and len(world.persons()) == before


def _ambiguous(world: World) -> tuple[str, str]:
    first = outside(world, "Dennis", "dmr@bell.example")
    second = outside(world, "D. Ritchie", "dmr@bell.example")
    tag(world, "c-dennis")
    report = world.run()
    assert report.counts["ambiguous"] == 1
    return first, second


def test_a_contact_two_google_contacts_share_is_not_searched_again_while_nothing_changes(world):
    _ambiguous(world)
    world.sandbox.settle()
    world.sandbox.advance(CRM_OVERLAP.total_seconds() + 1)  # past the CRM's overlap window
    world.run()  # Google's deltas show the run's own writes (the group) once
    world.sandbox.control("DELETE", "/_sandbox/stats")
    quiet = world.run()
    assert quiet.plan == [] and not quiet.errors
    assert "people.people.searchContacts" not in world.calls()["byMethod"]
    state = world.state()
    assert list(state["retryCrmLater"]) == ["c-dennis"] and not state.get("retryCrm")
    assert not schedule.must_run(state, world.clock.now()), "nothing forces a full run"


def test_a_contact_two_google_contacts_share_is_linked_once_the_user_deletes_one(world):
    first, second = _ambiguous(world)
    world.people.deleteContact(resourceName=second).execute()
    world.sandbox.settle()
    report = world.run()  # Google changed: the contact put off is read again
    assert report.counts.get("linkedByEmail") == 1 and not report.errors
    assert world.links()["c-dennis"] == first
    assert not world.state().get("retryCrmLater")


def test_a_contact_two_google_contacts_share_is_said_again_each_day(world):
    _ambiguous(world)
    world.sandbox.settle()
    world.run()
    world.sandbox.advance(RECHECK_AFTER.total_seconds() + 60)
    assert schedule.must_run(world.state(), world.clock.now()), "due: a run reads it again"
    again = world.run()
    assert [e["id"] for e in again.errors if e["kind"] == "AmbiguousEmail"] == ["c-dennis"]
    assert "c-dennis" in world.state()["retryCrmLater"]


def test_a_google_contact_holding_the_email_of_several_new_contacts_is_linked_to_none(world):
    name = outside(world, "Dennis", "dmr@bell.example")
    ken = {**world.contact("c-dennis"), "givenName": "Ken", "modifiedAt": world.now()}
    world.store.put(CONTACTS, "c-ken", {**ken, "tagIds": [TAG]})
    tag(world, "c-dennis")
    report = world.sync()
    assert sorted(e["id"] for e in report.errors if e.get("kind") == "AmbiguousEmail") == [
        "c-dennis", "c-ken"]  # fmt: skip
    assert name not in world.links().values() and report.counts.get("pushed", 0) == 0


def test_a_failing_contact_search_holds_the_new_contacts_and_lets_the_rest_run(world):
    """Search down (503 after retries): nothing is pushed blind, where it could be a
    duplicate; the run's other work goes through, and the contact follows later."""
    outside(world, "Dennis M.", "dmr@bell.example")
    tag(world, "c-dennis")
    world.edit_person(world.links()["c-grace"], notes="Edited in Google")
    world.sandbox.fault("people.people.searchContacts", 503, count=20)
    report = world.run()
    assert report.counts.get("updatedInCrm") == 1 and not report.counts.get("pushed")
    (held,) = [e for e in report.errors if e["id"] == "c-dennis"]
    assert held["kind"] == "SearchFailed" and "search failed" in held["message"]
    world.sandbox.control("DELETE", "/_sandbox/faults")
    again = world.run()
    assert again.counts.get("linkedByEmail") == 1 and "c-dennis" in world.links()


def test_tagging_many_contacts_at_once_lists_google_once_instead_of_searching_each(world):
    for n in range(25):
        world.store.put(CONTACTS, f"c-bulk{n}", {"givenName": f"Bulk{n}", "tagIds": [TAG],
                        "emails": [{"value": f"bulk{n}@example.com"}],
                        "modifiedAt": world.now()})  # fmt: skip
    world.sandbox.control("DELETE", "/_sandbox/stats")
    report = world.run()
    assert report.counts["pushed"] == 25
    calls = world.calls()["byMethod"]
    assert "people.people.searchContacts" not in calls
    assert calls["people.people.connections.list"] == 2  # the delta, and one listing


class DeletesAfterSearch:
    """A People port whose search is followed by the user deleting ``name`` in Google."""

    def __init__(self, port, world: World, name: str) -> None:
        self.port, self.world, self.name = port, world, name

    def search(self, queries):
        found = self.port.search(queries)
        self.world.people.deleteContact(resourceName=self.name).execute()
        return found

    def __getattr__(self, attr):
        return getattr(self.port, attr)


def test_a_found_contact_deleted_in_google_before_it_joins_the_group_keeps_the_crm_tag(world):
    same = cm.to_person(cm.normalize(world.contact("c-dennis")))  # nothing to write: join only
    name = world.people.createContact(body=same).execute()["resourceName"]
    world.sync()
    tag(world, "c-dennis")
    report = world.engine(people=DeletesAfterSearch(world.people_port(), world, name)).run(
        "u-alice"
    )
    assert "c-dennis" not in world.links() and report.counts.get("errors") == 1
    again = world.run()
    assert TAG in world.contact("c-dennis")["tagIds"]  # never untagged for a pair it never had
    assert again.counts.get("pushed") == 1 and "c-dennis" in world.links()
