"""The run shell every section shares: lease, run record, cursors, failure handling.

run_section(section, user, options)
  prepare      the section checks the user's settings (before anything is written)
  lease        syncState/{user}:{section}, in a transaction (dry runs take none)
  sync         the section gathers, plans into report.plan and executes; it returns
               the state to keep (its cursors), which is written only on success
  finish       a syncRuns record (counts, errors, plan summary), lastRunAt,
               lastResult, lastSuccessAt; the lease released. invalid_grant marks
               googleAccounts/{user} reauth_required and takes the user's pairs off
               the schedule. Dry runs write nothing. When the store fails, the
               finish is tried again for up to RECORD_PATIENCE (the store may be
               back: the failure is recorded and the lease released); past it, the
               logs keep the run's own error, and the lease lapses within
               ``lease.LEASE_SECONDS``. The error raised is always the run's own.

A scheduled run that planned nothing and met no error writes no syncRuns record: it
counts itself in ``emptyRuns`` and ``lastCheckedAt`` of the state it writes anyway.
A successful run clears the ``nextDueAt`` that made it due (``core.schedule``); a failed
one moves that mark one interval on (a pair without one is retried at its next slot,
where its look finds the changes the failed run left behind).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from core import account_switch, lease, schedule
from core import outcome as outcomes
from core.errors import AccountChanged, AuthRevoked, BadStoreRequest, StoreError
from core.lease import holder_of
from core.merge import Policy
from core.model import (
    GOOGLE_ACCOUNTS,
    SYNC_RUN_ITEMS,
    SYNC_RUNS,
    SYNC_SETTINGS,
    SYNC_STATE,
    USERS,
    parse_timestamp,
    stamp,
    state_id,
    when,
)
from core.ports import MAX_BATCH_WRITES, Clock, DocumentStore, Transaction
from core.redact import scrub, scrub_error

logger = logging.getLogger("crmsync.runs")
MAX_RECORDED_ERRORS = 200
JOURNAL_PAGE = 200  # journal items per syncRunItems document (well under 1 MiB)
RETRY_AFTER = timedelta(minutes=15)  # a failed run due at once, of a section with no interval
# a run's finish (record, state, lease) that the store refused is tried again after each
# of these waits, while they fit in RECORD_PATIENCE: an outage shorter than that still
# leaves the run's record and frees its pair at once
RECORD_WAITS = (1.0, 2.0, 4.0, 8.0, 15.0)
RECORD_PATIENCE = timedelta(seconds=30)


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    full: bool = False
    force: bool = False
    policy: Policy = Policy.FIELD_MOST_RECENT
    trigger: str = "manual"
    run_id: str | None = None  # given when the run's record exists already (queued)
    # this process, for a lease that a rerun may take over once the process is gone
    # (``adapters.process.LocalProcess``: command-line runs); None: the lease's length
    process: Any = None
    attempt: str | None = None  # this delivery of the run (a redelivery is another)


DEFAULT_OPTIONS = Options()


@dataclass
class Report:
    run_id: str
    user_id: str
    section: str
    trigger: str
    started_at: str
    dry_run: bool
    finished_at: str | None = None
    full_pass: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    plan: list[Any] = field(default_factory=list)
    account_email: str | None = None  # the Google account the run worked with
    # the Google account is known and the one the section's state was built with: a
    # side that lists none of the links is then the user's doing, not another account
    account_confirmed: bool = False
    journal: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)  # core.outcome's fields
    holder: str = ""  # the lease's holder: this attempt of the run (``holder_of``)
    unsaved: Exception | None = None  # the store's refusal of the run's finish, if it lasted
    saved: set[str] = field(default_factory=set)  # the finish's steps done (``_finish``)

    def plan_summary(self) -> dict[str, int]:
        summary: dict[str, int] = {}
        for action in self.plan:
            summary[type(action).__name__] = summary.get(type(action).__name__, 0) + 1
        return summary


class RunLog:
    """Counts, per-item errors and ids to retry next run, filled in while a run executes."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.errors: list[dict[str, Any]] = []
        self.retry_crm: set[str] = set()
        # ids read again only when a side changes, or once RECHECK_AFTER has passed: an
        # item only the user can unblock (a contact whose email two persons hold)
        self.later_crm: set[str] = set()
        self.retry_google: set[str] = set()
        self.skipped_ids: set[str] = set()
        # the run's journal: one entry per committed change (history, and undo later)
        self.journal: list[dict[str, Any]] = []
        self.corrupt_links: list[str] = []  # link ids set aside (core.pairs.links_from)
        self.corrupt_docs: dict[str, Any] = {}  # ... as they were read
        self.corrupt_state: dict[str, Any] = {}  # state keys set aside, as read (``sound_state``)

    def note(self, change: str, side: str, *, crm_id: str | None = None,
             google_id: str | None = None, name: str | None = None,
             fields: dict[str, tuple[Any, Any]] | None = None) -> None:  # fmt: skip
        """One committed change. ``change`` is the count key it adds to (``pushed``,
        ``updatedInGoogle`` ...), ``side`` the side written (``google`` or ``crm``),
        ``name`` what the user calls the item, ``fields`` each synced field the change
        set, as (before, after): enough to show the change and to take it back."""
        entry: dict[str, Any] = {"change": change, "side": side}
        if crm_id is not None:
            entry["crmId"] = crm_id
        if google_id is not None:
            entry["googleId"] = google_id
        if name:
            entry["name"] = name
        if fields:
            entry["fields"] = {k: {"before": b, "after": a} for k, (b, a) in fields.items()}
        self.journal.append(entry)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def skip(self, ident: str, message: str) -> None:
        """A malformed record: reported, left out of this run, never taken as deleted."""
        self.skipped_ids.add(ident)
        self.errors.append({"id": ident, "message": message, "kind": "MalformedDocument"})
        self.count("skipped")

    def fail(self, ident: str, message: str, crm_id: str | None = None,
             google_id: str | None = None, retry: bool = True) -> None:  # fmt: skip
        """A per-item failure: reported; retried next run unless ``retry`` is False."""
        self.errors.append({"id": ident, "message": message})
        self.count("errors")
        if retry and crm_id:
            self.retry_crm.add(crm_id)
        if retry and google_id:
            self.retry_google.add(google_id)


def chunked(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in consecutive slices of at most ``size`` (batch limits)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class Settings(Protocol):
    interval: timedelta  # how often the section runs on schedule


class Section(Protocol):
    name: str

    def settings(self, user_id: str) -> Any:
        """The user's settings for this section, checked (a ``Settings``); raise a
        domain error if unusable."""

    def sync(self, settings: Any, state: dict[str, Any], options: Options, log: RunLog,
             report: Report) -> dict[str, Any]:  # fmt: skip
        """Gather, plan into ``report.plan``, execute unless a dry run; return the state
        fields to keep (cursors) once the run has succeeded."""


def run_section(store: DocumentStore, clock: Clock, new_id: Callable[[], str], section: Section,
                user_id: str, options: Options) -> Report:  # fmt: skip
    started = clock.now()
    report = Report(options.run_id or new_id(), user_id, section.name, options.trigger,
                    stamp(started), options.dry_run)  # fmt: skip
    report.holder = holder_of(report.run_id, options.attempt or new_id()[:12])
    settings = section.settings(user_id)
    sid = state_id(user_id, section.name)  # type: ignore[arg-type]
    preloaded = getattr(section, "preloaded", None) or {}
    connection = _connection(store, preloaded, user_id)
    account = report.account_email = connection.get("accountEmail")
    log = RunLog()
    # what crmsync did not write is set aside before anything reads it
    state = sound_state(_starting_state(store, sid, report, account, started, options.process),
                        log)  # fmt: skip
    shell = Shell(settings.interval, state,
                  connection.get("refreshTokenCiphertext"),
                  (preloaded.get(USERS) or {}).get("timeZone"))  # fmt: skip
    try:
        state = _follow_account(store, sid, report, state, account, started)
        report.account_confirmed = _confirmed(state.get("accountEmail"), account)
        with _beating(store, clock, sid, report, section):
            updates = section.sync(settings, state, options, log, report)
    except Exception as exc:
        # the store's own failure never hides it; once recorded, callers need not again
        _patient_finish(store, clock, report, log, None, exc, shell)
        exc.recorded = "record" in report.saved  # type: ignore[attr-defined]
        raise
    facts = _run_facts(section.name, preloaded, account, shell.time_zone)
    if facts:
        updates = {**updates, **facts}
    if not _patient_finish(store, clock, report, log, updates, None, shell):
        unsaved = report.unsaved  # its changes are made; its record, or cursors, not kept
        unsaved.recorded = "record" in report.saved  # type: ignore[union-attr]
        raise unsaved  # type: ignore[misc]
    return report


def _connection(store: DocumentStore, preloaded: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The user's Google connection (``googleAccounts``)."""
    if GOOGLE_ACCOUNTS in preloaded:  # read once per run, by the caller
        return preloaded[GOOGLE_ACCOUNTS] or {}
    return store.get(GOOGLE_ACCOUNTS, user_id) or {}


def _starting_state(store: DocumentStore, sid: str, report: Report, account: str | None,
                    started: datetime, process: Any = None) -> dict[str, Any]:  # fmt: skip
    """The section's state, under the run's lease; a dry run takes none, and stops at
    once if the state was built with another Google account."""
    if not report.dry_run:
        return lease.acquire(store, sid, report.holder, started, process=process)
    state = sound_state(store.get(SYNC_STATE, sid) or {}, RunLog())
    if not account_switch.same_account(state.get("accountEmail"), account):
        raise AccountChanged(state["accountEmail"], account)
    return state


@contextmanager
def _beating(store: DocumentStore, clock: Clock, sid: str, report: Report,
             section: Section) -> Iterator[None]:  # fmt: skip
    """While the section syncs, the run's lease is kept (``lease.Heartbeat``: a thread,
    and the section's progress, which also says a lease lost; a dry run holds none)."""
    said = getattr(section, "progress", None)
    if report.dry_run:
        yield
        return
    beat = lease.Heartbeat(store, clock, sid, report.holder).start()

    def progress(*args: Any, **kwargs: Any) -> None:
        beat()
        said(*args, **kwargs)  # type: ignore[misc]

    if said is not None:
        section.progress = progress  # type: ignore[attr-defined]
    try:
        yield
    finally:
        beat.stop()
        if said is not None:
            section.progress = said  # type: ignore[attr-defined]
        if beat.lost is not None:  # the lease, and so the state, are another run's now:
            report.saved.add("released")  # the finish records the run, writes no state
    if beat.lost is not None:
        raise beat.lost


CURSORS = ("crmCursor", "crmReadAt", "googleCursor")
# the cursors, and the marks the schedule, the webhook and the page read
TIMESTAMPS = ("crmCursor", "crmReadAt", "nextDueAt", "lastRunAt", "lastSuccessAt",
              "lastCheckedAt", "queuedAt", "dispatchedAt")  # fmt: skip
TEXTS = ("googleCursor", "groupResourceName", "tagId", "syncFrom", "accountEmail")
LISTS = ("retryCrm", "retryGoogle")
LATER = "retryCrmLater"  # {crm id: when it is read again at the latest} (RunLog.later_crm)
RECHECK_AFTER = timedelta(days=1)
LATER_MAX = 1000  # ids kept in retryCrmLater (about 60 kB); the others wait for a change


def sound_state(state: dict[str, Any], log: RunLog) -> dict[str, Any]:
    """The section's state with what crmsync did not write set aside: a key of the
    wrong shape is dropped and reported (``CorruptState``); a bad cursor drops every
    cursor, so that the run is a full pass (which reads everything again, and loses
    nothing). Pure."""
    bad = [k for k, sound in _SOUND.items() if state.get(k) is not None and not sound(state[k])]
    if not bad:
        return state
    drop = set(bad) | (set(CURSORS) if set(bad) & set(CURSORS) else set())
    # and dropped from the stored state at the run's end, unless written anew meanwhile
    log.corrupt_state |= {k: state[k] for k in drop if k in state}
    log.errors.append({"id": "(state)", "kind": "CorruptState",
                       "message": f"the sync state's {', '.join(sorted(bad))} could not be read: "
                                  "set aside" + ("; this run reads everything again"
                                                 if set(bad) & set(CURSORS) else "")})  # fmt: skip
    return {k: v for k, v in state.items() if k not in drop}


def _timestamp(value: Any) -> bool:
    return when(value) is not None


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, str) for i in value)


def _later(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and _timestamp(v) for k, v in value.items()
    )


_SOUND: dict[str, Callable[[Any], bool]] = {
    **{k: (lambda v: isinstance(v, str)) for k in TEXTS},
    **{k: _timestamp for k in TIMESTAMPS},
    **{k: _texts for k in LISTS},
    LATER: _later,
    "emptyRuns": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
}


def recheck(state: dict[str, Any], now: datetime,
            changed: bool) -> tuple[list[str], dict[str, str]]:  # fmt: skip
    """The ids of ``retryCrmLater`` to read this run (all when a side ``changed``, else
    those due), and the rest, kept. Pure."""
    later = state.get(LATER) or {}
    due = sorted(i for i, at in later.items() if changed or parse_timestamp(at) <= now)
    return due, {i: at for i, at in later.items() if i not in set(due)}


def later_state(kept: dict[str, str], log: RunLog, now: datetime) -> dict[str, str]:
    """``retryCrmLater`` after a run: what it did not read, and what it put off again."""
    again = stamp(now + RECHECK_AFTER)
    later = {**{i: at for i, at in kept.items() if i not in log.retry_crm},
             **{i: again for i in log.later_crm}}  # fmt: skip
    if len(later) > LATER_MAX:  # the state stays small: the rest wait for a change
        later = dict(sorted(later.items(), key=lambda item: (item[1], item[0]))[:LATER_MAX])
    return later


def _confirmed(recorded: str | None, account: str | None) -> bool:
    """Both accounts known, and the same (``Report.account_confirmed``)."""
    return bool(account and recorded) and account_switch.same_account(recorded, account)


def _run_facts(section: str, preloaded: dict[str, Any], account: str | None,
               time_zone: str | None) -> dict[str, Any]:  # fmt: skip
    """What a successful run keeps in its state besides the section's cursors."""
    facts: dict[str, Any] = {}
    if account:
        facts["accountEmail"] = account
    if time_zone:  # a scheduled look computes the default "sync from" date with it
        facts["timeZone"] = time_zone
    if section == "activities" and SYNC_SETTINGS in preloaded:  # ... and this
        activities = ((preloaded[SYNC_SETTINGS] or {}).get("activities")) or {}
        facts["syncFromSetting"] = activities.get("syncFrom")
    return facts


@dataclass(frozen=True)
class Shell:
    """What the run's finish needs from its start."""

    every: timedelta | None  # the section's interval
    before: dict[str, Any]  # the state as the lease found it
    ciphertext: str | None  # the connection the run used
    time_zone: str | None


def _follow_account(store: DocumentStore, sid: str, report: Report, state: dict[str, Any],
                    account: str | None, now: Any) -> dict[str, Any]:  # fmt: skip
    """The safety net of ``core.account_switch``: a state stamped with another Google
    account than the connection's is switched (and saved, lease kept) before any read."""
    old = state.get("accountEmail")
    if report.dry_run or account is None or account_switch.same_account(old, account):
        return state
    updates = account_switch.switch(store, report.user_id, report.section, old, account, now)  # type: ignore[arg-type]
    account_switch.save(store, sid, updates)
    return account_switch.reset(state, updates)


def _finish(store: DocumentStore, clock: Clock, report: Report, log: RunLog,
            updates: dict[str, Any] | None, error: Exception | None,
            shell: Shell | None = None) -> None:  # fmt: skip
    """The run's record, journal and state written, and its lease released. Each step
    done is noted in ``report.saved``: tried again (``_patient_finish``), the finish
    does only what is left, so that a record or a state once written is never written
    again over what came after it. The first step's failure is the one raised."""
    done = report.saved
    if "closed" not in done:
        _close(report, log, error, clock.now())
        done.add("closed")
    if report.dry_run:
        return
    shell = shell or Shell(None, {}, None, None)
    ok = error is None
    state = _final_state(report, updates, ok)
    if isinstance(error, AuthRevoked) and "revoked" not in done:
        if _mark_revoked(store, report.user_id, shell.ciphertext):
            schedule.unschedule(store, report.user_id)
            done.add("unscheduled")
        done.add("revoked")
    if "unscheduled" in done:
        state |= {"slot": None, "nextDueAt": None}
    if _quiet(report, ok):
        empty = int(shell.before.get("emptyRuns") or 0) + 1  # sound: ``sound_state``
        state |= {"emptyRuns": empty, "lastCheckedAt": report.finished_at}
        _release(store, report, log, state, shell, ok)
        return
    failed: Exception | None = None
    if "record" not in done:
        try:
            _save_record(store, report, ok)
            done.add("record")
        except Exception as exc:
            failed = exc  # the lease is given back all the same
    try:
        _release(store, report, log, state, shell, ok)
    except Exception as exc:
        failed = failed or exc
    if failed is not None:
        raise failed


def _save_record(store: DocumentStore, report: Report, ok: bool) -> None:
    record: dict[str, Any] = {"items": len(report.journal)}
    try:  # the record and the lease's release never wait on the journal
        record["itemPages"] = save_journal(store, report)
    except Exception as exc:
        fields = {"runId": report.run_id, "error": type(exc).__name__}
        logger.warning("the run's journal was not saved: %s", exc, extra={"fields": fields})
        record |= {"itemPages": 0, "journalLost": True}
    store.put(SYNC_RUNS, report.run_id, _run_record(report, ok) | record)


def _release(store: DocumentStore, report: Report, log: RunLog, state: dict[str, Any],
             shell: Shell, ok: bool) -> None:  # fmt: skip
    """The run's state written and its lease given back, once (``report.saved``); the
    state keys ``sound_state`` set aside are dropped from the stored state."""
    if "released" in report.saved:
        return
    sid = state_id(report.user_id, report.section)  # type: ignore[arg-type]
    terms = _release_terms(report, shell, ok, parse_timestamp(report.finished_at or ""))
    lease.release(store, sid, report.holder, state, drop_if=log.corrupt_state,
                  **terms)  # fmt: skip
    report.saved.add("released")


def _patient_finish(store: DocumentStore, clock: Clock, report: Report, log: RunLog,
                    updates: dict[str, Any] | None, error: Exception | None,
                    shell: Shell) -> bool:  # fmt: skip
    """``_finish``, tried again after each of ``RECORD_WAITS`` while the store refuses it
    and the waits add up to no more than ``RECORD_PATIENCE``; False when it never got
    through (logged with the run's own error, ``error``, not the store's;
    ``report.unsaved`` is the first refusal). Only the store's failures are waited
    for: any other is a fault no wait cures."""
    waited = 0.0
    waits = iter(RECORD_WAITS)
    while True:
        try:
            _finish(store, clock, report, log, updates, error, shell)
            return True
        except BadStoreRequest as broken:  # the request's fault: no wait cures it
            report.unsaved = report.unsaved or broken
            _unrecorded(report, error, broken)
            return False
        except StoreError as refused:
            report.unsaved = report.unsaved or refused
            wait = next(waits, None)
            if wait is None or waited + wait > RECORD_PATIENCE.total_seconds():
                _unrecorded(report, error, refused)
                return False
        except Exception as broken:
            report.unsaved = report.unsaved or broken
            _unrecorded(report, error, broken)
            return False
        _sleep(clock, wait)
        waited += wait


def _sleep(clock: Clock, seconds: float) -> None:
    """Wait on the clock's own time (``SystemClock.sleep``); a clock that cannot wait
    (a test's fixed one) tries again at once."""
    pause = getattr(clock, "sleep", None)
    if pause is not None:
        pause(seconds)


def _unrecorded(report: Report, error: Exception | None, refused: Exception) -> None:
    """The logs keep what the store would not: the run, its own error, the store's."""
    fields = {"runId": report.run_id, "userId": report.user_id, "section": report.section,
              "trigger": report.trigger, "outcome": report.outcome.get("outcome"),
              "reason": report.outcome.get("reason"),
              "error": type(error).__name__ if error else None,
              "storeError": type(refused).__name__,
              "storeMessage": scrub(str(refused))}  # fmt: skip
    said = scrub(str(error)) if error else "(none: the run's changes were made)"
    logger.error("the run's result was not saved (the store failed too); its own error: %s",
                 said, extra={"fields": fields})  # fmt: skip


def _close(report: Report, log: RunLog, error: Exception | None, finished: datetime) -> None:
    """The report completed: when the run finished, what it logged, and its outcome."""
    report.finished_at = stamp(finished)
    report.counts = dict(log.counts)
    report.errors = [scrub_error(e) for e in log.errors]  # stored: never a token's text
    report.journal = list(log.journal)
    if error is not None:
        report.errors.append({"id": "(run)", "message": scrub(str(error)),
                              "kind": type(error).__name__})  # fmt: skip
        report.outcome = outcomes.of_error(error).fields()
    else:
        report.outcome = outcomes.of_counts(report.counts, report.errors).fields()


def _final_state(report: Report, updates: dict[str, Any] | None, ok: bool) -> dict[str, Any]:
    """The state the run leaves: its result, and on success the section's updates."""
    result = {"counts": report.counts, "errors": report.errors[:50], "ok": ok}
    state = {"userId": report.user_id, "section": report.section,
             "lastRunAt": report.finished_at, "lastResult": result}  # fmt: skip
    if ok and updates is not None:
        state |= updates | {"lastSuccessAt": report.finished_at}
    return state


def _release_terms(report: Report, shell: Shell, ok: bool, finished: datetime) -> dict[str, Any]:
    """What the lease's release settles besides the state (``lease.release``): the due
    mark served or moved one interval on, and the retry lists the run took in. An undo
    is no sync: a sync due (a settings change asked for one) stays due."""
    retry = stamp(finished + (shell.every or RETRY_AFTER))
    syncs = report.trigger != "undo"
    asked = shell.before.get("crmFullPassAt")  # served by a successful sync's full read
    return {
        "due_served": report.started_at if ok and syncs else None,
        "due_retry": None if ok or not syncs else (report.started_at, retry),
        "consumed": {key: shell.before.get(key) or [] for key in ("retryCrm", "retryGoogle")},
        "served": {"crmFullPassAt": asked} if ok and syncs and asked is not None else {},
    }


def _quiet(report: Report, ok: bool) -> bool:
    """A scheduled run that planned nothing and met no error: it writes no record."""
    return ok and not report.plan and not report.errors and report.trigger == "schedule"


def _run_record(report: Report, ok: bool) -> dict[str, Any]:
    """The run's ``syncRuns`` record, but for its journal's fields."""
    return {
        "userId": report.user_id, "section": report.section, "trigger": report.trigger,
        "startedAt": report.started_at, "finishedAt": report.finished_at,
        "counts": report.counts, "errors": report.errors[:MAX_RECORDED_ERRORS],
        "plan": report.plan_summary(), "ok": ok, **report.outcome,
        **({"accountEmail": report.account_email} if report.account_email else {}),
    }  # fmt: skip


def claimable(record: dict[str, Any] | None, now: datetime) -> str:
    """Whether an attempt of a run started by hand may run: ``run`` (queued, or its
    earlier attempt died: no word from it for a lease's length), ``busy`` (an earlier
    attempt is running: wait and ask again), or ``done`` (it finished: a redelivered
    message must not run it twice, nor overwrite its journal). Pure."""
    if record is None or record.get("outcome") == "queued":
        return "run"
    if record.get("outcome") != "running":
        return "done"
    since = outcomes.last_word(record)
    dead = not since or since + timedelta(seconds=lease.LEASE_SECONDS) <= now
    return "run" if dead else "busy"


def claim(store: DocumentStore, run_id: str, fields: dict[str, Any], attempt: str,
          now: datetime) -> str:  # fmt: skip
    """``claimable``'s verdict, in one transaction that marks the record ``running``
    by this attempt when it is ``run``."""

    def take(tx: Transaction) -> str:
        record = tx.get(SYNC_RUNS, run_id)
        verdict = claimable(record, now)
        if verdict == "run":
            at = stamp(now)
            tx.put(SYNC_RUNS, run_id, {
                **(record or {}), **fields, "startedAt": (record or {}).get("startedAt") or at,
                "outcome": "running", "reason": "running", "hint": None, "attempt": attempt,
                "claimedAt": at, "updatedAt": at,
            })  # fmt: skip
        return verdict

    return store.transaction(take)


# a journal document stays well under Firestore's 1 MiB, and a batch of them under
# its 10 MiB commit; one entry larger than ENTRY_BYTES keeps its ids, not its values
PAGE_BYTES = 900_000
BATCH_BYTES = 8_000_000
ENTRY_BYTES = 100_000


def _size(value: Any) -> int:
    return len(json.dumps(value, default=str, ensure_ascii=False).encode())


def journal_pages(journal: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The journal cut into pages of at most ``JOURNAL_PAGE`` entries and
    ``PAGE_BYTES`` bytes. Pure."""
    pages: list[list[dict[str, Any]]] = []
    page: list[dict[str, Any]] = []
    used = 0
    for entry in journal:
        size = _size(entry)
        if size > ENTRY_BYTES:  # its values are too long to keep: the change is still said
            entry = {**{k: v for k, v in entry.items() if k != "fields"},
                     "fieldsOmitted": sorted(entry.get("fields") or {})}  # fmt: skip
            size = _size(entry)
        if page and (len(page) >= JOURNAL_PAGE or used + size > PAGE_BYTES):
            pages.append(page)
            page, used = [], 0
        page.append(entry)
        used += size
    if page:
        pages.append(page)
    return pages


def save_journal(store: DocumentStore, report: Report) -> int:
    """The run's journal in ``syncRunItems`` (pages of ``journal_pages``), written
    before the run record that counts them; returns the number of pages."""
    pages = journal_pages(report.journal)
    batch_items: list[tuple[int, list[dict[str, Any]]]] = []
    used = 0

    def flush() -> None:
        with store.batch() as batch:
            for n, items in batch_items:
                batch.put(SYNC_RUN_ITEMS, f"{report.run_id}-{n:04d}", {
                    "runId": report.run_id, "userId": report.user_id, "page": n,
                    "items": items,
                })  # fmt: skip

    for n, items in enumerate(pages):
        size = _size(items)
        if batch_items and (len(batch_items) >= MAX_BATCH_WRITES or used + size > BATCH_BYTES):
            flush()
            batch_items, used = [], 0
        batch_items.append((n, items))
        used += size
    if batch_items:
        flush()
    return len(pages)


MAX_JOURNAL_PAGES = 10_000  # 2,000,000 entries: more than any run makes


def page_count(value: Any) -> int | None:
    """A run record's ``itemPages`` as crmsync writes it, else None (corrupt)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    return value if ok and 0 <= value <= MAX_JOURNAL_PAGES else None


def journal(store: DocumentStore, run_id: str, pages: Any) -> list[dict[str, Any]]:
    """A run's journal, read back in order (none for a corrupt page count)."""
    items: list[dict[str, Any]] = []
    for n in range(page_count(pages) or 0):
        page = (store.get(SYNC_RUN_ITEMS, f"{run_id}-{n:04d}") or {}).get("items")
        if isinstance(page, list):  # a corrupt page holds nothing
            items.extend(i for i in page if isinstance(i, dict))
    return items


def _mark_revoked(store: DocumentStore, user_id: str, ciphertext: str | None) -> bool:
    """``reauth_required``, unless the user has reconnected meanwhile (another token than
    the one the run used): a fresh connection is never marked revoked."""

    def mark(tx: Transaction) -> bool:
        account = tx.get(GOOGLE_ACCOUNTS, user_id)
        if account is None:
            return False
        if ciphertext and account.get("refreshTokenCiphertext") != ciphertext:
            return False
        tx.put(GOOGLE_ACCOUNTS, user_id, {**account, "status": "reauth_required"})
        return True

    return store.transaction(mark)
