"""Due syncs: ``dispatch`` finds them and hands them to the queue; ``run_job`` runs one.

A job that finds its lease held is a no-op, recorded in ``syncRuns`` as skipped, so
Pub/Sub redelivery and overlapping triggers are harmless. Retrying is for passing
trouble only: quota and 5xx errors propagate (the message is redelivered); a revoked
account, an unknown user or bad settings are recorded and acknowledged.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from adapters.queue import open_queue
from core.errors import (
    AuthRevoked,
    ConfigError,
    GoogleError,
    LeaseHeld,
    MalformedDocument,
    NotConnected,
    SideEmpty,
    UnknownUser,
)
from core.model import GOOGLE_ACCOUNTS, SYNC_RUNS, SYNC_SETTINGS, SYNC_STATE, stamp
from core.ports import DocumentStore, Filter
from core.runs import Options, Report
from core.schedule import Job, due_jobs
from functions import bootstrap
from functions.sync import run_sections

log = logging.getLogger("crmsync.jobs")
# errors a retry cannot cure: recorded, logged, not retried (SideEmpty waits for a person)
FINAL = (AuthRevoked, NotConnected, UnknownUser, ConfigError, MalformedDocument, SideEmpty)


def dispatch(config: bootstrap.Config, store: DocumentStore) -> list[Job]:
    """Send every due job to the configured queue; returns the jobs sent."""
    by_id = lambda collection: {d.id: d.data for d in store.query(collection)}  # noqa: E731
    now = bootstrap.clock().now()
    jobs, problems = due_jobs(by_id(SYNC_SETTINGS), by_id(GOOGLE_ACCOUNTS), by_id(SYNC_STATE), now)
    for problem in problems:
        log.warning("skipping malformed settings: %s", problem)
    open_queue(config.queue, lambda job: run_job(config, store, job)).send(jobs)
    _keep_channels(config, store, now)
    return jobs


def _keep_channels(config: bootstrap.Config, store: DocumentStore, now: Any) -> None:
    """Calendar push channels for connected users: open, renew or stop as settings say."""
    from functions.push import maintain_channel

    for account in store.query(GOOGLE_ACCOUNTS, [Filter("status", "==", "connected")]):
        try:
            maintain_channel(config, store, account.id, now)
        except (*FINAL, GoogleError) as exc:  # one user's trouble must not stop the tick
            log.warning(
                "push channel upkeep failed",
                extra={"fields": {"userId": account.id, "error": type(exc).__name__}},
            )


def run_job(config: bootstrap.Config, store: DocumentStore, job: Job) -> Report | None:
    options = Options(trigger=job.trigger)
    try:
        report = run_sections(config, store, job.user_id, job.section, options)[0]
        log_run(report)
        return report
    except LeaseHeld as held:
        _record_skip(store, job, f"another run holds the lease: {held}")
    except FINAL as final:
        fields = {
            "userId": job.user_id,
            "section": job.section,
            "trigger": job.trigger,
            "error": type(final).__name__,
        }
        log.error("sync not retried: %s", final, extra={"fields": fields})
        _record_skip(store, job, str(final), ok=False)
    return None


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


def _record_skip(store: DocumentStore, job: Job, why: str, ok: bool = True) -> None:
    now = stamp(bootstrap.clock().now())
    run: dict[str, Any] = {
        "userId": job.user_id,
        "section": job.section,
        "trigger": job.trigger,
        "startedAt": now,
        "finishedAt": now,
        "counts": {},
        "plan": {},
        "errors": [] if ok else [{"id": "(run)", "message": why}],
        "ok": ok,
        "skipped": why,
    }
    store.put(SYNC_RUNS, uuid.uuid4().hex, run)
