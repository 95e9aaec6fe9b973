"""Due syncs: ``dispatch`` finds them and hands them to the queue; ``run_job`` runs one.

A tick (``dispatch``) reads only what is due (``core.schedule``): the pairs due at
once, the pairs whose slot is this minute, the push channels to renew, and the CRM
contacts the email index has not seen yet. It sends the due pairs in messages of
``BATCH`` pairs, so one invocation serves many users.

A scheduled pair with nothing forcing a run carries a ``Probe``: the run first asks
the CRM (one query) and Google (one call) whether anything changed past its cursors.
When nothing did, it writes nothing for that pair: one ``syncChecks`` record per
invocation says which pairs were looked at, for the settings page's "last checked".

A job that finds its lease held is a no-op, recorded in ``syncRuns`` as skipped, so
Pub/Sub redelivery and overlapping triggers are harmless. Retrying is for passing
trouble only: quota and 5xx errors propagate from a single-job message (the message
is redelivered); a pair of a batch that fails is recorded and retried at its next
slot, so that one user's trouble does not redo the others' runs. A revoked account,
an unknown user or bad settings are recorded and acknowledged.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from core import email_index, outcome, schedule
from core.errors import (
    AuthRevoked,
    ConfigError,
    CrmsyncError,
    LeaseHeld,
    MalformedDocument,
    NotConnected,
    SideEmpty,
    UnknownUser,
)
from core.model import (
    SYNC_RUN_ITEMS,
    SYNC_RUNS,
    SYNC_SETTINGS,
    SYNC_STATE,
    section_settings,
    stamp,
)
from core.ports import MAX_BATCH_WRITES, Doc, DocumentStore, Filter, Transaction, no_progress
from core.redact import scrub
from core.runs import MAX_JOURNAL_PAGES, Options, Report, chunked, claim, page_count
from core.schedule import Job
from functions import bootstrap
from functions.channels import maintain_channel
from functions.sync import changed, crm_page, run_sections
from functions.webhook_logic import EVENTS

log = logging.getLogger("crmsync.jobs")
# errors a retry cannot cure: recorded, logged, not retried (SideEmpty waits for a person)
FINAL = (AuthRevoked, NotConnected, UnknownUser, ConfigError, MalformedDocument, SideEmpty)
BATCH = 25  # pairs per sync-jobs message
LOOKERS = BATCH  # every look of a message at once: they wait on Google, not on CPU
PAGE = 500
CHANNEL_RETRY = timedelta(hours=1)  # a channel upkeep that met passing trouble
SYNC_CHECKS = "syncChecks"
UNCHANGED = "unchanged"  # what run_job answers when a probe found nothing to do
CHECKS_KEPT = timedelta(days=7)
# webhook event ids (replay protection): a delivery is refused once its signed timestamp
# is 5 minutes old, so an id is needed only while the CRM may still retry its delivery
WEBHOOK_EVENTS_KEPT = timedelta(days=7)
FORGET_PAGES = 10  # pages of webhookEvents forgotten per tick, at most
RUNS_KEPT = timedelta(days=90)  # run records and their journals (history, undo)


class RunUnderWay(CrmsyncError):
    """A redelivered message of a run whose first delivery is still running: raised, so
    that Pub/Sub asks again later (the run may yet die, and this delivery then takes
    it over); never recorded, the run's record is the first delivery's."""

    def __init__(self, run_id: str):
        super().__init__(f"run {run_id} is under way in another delivery of its message")
        self.run_id = run_id


def dispatch(config: bootstrap.Config, store: DocumentStore, *, send: Any = None) -> list[Job]:
    """Send every due job to the configured queue (or to ``send``); returns the jobs.

    Full runs go one per message (Pub/Sub retries each on its own); looks go in
    batches of ``BATCH``. The tick's time is saved as soon as the jobs are out, and
    each upkeep step after that is on its own: one failing does not replay the slots."""
    now = bootstrap.clock().now()
    jobs = due_jobs(store, now)
    if send is not None:
        send(jobs)
    else:
        queue = queue_for(config, store)
        full = [job for job in jobs if job.probe is None]
        for job in full:  # marked first: a slow queue does not get it twice
            schedule.update_state(store, schedule.state_id(job.user_id, job.section),
                                  {"dispatchedAt": stamp(now)})  # fmt: skip
        queue.send(full)
        looks = [job for job in jobs if job.probe is not None]
        queue.send_batched(looks, BATCH, lambda batch: run_batch(config, store, batch))
    store.put(schedule.SCHEDULE, schedule.TICKS, {"lastTickAt": stamp(now)})
    for step in (_keep_channels, _catch_up_index, _forget_checks, _forget_runs,
                 _forget_webhook_events, _sweep, _restore_delegations):  # fmt: skip
        try:
            step(config, store, now)
        except Exception as exc:
            fields = {"step": step.__name__, "error": type(exc).__name__}
            log.warning("tick upkeep failed: %s", exc, extra={"fields": fields})
    return jobs


def _restore_delegations(config: bootstrap.Config, store: DocumentStore, now: datetime) -> None:
    from functions import delegation

    delegation.restore_revoked(config, store, now)


def queue_for(config: bootstrap.Config, store: DocumentStore) -> Any:
    """The configured queue (``bootstrap.queue``); inline, a job runs with ``run_job``."""
    return bootstrap.queue(config, lambda job: run_job(config, store, job))


def due_jobs(store: DocumentStore, now: datetime) -> list[Job]:
    """The due pairs, by query: O(due) reads, plus one per interval in use."""
    intervals = (store.get(schedule.SCHEDULE, schedule.INTERVALS) or {}).get("minutes") or []
    last = (store.get(schedule.SCHEDULE, schedule.TICKS) or {}).get("lastTickAt")
    last_tick = schedule.parse_timestamp(last) if last else None
    found: dict[str, Doc] = {}
    for doc in store.scan(
        SYNC_STATE, [Filter("nextDueAt", "<=", stamp(now))], order_by="nextDueAt"
    ):
        found[doc.id] = doc
    for key in schedule.due_keys(intervals, last_tick, now):
        for doc in store.scan(SYNC_STATE, [Filter("slot", "==", key)], order_by=None):
            found.setdefault(doc.id, doc)
    jobs = []
    for _, doc in sorted(found.items()):
        user_id, section = doc.data.get("userId"), doc.data.get("section")
        if not user_id or section not in schedule.SECTIONS:
            continue
        if not doc.data.get("slot"):
            # due, but no slot: a state from before slots, or a mark left on a pair
            # that is not scheduled (an account switch, a failed manual run). Set
            # right from the settings: scheduled ones are due at the next tick.
            schedule.reschedule(store, user_id, now, sections=[section])
            continue
        if schedule.leased(doc.data, now):
            continue
        job = schedule.job_for(user_id, section, doc.data, now)
        if job.probe is None and schedule.recently_dispatched(doc.data, now):
            continue  # sent a moment ago and still waiting in the queue
        jobs.append(job)
    return jobs


def _keep_channels(config: bootstrap.Config, store: DocumentStore, now: datetime) -> None:
    """Calendar push channels due for upkeep (``renewAt`` passed): open, renew or stop."""
    for doc in store.scan(SYNC_STATE, [Filter("renewAt", "<=", stamp(now))], order_by="renewAt"):
        user_id = doc.data.get("userId")
        if not user_id:
            continue
        try:
            maintain_channel(config, store, user_id, now)
        except Exception as exc:
            later = None if isinstance(exc, FINAL) else stamp(now + CHANNEL_RETRY)
            schedule.update_state(store, doc.id, {"renewAt": later})  # reconnect sets it
            log.warning(
                "push channel upkeep failed",
                extra={"fields": {"userId": user_id, "error": type(exc).__name__}},
            )


def _forget_checks(config: bootstrap.Config, store: DocumentStore, now: datetime) -> None:
    """syncChecks older than CHECKS_KEPT: deleted by the tick, a page at a time (their
    times are strings, which Firestore's TTL policies do not act on)."""
    old = store.query(SYNC_CHECKS, [Filter("checkedAt", "<", stamp(now - CHECKS_KEPT))],
                      order_by="checkedAt", limit=PAGE)  # fmt: skip
    if old:
        with store.batch() as batch:
            for doc in old:
                batch.delete(SYNC_CHECKS, doc.id)


def _forget_webhook_events(config: bootstrap.Config, store: DocumentStore,
                           now: datetime) -> None:  # fmt: skip
    """webhookEvents older than WEBHOOK_EVENTS_KEPT, up to ``FORGET_PAGES`` pages a
    tick (720,000 a day at a tick a minute): the replay ids stay bounded (a TTL policy
    would not act on their string times, as for syncChecks)."""
    cut = stamp(now - WEBHOOK_EVENTS_KEPT)
    for _ in range(FORGET_PAGES):
        old = store.query(EVENTS, [Filter("receivedAt", "<", cut)], order_by="receivedAt",
                          limit=PAGE)  # fmt: skip
        if old:
            with store.batch() as batch:
                for doc in old:
                    batch.delete(EVENTS, doc.id)
        if len(old) < PAGE:
            return


def _forget_runs(config: bootstrap.Config, store: DocumentStore, now: datetime) -> None:
    """Run records older than RUNS_KEPT, with their journal pages, a page at a time:
    the history and its journals stay bounded."""
    old = store.query(SYNC_RUNS, [Filter("startedAt", "<", stamp(now - RUNS_KEPT))],
                      order_by="startedAt", limit=PAGE // 10)  # fmt: skip
    for doc in old:
        count = page_count(doc.data.get("itemPages") or 0)
        if count is None:  # unreadable: the pages there are, up to the first gap
            count = next(n for n in range(MAX_JOURNAL_PAGES + 1)
                         if store.get(SYNC_RUN_ITEMS, f"{doc.id}-{n:04d}") is None)  # fmt: skip
        pages = [f"{doc.id}-{n:04d}" for n in range(count)]
        for part in chunked(pages, MAX_BATCH_WRITES):  # the journal first, then its run
            with store.batch() as batch:
                for page in part:
                    batch.delete(SYNC_RUN_ITEMS, page)
        store.delete(SYNC_RUNS, doc.id)


def _catch_up_index(config: bootstrap.Config, store: DocumentStore, now: datetime) -> None:
    email_index.catch_up(store, now)


def _sweep(config: bootstrap.Config, store: DocumentStore, now: datetime) -> None:
    schedule.sweep(store, now)


def run_job(config: bootstrap.Config, store: DocumentStore, job: Job,
            looked: tuple[str, dict] | None = None) -> Report | str | None:  # fmt: skip
    """One job: its report, ``UNCHANGED`` (a probe found nothing), or None (skipped or
    hopeless, and recorded). Raises passing trouble (a single-job message is then
    redelivered). ``looked``: the probe's answer, when the caller has looked already."""
    progress: Any = no_progress
    attempt = uuid.uuid4().hex[:12]  # this delivery: a redelivered message is another
    if job.trigger == "manual":  # the page follows it: one record, updated as it goes
        job = dataclasses.replace(job, run_id=job.run_id or uuid.uuid4().hex)
        if not _claimed(store, job, attempt):
            return None
        progress = RecordedProgress(store, job, attempt)
    options = Options(trigger=job.trigger, run_id=job.run_id, attempt=attempt)
    try:
        return _run(config, store, job, options, progress, looked)
    except LeaseHeld as held:  # never taken, or taken from it mid-run (recorded then)
        if not getattr(held, "recorded", False):
            _record_skip(store, job, held)
    except FINAL as final:
        _give_up(store, job, final)
    except Exception as exc:
        if job.run_id and not getattr(exc, "recorded", False):  # its record says "running"
            _record_skip(store, job, exc)
            exc.recorded = True  # type: ignore[attr-defined]
        raise
    return None


def _claimed(store: DocumentStore, job: Job, attempt: str) -> bool:
    """Claim a run started by hand for this delivery; False for a redelivery of a run
    that has finished (acknowledged), ``RunUnderWay`` while its first delivery runs."""
    fields = {"userId": job.user_id, "section": job.section, "trigger": job.trigger}
    verdict = claim(store, job.run_id, fields, attempt, bootstrap.clock().now())  # type: ignore[arg-type]
    if verdict == "done":
        log.info("run already finished; not run again", extra={"fields": {"runId": job.run_id}})
        return False
    if verdict == "busy":  # asked again later
        raise RunUnderWay(job.run_id)  # type: ignore[arg-type]
    return True


def _run(config: bootstrap.Config, store: DocumentStore, job: Job, options: Options,
         progress: Any, looked: tuple[str, dict] | None) -> Report | str | None:  # fmt: skip
    """The job's run: ``UNCHANGED`` when its probe found nothing, None when its section
    no longer syncs automatically, else its report."""
    preloaded = None
    if job.probe is not None:
        verdict, preloaded = looked or changed(config, store, job)
        if verdict == "unchanged":
            return UNCHANGED  # nothing changed on either side: nothing written
    if job.trigger == "schedule":
        raw = store.get(SYNC_SETTINGS, job.user_id)  # read once: the run uses it too
        preloaded = {**(preloaded or {}), SYNC_SETTINGS: raw}
        if _turned_off(store, job, raw):
            return None  # auto sync was turned off (by the CRM itself): off the schedule
    report = run_sections(config, store, job.user_id, job.section, options,
                          progress, preloaded)[0]  # fmt: skip
    log_run(report)
    return report


def _give_up(store: DocumentStore, job: Job, final: Exception) -> None:
    """An error a retry cannot cure: logged, recorded (unless its run has said so), and
    a scheduled pair settled."""
    fields = {"userId": job.user_id, "section": job.section, "trigger": job.trigger,
              "error": type(final).__name__}  # fmt: skip
    log.error("sync not retried: %s", final, extra={"fields": fields})
    if not getattr(final, "recorded", False):  # its run has said so already
        _record_skip(store, job, final)
    if job.trigger == "schedule" and not isinstance(final, SideEmpty):
        _settle(store, job, final)


def _turned_off(store: DocumentStore, job: Job, raw: dict[str, Any] | None) -> bool:
    """A scheduled run whose section no longer syncs automatically: the pair leaves the
    schedule instead of running."""
    if raw is None:
        return False  # no settings (an unknown user?): the run says what is wrong
    try:
        settings = section_settings(job.user_id, raw, job.section)
    except MalformedDocument:
        return False  # the run records the problem
    if getattr(settings, job.section).auto:
        return False
    schedule.reschedule(store, job.user_id, bootstrap.clock().now())
    return True


def _settle(store: DocumentStore, job: Job, final: Exception) -> None:
    """A scheduled pair that cannot run is not due again at every tick: its due-at-once
    mark goes (bad settings are then met once per interval, each time recorded), and
    without a usable connection or user it leaves the schedule until a reconnect or
    a settings save puts it back."""
    fields: dict[str, Any] = {"nextDueAt": None}
    if isinstance(final, (AuthRevoked, NotConnected, UnknownUser)):
        fields["slot"] = None
    schedule.update_state(store, schedule.state_id(job.user_id, job.section), fields)


def run_batch(config: bootstrap.Config, store: DocumentStore, jobs: Sequence[Job]) -> list[Any]:
    """The jobs of one message, each on its own: a pair that fails is logged and recorded
    (by its run) and retried at its next slot; the others go on. The pairs found
    unchanged are recorded together, in one ``syncChecks`` document."""
    results: list[Any] = []
    unchanged: list[str] = []
    # the looks wait on Google and the store, not on CPU: several at once, so that the
    # billed time of a batch is not the sum of their latencies; runs go one at a time
    now = bootstrap.clock().now()
    pages = {section: crm_page(store, jobs, section, now) for section in schedule.SECTIONS}
    with ThreadPoolExecutor(max_workers=LOOKERS) as pool:
        looks = list(pool.map(lambda job: _look(config, store, job, pages[job.section]), jobs))
    for job, looked in zip(jobs, looks, strict=True):
        try:
            result = run_job(config, store, job, looked)
        except Exception as exc:
            fields = {"userId": job.user_id, "section": job.section, "error": type(exc).__name__}
            log.warning("scheduled sync failed; retried at its next slot: %s", exc,
                        extra={"fields": fields})  # fmt: skip
            if not getattr(exc, "recorded", False):  # failed before its run could say so
                _record_skip(store, job, exc)
            result = exc
        if result is UNCHANGED:
            unchanged.append(schedule.state_id(job.user_id, job.section))
        results.append(result)
    if unchanged:
        now = bootstrap.clock().now()
        store.put(SYNC_CHECKS, uuid.uuid4().hex, {"checkedAt": stamp(now), "pairs": unchanged})
    return results


def _look(config: bootstrap.Config, store: DocumentStore, job: Job,
          crm: Any = None) -> tuple[str, dict] | None:  # fmt: skip
    """The probe's answer for a job that has one; None (look again in run_job) for
    others and on any trouble, which the run then meets and records."""
    if job.probe is None:
        return None
    try:
        return changed(config, store, job, crm)
    except Exception:
        return None


def last_checked(store: DocumentStore, sid: str) -> str | None:
    """When a scheduled run last looked at the pair and found nothing to do."""
    found = store.query(SYNC_CHECKS, [Filter("pairs", "array_contains", sid)],
                        order_by="checkedAt", descending=True, limit=1)  # fmt: skip
    return found[0].data["checkedAt"] if found else None


def log_run(report: Report) -> None:
    """One structured line per run: ids and counts only, never personal data."""
    fields = {
        "runId": report.run_id,
        "userId": report.user_id,
        "section": report.section,
        "trigger": report.trigger,
        "counts": report.counts,
        "errors": len(report.errors),
        "fullPass": report.full_pass,
    }
    level = logging.WARNING if report.errors else logging.INFO
    log.log(level, "sync run finished", extra={"fields": fields})


def _record_skip(store: DocumentStore, job: Job, error: Exception) -> None:
    """The record of a run that did not get to run (or stopped before its own record),
    under the id its queued record has, if any: one record per run. Best effort: it is
    written while ``error`` is being raised, and a store that fails too (an outage)
    must not put its own error in the place of the run's; the logs keep both."""
    try:
        _put_skip(store, job, error)
    except Exception as refused:
        fields = {"runId": job.run_id, "userId": job.user_id, "section": job.section,
                  "error": type(error).__name__, "storeError": type(refused).__name__,
                  "storeMessage": scrub(str(refused))}  # fmt: skip
        log.error("the run's failure was not recorded (the store failed too): %s",
                  scrub(str(error)), extra={"fields": fields})  # fmt: skip


def _put_skip(store: DocumentStore, job: Job, error: Exception) -> None:
    now = stamp(bootstrap.clock().now())
    found = outcome.of_error(error)
    why = scrub(f"another run holds the lease: {error}" if isinstance(error, LeaseHeld)
                else str(error))  # fmt: skip
    ok = found.outcome == "skipped" and isinstance(error, LeaseHeld)
    run: dict[str, Any] = {
        "userId": job.user_id,
        "section": job.section,
        "trigger": job.trigger,
        "startedAt": now,
        "finishedAt": now,
        "counts": {},
        "plan": {},
        "errors": [] if ok else [{"id": "(run)", "message": why, "kind": type(error).__name__}],
        "ok": ok,
        "skipped": why,
        **found.fields(),
    }
    if not job.run_id:
        store.put(SYNC_RUNS, uuid.uuid4().hex, run)
        return
    run_id = job.run_id

    def put(tx: Transaction) -> None:  # never over a record its run finished
        if (tx.get(SYNC_RUNS, run_id) or {}).get("outcome") in (None, "queued", "running"):
            tx.put(SYNC_RUNS, run_id, run)

    store.transaction(put)


class RecordedProgress:
    """A run started by hand keeps its record up to date as it goes (``phase``, items
    ``done`` of ``total``), for the page to follow: at most one write every
    ``EVERY`` of the clock, and at each phase's end."""

    EVERY = timedelta(seconds=1)

    def __init__(self, store: DocumentStore, job: Job, attempt: str) -> None:
        assert job.run_id
        self.store, self.job, self.run_id, self.attempt = store, job, job.run_id, attempt
        self.started = stamp(bootstrap.clock().now())
        self.last: datetime | None = None

    def __call__(self, message: str, done: int = 0, total: int = 0) -> None:
        now = bootstrap.clock().now()
        ends = bool(total) and done >= total
        if self.last is not None and now - self.last < self.EVERY and not ends:
            return
        self.last = now
        self.store.put(SYNC_RUNS, self.run_id, {
            "userId": self.job.user_id, "section": self.job.section,
            "trigger": self.job.trigger, "startedAt": self.started, "outcome": "running",
            "reason": "running", "hint": None, "phase": message, "done": done, "total": total,
            "attempt": self.attempt, "updatedAt": stamp(now),
        })  # fmt: skip
