"""An event imported once is never imported over its activity again: after an account
switch archived the links, the user's new account attends the same meeting (Google
gives an invitation the same event id in every calendar). Found by review: the CRM's
edit was overwritten, unjournaled, and a second event was pushed."""

from __future__ import annotations

from core.activities_plan import ImportEvent, InsertEvent, ReconcileEvent
from core.activity_mapping import import_id
from functions.accounts import connect
from tests.integration.activities_world import ALICE
from tests.integration.test_activities_sync import world  # noqa: F401  (a fixture)


def test_a_meeting_both_accounts_attend_is_linked_again_after_a_switch(world, make_account):  # noqa: F811
    outsider = make_account("xavier@external.test")
    other = make_account("alice.other@example.com")
    world.google["x"] = outsider
    world.sync()
    event = world.insert_event("x", summary="Vendor call", description="agenda", attendees=[
        {"email": "alice@example.com"}, {"email": "alice.other@example.com"}])  # fmt: skip
    world.sync()
    activity_id = import_id(ALICE, event["id"])
    assert world.activity(activity_id)["description"] == "agenda"
    world.edit_activity(activity_id, description="my CRM notes")
    world.sync()

    connect(world.config, ALICE, other.refresh_token)  # another Google account
    world.google[ALICE] = other
    report = world.sync()
    mine = [a for a in report.plan if getattr(a, "activity_id", None) == activity_id
            or getattr(a, "event_id", None) == event["id"]]  # fmt: skip
    assert len(mine) == 1 and isinstance(mine[0], ReconcileEvent), report.plan
    assert mine[0].reason == "imported" and not mine[0].write_crm
    assert not any(isinstance(a, ImportEvent | InsertEvent) for a in mine)
    assert world.activity(activity_id)["description"] == "my CRM notes"  # kept
    assert world.links()[activity_id]["googleId"] == event["id"]
    again = world.sync()
    assert not again.counts.get("imported") and not again.counts.get("pushed"), again.counts
    titles = [e.get("summary") for e in world.events(ALICE).values()]
    assert titles.count("Vendor call") == 1  # no second event in the new calendar


def test_the_event_of_a_malformed_activity_is_never_imported_as_a_second_activity(world):  # noqa: F811
    """Seen in a browser test: an activity edited to end before it starts is skipped as
    malformed, and its event (ours, by its id) was then imported as a new activity."""
    from core.model import ACTIVITIES

    world.sync()
    before = {d.id for d in world.store.query(ACTIVITIES)}
    pushed = next(i for i in sorted(world.links()) if i in before)
    doc = world.activity(pushed)
    world.edit_activity(pushed, end=doc["start"][:11] + "00:00:00" + doc["start"][19:])
    report = world.sync()
    assert not report.counts.get("imported"), report.counts
    assert {d.id for d in world.store.query(ACTIVITIES)} == before
    assert pushed in world.links()  # kept for when the activity is fixed
