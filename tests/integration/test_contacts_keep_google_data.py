"""Google data the CRM cannot hold survives CRM edits (issue 9, item 6): the real client,
the sandbox and a SQLite CRM."""

from __future__ import annotations

from typing import Any

import pytest

from core import contact_mapping as cm
from tests.integration.contacts_world import ALICE, World
from tests.integration.races import EditsAfterListing

RICH = "names,organizations,birthdays,addresses,nicknames,urls"


@pytest.fixture
def world(tmp_path, sandbox, account):
    w = World(tmp_path, sandbox, account)
    w.sync()
    yield w
    w.close()


def read(world: World, name: str) -> dict[str, Any]:
    return world.people.get(resourceName=name, personFields=cm.PERSON_FIELDS + ",nicknames,urls"
                            ).execute()  # fmt: skip


def bare(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items as a client writes them back: without Google's metadata and derived keys."""
    derived = {"metadata", "displayName", "displayNameLastFirst", "unstructuredName",
               "formattedType", "formattedValue", "canonicalForm"}  # fmt: skip
    return [{k: v for k, v in item.items() if k not in derived} for item in items]


def enrich(world: World, crm_id: str) -> str:
    """Grace's person gets what only Google holds, the way a Google Contacts user adds it."""
    name = world.links()[crm_id]
    person = read(world, name)
    names = bare(person["names"])
    names[0] |= {"honorificPrefix": "Rear Adm.", "honorificSuffix": "PhD",
                 "phoneticGivenName": "GRAY-s"}  # fmt: skip
    addresses = bare(person["addresses"])
    addresses[0]["extendedAddress"] = "Building 3"
    body = {
        "etag": person["etag"],
        "names": names,
        "organizations": [*bare(person["organizations"]), {"name": "Yale", "title": "Alumna"}],
        "birthdays": [{"date": {"month": 12, "day": 9}}],  # no year: the CRM cannot hold it
        "addresses": addresses,
        "nicknames": [{"value": "Amazing Grace"}],
        "urls": [{"value": "https://navy.example/grace", "type": "work"}],
    }
    world.people.updateContact(resourceName=name, updatePersonFields=RICH, body=body).execute()
    return name


def test_a_crm_edit_keeps_the_google_name_suffix_and_second_organization(world):
    name = enrich(world, "c-grace")
    assert world.sync().counts.get("updatedInCrm", 0) == 0  # nothing the CRM holds changed
    world.edit_contact(
        "c-grace",
        middleName="Brewster",
        jobTitle="Rear Admiral",
        emails=[{"value": "grace@navy.example", "type": "work"}, {"value": "gh@yale.example"}],
        addresses=[{"street": "1 Navy Yard", "city": "Washington", "country": "US",
                    "type": "work"}],
    )  # fmt: skip
    world.sandbox.control("DELETE", "/_sandbox/stats")
    report = world.sync()
    assert report.counts["updatedInGoogle"] == 1
    # the run had not read Grace (a CRM-only change): one read of her, one write
    assert world.calls()["byMethod"] == {
        "people.people.connections.list": 1,
        "people.people.getBatchGet": 1,
        "people.people.batchUpdateContacts": 1,
    }
    person = read(world, name)
    (given,) = person["names"]
    assert (given["honorificPrefix"], given["honorificSuffix"], given["phoneticGivenName"]) == (
        "Rear Adm.", "PhD", "GRAY-s")  # fmt: skip
    assert given["middleName"] == "Brewster"
    orgs = [(o.get("name"), o.get("title")) for o in person["organizations"]]
    assert orgs == [("US Navy", "Rear Admiral"), ("Yale", "Alumna")]
    assert [b["date"] for b in person["birthdays"]] == [{"month": 12, "day": 9}]
    assert [e["value"] for e in person["emailAddresses"]] == ["grace@navy.example",
                                                              "gh@yale.example"]  # fmt: skip
    assert person["addresses"][0]["extendedAddress"] == "Building 3"
    assert person["addresses"][0]["city"] == "Washington"
    assert [n["value"] for n in person["nicknames"]] == ["Amazing Grace"]
    assert [u["value"] for u in person["urls"]] == ["https://navy.example/grace"]
    assert world.contact("c-grace").get("birthday") is None  # a yearless birthday stays in Google
    assert cm.from_person(person) == cm.normalize(world.contact("c-grace"))
    assert world.sync().plan == []


def test_a_google_birthday_without_a_year_matching_the_crm_birthday_changes_neither_side(world):
    name = world.links()["c-ada"]
    person = read(world, name)
    body = {"etag": person["etag"], "birthdays": [{"date": {"month": 12, "day": 10}}]}
    world.people.updateContact(resourceName=name, updatePersonFields="birthdays",
                               body=body).execute()  # fmt: skip
    report = world.sync()
    assert not report.counts.get("updatedInCrm") and not report.counts.get("updatedInGoogle")
    assert world.contact("c-ada")["birthday"] == "1815-12-10"
    world.edit_contact("c-ada", jobTitle="Countess")
    world.sync()
    assert [b["date"] for b in read(world, name)["birthdays"]] == [{"month": 12, "day": 10}]
    assert world.contact("c-ada")["birthday"] == "1815-12-10"
    world.edit_contact("c-ada", birthday="1815-12-11")  # the CRM's own edit does reach Google
    world.sync()
    assert [b["date"] for b in read(world, name)["birthdays"]] == [
        {"year": 1815, "month": 12, "day": 11}
    ]


def test_an_import_leaves_a_yearless_birthday_in_google_and_the_crm_birthday_empty(world):
    body = {**cm.to_person({"givenName": "Hedy", "emails": [{"value": "hedy@lamarr.example"}]}),
            "birthdays": [{"date": {"month": 11, "day": 9}}]}  # fmt: skip
    name = world.people.createContact(body=body).execute()["resourceName"]
    world.move_into_group(name)
    world.sync()
    crm_id = next(c for c, g in world.links().items() if g == name)
    assert world.contact(crm_id).get("birthday") is None
    world.edit_contact(crm_id, jobTitle="Inventor")
    world.sync()
    assert [b["date"] for b in read(world, name)["birthdays"]] == [{"month": 11, "day": 9}]


def test_a_google_edit_after_our_listing_is_re_read_and_merged_not_clobbered(world):
    name = world.links()["c-alan"]
    world.edit_contact("c-alan", jobTitle="Cryptanalyst")
    world.edit_person(name, notes="Enigma")

    def meanwhile() -> None:  # someone edits Google between our listing and our write
        person = read(world, name)
        names = bare(person["names"])
        names[0]["honorificSuffix"] = "OBE"
        phones = [{"value": "+44 1908 640404", "type": "work"}]
        world.people.updateContact(resourceName=name, updatePersonFields="names,phoneNumbers",
                                   body={"etag": person["etag"], "names": names,
                                         "phoneNumbers": phones}).execute()  # fmt: skip

    people = EditsAfterListing(world.people_port(), meanwhile)
    world.engine(people=people).run(ALICE)
    person = read(world, name)
    assert person["names"][0]["honorificSuffix"] == "OBE"
    fields = cm.from_person(person)
    assert (fields["jobTitle"], fields["notes"]) == ("Cryptanalyst", "Enigma")
    assert [p["value"] for p in fields["phones"]] == ["+44 1908 640404"]
    assert cm.normalize(world.contact("c-alan")) == fields
    assert world.run().plan == []


def test_a_crm_edit_meeting_a_google_edit_the_deltas_do_not_show_yet_keeps_both(world):
    world.sandbox.behaviours(people_propagation_seconds=120)
    world.sandbox.settle()
    world.run()
    name = world.links()["c-katherine"]
    world.edit_person(name, notes="Hidden Figures")  # not in the deltas for two minutes
    world.edit_contact("c-katherine", jobTitle="Mathematician")
    world.run()
    fields = cm.from_person(read(world, name))
    assert (fields["jobTitle"], fields["notes"]) == ("Mathematician", "Hidden Figures")
    assert cm.normalize(world.contact("c-katherine")) == fields
    world.sandbox.settle()
    world.run()
    assert world.run().plan == []
    assert cm.normalize(world.contact("c-katherine"))["notes"] == "Hidden Figures"
