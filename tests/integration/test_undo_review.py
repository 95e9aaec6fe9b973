# ruff: noqa: F811  (the tests take the imported world fixture by name)
"""Found by the independent review of the undo (issue 13): each a behaviour an undo
must keep, on the sandbox through the real client."""

from __future__ import annotations

import pytest

from core import contact_mapping as cm
from tests.integration.contacts_world import TAG
from tests.integration.test_undo import take_back, world  # noqa: F401  (a fixture)


def test_an_undo_never_overwrites_a_later_google_edit_of_a_field_the_run_did_not_set(world):
    world.sync()
    world.edit_contact("c-ada", jobTitle="Countess")
    edited = world.sync()  # run sets jobTitle in Google
    name = world.links()["c-ada"]
    world.edit_person(name, notes="written in Google after the run")  # not synced yet
    report = take_back(world, edited.run_id)
    assert [e["id"] for e in report.errors] == ["c-ada"] and "notes" in report.errors[0]["message"]
    assert cm.from_person(world.person_of("c-ada"))["notes"] == "written in Google after the run"


def test_an_undone_untag_keeps_the_crm_edits_made_while_the_pair_was_apart(world):
    untagged = a_run_of(world, "untag")
    assert untagged.counts.get("untagged") == 1, untagged.counts
    world.edit_contact("c-ada", jobTitle="Edited in the CRM while untagged")
    report = take_back(world, untagged.run_id)
    assert report.counts.get("retagged") == 1, report.counts
    assert world.contact("c-ada")["jobTitle"] == "Edited in the CRM while untagged"


def test_a_list_merged_from_both_sides_is_listed_not_undone(world):
    world.sync()
    name = world.links()["c-alan"]
    c = world.contact("c-alan")
    world.edit_contact("c-alan", emails=c["emails"] + [{"value": "crm@x.example"}])
    p = cm.from_person(world.person_of("c-alan"))
    world.edit_person(name, emails=p["emails"] + [{"value": "google@x.example"}])
    merged = world.sync()
    report = take_back(world, merged.run_id)
    assert [e["id"] for e in report.errors] == ["c-alan"] and "merged" in report.errors[0][
        "message"
    ]
    crm = {e["value"] for e in world.contact("c-alan")["emails"]}
    google = {e["value"] for e in cm.from_person(world.person_of("c-alan"))["emails"]}
    assert "crm@x.example" in crm and "google@x.example" in google  # left as they are


def a_run_of(world, kind):
    """The run an undo takes back: a first push, an import, an untag (the person left
    the group), a leave (the contact untagged), or an edit."""
    first = world.sync()
    if kind == "push":
        return first
    elif kind == "import":
        world.create_person("Hedy", "hedy@lamarr.example", in_group=True)
        world.sandbox.settle()
        return world.sync()
    elif kind == "untag":
        name = world.links()["c-ada"]
        world.google.people.contactGroups().members().modify(
            resourceName="contactGroups/myContacts", body={"resourceNamesToAdd": [name]}
        ).execute()
        world.google.people.contactGroups().members().modify(
            resourceName=world.group(), body={"resourceNamesToRemove": [name]}
        ).execute()
        world.sandbox.settle()
        return world.sync()
    elif kind == "leave":
        c = world.contact("c-ada")
        world.edit_contact("c-ada", tagIds=[t for t in c["tagIds"] if t != TAG])
        return world.sync()
    else:
        world.edit_contact("c-ada", jobTitle="Countess")
        return world.sync()


@pytest.mark.parametrize("kind", ["push", "import", "untag", "leave"])
def test_a_normal_sync_after_an_undo(world, kind):
    run = a_run_of(world, kind)
    persons_before = len(world.persons())
    back = take_back(world, run.run_id)
    assert not back.errors, back.errors
    world.sandbox.settle()
    nxt = world.sync()
    again = world.sync()
    assert len(world.persons()) == persons_before  # no duplicate created
    assert not nxt.errors and again.plan == []


def check_pairs(w):
    links = w.links()
    persons = w.persons()
    members = {n for n, p in persons.items() if w.group() in cm.group_names(p)}
    assert set(links) == w.tagged_ids(), "links != tagged CRM contacts"
    assert set(links.values()) == members, "links != group members"


@pytest.mark.parametrize("kind", ["push", "import", "untag", "leave", "edit"])
def test_pairs_consistent_after_undo_and_two_syncs(world, kind):
    run = a_run_of(world, kind)
    take_back(world, run.run_id)
    world.sandbox.settle()
    world.sync()
    world.sandbox.settle()
    world.sync()
    check_pairs(world)


def test_an_edit_over_a_yearless_birthday_is_listed_not_undone(world):
    world.sync()
    name = world.links()["c-ada"]
    person = world.people.get(resourceName=name, personFields=cm.PERSON_FIELDS).execute()
    body = {"etag": person["etag"], "birthdays": [{"date": {"month": 12, "day": 10}}]}
    world.people.updateContact(
        resourceName=name, updatePersonFields="birthdays", body=body
    ).execute()
    world.sandbox.settle()
    world.sync()
    world.edit_contact("c-ada", birthday="1815-12-11")
    run = world.sync()
    back = take_back(world, run.run_id)  # never a crash on the "--12-10" Google held
    assert [e["id"] for e in back.errors] == ["c-ada"], back.errors
    assert "without a year" in back.errors[0]["message"]
    assert world.contact("c-ada").get("birthday") == "1815-12-11"  # left as it is


@pytest.mark.parametrize("how", ["deleted", "untagged"])
def test_an_edit_of_a_pair_that_left_the_sync_since_is_listed_not_undone(world, how):
    world.sync()
    world.edit_contact("c-ada", jobTitle="Countess")
    run = world.sync()
    if how == "deleted":
        world.edit_contact("c-ada", deletedAt=world.now())
    else:
        c = world.contact("c-ada")
        world.edit_contact("c-ada", tagIds=[t for t in c["tagIds"] if t != TAG])
    assert world.sync().counts.get("removedFromGroup") == 1
    back = take_back(world, run.run_id)
    assert not back.plan, "the undo wrote to a pair no longer synced"
    assert "no longer synced" in back.errors[0]["message"]
    world.sandbox.settle()
    assert not world.sync().plan


@pytest.mark.parametrize("kind", ["untag", "leave"])
def test_an_undone_dissolution_the_next_sync_redoes_is_said(world, kind):
    """The contact tagged again while its person stays out of the group (or the person
    put back while the contact stays untagged): the next sync dissolves the pair again,
    and the undo says so."""
    run = a_run_of(world, kind)
    back = take_back(world, run.run_id)
    assert back.counts.get("redoneByNextSync") == 1, back.counts


def test_undoing_a_run_twice_finds_it_undone_not_in_conflict(world):
    world.sync()
    world.edit_contact("c-ada", jobTitle="Countess")
    edited = world.sync()
    take_back(world, edited.run_id)
    again = take_back(world, edited.run_id)
    assert again.errors == [] and again.plan == [], (again.errors, again.plan)


class EditBeforeWriting:
    """A People port whose first update is preceded by the user's CRM edit: the edit
    lands between the undo's read and its write."""

    def __init__(self, port, edit):
        self.port, self.edit, self.done = port, edit, False

    def __getattr__(self, name):
        return getattr(self.port, name)

    def update(self, *args, **kwargs):
        if not self.done:
            self.done = True
            self.edit()
        return self.port.update(*args, **kwargs)


def test_a_contact_edited_in_the_crm_while_the_undo_runs_keeps_the_edit(world):
    import uuid

    from core.contacts_undo import ContactsUndo
    from core.runs import Options
    from tests.integration.contacts_world import ALICE

    world.sync()
    name = world.links()["c-ada"]
    world.edit_person(name, notes="Found a moth")
    edited = world.sync()
    assert edited.counts["updatedInCrm"] == 1
    note = lambda: world.edit_contact("c-ada", jobTitle="Typed in the CRM meanwhile")  # noqa: E731
    port = EditBeforeWriting(world.people_port(), note)
    engine = ContactsUndo(world.store, port, world.clock, new_id=lambda: uuid.uuid4().hex,
                          undo_of=edited.run_id)  # fmt: skip
    report = engine.run(ALICE, Options(trigger="undo"))
    assert [e["kind"] for e in report.errors] == ["UndoConflict"], report.errors
    assert world.contact("c-ada")["jobTitle"] == "Typed in the CRM meanwhile"
