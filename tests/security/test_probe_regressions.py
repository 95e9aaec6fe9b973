"""Regressions from the second security and fault probe of issue 14: each test failed
before its fix.

* Signed ``deleted`` webhook events for a user who does not sync grew the pair's state
  document past Firestore's 1 MiB, after which every delivery, sync and settings save
  for that user failed for good.
* A run killed before it recorded its changes could be neither undone nor told apart
  from one under way ("has not finished", forever).
* A killed command-line undo held its section for the lease's length.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from adapters.process import LocalProcess
from core import lease
from core.errors import UndoRefused
from core.model import CONTACTS, SYNC_RUNS, SYNC_STATE, stamp, state_id
from functions import cli, seed
from functions.webhook_logic import RETRY_MAX_IDS, Payload, accept
from tests.integration.contacts_world import ALICE, World
from tests.security.outage import before_execute

SID = state_id(ALICE, "contacts")


@pytest.fixture
def world(tmp_path, sandbox, make_account):
    w = World(tmp_path, sandbox, make_account("alice@example.com"))
    w.run()
    yield w
    w.close()


def _deleted(ids: list[str]) -> Payload:
    return Payload.model_validate({"events": [
        {"eventId": f"e-{n}-{len(i)}-{i[-8:]}", "entity": "contact", "recordId": i,
         "change": "deleted", "userIds": [ALICE]} for n, i in enumerate(ids)]})  # fmt: skip


def _delete_ada(world: World) -> None:
    """c-ada deleted for good in the CRM, and the CRM's webhook says so."""
    world.store.delete(CONTACTS, "c-ada")
    accept(world.store, _deleted(["c-ada"]), world.clock.now(), lambda jobs: None)


def test_deletes_piling_up_past_what_the_state_keeps_make_the_next_run_read_the_crm_in_full(
    world,
):
    name = world.links()["c-ada"]
    world.store.delete(CONTACTS, "c-ada")  # deleted for good in the CRM
    ids = ["c-ada"] + [f"{'x' * 400}-{n}" for n in range(RETRY_MAX_IDS + 100)]
    now = world.clock.now()
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        accept(world.store, _deleted(part), now, lambda jobs: None)

    state = world.store.get(SYNC_STATE, SID)
    assert state["retryCrm"] == [] and state["crmFullPassAt"]
    assert len(json.dumps(state)) < 20_000, "the state document stays small"

    report = world.run()  # a full read of the CRM: c-ada is gone
    assert report.full_pass and "c-ada" not in world.links()
    assert name not in world.members()
    assert world.store.get(SYNC_STATE, SID).get("crmFullPassAt") is None
    assert not world.run().full_pass, "served: the next run is incremental again"


def test_a_run_killed_before_it_recorded_its_changes_is_said_interrupted_by_its_undo(world):
    world.store.put(SYNC_RUNS, "r-killed", {
        "userId": ALICE, "section": "contacts", "trigger": "manual", "outcome": "running",
        "startedAt": stamp(world.clock.now() - timedelta(minutes=10))})  # fmt: skip
    with pytest.raises(UndoRefused, match="interrupted"):
        world.undo("r-killed")
    with pytest.raises(UndoRefused, match="interrupted"):
        world.undo("r-killed", dry_run=True)


def test_a_run_under_way_is_not_taken_for_interrupted(world):
    world.store.put(SYNC_RUNS, "r-live", {
        "userId": ALICE, "section": "contacts", "trigger": "manual", "outcome": "running",
        "startedAt": stamp(world.clock.now())})  # fmt: skip
    lease.acquire(world.store, SID, "r-live@a1", world.clock.now())
    with pytest.raises(UndoRefused, match="has not finished"):
        world.undo("r-live", dry_run=True)


def test_a_killed_command_line_undo_is_taken_over_at_once(cloud_env, capsys):
    assert cli.main(["sync", "--user", seed.ALICE, "--section", "contacts", "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid is gone: as an undo killed mid-run
    owner = {**LocalProcess().owner, "pid": child.pid}
    state = cloud_env.get(SYNC_STATE, SID)
    until = stamp(datetime.now(UTC) + timedelta(minutes=2))
    cloud_env.put(SYNC_STATE, SID, {**state, "lease": {"holder": "undo-1@a", "expiresAt": until,
                                                       "owner": owner}})  # fmt: skip
    assert cli.main(["undo", report["run_id"], "--json"]) == 0


def test_a_delete_that_arrives_while_the_full_read_runs_asks_for_another(world):
    world.store.put(SYNC_STATE, SID, {**world.store.get(SYNC_STATE, SID),
                                      "crmFullPassAt": stamp(world.clock.now())})  # fmt: skip
    engine = world.engine()
    before_execute(engine, lambda: _delete_ada(world))  # read already: c-ada listed
    engine.run(ALICE)
    assert world.store.get(SYNC_STATE, SID).get("crmFullPassAt"), "still due"
    assert world.run().full_pass and "c-ada" not in world.links()


def test_error_answers_name_what_failed_without_the_fault_s_text():
    from core.errors import ConfigError, SettingsError, StoreError
    from functions.http_errors import as_json

    body, status, headers = as_json(StoreError("sqlite store /srv/crm.db: database is locked"))
    assert (status, body["reason"], body["error"]) == (503, "store_unavailable", "StoreError")
    assert headers["Retry-After"]
    body, status, _ = as_json(ConfigError("CRMSYNC_PAGE_URL is not set"))
    assert (status, body["reason"]) == (500, "server_misconfigured")
    assert "CRMSYNC" not in body["error"] and "settings" not in body["hint"]
    body, status, _ = as_json(SettingsError("user u1's contacts tag t9 does not exist"))
    assert (status, body["reason"]) == (400, "bad_settings") and "t9" in body["error"]
    body, status, _ = as_json(KeyError("tokenHash"))
    assert (status, body["reason"], body["error"]) == (500, "internal", "KeyError")


@pytest.mark.parametrize("damage", [{"itemPages": "x"}, {"itemPages": 10**9},
                                    {"finishedAt": "soon"}])  # fmt: skip
def test_the_undo_of_a_run_whose_record_is_damaged_is_refused_not_a_crash(world, damage):
    from core import runs

    done = world.run()  # a run with a record
    world.store.put(SYNC_RUNS, done.run_id, {**world.store.get(SYNC_RUNS, done.run_id),
                                             **damage})  # fmt: skip
    with pytest.raises(UndoRefused, match="damaged"):
        world.undo(done.run_id)
    assert runs.journal(world.store, done.run_id, 10**9) == [], "no endless read"
