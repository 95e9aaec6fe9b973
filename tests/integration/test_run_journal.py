"""The run's journal (``RunLog.note``): one entry per committed change, through the real
engines on the sandbox, with the side written and the synced fields' before and after."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from core import activity_mapping as am
from core.ports import WriteResult
from tests.integration.activities_world import ALICE, CalendarWorld
from tests.integration.contacts_world import TAG, World
from tests.integration.races import EditsAfterListing


@pytest.fixture
def contacts(tmp_path, sandbox, account):
    w = World(tmp_path, sandbox, account)
    yield w
    w.close()


@pytest.fixture
def calendar(tmp_path, sandbox, make_account):
    w = CalendarWorld(tmp_path, sandbox, make_account)
    yield w
    w.close()


def journal(report: Any) -> list[dict[str, Any]]:
    """The report's journal, checked against its counts and for JSON."""
    entries = report.journal
    json.dumps(entries)  # stored as it is
    per_change = Counter(e["change"] for e in entries)
    for change, n in per_change.items():
        assert report.counts.get(change) == n, (change, report.counts)
    for entry in entries:
        assert entry["side"] in ("google", "crm")
    return entries


def only(entries: list[dict[str, Any]], change: str) -> dict[str, Any]:
    found = [e for e in entries if e["change"] == change]
    assert len(found) == 1, entries
    return found[0]


def test_a_first_push_records_each_created_person_by_name(contacts):
    report = contacts.sync()
    entries = journal(report)
    assert report.counts["pushed"] == 4 and len(entries) == 4
    links = contacts.links()
    assert {e["crmId"]: (e["side"], e["googleId"], e["name"]) for e in entries} == {
        "c-ada": ("google", links["c-ada"], "Ada Lovelace"),
        "c-grace": ("google", links["c-grace"], "Grace Hopper"),
        "c-alan": ("google", links["c-alan"], "Alan Turing"),
        "c-katherine": ("google", links["c-katherine"], "Katherine Johnson"),
    }
    assert all(set(e) == {"change", "side", "crmId", "googleId", "name"} for e in entries)


def test_edits_record_the_fields_they_set_on_the_side_written(contacts):
    contacts.sync()
    contacts.edit_contact("c-ada", jobTitle="Countess")
    contacts.edit_person(contacts.links()["c-grace"], notes="Found a moth")
    contacts.edit_contact("c-alan", phones=[{"value": "+44 1908 640404", "type": "work"}])
    entries = journal(contacts.sync())
    by_id = {(e["change"], e["crmId"]): e for e in entries}
    assert set(by_id) == {
        ("updatedInGoogle", "c-ada"),
        ("updatedInGoogle", "c-alan"),
        ("updatedInCrm", "c-grace"),
    }
    ada = by_id["updatedInGoogle", "c-ada"]
    assert ada["side"] == "google" and ada["name"] == "Ada Lovelace"
    assert ada["googleId"] == contacts.links()["c-ada"]
    assert ada["fields"] == {"jobTitle": {"before": "Chief Engineer", "after": "Countess"}}
    alan = by_id["updatedInGoogle", "c-alan"]
    phones = [{"value": "+44 1908 640404", "type": "work"}]
    assert alan["fields"] == {"phones": {"before": [], "after": phones}}
    grace = by_id["updatedInCrm", "c-grace"]
    assert grace["side"] == "crm" and grace["name"] == "Grace Hopper"
    assert grace["fields"] == {"notes": {"before": None, "after": "Found a moth"}}


def test_an_untag_and_an_import_are_recorded(contacts):
    contacts.sync()
    doc = contacts.contact("c-alan")
    contacts.edit_contact("c-alan", tagIds=[t for t in doc["tagIds"] if t != TAG])
    name = contacts.create_person("Hedy", "hedy@lamarr.example", in_group=True)
    entries = journal(contacts.sync())
    left = only(entries, "removedFromGroup")
    assert (left["side"], left["crmId"], left["name"]) == ("google", "c-alan", "Alan Turing")
    imported = only(entries, "imported")
    assert (imported["side"], imported["googleId"], imported["name"]) == ("crm", name, "Hedy")
    assert contacts.contact(imported["crmId"])["givenName"] == "Hedy"


def test_activity_runs_record_pushes_edits_cancellations_and_deletions(calendar):
    entries = journal(calendar.sync())
    assert {e["crmId"]: (e["change"], e["side"], e["name"]) for e in entries} == {
        "a-kickoff": ("pushed", "google", "Kick-off with Ada"),
        "a-offsite": ("pushed", "google", calendar.activity("a-offsite")["title"]),
    }
    assert {e["googleId"] for e in entries} == {am.event_id("a-kickoff"), am.event_id("a-offsite")}
    calendar.sync()  # the echoes

    before = calendar.activity("a-offsite").get("location")
    assert before != "Lake house"
    calendar.edit_activity("a-kickoff", title="Kick-off (moved)")
    calendar.patch_event(am.event_id("a-offsite"), location="Lake house")
    entries = journal(calendar.sync())
    pushed = only(entries, "updatedInGoogle")
    assert (pushed["side"], pushed["crmId"]) == ("google", "a-kickoff")
    assert pushed["fields"] == {
        "title": {"before": "Kick-off with Ada", "after": "Kick-off (moved)"}
    }
    pulled = only(entries, "updatedInCrm")
    assert (pulled["side"], pulled["crmId"]) == ("crm", "a-offsite")
    assert pulled["fields"] == {"location": {"before": before, "after": "Lake house"}}
    calendar.sync()

    synced = calendar.links()["a-kickoff"]["fields"]
    calendar.google[ALICE].calendar.events().delete(
        calendarId="primary", eventId=am.event_id("a-kickoff"), sendUpdates="none"
    ).execute()
    offsite = calendar.links()["a-offsite"]["fields"]
    calendar.edit_activity("a-offsite", showInCalendar=False)
    entries = journal(calendar.sync())
    canceled = only(entries, "canceled")
    assert (canceled["side"], canceled["crmId"], canceled["name"]) == (
        "crm",
        "a-kickoff",
        "Kick-off (moved)",
    )
    assert {k: v["before"] for k, v in canceled["fields"].items()} == synced
    assert canceled["fields"]["canceled"] == {"before": False, "after": True}
    deleted = only(entries, "deletedInGoogle")
    assert (deleted["side"], deleted["googleId"]) == ("google", am.event_id("a-offsite"))
    assert deleted["fields"] == {k: {"before": v, "after": None} for k, v in offsite.items()}


class FailsUpdatesOf:
    """Wraps a People port: the updates of ``names`` fail, item by item."""

    def __init__(self, port: Any, names: set[str]) -> None:
        self.port, self.names = port, names

    def update(self, items: list[tuple[str, dict]], mask: str) -> list[WriteResult]:
        failed = [
            WriteResult(n, None, RuntimeError("refused")) for n, _ in items if n in self.names
        ]
        rest = [(n, body) for n, body in items if n not in self.names]
        return failed + (self.port.update(rest, mask) if rest else [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)


def test_a_failed_write_is_not_recorded(contacts):
    contacts.sync()
    contacts.edit_contact("c-ada", jobTitle="Countess")
    contacts.edit_contact("c-alan", jobTitle="Cryptanalyst")
    port = FailsUpdatesOf(contacts.people_port(), {contacts.links()["c-ada"]})
    report = contacts.engine(people=port).run(ALICE)
    assert report.counts["errors"] == 1 and report.counts["updatedInGoogle"] == 1
    assert [(e["change"], e["crmId"]) for e in journal(report)] == [("updatedInGoogle", "c-alan")]


def test_a_google_edit_during_the_run_is_recorded_against_the_values_read_again(contacts):
    contacts.sync()
    name = contacts.links()["c-alan"]
    contacts.edit_contact("c-alan", jobTitle="Mathematician")
    edit = lambda: contacts.edit_person(name, notes="Enigma")  # noqa: E731
    report = contacts.engine(people=EditsAfterListing(contacts.people_port(), edit)).run(ALICE)
    entries = journal(report)
    assert only(entries, "updatedInGoogle")["fields"] == {
        "jobTitle": {"before": None, "after": "Mathematician"}
    }
    assert only(entries, "updatedInCrm")["fields"] == {"notes": {"before": None, "after": "Enigma"}}


def test_a_pair_coming_back_records_what_was_done_to_each_side(contacts):
    """Untagged in the CRM (the person leaves the group), then tagged again: the parked
    pair comes back and the journal says the person was put back in the group; the
    person taken out of the group in Google and put back: the contact was tagged again.
    Without these entries an undo could not take the return back."""
    contacts.sync()
    doc = contacts.contact("c-alan")
    contacts.edit_contact("c-alan", tagIds=[t for t in doc["tagIds"] if t != TAG])
    contacts.sync()
    contacts.edit_contact("c-alan", tagIds=doc["tagIds"])
    entries = journal(contacts.sync())
    back = only(entries, "rejoinedGroup")
    assert (back["side"], back["crmId"], back["name"]) == ("google", "c-alan", "Alan Turing")
    assert "c-alan" in contacts.tagged_ids() and contacts.person_of("c-alan")

    person = contacts.person_of("c-grace")["resourceName"]
    groups = contacts.google.people.contactGroups().members()
    groups.modify(  # the group is her last: Google keeps a contact in one at least
        resourceName="contactGroups/myContacts", body={"resourceNamesToAdd": [person]}
    ).execute()
    groups.modify(resourceName=contacts.group(), body={"resourceNamesToRemove": [person]}).execute()
    contacts.sandbox.settle()  # Google's listing catches up
    entries = journal(contacts.sync())
    assert only(entries, "untagged")["crmId"] == "c-grace"
    contacts.move_into_group(person)
    contacts.sandbox.settle()
    entries = journal(contacts.sync())
    again = only(entries, "retagged")
    assert (again["side"], again["crmId"], again["googleId"]) == ("crm", "c-grace", person)
    assert "c-grace" in contacts.tagged_ids()


def test_a_journal_that_cannot_be_saved_still_leaves_the_run_record(contacts, monkeypatch, caplog):
    from core import runs
    from core.model import SYNC_RUNS

    def broken(store, report):
        raise RuntimeError("journal store refused")

    monkeypatch.setattr(runs, "save_journal", broken)
    report = contacts.sync()
    record = contacts.store.get(SYNC_RUNS, report.run_id)
    assert record["ok"] is True and record["journalLost"] is True and record["itemPages"] == 0
    assert record["counts"]["pushed"] == 4
    assert "the run's journal was not saved" in caplog.text
