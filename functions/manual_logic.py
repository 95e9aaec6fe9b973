"""The settings and manual-sync API behind ``manual_sync``: who the caller is, what
their status is, how settings are validated and saved, and starting a sync by hand.
Every call acts on the caller's own user only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.identity import verified_email
from adapters.queue import open_queue
from core.model import GOOGLE_ACCOUNTS, SECTIONS, SYNC_SETTINGS, SYNC_STATE, TAGS, USERS
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


def caller(config: bootstrap.Config, store: DocumentStore, header: str | None,
           asked_for: str | None = None) -> str:  # fmt: skip
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
    account = store.get(GOOGLE_ACCOUNTS, user_id) or {}
    sections = {}
    for section in SECTIONS:
        state = store.get(SYNC_STATE, f"{user_id}:{section}") or {}
        sections[section] = {k: state.get(k) for k in
                             ("lastRunAt", "lastSuccessAt", "nextDueAt", "lastResult")}  # fmt: skip
    return {
        "userId": user_id,
        "account": {"status": account.get("status", "not_connected"),
                    "accountEmail": account.get("accountEmail")},
        "settings": store.get(SYNC_SETTINGS, user_id) or {},
        "sections": sections,
    }  # fmt: skip


def save_settings(store: DocumentStore, user_id: str, body: bytes) -> dict[str, Any]:
    try:
        settings = SettingsIn.model_validate_json(body or b"{}")
    except ValidationError as exc:
        fields = {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}
        raise Rejected(400, "invalid settings: " + "; ".join(f"{k}: {v}" for k, v in
                                                            fields.items())) from None  # fmt: skip
    tag_id = settings.contacts.tagId
    if tag_id is not None:
        tag = store.get(TAGS, tag_id) or {}
        if tag.get("kind") != "private" or tag.get("ownerId") != user_id:
            raise Rejected(400, "invalid settings: contacts.tagId: must be one of your own "
                                "private tags")  # fmt: skip
    doc = settings.model_dump(mode="json")
    store.put(SYNC_SETTINGS, user_id, doc)
    return doc


def start_sync(config: bootstrap.Config, store: DocumentStore, user_id: str,
               section: str) -> dict[str, Any]:  # fmt: skip
    sections = list(SECTIONS) if section == "all" else [section]
    jobs = [Job(user_id, name, "manual") for name in sections]  # type: ignore[arg-type]
    results = open_queue(config.queue, lambda job: run_job(config, store, job)).send(jobs)
    if config.queue != "inline":
        return {"queued": [j.section for j in jobs]}
    return {"ran": [{"section": job.section, "counts": r.counts if r else {},
                     "errors": r.errors if r else [], "skipped": r is None}
                    for job, r in zip(jobs, results, strict=True)]}  # fmt: skip
