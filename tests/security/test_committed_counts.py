"""Issue 14, item 8: "Run counts report only what was committed."

A run's counts (and the journal an undo reads) say what the run itself changed: not a
removal Google answered "not found" to, not an untag of a contact that had no tag, not
a delete of an event that was gone already. What an interrupted run changed and did not
live to record is said by the rerun that finds it (``relinked``), so that the history
accounts for every Google contact crmsync made.
"""

from __future__ import annotations

import pytest

from core.errors import StoreError
from core.model import CONTACTS
from tests.integration.activities_world import CalendarWorld
from tests.integration.contacts_world import ALICE, TAG, World
from tests.integration.test_contacts_lag import FailingLinkStore
from tests.security.outage import before_execute


@pytest.fixture
def world(tmp_path, sandbox, account):
    sandbox.profile("realistic")  # Google's deltas lag behind its writes
    w = World(tmp_path, sandbox, account)
    w.run()
    sandbox.settle()
    yield w
    w.close()


def _linked_pair(w: World) -> tuple[str, str]:
    crm_id, name = sorted(w.links().items())[0]
    return crm_id, name


def test_a_contact_untagged_while_its_person_was_deleted_counts_no_group_removal(world):
    crm_id, name = _linked_pair(world)
    world.edit_contact(crm_id, tagIds=[])  # the CRM: leave the group...
    world.people.deleteContact(resourceName=name).execute()  # ... Google: gone already
    report = world.run()  # the delta lags: the run still takes the person for present

    assert crm_id not in world.links()
    assert report.counts.get("removedFromGroup", 0) == 0, report.counts
    assert not [e for e in report.journal if e.get("crmId") == crm_id]


def test_a_person_deleted_in_google_whose_contact_lost_the_tag_meanwhile_counts_no_untag(world):
    crm_id, name = _linked_pair(world)
    world.people.deleteContact(resourceName=name).execute()
    world.sandbox.settle()  # the run sees the deletion, and plans to untag the contact...
    engine = world.engine()
    before_execute(engine, lambda: world.edit_contact(crm_id, tagIds=[]))  # ... untagged
    report = engine.run(ALICE)

    assert [type(a).__name__ for a in report.plan] == ["Untag"]
    assert crm_id not in world.links()
    assert report.counts.get("untagged", 0) == 0, report.counts
    assert not [e for e in report.journal if e.get("crmId") == crm_id]


def test_the_rerun_of_an_interrupted_push_counts_the_contacts_it_linked(world):
    new = [f"c-new-{n}" for n in range(3)]
    for n, crm_id in enumerate(new):
        doc = {"givenName": f"New{n}", "emails": [{"value": f"new{n}@example.com"}],
               "tagIds": [TAG], "modifiedAt": world.now()}  # fmt: skip
        world.store.put(CONTACTS, crm_id, doc)
    with pytest.raises(StoreError):  # the persons are made, their links are not
        world.engine(store=FailingLinkStore(world.store)).run(ALICE)

    rerun = world.run()
    assert rerun.counts.get("pushed", 0) == 0
    assert rerun.counts.get("relinked") == 3, rerun.counts
    assert set(new) <= set(world.links())


def test_an_event_deleted_in_google_meanwhile_is_not_counted_as_this_run_s_delete(
    tmp_path, sandbox, make_account
):
    w = CalendarWorld(tmp_path, sandbox, make_account)
    try:
        w.sync()
        activity_id, link = sorted(w.links().items())[0]
        w.edit_activity(activity_id, showInCalendar=False)  # the CRM: off the calendar
        engine = w.engine(ALICE)
        events = w.google[ALICE].calendar.events()  # Google: the user deletes it after the read
        before_execute(engine, events.delete(calendarId="primary", eventId=link["googleId"],
                                             sendUpdates="none").execute)  # fmt: skip
        report = engine.run(ALICE)

        assert [type(a).__name__ for a in report.plan] == ["DeleteEvent"]
        assert activity_id not in w.links()
        assert report.counts.get("deletedInGoogle", 0) == 0, report.counts
        assert not [e for e in report.journal if e.get("crmId") == activity_id]
    finally:
        w.close()
