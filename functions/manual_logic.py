"""The settings and manual-sync API behind ``manual_sync``: who the caller is, what
their status is, how settings are validated and saved, and starting a sync by hand.
Every call acts on the caller's own user only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.identity import verified_email
from adapters.queue import open_queue
from core import schedule
from core.model import (
    GOOGLE_ACCOUNTS,
    SECTIONS,
    SYNC_RUNS,
    SYNC_SETTINGS,
    SYNC_STATE,
    TAGS,
    USERS,
    sync_from_problem,
)
from core.ports import DocumentStore, Filter
from core.schedule import Job
from functions import bootstrap
from functions.jobs import run_job
from functions.webhook_logic import Rejected


class ContactsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auto: bool = False
    intervalMinutes: int = Field(60, ge=5, le=1440)
    tagId: str | None = None


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


def status(store: DocumentStore, user_id: str) -> dict[str, Any]:
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
        if state.get("accountSwitch"):
            switches.append(state["accountSwitch"])
    user = store.get(USERS, user_id) or {}
    return {
        "userId": user_id,
        "displayName": user.get("displayName") or user.get("email"),
        "timeZone": user.get("timeZone", "UTC"),
        "privateTags": private_tags(store, user_id),
        "account": {
            "status": account.get("status", "not_connected"),
            "accountEmail": account.get("accountEmail"),
            # the latest switch of Google account: {from, to, at, archived, restored}
            "switched": max(switches, key=lambda s: s["at"], default=None),
        },
        "settings": store.get(SYNC_SETTINGS, user_id) or {},
        "sections": sections,
    }


def save_settings(store: DocumentStore, user_id: str, body: bytes) -> dict[str, Any]:
    try:
        settings = SettingsIn.model_validate_json(body or b"{}")
    except ValidationError as exc:
        fields = {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}
        text = "; ".join(f"{k}: {v}" for k, v in fields.items())
        raise Rejected(400, f"invalid settings: {text}", fields) from None
    zone = (store.get(USERS, user_id) or {}).get("timeZone") or "UTC"
    try:
        today = bootstrap.clock().now().astimezone(ZoneInfo(zone)).date()  # as the run's
    except (ZoneInfoNotFoundError, ValueError):
        today = bootstrap.clock().now().date()
    problem = sync_from_problem(settings.activities.syncFrom, today, saving=True)
    if problem:
        raise Rejected(
            400,
            f"invalid settings: activities.syncFrom: {problem}",
            {"activities.syncFrom": problem},
        )
    tag_id = settings.contacts.tagId
    if tag_id is not None:
        tag = store.get(TAGS, tag_id) or {}
        if tag.get("kind") != "private" or tag.get("ownerId") != user_id:
            problem = "must be one of your own private tags"
            raise Rejected(
                400, f"invalid settings: contacts.tagId: {problem}", {"contacts.tagId": problem}
            )
    doc = settings.model_dump(mode="json")
    store.put(SYNC_SETTINGS, user_id, doc)
    schedule.reschedule(store, user_id, bootstrap.clock().now(), due_now=True)
    return doc


def start_sync(
    config: bootstrap.Config, store: DocumentStore, user_id: str, section: str
) -> dict[str, Any]:
    sections = list(SECTIONS) if section == "all" else [section]
    jobs = [Job(user_id, name, "manual") for name in sections]  # type: ignore[arg-type]
    results = open_queue(config.queue, lambda job: run_job(config, store, job)).send(jobs)
    if config.queue != "inline":
        return {"queued": [j.section for j in jobs]}
    return {
        "ran": [
            {
                "section": job.section,
                "counts": r.counts if r else {},
                "errors": r.errors if r else [],
                "skipped": r is None,
            }
            for job, r in zip(jobs, results, strict=True)
        ]
    }


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
    session = open_session(config, request.cookies.get(COOKIE))
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


def history(store: DocumentStore, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
    docs = store.query(
        SYNC_RUNS,
        [Filter("userId", "==", user_id)],
        order_by="startedAt",
        descending=True,
        limit=limit,
    )
    return [
        {
            "id": d.id,
            **{
                k: d.data.get(k)
                for k in (
                    "section",
                    "trigger",
                    "startedAt",
                    "finishedAt",
                    "counts",
                    "ok",
                    "skipped",
                )
            },
            "errors": len(d.data.get("errors") or []),
        }
        for d in docs
    ]


def run_detail(store: DocumentStore, user_id: str, run_id: str) -> dict[str, Any]:
    doc = store.get(SYNC_RUNS, run_id)
    if doc is None or doc.get("userId") != user_id:
        raise Rejected(404, "no such run")
    return {"id": run_id, **doc}


def preview(
    config: bootstrap.Config, store: DocumentStore, user_id: str, section: str
) -> dict[str, Any]:
    from core.runs import Options
    from functions.report import describe
    from functions.sync import run_sections

    reports = run_sections(
        config, store, user_id, section, Options(dry_run=True, trigger="preview")
    )
    return {
        "sections": [
            {"section": r.section, "actions": [describe(a) for a in r.plan]} for r in reports
        ]
    }
