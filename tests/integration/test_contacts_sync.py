"""The contacts sync end to end: the real client, the sandbox and a SQLite CRM."""

from __future__ import annotations

import time

import pytest

from core import contact_mapping as cm
from tests.integration.contacts_world import TAG, World


@pytest.fixture
def world(tmp_path, sandbox, account):
    w = World(tmp_path, sandbox, account)
    yield w
    w.close()


def test_first_run_pushes_only_privately_tagged_contacts(world):
    report = world.sync()
    assert report.counts["pushed"] == 4 and report.full_pass
    assert set(world.links()) == {"c-ada", "c-grace", "c-alan", "c-katherine"}
    assert world.members() == set(world.links().values())
    ada = world.person_of("c-ada")
    assert cm.client_data_id(ada) == "c-ada"
    assert cm.from_person(ada) == cm.normalize(world.contact("c-ada"))
    groups = world.google.people.contactGroups().list().execute()["contactGroups"]
    assert [g["name"] for g in groups if g["groupType"] == "USER_CONTACT_GROUP"] == ["CRM"]


def test_second_run_with_no_changes_makes_exactly_one_people_call(world):
    world.sync()
    world.sandbox.control("DELETE", "/_sandbox/stats")
    report = world.sync()
    assert report.plan == [] and not report.full_pass
    assert world.calls()["byMethod"] == {"people.people.connections.list": 1}


def test_contacts_moved_into_the_group_are_imported_with_the_tag(world):
    world.sync()
    name = world.create_person("Hedy", "hedy@lamarr.example")
    world.move_into_group(name)
    report = world.sync()
    assert report.counts["imported"] == 1
    crm_id = next(c for c, g in world.links().items() if g == name)
    contact = world.contact(crm_id)
    assert TAG in contact["tagIds"] and contact["givenName"] == "Hedy"


def test_import_links_to_an_existing_contact_by_email(world):
    world.sync()
    name = world.create_person("Dennis M.", "dmr@bell.example", in_group=True)  # c-dennis's
    report = world.sync()
    assert report.counts.get("linkedByEmail") == 1 and report.counts.get("imported", 0) == 0
    assert world.links()["c-dennis"] == name
    assert TAG in world.contact("c-dennis")["tagIds"]


def test_edits_reach_the_other_side(world):
    world.sync()
    world.edit_contact("c-ada", jobTitle="Countess")
    world.edit_person(world.links()["c-grace"], notes="Found a moth")
    report = world.sync()
    assert report.counts["updatedInGoogle"] == 1 and report.counts["updatedInCrm"] == 1
    assert cm.from_person(world.person_of("c-ada"))["jobTitle"] == "Countess"
    assert world.contact("c-grace")["notes"] == "Found a moth"
    assert world.sync().plan == []  # the echoes of those writes change nothing


def test_both_sides_edit_different_fields_and_both_are_kept(world):
    world.sync()
    world.edit_contact("c-alan", jobTitle="Cryptanalyst")
    world.edit_person(world.links()["c-alan"], notes="Enigma")
    world.sync()
    for fields in (
        cm.normalize(world.contact("c-alan")),
        cm.from_person(world.person_of("c-alan")),
    ):
        assert (fields["jobTitle"], fields["notes"]) == ("Cryptanalyst", "Enigma")


def test_both_sides_edit_the_same_field_and_the_most_recent_wins(world):
    world.sync()
    world.edit_contact("c-alan", jobTitle="older, from the CRM")
    time.sleep(0.01)
    world.edit_person(world.links()["c-alan"], jobTitle="newer, from Google")
    report = world.sync()
    assert report.counts["conflicts"] == 1
    assert world.contact("c-alan")["jobTitle"] == "newer, from Google"
    assert cm.from_person(world.person_of("c-alan"))["jobTitle"] == "newer, from Google"


def test_deleted_in_google_untags_the_crm_contact_without_deleting_it(world):
    world.sync()
    name = world.links()["c-grace"]
    world.people.deleteContact(resourceName=name).execute()
    report = world.sync()
    assert report.counts["untagged"] == 1
    grace = world.contact("c-grace")
    assert grace is not None and TAG not in grace["tagIds"]
    assert "c-grace" not in world.links()


def test_deleted_or_untagged_in_the_crm_leaves_the_group_without_deleting(world):
    world.sync()
    grace, alan = world.links()["c-grace"], world.links()["c-alan"]
    world.edit_contact("c-grace", deletedAt="2030-01-01T00:00:00Z")
    world.edit_contact("c-alan", tagIds=[])
    report = world.sync()
    assert report.counts["removedFromGroup"] == 2
    persons = world.persons()
    assert grace in persons and alan in persons  # still in Google
    assert not {grace, alan} & world.members()
    assert cm.group_names(persons[grace]) == {"contactGroups/myContacts"}  # last-group rule


def test_dry_run_plans_and_changes_nothing(world):
    scheduled = world.state()  # the connection put the pair on the schedule, no more
    assert not {"lease", "googleCursor", "crmCursor", "lastRunAt"} & set(scheduled)
    report = world.sync(dry_run=True)
    assert len(report.plan) == 4
    assert world.links() == {} and world.state() == scheduled
    groups = world.google.people.contactGroups().list().execute()["contactGroups"]
    assert [g for g in groups if g["groupType"] == "USER_CONTACT_GROUP"] == []
    assert world.persons() == {}
    assert set(world.calls()["byMethod"]) <= {
        "people.contactGroups.list",
        "people.people.connections.list",
        "people.people.get",
    }


def test_untag_then_retag_rejoins_the_same_person_without_a_duplicate(world):
    world.sync()
    name = world.links()["c-alan"]
    world.edit_contact("c-alan", tagIds=[])
    world.sync()
    world.edit_contact("c-alan", tagIds=[TAG], jobTitle="Back again")
    report = world.sync()
    assert report.counts.get("pushed", 0) == 0
    assert world.links()["c-alan"] == name and name in world.members()
    assert cm.from_person(world.person_of("c-alan"))["jobTitle"] == "Back again"
    ids = [cm.client_data_id(p) for p in world.persons().values()]
    assert ids.count("c-alan") == 1


def test_person_moved_out_and_back_rejoins_the_same_contact(world):
    world.sync()
    name = world.create_person("Hedy", "hedy@lamarr.example", in_group=True)
    world.sync()
    crm_id = next(c for c, g in world.links().items() if g == name)
    world.edit_contact(crm_id, department="Inventions")  # a CRM-only detail to keep
    world.sync()
    body = {"resourceNamesToRemove": [name]}
    world.google.people.contactGroups().members().modify(
        resourceName=world.group(), body=body
    ).execute()
    world.sync()
    assert TAG not in world.contact(crm_id)["tagIds"]
    world.move_into_group(name)
    report = world.sync()
    assert report.counts.get("imported", 0) == 0
    assert world.links()[crm_id] == name and TAG in world.contact(crm_id)["tagIds"]
    assert world.contact(crm_id)["department"] == "Inventions"
    hedys = [d for d in world.store.scan("contacts", order_by="modifiedAt")
             if d.data.get("givenName") == "Hedy"]  # fmt: skip
    assert len(hedys) == 1


def settle_old(world):
    """Age every contact an hour, so incremental runs no longer read them."""
    from datetime import UTC, datetime, timedelta

    from core.model import CONTACTS, stamp

    old = stamp(datetime.now(UTC) - timedelta(hours=1))
    for doc in list(world.store.scan(CONTACTS, order_by="modifiedAt")):
        world.store.put(CONTACTS, doc.id, {**doc.data, "modifiedAt": old})


def test_a_new_person_with_a_linked_contacts_email_does_not_steal_the_link(world):
    settle_old(world)
    world.sync()
    world.sync()
    ada = world.links()["c-ada"]
    world.create_person("Ada2", "ada@analytical.example", in_group=True)
    world.sync()
    assert world.links()["c-ada"] == ada
    assert world.contact("c-ada")["givenName"] == "Ada"
    assert world.sync(full=True).counts.get("imported", 0) == 0


def test_linked_contacts_sharing_an_email_are_not_pushed_again(world):
    doc = {**world.contact("c-alan"), "givenName": "Alan2"}
    world.store.put("contacts", "c-alan2", doc)
    settle_old(world)
    world.sync()
    world.sync()
    before = len(world.persons())
    world.create_person("Alan3", "alan@bletchley.example", in_group=True)
    world.sync()
    assert len(world.persons()) == before + 1
