# ruff: noqa: F811  (the tests take the imported fixture by name)
"""crmsync's own documents (links, the sync state, its lease and cursors) found corrupt
are reported and set aside, never a crash that Pub/Sub would redeliver forever; the
runs that follow repair them with no duplicate and nothing lost."""

from __future__ import annotations

import pytest

from core import contact_mapping as cm
from core.model import LINKS, SYNC_STATE
from tests.integration.test_undo import world  # noqa: F401  (a fixture)

STATE = "u-alice:contacts"


def put_link(world, change):
    doc = next(d for d in world.store.scan(LINKS, order_by="crmId") if d.data["crmId"] == "c-ada")
    world.store.put(LINKS, doc.id, change(doc.data))


def put_state(world, **fields):
    world.store.put(SYNC_STATE, STATE, {**world.store.get(SYNC_STATE, STATE), **fields})


CORRUPT = {
    "a link without its Google id": lambda w: put_link(
        w, lambda d: {k: v for k, v in d.items() if k != "googleId"}),
    "a link whose fields are text": lambda w: put_link(w, lambda d: {**d, "fields": "x"}),
    "a link whose etag is a number": lambda w: put_link(w, lambda d: {**d, "googleEtag": 5}),
    "a CRM cursor that is a number": lambda w: put_state(w, crmCursor=5),
    "a Google cursor that is a list": lambda w: put_state(w, googleCursor=[1]),
    "a lease that is text": lambda w: put_state(w, lease="garbage"),
    "a retry list that is text": lambda w: put_state(w, retryCrm="c-ada"),
}  # fmt: skip


@pytest.mark.parametrize("corrupt", list(CORRUPT))
def test_corrupt_crmsync_documents_are_reported_and_repaired_without_duplicates(world, corrupt):
    world.sync()
    pairs = world.links()
    CORRUPT[corrupt](world)
    world.edit_contact("c-grace", jobTitle="Admiral")  # other work goes on meanwhile
    first = world.sync()
    assert first.outcome["outcome"] == "done", first.outcome
    for _ in range(2):
        again = world.sync()
    assert not again.errors and again.plan == [], (again.errors, again.plan)
    assert world.links() == pairs  # the same pairs, linked again where a link was lost
    persons = world.persons()
    ids = [cm.client_data_id(p) for p in persons.values() if cm.client_data_id(p)]
    assert len(ids) == len(set(ids)) and len(persons) == len(pairs)  # no duplicate person
    assert cm.from_person(persons[pairs["c-grace"]])["jobTitle"] == "Admiral"


def test_malformed_contacts_settings_do_not_stop_the_activities(tmp_path, sandbox, make_account):
    from core.model import SYNC_SETTINGS
    from tests.integration.activities_world import ALICE, CalendarWorld

    w = CalendarWorld(tmp_path, sandbox, make_account)
    try:
        settings = w.store.get(SYNC_SETTINGS, ALICE) or {}
        w.store.put(SYNC_SETTINGS, ALICE, {**settings, "contacts": {"tagId": 12, "auto": "x"}})
        report = w.sync()
        assert report.counts.get("pushed") == 2, (report.outcome, report.errors)
    finally:
        w.close()
