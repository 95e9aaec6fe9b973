"""The schedule's hard cases (core.schedule, functions.jobs): states from before slots,
settings the CRM writes itself, looks that move the CRM cursor past other users'
records, webhook deletions during a run, a reconnection during a revoked run,
failures the run could not record, upkeep that fails, and the daily sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import lease, schedule
from core.model import SYNC_RUNS, SYNC_STATE, stamp
from core.runs import _mark_revoked
from core.schedule import Job
from functions import bootstrap, seed, sync
from functions.jobs import UNCHANGED, dispatch, run_batch, run_job
from functions.webhook_logic import note_deleted
from tests.integration.crash import LaterClock

CONTACTS = f"{seed.ALICE}:contacts"
ACTIVITIES = f"{seed.ALICE}:activities"


@pytest.fixture
def world(cloud_env, sandbox):
    """Alice synced once (both sections) and the echo of it read: idle from now on."""
    clock = LaterClock(timedelta(0))
    bootstrap.use_clock(clock)
    config = bootstrap.Config.from_env()
    dispatch(config, cloud_env)
    sandbox.settle()
    w = World(cloud_env, config, clock)
    clock.offset += timedelta(minutes=10)  # the seeded CRM is past the overlap window
    w.to_slot(CONTACTS)
    dispatch(config, cloud_env)  # the echoes: runs that plan nothing
    yield w
    bootstrap.use_clock(None)


class World:
    def __init__(self, store, config, clock) -> None:
        self.store, self.config, self.clock = store, config, clock

    def state(self, sid):
        return self.store.get(SYNC_STATE, sid) or {}

    def to_slot(self, sid):
        due = schedule.next_due(self.state(sid), self.clock.now())
        self.clock.offset += schedule.parse_timestamp(due) - self.clock.now() + timedelta(seconds=1)

    def runs(self):
        return [d.data for d in self.store.scan(SYNC_RUNS, order_by="startedAt")]

    def tick(self):
        return dispatch(self.config, self.store)

    def settings(self, **sections):
        doc = self.store.get("syncSettings", seed.ALICE)
        for name, changes in sections.items():
            doc[name] = {**doc[name], **changes}
        self.store.put("syncSettings", seed.ALICE, doc)  # the CRM itself, not the API


def test_states_from_before_slots_get_one_and_sync_again(world):
    old = {k: v for k, v in world.state(CONTACTS).items() if k != "slot"}
    world.store.put(SYNC_STATE, CONTACTS, {**old, "nextDueAt": stamp(world.clock.now())})
    world.store.delete(schedule.SCHEDULE, schedule.INTERVALS)
    world.tick()
    assert world.state(CONTACTS)["slot"]  # set again from the settings
    last = world.state(CONTACTS)["lastRunAt"]
    world.clock.offset += timedelta(minutes=1)
    sent = world.tick()  # due by its old nextDueAt: a full run
    assert [j.probe for j in sent if j.section == "contacts"] == [None]
    assert world.state(CONTACTS)["nextDueAt"] is None
    assert world.state(CONTACTS)["lastRunAt"] > last


def test_auto_sync_turned_off_by_the_crm_itself_syncs_nothing_more(world):
    """Looks do not read settings; a change makes the look ask for a run, and the run,
    seeing auto off, leaves the schedule instead of syncing."""
    world.settings(activities={"auto": False})
    world.clock.offset += timedelta(minutes=1)
    kickoff = world.store.get("activities", "a-kickoff")
    moved = {**kickoff, "title": "Moved", "modifiedAt": stamp(world.clock.now())}
    world.store.put("activities", "a-kickoff", moved)
    world.to_slot(ACTIVITIES)
    ran, last = len(world.runs()), world.state(ACTIVITIES).get("lastRunAt")
    world.tick()
    assert world.state(ACTIVITIES)["slot"] is None and len(world.runs()) == ran
    assert world.state(ACTIVITIES).get("lastRunAt") == last  # no run
    world.to_slot(CONTACTS)
    assert all(j.section == "contacts" for j in world.tick())


def test_settings_the_crm_writes_itself_are_found_by_the_daily_sweep(world):
    """A new tag written by the CRM, not through the settings API: the sweep sees that
    the last run used another one and makes the pair due at once."""
    world.store.put("tags", "t-alice-2", {"name": "Alice 2", "kind": "private",
                                          "ownerId": seed.ALICE})  # fmt: skip
    linus = world.store.get("contacts", "c-linus")
    world.store.put("contacts", "c-linus", {**linus, "tagIds": ["t-alice-2"]})
    world.clock.offset += timedelta(hours=1)  # long ago, past any overlap window
    world.settings(contacts={"tagId": "t-alice-2"}, activities={"intervalMinutes": 60})
    world.store.delete(schedule.SCHEDULE, schedule.SWEEP)  # the day's pass is due
    world.tick()
    assert world.state(ACTIVITIES)["slot"].startswith("60:")  # rescheduled
    world.clock.offset += timedelta(minutes=1)
    world.tick()
    assert world.state(CONTACTS)["tagId"] == "t-alice-2"
    assert world.runs()[-1]["counts"].get("pushed") == 1  # Linus joined


def test_a_look_moves_the_crm_cursor_past_other_users_records_without_a_run(world):
    before = world.state(CONTACTS)
    barbara = world.store.get("contacts", "c-barbara")  # Bob's, not linked for Alice
    world.clock.offset += timedelta(minutes=1)
    world.store.put("contacts", "c-barbara", {**barbara, "jobTitle": "Professor",
                                              "modifiedAt": stamp(world.clock.now())})  # fmt: skip
    world.to_slot(CONTACTS)
    ran = len(world.runs())
    job = next(j for j in world.tick() if j.section == "contacts")
    after = world.state(CONTACTS)
    assert job.probe is not None and len(world.runs()) == ran
    assert after["crmCursor"] > before["crmCursor"] and after.get("lease") is None
    assert after["emptyRuns"] == before["emptyRuns"]  # a look, not a run


def test_hard_deletes_the_webhook_reports_during_a_run_survive_its_end(cloud_env):
    now = datetime.now(UTC)
    held = lease.acquire(cloud_env, CONTACTS, "run-1", now)
    note_deleted(cloud_env, Job(seed.ALICE, "contacts", "webhook"), "c-gone", datetime.now(UTC))
    lease.release(cloud_env, CONTACTS, "run-1", {"retryCrm": []},
                  consumed={"retryCrm": held.get("retryCrm") or []})  # fmt: skip
    assert cloud_env.get(SYNC_STATE, CONTACTS)["retryCrm"] == ["c-gone"]


def test_a_revoked_run_never_marks_a_fresh_connection(cloud_env):
    account = cloud_env.get("googleAccounts", seed.ALICE)
    assert not _mark_revoked(cloud_env, seed.ALICE, "an older ciphertext")
    assert cloud_env.get("googleAccounts", seed.ALICE)["status"] == "connected"
    assert _mark_revoked(cloud_env, seed.ALICE, account["refreshTokenCiphertext"])
    assert cloud_env.get("googleAccounts", seed.ALICE)["status"] == "reauth_required"


def test_a_batch_records_each_failure_once(world, sandbox):
    sandbox.fault("people.people.connections.list", 503, count=20)
    world.clock.offset += timedelta(minutes=1)
    world.store.put("contacts", "c-ada", {**world.store.get("contacts", "c-ada"),
                                          "jobTitle": "Countess",
                                          "modifiedAt": stamp(world.clock.now())})  # fmt: skip
    world.to_slot(CONTACTS)
    job = schedule.job_for(seed.ALICE, "contacts", world.state(CONTACTS), world.clock.now())
    ran = len(world.runs())
    (result,) = run_batch(world.config, world.store, [job])
    assert isinstance(result, Exception)
    failed = world.runs()[ran:]
    assert len(failed) == 1 and failed[0]["ok"] is False


def test_an_upkeep_step_that_fails_does_not_replay_the_slots(world):
    world.store.put(SYNC_STATE, ACTIVITIES, {**world.state(ACTIVITIES),
                                             "renewAt": stamp(world.clock.now()),
                                             "channel": {"id": "x", "resourceId": "r",
                                                         "expiresAt": "garbage"}})  # fmt: skip
    world.to_slot(CONTACTS)
    assert world.tick()  # the channel's upkeep fails after the jobs went out
    assert schedule.parse_timestamp(
        world.store.get(schedule.SCHEDULE, schedule.TICKS)["lastTickAt"]
    )
    assert world.tick() == []  # the same minute again: nothing new is due
    retry = schedule.parse_timestamp(world.state(ACTIVITIES)["renewAt"])
    assert retry > world.clock.now() + timedelta(minutes=30)  # tried again later, not each tick


def test_the_daily_sweep_schedules_settings_the_crm_wrote_and_prunes_intervals(world):
    world.store.put(SYNC_STATE, CONTACTS, {**world.state(CONTACTS), "slot": None})
    schedule.register_intervals(world.store, [7], world.clock.now() - timedelta(days=3))
    world.store.delete(schedule.SCHEDULE, schedule.SWEEP)
    assert schedule.sweep(world.store, world.clock.now()) > 0
    assert world.state(CONTACTS)["slot"]
    minutes = world.store.get(schedule.SCHEDULE, schedule.INTERVALS)["minutes"]
    assert 7 not in minutes and {15, 30} <= set(minutes)
    assert schedule.sweep(world.store, world.clock.now()) == 0  # done for the day


def test_an_idle_look_answers_unchanged_and_reads_one_document(world):
    world.to_slot(CONTACTS)
    job = schedule.job_for(seed.ALICE, "contacts", world.state(CONTACTS), world.clock.now())
    reads = []
    store = Counting(world.store, reads)
    assert run_job(world.config, store, job) == UNCHANGED
    assert len(reads) == 1 and not store.writes  # one CRM query (the tick read the state)


class Counting:
    """The store, counting what a look reads and writes (documents, as billed)."""

    def __init__(self, store, reads) -> None:
        self.store, self.reads, self.writes = store, reads, []

    def get(self, collection, doc_id):
        self.reads.append((collection, doc_id))
        return self.store.get(collection, doc_id)

    def get_many(self, collection, ids):
        self.reads.extend((collection, i) for i in ids)
        return self.store.get_many(collection, ids)

    def query(self, collection, *args, **kwargs):
        found = self.store.query(collection, *args, **kwargs)
        self.reads.extend([(collection, d.id) for d in found] or [(collection, "(query)")])
        return found

    def put(self, *args):
        self.writes.append(args)
        return self.store.put(*args)

    def transaction(self, fn, **kwargs):
        self.writes.append(("transaction",))
        return self.store.transaction(fn, **kwargs)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_a_scheduled_pair_carries_its_connection_and_loses_it_with_the_schedule(world):
    from functions import accounts, sync

    account = world.store.get("googleAccounts", seed.ALICE)
    assert world.state(CONTACTS)["tokenCiphertext"] == account["refreshTokenCiphertext"]
    refresh = sync.google_credentials(world.config, world.store, seed.ALICE).refresh_token
    accounts.save_connection(world.config, world.store, seed.ALICE, refresh,
                             accounts.TokenInfo(None, ()))  # fmt: skip
    renewed = world.store.get("googleAccounts", seed.ALICE)["refreshTokenCiphertext"]
    assert renewed != account["refreshTokenCiphertext"]
    assert {world.state(s)["tokenCiphertext"] for s in (CONTACTS, ACTIVITIES)} == {renewed}
    schedule.unschedule(world.store, seed.ALICE)  # reauth_required
    assert world.state(CONTACTS)["tokenCiphertext"] is None


def test_the_looks_of_a_message_share_one_crm_query_per_section(world):
    """Four looks (each section twice, as two users' would be) read two documents: one
    query per section; and each look's answer is the one its own query gives."""
    world.to_slot(CONTACTS)
    now = world.clock.now()
    jobs = [schedule.job_for(seed.ALICE, s, world.state(f"{seed.ALICE}:{s}"), now)
            for s in ("contacts", "contacts", "activities", "activities")]  # fmt: skip
    alone = [sync.changed(world.config, world.store, job)[0] for job in jobs]
    reads = []
    store = Counting(world.store, reads)
    answers = run_batch(world.config, store, jobs)
    assert [a == UNCHANGED for a in answers] == [v == "unchanged" for v in alone]
    assert all(a == UNCHANGED for a in answers)
    assert len([r for r in reads if r[0] in ("contacts", "activities")]) == 2
    # a record past the windows: every look sees it in the shared page, as in its own
    world.clock.offset += timedelta(minutes=1)
    ada = world.store.get("contacts", "c-ada")
    world.store.put("contacts", "c-ada", {**ada, "modifiedAt": stamp(world.clock.now())})
    page = sync.crm_page(world.store, jobs, "contacts", world.clock.now())
    assert [i for i, _ in page[1]] == ["c-ada"]
    assert sync.changed(world.config, world.store, jobs[0], page)[0] == "run"
