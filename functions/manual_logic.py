"""The settings and manual-sync API behind ``manual_sync``: who the caller is, what
their status is, how settings are validated and saved, and starting a sync by hand.
Every call acts on the caller's own user only.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.identity import verified_email
from core import outcome, schedule
from core.lease import run_of
from core.model import (
    GOOGLE_ACCOUNTS,
    SECTIONS,
    SYNC_RUNS,
    SYNC_SETTINGS,
    SYNC_STATE,
    TAGS,
    USERS,
    DocId,
    stamp,
    sync_from_problem,
)
from core.ports import DocumentStore, Filter
from core.schedule import Job
from functions import bootstrap
from functions.http_errors import Rejected
from functions.jobs import queue_for


class ContactsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auto: bool = False
    intervalMinutes: int = Field(60, ge=5, le=1440)
    tagId: DocId | None = None


class ActivitiesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auto: bool = False
    intervalMinutes: int = Field(60, ge=5, le=1440)
    syncFrom: dt.date | None = None


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contacts: ContactsIn = ContactsIn()
    activities: ActivitiesIn = ActivitiesIn()


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    section: Literal["contacts", "activities", "all"] = "all"
    userId: str | None = None


class UndoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dryRun: bool = False


def caller(
    config: bootstrap.Config, store: DocumentStore, header: str | None, asked_for: str | None = None
) -> str:
    """The user id behind the ID token; 403 for unknown emails or someone else's user."""
    email = verified_email(header, config.oauth_client_id, config.google_endpoint)
    found = store.query(USERS, [Filter("email", "==", email)])
    if not found:
        raise Rejected(403, f"{email} is not a CRM user")
    user_id = found[0].id
    if asked_for not in (None, user_id):
        raise Rejected(403, "a user can only see and start their own syncs")
    return user_id


def status(store: DocumentStore, user_id: str,
           config: bootstrap.Config | None = None) -> dict[str, Any]:  # fmt: skip
    """The page's state. A connection the administrator made that the delegation no
    longer covers (``config`` says) is shown as the user's own: theirs to end or to
    replace (``functions.accounts.disconnect`` lets them)."""
    from functions.delegation import covers
    from functions.jobs import last_checked

    account = store.get(GOOGLE_ACCOUNTS, user_id) or {}
    sections = {}
    switches = []
    now = bootstrap.clock().now()
    for section in SECTIONS:
        sid = f"{user_id}:{section}"
        state = store.get(SYNC_STATE, sid) or {}
        sections[section] = {
            k: state.get(k)
            for k in ("lastRunAt", "lastSuccessAt", "lastResult", "accountSwitch", "emptyRuns")
        }
        # the schedule is a slot (core.schedule): the next due time is computed
        sections[section]["nextDueAt"] = schedule.next_due(state, now)
        # when crmsync last looked, changes or not: runs, and the scheduled looks that
        # found nothing (they write no run record, only one syncChecks per batch)
        looked = [t for t in (state.get("lastRunAt"), state.get("lastCheckedAt"),
                              last_checked(store, sid)) if t]  # fmt: skip
        sections[section]["lastCheckedAt"] = max(looked, default=None)
        sections[section]["active"] = _active(store, state, now)
        if state.get("accountSwitch"):
            switches.append(state["accountSwitch"])
    user = store.get(USERS, user_id) or {}
    settings = store.get(SYNC_SETTINGS, user_id) or {}
    connection = account.get("status", "not_connected")
    by = account.get("connectedBy")  # "administrator": domain-wide delegation
    ended = by == "administrator" and config is not None and not covers(config, user.get("email"))
    by = None if ended else by
    if ended and connection == "connected":  # syncs stop: the user connects their own
        connection = "reauth_required"
    for section in SECTIONS:
        sections[section]["ready"] = _ready(section, connection, settings, by)
    return {
        "userId": user_id,
        "displayName": user.get("displayName") or user.get("email"),
        "timeZone": _zone(user.get("timeZone")),
        "privateTags": private_tags(store, user_id),
        "account": {
            "status": connection,
            "accountEmail": account.get("accountEmail"),
            "connectedBy": by,  # "administrator" (delegation: no disconnect), else None
            "delegationEnded": ended,  # the administrator's, no longer covering the user
            # the latest switch of Google account: {from, to, at, archived, restored}
            "switched": max(switches, key=lambda s: s["at"], default=None),
        },
        "settings": settings,
        "sections": sections,
    }


def _ready(section: str, connection: str, settings: dict[str, Any],
           by: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Whether a sync of the section can start, and if not the next step (the page
    disables Start and Preview and says why)."""
    from core.errors import DelegationSuspended, NoTag, NotConnected, ReauthRequired

    problem: Exception | None = None
    if connection == "reauth_required":
        problem = DelegationSuspended() if by == "administrator" else ReauthRequired()
    elif connection != "connected":
        problem = NotConnected()
    elif section == "contacts" and not ((settings.get("contacts") or {}).get("tagId")):
        problem = NoTag()
    if problem is None:
        return {"ok": True, "reason": None, "hint": None}
    found = outcome.of_error(problem)
    return {"ok": False, "reason": found.reason, "hint": found.hint}


def _zone(name: Any) -> str:
    """The user's time zone as the page can use it: the CRM's, or UTC when it holds
    none or one that is not an IANA zone (the page's date formatting would throw)."""
    if not isinstance(name, str) or not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def _active(store: DocumentStore, state: dict[str, Any], now: dt.datetime) -> dict[str, Any] | None:
    """The run under way for the pair (its lease holder's record), if any."""
    from core.lease import held as valid_lease

    held = valid_lease(state.get("lease")) or {}
    if not held.get("holder") or schedule.parse_timestamp(held["expiresAt"]) <= now:
        return None
    run_id = run_of(held["holder"])
    if run_id is None:  # an account switch or a disconnect holds the section
        return {"runId": None, "phase": None, "done": 0, "total": 0}
    record = store.get(SYNC_RUNS, run_id) or {}
    return {"runId": run_id, **{k: record.get(k) for k in ("phase", "done", "total")}}


def save_settings(store: DocumentStore, user_id: str, body: bytes) -> dict[str, Any]:
    zone = _zone((store.get(USERS, user_id) or {}).get("timeZone"))
    today = bootstrap.clock().now().astimezone(ZoneInfo(zone)).date()  # as the run's
    try:
        settings = SettingsIn.model_validate_json(body or b"{}")
    except ValidationError as exc:
        fields = {}
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"])
            fields.setdefault(name, _friendly(name, error))
        # every problem at once: the date's window too, when the date itself is one
        raise _invalid({**_meaning(body), **_date_problem(body, today), **fields}) from None
    problems = _date_problem(body, today)
    tag_id = settings.contacts.tagId
    if tag_id is not None:
        tag = store.get(TAGS, tag_id) or {}
        if tag.get("kind") != "private" or tag.get("ownerId") != user_id:
            problems["contacts.tagId"] = "Choose one of your own private tags."
    problems |= _meaning(body)
    if problems:
        raise _invalid(problems)
    doc = settings.model_dump(mode="json")
    store.put(SYNC_SETTINGS, user_id, doc)
    schedule.reschedule(store, user_id, bootstrap.clock().now(), due_now=True)
    return doc


FRIENDLY = {
    "intervalMinutes": "Enter a whole number of minutes from 5 to 1440.",
    "syncFrom": "Enter a date such as 2026-01-15, or leave it empty for today.",
    "tagId": "Choose one of your own private tags.",
    "auto": "Tick the box or leave it empty.",
}


def _friendly(name: str, error: Any) -> str:
    """A field's problem in the page's words, not pydantic's."""
    if error.get("type") == "extra_forbidden":
        return f"{name} is not a setting."
    return FRIENDLY.get(name.rsplit(".", 1)[-1], "This value is not valid.")


def _meaning(body: bytes) -> dict[str, str]:
    """Problems of meaning, found even beside malformed fields: automatic sync of
    contacts with no tag would sync nothing."""
    try:
        contacts = (json.loads(body or b"{}") or {}).get("contacts") or {}
    except (ValueError, AttributeError):
        return {}
    if isinstance(contacts, dict) and contacts.get("auto") is True and not contacts.get("tagId"):
        return {"contacts.tagId": "Choose a private tag to sync contacts automatically."}
    return {}


def _date_problem(body: bytes, today: dt.date) -> dict[str, str]:
    """The sync-from date's problem of meaning, found beside other malformed fields."""
    try:
        raw = ((json.loads(body or b"{}") or {}).get("activities") or {}).get("syncFrom")
        day = dt.date.fromisoformat(raw) if isinstance(raw, str) else None
    except (ValueError, AttributeError):
        return {}
    problem = sync_from_problem(day, today, saving=True) if day else None
    return {"activities.syncFrom": f"The date {problem}."} if problem else {}


def _invalid(fields: dict[str, str]) -> Rejected:
    text = "; ".join(f"{k}: {v}" for k, v in fields.items())
    return Rejected(400, f"invalid settings: {text}", fields)


def start_sync(
    config: bootstrap.Config, store: DocumentStore, user_id: str, section: str
) -> dict[str, Any]:
    """Run (inline) or queue the section's sync; the answer has core.outcome's shape,
    for the whole and for each run, with the run ids the page follows."""
    sections = list(SECTIONS) if section == "all" else [section]
    jobs = [Job(user_id, name, "manual", run_id=uuid.uuid4().hex) for name in sections]  # type: ignore[arg-type]
    inline = config.queue == "inline"
    if not inline:  # the page follows each run from its record, queued first
        queued = stamp(bootstrap.clock().now())
        with store.batch() as batch:
            for job in jobs:
                batch.put(SYNC_RUNS, job.run_id, {  # type: ignore[arg-type]
                    "userId": user_id, "section": job.section, "trigger": "manual",
                    "startedAt": queued, "queuedAt": queued, **outcome.QUEUED.fields(),
                })  # fmt: skip
    try:
        queue_for(config, store).send(jobs)
    except Exception as exc:
        if not inline:  # never sent: its queued records would wait forever
            _unqueue(store, jobs, exc)
        raise
    runs = []
    for job in jobs:
        record = (store.get(SYNC_RUNS, job.run_id) or {}) if inline else {}  # type: ignore[arg-type]
        found = {k: record.get(k) for k in ("outcome", "reason", "hint")}
        if not inline:
            found = outcome.QUEUED.fields()
        runs.append({"section": job.section, "runId": job.run_id, **found,
                     "counts": record.get("counts") or {},
                     "changes": labelled(job.section, record.get("counts") or {}),
                     "errors": len(record.get("errors") or [])})  # fmt: skip
    return {**_overall(runs), "runs": runs}


def _unqueue(store: DocumentStore, jobs: list[Job], error: Exception) -> None:
    """The queued records of jobs the queue refused, rewritten as failed (best effort:
    the caller's error says the same). Records already past ``queued`` (a job that was
    sent before the failure and has started) are left to their run."""
    now = stamp(bootstrap.clock().now())
    found = outcome.of_error(error)
    for job in jobs:
        try:
            record = store.get(SYNC_RUNS, job.run_id) or {}  # type: ignore[arg-type]
            if record.get("outcome") != "queued":
                continue
            store.put(SYNC_RUNS, job.run_id, {  # type: ignore[arg-type]
                **record, **found.fields(), "ok": False, "finishedAt": now,
                "errors": [{"id": "(run)", "kind": type(error).__name__,
                            "message": f"the sync could not be queued: {error}"}],
            })  # fmt: skip
        except Exception:  # the store is down too: the queued mark ages out (settled)
            continue


def _overall(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The outcome of several runs: the first failed one, else the first skipped, ..."""
    for kind in ("failed", "skipped", "queued", "done"):
        for run in runs:
            if run["outcome"] == kind:
                return {k: run[k] for k in ("outcome", "reason", "hint")}
    return {"outcome": "failed", "reason": "internal", "hint": outcome.RETRY}


def identify(
    config: bootstrap.Config,
    store: DocumentStore,
    request,
    *,
    write: bool,
    asked_for: str | None = None,
) -> tuple[str, dict[str, str] | None]:
    """The caller: a bearer ID token (API clients) or the page's session cookie, whose
    writes must carry the session's CSRF token. Returns (user id, session or None)."""
    from adapters.identity import NotSignedIn
    from functions.session import COOKIE, csrf_ok, open_session

    if request.headers.get("Authorization"):
        return caller(config, store, request.headers["Authorization"], asked_for), None
    session = open_session(config, store, request.cookies.get(COOKIE))
    if session is None:
        raise NotSignedIn("sign in first")
    if write and not csrf_ok(session, request.headers.get("X-CSRF-Token")):
        raise Rejected(403, "missing or wrong X-CSRF-Token")
    if asked_for not in (None, session["u"]):
        raise Rejected(403, "a user can only see and start their own syncs")
    return session["u"], session


def private_tags(store: DocumentStore, user_id: str) -> list[dict[str, str]]:
    tags = store.query(TAGS, [Filter("ownerId", "==", user_id)])
    return [
        {"id": t.id, "name": t.data.get("name", t.id)}
        for t in tags
        if t.data.get("kind") == "private"
    ]


PREVIEW_SHOWN = 200  # actions listed by a preview; the rest are counted


def history(store: DocumentStore, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
    docs = store.query(
        SYNC_RUNS,
        [Filter("userId", "==", user_id)],
        order_by="startedAt",
        descending=True,
        limit=limit,
    )
    leases = _leases(store, user_id, [d.data for d in docs])
    return [_run_row(d.id, d.data, leases) for d in docs]


def _leases(store: DocumentStore, user_id: str,
            records: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """The sections' leases, read only when a record says its run is under way (to
    tell a live run from one that died without a word)."""
    sections = {r.get("section") for r in records if r.get("outcome") in ("running", "queued")}
    return {section: (store.get(SYNC_STATE, f"{user_id}:{section}") or {}).get("lease")
            for section in sections if section in SECTIONS}  # fmt: skip


def _run_row(run_id: str, data: dict[str, Any],
             leases: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """A run as the history shows it: its outcome, labelled counts, progress. A run
    that died under way (core.outcome.settled) says so."""
    if data.get("outcome") in ("running", "queued"):
        lease = (leases or {}).get(data.get("section"))
        data = outcome.settled(run_id, data, lease, bootstrap.clock().now())
    row = {"id": run_id, **{k: data.get(k) for k in RUN_FIELDS}}
    if not row.get("outcome"):  # a record from before outcomes
        row["outcome"] = "done" if data.get("ok") else ("skipped" if data.get("skipped")
                                                        else "failed")  # fmt: skip
    row["changes"] = labelled(data.get("section"), data.get("counts") or {})
    row["errors"] = len(data.get("errors") or [])
    return row


RUN_FIELDS = ("section", "trigger", "startedAt", "finishedAt", "counts", "ok", "skipped",
              "outcome", "reason", "hint", "phase", "done", "total", "items")  # fmt: skip


def labelled(section: str | None, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Counts with their labels, in the section's order: [{key, label, count}]."""
    from functions.report import LABELS, SECTION_KEYS

    keys = SECTION_KEYS.get(section or "", tuple(LABELS))
    extra = [k for k in counts if k not in keys]
    return [{"key": k, "label": LABELS.get(k, k), "count": counts[k]}
            for k in (*keys, *extra) if counts.get(k)]  # fmt: skip


def run_detail(store: DocumentStore, user_id: str, run_id: str) -> dict[str, Any]:
    from core.runs import journal

    doc = store.get(SYNC_RUNS, run_id)
    if doc is None or doc.get("userId") != user_id:
        raise Rejected(404, "no such run")
    row = _run_row(run_id, doc, _leases(store, user_id, [doc]))
    items = journal(store, run_id, int(doc.get("itemPages") or 0))
    return {**row, "plan": doc.get("plan") or {}, "errors": doc.get("errors") or [],
            "errorCount": row["errors"], "items": items}  # fmt: skip


def names(store: DocumentStore, section: str, ids: list[str]) -> dict[str, str]:
    """What the user calls the CRM records ``ids``: contacts' names, activities' titles."""
    from core.contact_mapping import display_name
    from core.model import ACTIVITIES, CONTACTS

    if not ids:
        return {}
    found = store.get_many(CONTACTS if section == "contacts" else ACTIVITIES, ids)
    if section == "contacts":
        return {i: display_name(d) for i, d in found.items() if display_name(d)}
    return {i: d["title"] for i, d in found.items() if d.get("title")}


def preview(
    config: bootstrap.Config, store: DocumentStore, user_id: str, section: str
) -> dict[str, Any]:
    """The dry run's plan, in the user's words; an error answers core.outcome's shape
    (not connected, no tag ...) through the error handler, never an empty plan."""
    from core.runs import Options
    from functions.report import describe, ids_of
    from functions.sync import run_sections

    reports = run_sections(
        config, store, user_id, section, Options(dry_run=True, trigger="preview")
    )
    sections = []
    for r in reports:
        shown = r.plan[:PREVIEW_SHOWN]
        known = names(store, r.section, sorted({i for a in shown for i in ids_of(a)}))
        sections.append({"section": r.section, "total": len(r.plan),
                         "actions": [describe(a, known) for a in shown]})  # fmt: skip
    total = sum(s["total"] for s in sections)
    return {"outcome": "done", "reason": "planned" if total else "no_changes",
            "hint": None, "total": total, "sections": sections}  # fmt: skip


def undo_run(config: bootstrap.Config, store: DocumentStore, user_id: str, run_id: str,
             dry_run: bool) -> dict[str, Any]:  # fmt: skip
    """Take one of the user's runs back (inline), or say exactly what that would do
    (``dry_run``): the outcome, the undo's own run id, its actions in the user's words,
    and each item left alone because it changed again since (a conflict)."""
    from core.errors import UndoRefused
    from core.runs import Options
    from functions.report import describe_undo, ids_of
    from functions.undo import undo

    try:
        report = undo(config, store, run_id, Options(dry_run=dry_run), user_id=user_id)
    except UndoRefused as refused:
        if str(refused).startswith("no run"):  # another user's run is never said to exist
            raise Rejected(404, "no such run") from None
        raise
    known = names(store, report.section, sorted({i for a in report.plan for i in ids_of(a)}))
    return {**report.outcome, "runId": None if dry_run else report.run_id,
            "undoOf": run_id, "dryRun": dry_run, "total": len(report.plan),
            "actions": [describe_undo(a, known) for a in report.plan[:PREVIEW_SHOWN]],
            "counts": report.counts, "changes": labelled(report.section, report.counts),
            "conflicts": [e for e in report.errors if e.get("kind") == "UndoConflict"],
            "errors": [e for e in report.errors if e.get("kind") != "UndoConflict"]}  # fmt: skip
