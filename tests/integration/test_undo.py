"""Undo of a contacts run (``functions.undo``, ``core.contacts_undo``): each kind of
change taken back on the sandbox through the real client, conflicts left alone, the
undo of the undo, and only the run's own user."""

from __future__ import annotations

import pytest

from core import contact_mapping as cm
from core.errors import UndoRefused
from core.model import SYNC_RUNS
from core.runs import Options
from functions.cli import main
from functions.undo import undo
from tests.integration.contacts_world import TAG, World


@pytest.fixture
def world(tmp_path, sandbox, account):
    w = World(tmp_path, sandbox, account)
    yield w
    w.close()


def take_back(world, run_id, **options):
    return undo(world.config, world.store, run_id, Options(**options))


def test_an_edit_made_in_the_crm_goes_back_on_both_sides(world):
    world.sync()
    was = world.contact("c-ada")["jobTitle"]
    world.edit_contact("c-ada", jobTitle="Countess")
    edited = world.sync()
    assert edited.counts["updatedInGoogle"] == 1
    report = take_back(world, edited.run_id)
    assert report.trigger == "undo" and not report.errors, report.errors
    assert world.contact("c-ada")["jobTitle"] == was
    assert cm.from_person(world.person_of("c-ada"))["jobTitle"] == was
    assert world.sync().plan == []  # the pair is settled on the before-values


def test_an_edit_made_in_google_goes_back_on_both_sides(world):
    world.sync()
    world.edit_person(world.links()["c-grace"], notes="Found a moth")
    edited = world.sync()
    assert edited.counts["updatedInCrm"] == 1
    report = take_back(world, edited.run_id)
    assert not report.errors, report.errors
    assert world.contact("c-grace").get("notes") is None
    assert cm.from_person(world.person_of("c-grace"))["notes"] is None
    assert world.sync().plan == []


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(world):
    world.sync()
    world.edit_contact("c-ada", jobTitle="Countess")
    edited = world.sync()
    report = take_back(world, edited.run_id, dry_run=True)
    assert [type(a).__name__ for a in report.plan] == ["Reconcile"]
    assert report.plan[0].fields["jobTitle"] == "Chief Engineer" and report.plan[0].write_crm
    assert world.contact("c-ada")["jobTitle"] == "Countess"
    assert world.store.get(SYNC_RUNS, report.run_id) is None  # a dry run records nothing


def test_a_record_changed_again_since_the_run_is_left_alone_and_listed(world):
    world.sync()
    alan_was = world.contact("c-alan").get("jobTitle")
    world.edit_contact("c-ada", jobTitle="Countess")
    world.edit_contact("c-alan", jobTitle="Cryptanalyst")
    edited = world.sync()
    world.edit_contact("c-ada", jobTitle="Analyst")  # changed again in the CRM
    report = take_back(world, edited.run_id)
    assert [e["id"] for e in report.errors] == ["c-ada"]
    assert report.errors[0]["kind"] == "UndoConflict" and "jobTitle" in report.errors[0]["message"]
    assert report.outcome["reason"] == "undo_conflicts"
    assert world.contact("c-ada")["jobTitle"] == "Analyst"  # left alone
    assert world.contact("c-alan").get("jobTitle") == alan_was  # the other item taken back


def test_undoing_the_undo_restores_the_run_s_result(world):
    world.sync()
    world.edit_contact("c-ada", jobTitle="Countess")
    edited = world.sync()
    back = take_back(world, edited.run_id)
    again = take_back(world, back.run_id)
    assert not again.errors, again.errors
    assert world.contact("c-ada")["jobTitle"] == "Countess"
    assert cm.from_person(world.person_of("c-ada"))["jobTitle"] == "Countess"
    assert world.sync().plan == []


def test_a_first_push_taken_back_leaves_the_group_and_says_the_next_sync_redoes_it(world):
    first = world.sync()
    assert first.counts["pushed"] == 4
    report = take_back(world, first.run_id)
    assert report.counts["removedFromGroup"] == 4
    assert report.counts["redoneByNextSync"] == 4  # the contacts are still tagged
    assert world.members() == set() and world.links() == {}  # parked
    people = {cm.client_data_id(p) for p in world.persons().values()}
    assert {"c-ada", "c-grace", "c-alan", "c-katherine"} <= people  # nothing deleted
    undone_undo = take_back(world, report.run_id)  # the undo of the undo: back in
    assert undone_undo.counts["rejoinedGroup"] == 4 and len(world.members()) == 4


def test_an_import_taken_back_untags_the_contact(world):
    world.sync()
    name = world.create_person("Hedy", "hedy@lamarr.example", in_group=True)
    imported = world.sync()
    crm_id = next(c for c, g in world.links().items() if g == name)
    report = take_back(world, imported.run_id)
    assert report.counts["untagged"] == 1
    assert TAG not in world.contact(crm_id)["tagIds"]
    assert report.counts["redoneByNextSync"] == 1  # the person is still in the group


def test_only_a_finished_contacts_run_of_the_caller_can_be_undone(world):
    first = world.sync()
    with pytest.raises(UndoRefused, match="no run"):
        undo(world.config, world.store, first.run_id, Options(), user_id="u-bob")
    with pytest.raises(UndoRefused, match="no run"):
        take_back(world, "no-such-run")


def test_the_command_line_prints_the_undo(world, monkeypatch, capsys):
    world.sync()
    world.edit_contact("c-ada", jobTitle="Countess")
    edited = world.sync()
    monkeypatch.setenv("CRMSYNC_STORE", world.config.store_url)
    monkeypatch.setenv("CRMSYNC_GOOGLE_ENDPOINT", world.config.google_endpoint)
    monkeypatch.chdir(world.config.state_dir.parent)  # the token key of the world's connect
    assert main(["undo", edited.run_id, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nothing was changed" in out and "Ada Lovelace" in out
    assert world.contact("c-ada")["jobTitle"] == "Countess"


def test_the_next_sync_applies_the_rules_to_what_the_undo_touched(world):
    """The pairs an undo touched are read again by the next sync, whatever its cursors:
    contacts still tagged go back into the group (an incremental sync would not have
    looked at them, and the group would have stayed without its tagged contacts)."""
    first = world.sync()
    take_back(world, first.run_id)
    assert world.members() == set()
    again = world.sync()
    assert again.counts.get("rejoinedGroup") == 4, again.counts
    assert world.members() == set(world.links().values()) and len(world.links()) == 4
    assert world.sync().plan == []


def test_an_undo_leaves_a_sync_that_is_due_still_due(world):
    from core.model import SYNC_STATE, stamp

    edited = world.sync()
    due = stamp(world.clock.now())
    sid = "u-alice:contacts"
    world.store.put(SYNC_STATE, sid, {**world.store.get(SYNC_STATE, sid), "nextDueAt": due})
    take_back(world, edited.run_id)
    assert world.store.get(SYNC_STATE, sid)["nextDueAt"] == due  # the sync still runs
