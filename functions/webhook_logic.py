"""The CRM webhook's rules: signature, freshness, payload, replay, who is affected, and
coalescing of bursts. ``functions/webhook.py`` is the thin HTTP entry point.

Signature: ``X-Crmsync-Signature: sha256=HEX`` = HMAC-SHA256(secret, timestamp + "." +
raw body), with ``X-Crmsync-Timestamp`` (UNIX seconds) within 5 minutes of now.
Replay: each ``eventId`` is recorded in ``webhookEvents``; a repeated one is ignored.
Affected users, when ``userIds`` is absent: for a contact, the owners of the private
tags it carries and the users who have it linked; for an activity, its organizer and
participant users (and users who have it linked).
Coalescing: a (user, section) queued less than ``COALESCE`` ago, and not run since,
is not queued again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import AlreadyExists
from core.model import (
    ACTIVITIES,
    CONTACTS,
    LINKS,
    SYNC_STATE,
    TAGS,
    USERS,
    DocId,
    id_problem,
    stamp,
    when,
)
from core.ports import DocumentStore, Filter, Transaction
from core.schedule import Job
from functions.http_errors import Rejected

log = logging.getLogger("crmsync.webhook")
MAX_BODY = 256 * 1024
MAX_SKEW = 300
COALESCE = timedelta(seconds=30)
EVENTS = "webhookEvents"


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    eventId: DocId = Field(min_length=1, max_length=200)
    entity: Literal["contact", "activity"]
    recordId: DocId = Field(min_length=1, max_length=500)
    change: Literal["created", "updated", "deleted"]
    userIds: list[DocId] | None = Field(default=None, max_length=100)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Event] = Field(min_length=1, max_length=500)


def verify(
    secret: str | None, timestamp: str | None, signature: str | None, body: bytes, now: datetime
) -> None:
    if not secret:
        raise Rejected(503, "webhooks are not enabled: CRMSYNC_WEBHOOK_SECRET is not set")
    if len(body) > MAX_BODY:
        raise Rejected(413, f"body larger than {MAX_BODY} bytes")
    # Unix seconds: ASCII digits only (str.isdigit takes "²"), and a sane length
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise Rejected(401, "missing or malformed X-Crmsync-Timestamp")
    if abs(now.timestamp() - int(timestamp)) > MAX_SKEW:
        raise Rejected(401, "X-Crmsync-Timestamp is more than 5 minutes away from now")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    given = (signature or "").encode("utf-8", "replace")  # any text: compared as bytes
    if not signature or not hmac.compare_digest(given, f"sha256={expected.hexdigest()}".encode()):
        raise Rejected(401, "bad X-Crmsync-Signature")


def parse(body: bytes) -> Payload:
    try:
        return Payload.model_validate_json(body)
    except ValueError as exc:
        first = getattr(exc, "errors", lambda: [{}])()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(body)"
        raise Rejected(400, f"invalid payload at {where}: {first.get('msg', exc)}") from None


def affected(store: DocumentStore, event: Event) -> set[Job]:
    section = "contacts" if event.entity == "contact" else "activities"
    users = set(event.userIds or ())
    if event.userIds is None:
        users |= _linked_users(store, event.recordId, section)
        doc = store.get(CONTACTS if event.entity == "contact" else ACTIVITIES, event.recordId) or {}
        if event.entity == "contact":
            tags = store.get_many(TAGS, [t for t in doc.get("tagIds", []) if isinstance(t, str)])
            users |= {
                t["ownerId"]
                for t in tags.values()
                if t.get("kind") == "private" and t.get("ownerId")
            }
        else:
            users |= {doc["organizerId"]} if isinstance(doc.get("organizerId"), str) else set()
            users |= {
                p["userId"]
                for p in doc.get("participants") or []
                if isinstance(p, dict) and isinstance(p.get("userId"), str)
            }
    unknown = sorted(u for u in users if store.get(USERS, u) is None)
    if unknown and event.userIds is not None:
        raise Rejected(400, f"event {event.eventId}: unknown user(s) {', '.join(unknown)}")
    return {Job(u, section, "webhook") for u in users if u not in unknown}  # type: ignore[arg-type]


def _linked_users(store: DocumentStore, record_id: str, section: str) -> set[str]:
    docs = store.query(LINKS, [Filter("crmId", "==", record_id)])
    return {d.data["userId"] for d in docs if d.data.get("section") == section}


def seen(store: DocumentStore, event_ids: list[str]) -> set[str]:
    """The event ids recorded before (replays)."""
    return set(store.get_many(EVENTS, sorted(set(event_ids))))


def record(store: DocumentStore, event_ids: list[str], now: datetime) -> None:
    """Record the event ids, once their work is queued: a delivery whose queueing
    failed is not recorded, so the CRM's retry queues it again. A concurrent delivery
    that recorded one first is no failure (its work is queued too)."""
    for event_id in event_ids:
        try:
            with store.batch() as batch:
                batch.create(EVENTS, event_id, {"receivedAt": stamp(now)})
        except AlreadyExists:
            continue


def claim(store: DocumentStore, job: Job, now: datetime, by: str | None = None) -> bool:
    """Mark the pair queued; False when a queued run is still pending (coalesced).
    ``by``: the webhook event the job is queued for. A claim whose event was never
    recorded (its delivery failed after the claim, and the claim could not be given
    back) holds nothing: the delivery's retry queues the job again."""
    key = f"{job.user_id}:{job.section}"

    def mark(tx: Transaction) -> bool:
        state = tx.get(SYNC_STATE, key) or {}
        queued, last = when(state.get("queuedAt")), when(state.get("lastRunAt"))
        pending = queued and (not last or last < queued)  # an unreadable time: none
        recent = pending and queued > now - COALESCE  # type: ignore[operator]
        if recent and _sent(tx, state.get("queuedBy")):
            return False
        tx.put(SYNC_STATE, key, {**state, "queuedAt": stamp(now), "queuedBy": by})
        return True

    return store.transaction(mark)


def _sent(tx: Transaction, event_id: Any) -> bool:
    """Whether the claim's job left: its event was recorded (which follows the send), or
    it was claimed for no event (a push)."""
    if not isinstance(event_id, str) or id_problem(event_id) is not None:
        return True
    return tx.get(EVENTS, event_id) is not None


def release(store: DocumentStore, job: Job, now: datetime) -> None:
    """Undo ``claim`` after the job could not be sent: the CRM's retry is not taken for
    a coalesced duplicate of a job that never left."""
    key = f"{job.user_id}:{job.section}"

    def unmark(tx: Transaction) -> None:
        state = tx.get(SYNC_STATE, key) or {}
        if state.get("queuedAt") == stamp(now):
            gone = ("queuedAt", "queuedBy")
            tx.put(SYNC_STATE, key, {k: v for k, v in state.items() if k not in gone})

    store.transaction(unmark)


# the ids a pair's state keeps for its next run to look up: past either bound (deletes
# piling up for a user who is not syncing), they give way to a full read of the CRM,
# which finds every record gone, and the state document stays small
RETRY_MAX_IDS = 1000
RETRY_MAX_BYTES = 100_000


def note_deleted(store: DocumentStore, job: Job, record_id: str, now: datetime) -> None:
    """A record deleted for good leaves no trace in the CRM's change feed: tell the next
    run of (user, section) to look it up, and find it gone."""
    key = f"{job.user_id}:{job.section}"

    def add(tx: Transaction) -> None:
        state = tx.get(SYNC_STATE, key) or {}
        if state.get("crmFullPassAt") is not None:  # a full read of the CRM is due, and
            # finds this one gone too; marked anew, so that a run already reading does
            # not take itself for the read that saw this delete
            tx.put(SYNC_STATE, key, {**state, "crmFullPassAt": stamp(now)})
            return
        kept = state.get("retryCrm")
        kept = [i for i in kept if isinstance(i, str)] if isinstance(kept, list) else []
        retry = sorted(set(kept) | {record_id})
        if len(retry) > RETRY_MAX_IDS or sum(len(i.encode()) for i in retry) > RETRY_MAX_BYTES:
            # too many to look up one by one: the next run reads the CRM in full
            tx.put(SYNC_STATE, key, {**state, "retryCrm": [], "crmFullPassAt": stamp(now)})
            return
        tx.put(SYNC_STATE, key, {**state, "retryCrm": retry})

    store.transaction(add)


def accept(
    store: DocumentStore, payload: Payload, now: datetime, send: Callable[[list[Job]], object]
) -> dict[str, object]:
    """Validate every event first (nothing is written if one is bad); coalesce, and send
    one job per affected (user, section); then record the event ids. A failure to send
    (or, inline, to run) records nothing and releases the claims: the CRM's retry of
    the delivery is served, not answered "replayed"."""
    plans = [(event, affected(store, event)) for event in payload.events]
    before = seen(store, [event.eventId for event, _ in plans])
    fresh = [(event, jobs) for event, jobs in plans if event.eventId not in before]
    replayed = [event.eventId for event, _ in plans if event.eventId in before]
    jobs: set[Job] = set().union(*(event_jobs for _, event_jobs in fresh))
    for event, event_jobs in fresh:
        if event.change == "deleted":
            for job in event_jobs:
                note_deleted(store, job, event.recordId, now)
    first = {job: min(e.eventId for e, event_jobs in fresh if job in event_jobs) for job in jobs}
    queued = [job for job in sorted(jobs) if claim(store, job, now, first[job])]
    try:
        send(queued)
    except BaseException as failed:
        for job in queued:  # each on its own; a store that fails too hides nothing
            try:
                release(store, job, now)
            except Exception as refused:
                log.error("a webhook job's claim was not released: %s", refused,
                          extra={"fields": {"userId": job.user_id, "section": job.section,
                                            "error": type(failed).__name__,
                                            "storeError": type(refused).__name__}})  # fmt: skip
        raise
    record(store, sorted({event.eventId for event, _ in fresh}), now)
    return {
        "queued": [{"userId": j.user_id, "section": j.section} for j in queued],
        "coalesced": len(jobs) - len(queued),
        "replayed": replayed,
    }
