# ruff: noqa: F811  (the world fixture, imported)
"""Regressions from the second independent review of issue 14 (each failed before its
fix): a corrupt full-pass mark lost hard deletes; a state key set aside as corrupt was
dropped at the run's end over a good value written meanwhile; an undecryptable stored
token answered 500 "tell your administrator" instead of "reconnect"; the undo preview of
a killed run said "has not finished" while its expired lease stayed; a run that knew it
had lost its lease still wrote its state; a deterministic store refusal was waited for
as an outage; a failing renew at progress stopped a healthy run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.errors import UndoRefused
from core.model import CONTACTS, SYNC_RUNS, SYNC_STATE, stamp, state_id
from functions.webhook_logic import Payload
from tests.integration.contacts_world import ALICE
from tests.security.outage import before_execute
from tests.security.test_probe_regressions import _delete_ada, world  # noqa: F401  (world: a fixture)

SID = state_id(ALICE, "contacts")


def _deleted(ids):
    return Payload.model_validate({"events": [
        {"eventId": f"e-{i}", "entity": "contact", "recordId": i, "change": "deleted",
         "userIds": [ALICE]} for i in ids]})  # fmt: skip


def _put_state(world, **fields):
    world.store.put(SYNC_STATE, SID, {**world.store.get(SYNC_STATE, SID), **fields})


# 1. a corrupt crmFullPassAt is set aside by sound_state: the run is incremental, and the
#    mark is dropped for good -> the hard deletes it stood for are never seen
def test_corrupt_full_pass_mark_still_gives_a_full_pass(world):
    name = world.links()["c-ada"]
    world.store.delete(CONTACTS, "c-ada")  # deleted for good; retryCrm overflowed earlier
    _put_state(world, retryCrm=[], crmFullPassAt="2026-13-45")  # corrupt mark
    report = world.run()
    assert report.full_pass, "a full CRM read was asked for"
    world.run()
    assert "c-ada" not in world.links() and name not in world.members()


# 2. a key sound_state set aside at the start is dropped at release even when another
#    writer stored a good value meanwhile: a webhook's hard delete is lost
@pytest.mark.parametrize("corrupt", [{"retryCrm": "garbage"}, {"crmFullPassAt": 7}, {}])
def test_a_value_written_during_the_run_over_a_corrupt_one_is_kept(world, corrupt):
    name = world.links()["c-ada"]
    _put_state(world, **corrupt)
    engine = world.engine()
    before_execute(engine, lambda: _delete_ada(world))  # read already: c-ada listed
    engine.run(ALICE)
    state = world.store.get(SYNC_STATE, SID)
    assert "c-ada" in (state.get("retryCrm") or []) or state.get("crmFullPassAt"), state
    world.run()
    assert "c-ada" not in world.links() and name not in world.members()


# 3. a stored refresh token that does not decrypt (the user's: 'reconnect the account')
#    now answers 500 server_misconfigured and hides the remedy
def test_an_undecryptable_token_is_not_a_server_misconfiguration(tmp_path):
    from cryptography.fernet import Fernet

    from adapters.tokens import FernetCipher
    from functions.http_errors import as_json

    with pytest.raises(Exception) as raised:
        FernetCipher(Fernet.generate_key()).decrypt("not-a-token")
    body, status, _ = as_json(raised.value)
    assert status < 500 and "reconnect" in (body["hint"] or body["error"]).lower(), (status, body)


# 4. the undo preview of a run killed mid-run (its expired lease still in the state)
#    says 'has not finished' until some other run takes the lease
def test_preview_of_a_killed_run_with_its_expired_lease_left_says_interrupted(world):
    now = world.clock.now()
    world.store.put(SYNC_RUNS, "r-killed", {
        "userId": ALICE, "section": "contacts", "trigger": "manual", "outcome": "running",
        "startedAt": stamp(now - timedelta(minutes=30))})  # fmt: skip
    _put_state(world, lease={"holder": "r-killed@a1",
                             "expiresAt": stamp(now - timedelta(minutes=20))})  # fmt: skip
    with pytest.raises(UndoRefused, match="interrupted"):
        world.undo("r-killed", dry_run=True)


def test_control_corrupt_mark_leaves_the_deleted_contact_linked(world):
    """(Shows the consequence of 1: c-ada's person stays in the CRM group for good.)"""
    name = world.links()["c-ada"]
    world.store.delete(CONTACTS, "c-ada")
    _put_state(world, retryCrm=[], crmFullPassAt="2026-13-45")
    for _ in range(3):
        world.run()
    assert "c-ada" not in world.links() and name not in world.members()


# --- suspicions of the review, made tests -------------------------------------------------


def test_a_run_that_lost_its_lease_writes_no_state_over_the_newer_run_s(world):
    from core import lease
    from core.errors import LeaseHeld

    world.edit_contact("c-grace", jobTitle="Admiral")
    engine = world.engine()
    execute = engine.execute
    newer = {}

    def overtaken(*args, **kwargs):  # the lease lapses; another run takes it and ends
        out = execute(*args, **kwargs)
        world.sandbox.advance(lease.LEASE_SECONDS + 60)
        lease.acquire(world.store, SID, "newer@b", world.clock.now())
        lease.release(world.store, SID, "newer@b", {"googleCursor": "newer-cursor"})
        newer.update(world.store.get(SYNC_STATE, SID))
        engine.progress("still going")  # the stale run learns it at its next progress
        return out

    engine.execute = overtaken  # type: ignore[method-assign]
    with pytest.raises(LeaseHeld) as raised:
        engine.run(ALICE)
    from core.outcome import of_error

    assert of_error(raised.value).reason == "interrupted"  # it ran: not "busy"
    state = world.store.get(SYNC_STATE, SID)
    assert state["googleCursor"] == "newer-cursor" and state["lastRunAt"] == newer["lastRunAt"]


def test_a_document_the_store_refuses_as_malformed_is_not_waited_for_as_an_outage(world):
    from core import runs
    from core.errors import BadStoreRequest
    from core.outcome import of_error
    from tests.security.outage import Outage, WaitingClock

    clock = WaitingClock(world, Outage(()))
    report = runs.Report("r1", ALICE, "contacts", "manual", stamp(clock.now()), False)
    report.holder = "r1@a"

    class Refusing:
        def __getattr__(self, name):
            def call(*args, **kwargs):
                raise BadStoreRequest("syncRuns/r1: document is 2000000 bytes, over 1048576")

            return call

    assert not runs._patient_finish(Refusing(), clock, report, runs.RunLog(), {}, None,
                                    runs.Shell(None, {}, None, None))  # fmt: skip
    assert clock.waits == [], "no wait cures a malformed request"
    assert of_error(BadStoreRequest("too big")).reason == "internal"


def test_a_failing_renew_at_progress_does_not_stop_a_healthy_run(world):
    from core import lease
    from core.errors import StoreError

    beat = lease.Heartbeat(world.store, world.clock, SID, "r@a")

    class Down:
        def transaction(self, *args, **kwargs):
            raise StoreError("firestore: 503 unavailable")

    beat.store = Down()
    world.sandbox.advance(lease.HEARTBEAT_SECONDS + 1)
    beat()  # the renew failed: logged, and the run goes on (the thread tries again)
    assert beat.lost is None


def test_the_contacts_put_off_stay_a_bounded_list():
    from datetime import UTC, datetime

    from core import runs

    log = runs.RunLog()
    log.later_crm |= {f"c{n:05d}" for n in range(runs.LATER_MAX + 500)}
    later = runs.later_state({}, log, datetime(2026, 12, 7, tzinfo=UTC))
    assert len(later) == runs.LATER_MAX
