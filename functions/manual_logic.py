"""The settings and manual-sync API behind ``manual_sync``: who the caller is, what
their status is, how settings are validated and saved, and starting a sync by hand.
Every call acts on the caller's own user only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.identity import verified_email
from core import outcome, schedule
from core.errors import MalformedDocument
from core.lease import held, run_of
from core.model import (
    GOOGLE_ACCOUNTS,
    SECTIONS,
    SYNC_RUNS,
    SYNC_SETTINGS,
    SYNC_STATE,
    TAGS,
    USERS,
    DocId,
    section_settings,
    stamp,
    sync_from_problem,
    when,
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
        state = _readable_state(store.get(SYNC_STATE, sid))
        sections[section] = {
            k: state.get(k)
            for k in ("lastRunAt", "lastSuccessAt", "lastResult", "accountSwitch", "emptyRuns")
        }
        # the schedule is a slot (core.schedule): the next due time is computed
        sections[section]["nextDueAt"] = schedule.next_due(state, now)
        # when crmsync last looked, changes or not: runs, and the scheduled looks that
        # found nothing (they write no run record, only one syncChecks per batch)
        looked = [t for t in (state.get("lastRunAt"), state.get("lastCheckedAt"),
                              last_checked(store, sid)) if when(t)]  # fmt: skip
        sections[section]["lastCheckedAt"] = max(looked, default=None)
        sections[section]["active"] = _active(store, state, now)
        if state.get("accountSwitch"):
            switches.append(state["accountSwitch"])
    user = store.get(USERS, user_id) or {}
    settings, unreadable = readable_settings(user_id, store.get(SYNC_SETTINGS, user_id))
    connection = account.get("status", "not_connected")
    by = account.get("connectedBy")  # "administrator": domain-wide delegation
    ended = by == "administrator" and config is not None and not covers(config, user.get("email"))
    by = None if ended else by
    if ended and connection == "connected":  # syncs stop: the user connects their own
        connection = "reauth_required"
    for section in SECTIONS:
        sections[section]["ready"] = _ready(section, connection, settings, by)
        if section in unreadable:  # said beside the section's buttons, until saved over
            sections[section]["ready"] = {"ok": False, "reason": "bad_settings",
                                          "hint": UNREADABLE.format(section=section)}  # fmt: skip
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


UNREADABLE = ("Your saved {section} settings could not be read, so the defaults are shown: "
              "check them and save.")  # fmt: skip
SECTION_MODELS: dict[str, type[BaseModel]] = {"contacts": ContactsIn, "activities": ActivitiesIn}


def readable_settings(user_id: str, stored: Any) -> tuple[dict[str, Any], list[str]]:
    """The stored settings as the page can show them, and the sections whose part could
    not be read (the CRM, or anyone with the store, may write anything there): each such
    part is shown as its defaults, which a save replaces. A part is read as the runs
    read it (``core.model.section_settings``)."""
    settings = dict(stored) if isinstance(stored, dict) else {}
    unreadable = []
    for section, model in SECTION_MODELS.items():
        if settings.get(section) is None:
            continue
        try:
            section_settings(user_id, settings, section)
        except MalformedDocument:
            settings[section] = model().model_dump(mode="json")
            unreadable.append(section)
    return settings, unreadable


SLOT = re.compile(r"[0-9]{1,5}:[0-9]{1,5}")


def _readable_state(stored: Any) -> dict[str, Any]:
    """A section's sync state as the status reads it: a mark that is not what crmsync
    writes there counts as absent (never a 500, and never shown)."""
    state = dict(stored) if isinstance(stored, dict) else {}
    for key in ("lastRunAt", "lastSuccessAt", "lastCheckedAt", "nextDueAt"):
        if key in state and when(state[key]) is None:
            state[key] = None
    slot = state.get("slot")
    if slot is not None and not (isinstance(slot, str) and SLOT.fullmatch(slot)
                                 and int(slot.partition(":")[0]) > 0):  # fmt: skip
        state["slot"] = None
    if not isinstance(state.get("lastResult"), dict):
        state["lastResult"] = None
    state["emptyRuns"] = _count(state.get("emptyRuns"), None)
    switch = state.get("accountSwitch")
    if not (isinstance(switch, dict) and when(switch.get("at"))
            and all(isinstance(switch.get(k), str) for k in ("from", "to"))):  # fmt: skip
        state["accountSwitch"] = None
    return state


def _count(value: Any, default: int | None = 0) -> int | None:
    """A count crmsync wrote (a whole number, 0 or more), else ``default``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


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
    phase = record.get("phase")
    return {"runId": run_id, "phase": phase if isinstance(phase, str) else None,
            **{k: _count(record.get(k), None) for k in ("done", "total")}}  # fmt: skip


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


def _part(body: bytes, section: str) -> dict[str, Any]:
    """The body's ``section`` object, or ``{}``: the body is not JSON, not an object, is
    nested too deep to read (a ``RecursionError``, answered 400 with the other
    problems, never 500), or its part is not an object."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        return {}
    part = data.get(section) if isinstance(data, dict) else None
    return part if isinstance(part, dict) else {}


def _meaning(body: bytes) -> dict[str, str]:
    """Problems of meaning, found even beside malformed fields: automatic sync of
    contacts with no tag would sync nothing."""
    contacts = _part(body, "contacts")
    if contacts.get("auto") is True and not contacts.get("tagId"):
        return {"contacts.tagId": "Choose a private tag to sync contacts automatically."}
    return {}


def _date_problem(body: bytes, today: dt.date) -> dict[str, str]:
    """The sync-from date's problem of meaning, found beside other malformed fields."""
    raw = _part(body, "activities").get("syncFrom")
    try:
        day = dt.date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
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
    sections = {r.get("section") for r in records if r.get("outcome") in ("running", "queued")
                and isinstance(r.get("section"), str)}  # fmt: skip
    return {section: held((store.get(SYNC_STATE, f"{user_id}:{section}") or {}).get("lease"))
            for section in sections if section in SECTIONS}  # fmt: skip


def _run_row(run_id: str, data: dict[str, Any],
             leases: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """A run as the history shows it: its outcome, labelled counts, progress. A run
    that died under way (core.outcome.settled) says so. A field that is not what crmsync
    writes there (a corrupt record) counts as absent: never a 500 for the whole list."""
    data = _readable_run(data)
    if data.get("outcome") in ("running", "queued"):
        section = data.get("section")
        lease = (leases or {}).get(section) if isinstance(section, str) else None
        data = outcome.settled(run_id, data, lease, bootstrap.clock().now())
    row = {"id": run_id, **{k: data.get(k) for k in RUN_FIELDS}}
    if not row.get("outcome"):  # a record from before outcomes
        row["outcome"] = "done" if data.get("ok") else ("skipped" if data.get("skipped")
                                                        else "failed")  # fmt: skip
    section = data.get("section")
    row["changes"] = labelled(section if isinstance(section, str) else None, data["counts"])
    row["errors"] = len(data["errors"])
    return row


def _readable_run(data: Any) -> dict[str, Any]:
    """A run record whose corrupt fields are read as absent: counts a map of whole
    numbers, errors a list of objects, times as crmsync writes them, progress numbers."""
    data = dict(data) if isinstance(data, dict) else {}
    counts = data.get("counts") if isinstance(data.get("counts"), dict) else {}
    data["counts"] = {k: v for k, v in counts.items()
                      if isinstance(k, str) and _count(v, None) is not None}  # fmt: skip
    errors = data.get("errors")
    data["errors"] = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    for key in ("startedAt", "finishedAt", "queuedAt", "updatedAt", "claimedAt"):
        if key in data and when(data[key]) is None:
            data[key] = None
    for key in ("done", "total", "items", "itemPages"):
        if key in data:
            data[key] = _count(data[key], None)
    for key in ("outcome", "reason", "hint", "phase", "trigger", "section"):
        if key in data and not isinstance(data[key], str):
            data[key] = None
    return data


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
    record = _readable_run(doc)
    items = journal(store, run_id, record.get("itemPages") or 0)
    plan = doc.get("plan") if isinstance(doc.get("plan"), dict) else {}
    return {**row, "plan": plan, "errors": record["errors"], "errorCount": row["errors"],
            "items": [i for i in items if isinstance(i, dict)]}  # fmt: skip


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

    _journal_readable(store, user_id, run_id)
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


def _journal_readable(store: DocumentStore, user_id: str, run_id: str) -> None:
    """``UndoRefused`` (409) for the caller's run whose record cannot say what it changed
    (its journal's page count or its end is not what crmsync writes): the undo would not
    know what to take back. Another user's run, or none, is left to ``undo`` (404)."""
    from core.errors import UndoRefused

    record = store.get(SYNC_RUNS, run_id)
    if not isinstance(record, dict) or record.get("userId") != user_id:
        return
    pages, ended = record.get("itemPages"), record.get("finishedAt")
    if (pages is not None and _count(pages, None) is None) or (ended and when(ended) is None):
        raise UndoRefused(f"run {run_id}'s record is damaged (it no longer says what it "
                          "changed), so it cannot be undone")  # fmt: skip
