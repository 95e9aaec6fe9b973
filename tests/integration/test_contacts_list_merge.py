"""Emails, phones and addresses edited on both sides merge entry by entry (issue 9,
item 10): the real client, the sandbox and a SQLite CRM."""

from __future__ import annotations

import time

import pytest

from core import contact_mapping as cm
from tests.integration.contacts_world import World


@pytest.fixture
def world(tmp_path, sandbox, account):
    w = World(tmp_path, sandbox, account)
    w.sync()
    yield w
    w.close()


def both_sides(world: World, crm_id: str) -> tuple[dict, dict]:
    return cm.normalize(world.contact(crm_id)), cm.from_person(world.person_of(crm_id))


def test_emails_and_phones_edited_on_both_sides_keep_the_edits_of_both(world):
    world.edit_contact(
        "c-ada",
        emails=[
            {"value": "ada@analytical.example", "type": "work"},
            {"value": "countess@lovelace.example"},
        ],
        phones=[{"value": "+44 20 7946 0001", "type": "work"}],
    )
    time.sleep(0.01)  # Google's edits are the newer ones
    world.edit_person(
        world.links()["c-ada"],
        emails=[{"value": "ada@analytical.example", "type": "home"}],
        phones=[{"value": "+44 20 7946 0001", "type": "mobile"},
                {"value": "+44 20 7946 0002", "type": "home"}],
    )  # fmt: skip
    world.sync()
    crm, google = both_sides(world, "c-ada")
    assert crm == google
    assert crm["emails"] == [
        {"value": "ada@analytical.example", "type": "home"},  # Google's edit
        {"value": "countess@lovelace.example"},  # the CRM's addition
    ]
    assert crm["phones"] == [
        {"value": "+44 20 7946 0001", "type": "work"},  # the CRM's edit
        {"value": "+44 20 7946 0002", "type": "home"},  # Google's addition
    ]
    assert world.sync().plan == []


def test_an_address_edited_in_the_crm_and_one_added_in_google_are_both_kept(world):
    work = {"street": "1 Navy Yard", "city": "Arlington", "country": "US", "type": "work"}
    world.edit_contact("c-grace", addresses=[{**work, "city": "Washington"}])
    time.sleep(0.01)
    home = {"street": "9 Elm St", "city": "Boston", "type": "home"}
    world.edit_person(world.links()["c-grace"], addresses=[work, home])
    report = world.sync()
    assert report.counts.get("conflicts", 0) == 0
    crm, google = both_sides(world, "c-grace")
    assert crm == google and crm["addresses"] == [{**work, "city": "Washington"}, home]


def test_an_email_deleted_on_one_side_and_untouched_on_the_other_is_deleted(world):
    world.edit_contact(
        "c-alan",
        emails=[{"value": "alan@bletchley.example"}, {"value": "turing@manchester.example"}],
    )
    world.sync()
    world.edit_contact("c-alan", emails=[{"value": "turing@manchester.example"}], jobTitle="Dr")
    world.edit_person(world.links()["c-alan"], phones=[{"value": "+44 161 306 6000"}],
                      emails=[{"value": "alan@bletchley.example"},
                              {"value": "turing@manchester.example", "type": "work"}])  # fmt: skip
    world.sync()
    crm, google = both_sides(world, "c-alan")
    assert crm == google
    assert crm["emails"] == [{"value": "turing@manchester.example", "type": "work"}]
