"""Contacts sync under failure: expired tokens, stale etags, faults, revoked access, bad data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core import contact_mapping as cm
from core import lease
from core.errors import AuthRevoked, LeaseHeld, NotConnected, QuotaExceeded, Unavailable
from core.model import CONTACTS, GOOGLE_ACCOUNTS, SYNC_RUNS
from tests.integration.contacts_world import ALICE, World
from tests.integration.races import EditsAfterListing

EIGHT_DAYS = 8 * 24 * 3600


@pytest.fixture
def world(tmp_path, sandbox, account):
    w = World(tmp_path, sandbox, account)
    w.run()
    yield w
    w.close()


def test_expired_people_token_leads_to_a_full_pass_without_duplicates(world, sandbox):
    world.edit_person(world.links()["c-ada"], notes="edited before expiry")
    sandbox.advance(EIGHT_DAYS)
    world.edit_contact("c-grace", jobTitle="Rear Admiral")
    report = world.run()
    assert report.full_pass
    assert report.counts.get("pushed", 0) == 0 and report.counts.get("imported", 0) == 0
    assert world.contact("c-ada")["notes"] == "edited before expiry"
    assert cm.from_person(world.person_of("c-grace"))["jobTitle"] == "Rear Admiral"
    assert len(world.persons()) == 4 and len(world.links()) == 4
    assert world.run().plan == []  # the new token works


def test_stale_etag_is_reread_remerged_and_retried_once(world):
    name = world.links()["c-alan"]
    world.edit_contact("c-alan", jobTitle="Mathematician")
    port = EditsAfterListing(world.people_port(), lambda: world.edit_person(name, notes="Enigma"))
    report = world.engine(people=port).run(ALICE)
    assert report.errors == []
    person, contact = (
        cm.from_person(world.person_of("c-alan")),
        cm.normalize(world.contact("c-alan")),
    )
    assert person == contact
    assert (person["jobTitle"], person["notes"]) == ("Mathematician", "Enigma")


def test_429_and_503_are_retried_honouring_retry_after(world, sandbox):
    world.edit_contact("c-ada", jobTitle="Countess")
    sandbox.fault("people.people.connections.list", 429, count=2, retryAfter=0)
    sandbox.fault("people.people.batchUpdateContacts", 503, count=1, retryAfter=0)
    report = world.run()
    assert report.counts["updatedInGoogle"] == 1
    assert sandbox.stats()["byMethod"]["people.people.connections.list"] >= 3


def test_persistent_faults_fail_the_run_with_cursors_untouched(world, sandbox):
    before = world.state()
    world.edit_contact("c-ada", jobTitle="Countess")
    sandbox.fault("people.people.connections.list", 503, count=10, retryAfter=0)
    with pytest.raises(Unavailable):
        world.run()
    after = world.state()
    assert after["googleCursor"] == before["googleCursor"]
    assert after["crmCursor"] == before["crmCursor"]
    assert after["lastSuccessAt"] == before["lastSuccessAt"] and after["lease"] is None
    assert after["lastResult"]["ok"] is False
    runs = [d.data for d in world.store.scan(SYNC_RUNS, order_by="startedAt")]
    assert runs[-1]["ok"] is False and "503" in runs[-1]["errors"][-1]["message"]
    sandbox.control("DELETE", "/_sandbox/faults")
    assert world.run().counts["updatedInGoogle"] == 1  # nothing was lost


def test_quota_exhaustion_is_a_clear_error(world, sandbox):
    sandbox.fault("people.people.connections.list", 429, count=10, retryAfter=0)
    with pytest.raises(QuotaExceeded, match="429"):
        world.run()


def test_revoked_token_marks_reauth_required_and_changes_nothing_else(world, sandbox):
    links, state = world.links(), world.state()
    world.edit_contact("c-ada", jobTitle="Countess")
    sandbox.state.tokens.revoke(world.google.refresh_token)
    with pytest.raises(AuthRevoked, match="reconnect"):
        world.run()
    assert world.store.get(GOOGLE_ACCOUNTS, ALICE)["status"] == "reauth_required"
    assert world.links() == links
    assert world.state()["googleCursor"] == state["googleCursor"]
    with pytest.raises(NotConnected, match="reconnect"):
        world.sync()


def test_malformed_contact_is_skipped_and_reported_and_the_rest_goes_on(world):
    doc = world.contact("c-grace")
    world.store.put(CONTACTS, "c-grace", {**doc, "emails": [{"value": "not an email"}],
                                          "modifiedAt": doc["modifiedAt"][:-1] + "9Z"})  # fmt: skip
    world.edit_contact("c-ada", jobTitle="Countess")
    report = world.run()
    assert report.counts["skipped"] == 1 and report.counts["updatedInGoogle"] == 1
    assert report.errors[0]["id"] == "c-grace" and "emails.0.value" in report.errors[0]["message"]
    assert "c-grace" in world.links()  # skipped, not taken as deleted
    assert world.links()["c-grace"] in world.members()


def test_full_option_compares_everything_and_changes_nothing_when_in_sync(world):
    report = world.run(full=True)
    assert report.full_pass and report.plan == []


def test_a_second_overlapping_run_is_refused_by_the_lease(world):
    lease.acquire(world.store, f"{ALICE}:contacts", "other-run", datetime.now(UTC))
    with pytest.raises(LeaseHeld, match="other-run"):
        world.run()
