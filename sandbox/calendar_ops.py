"""Calendar writes: insert, patch/update, delete, attendee copies, would-be emails.

``Ctx`` is one request's view of the sandbox: it commits writes (new etag, ``updated``
and change-log entry) and, when the request ends, pushes one ``exists`` notification
per changed calendar. Events another sandbox account is invited to are copied into
that account's calendar with the same id; the organizer's writes refresh or cancel
the copies, and an attendee's only write (their response, or deleting their copy,
which declines) goes back to the organizer's event and from there to every copy.
With ``Behaviours.undetected_id_collisions`` an insert whose id was taken a moment ago
(by a live event) is answered as a creation but stores nothing (``sandbox.realism``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandbox.calendar_events import (
    READ_ONLY,
    check_attendee_edit,
    copy_view,
    html_link,
    instance,
    next_sequence,
    normalize,
    own_entry,
    patched,
    personal_of,
    replaced,
)
from sandbox.calendar_push import notify
from sandbox.calendar_recurrence import RecurrenceError, original_from_suffix, parse_series
from sandbox.calendar_store import CalendarState, CalendarStore, StoredEvent, new_event_id
from sandbox.calendar_times import bad
from sandbox.routing import ApiError, calendar_error
from sandbox.state import rfc3339

if TYPE_CHECKING:  # annotations only: the sandbox that runs the request
    from sandbox.app import Sandbox

EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
SEND_UPDATES = ("all", "externalOnly", "none")


def calendar_state(sandbox: Sandbox) -> CalendarState:
    return sandbox.ext.setdefault("calendar", CalendarState())


class Ctx:
    """One request's access to calendar state; ``finish`` sends push notifications."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.state = calendar_state(sandbox)
        self.now = sandbox.clock.now()
        self.touched: dict[str, CalendarStore] = {}

    def store_of(self, email: str) -> CalendarStore | None:
        account = self.sandbox.account(email)
        if account is None:
            return None
        if "calendar" not in account.ext:
            account.ext["calendar"] = CalendarStore(account.email, self.now)
        store: CalendarStore = account.ext["calendar"]
        store.time_zone = account.time_zone or self.sandbox.behaviours.default_time_zone
        ttl = self.sandbox.behaviours.cancelled_event_ttl_seconds
        if ttl is not None:
            store.purge_cancelled(self.now - timedelta(seconds=ttl))
        return store

    def commit(self, store: CalendarStore, event: StoredEvent) -> None:
        store.commit(event, self.state, self.now)
        self.touched[store.email] = store

    def finish(self) -> None:
        for store in self.touched.values():
            notify(self.sandbox, self.state, store)
        self.touched.clear()


@dataclass
class Ref:
    """An event found by id: a stored event, or an unmodified instance of a series."""

    data: dict[str, Any]
    stored: StoredEvent | None
    master: StoredEvent | None = None

    @property
    def organizer(self) -> str:
        holder = self.stored or self.master
        assert holder is not None
        return holder.organizer


def not_found() -> ApiError:
    return calendar_error(404, "notFound", "Not Found")


def deleted() -> ApiError:
    return calendar_error(410, "deleted", "Resource has been deleted")


def find(store: CalendarStore, event_id: str) -> Ref | None:
    event = store.events.get(event_id)
    if event is not None:
        return Ref(event.data, event)
    master_id, sep, tail = event_id.rpartition("_")
    master = store.events.get(master_id) if sep else None
    if master is None or not master.is_master:
        return None
    try:
        series = parse_series(master.data["start"], master.data["recurrence"])
    except RecurrenceError:
        return None
    original = original_from_suffix(series, tail)
    if original is None:
        return None
    data = instance(master, series, original, store.email)
    if master.cancelled:
        data["status"] = "cancelled"
    return Ref(data, None, master)


def materialize(store: CalendarStore, ref: Ref) -> StoredEvent:
    """The stored event behind ``ref``; an instance becomes a (new) exception."""
    if ref.stored is not None:
        return ref.stored
    event = StoredEvent(copy.deepcopy(ref.data), organizer=ref.organizer)
    store.events[event.id] = event
    return event


def check_if_match(headers: dict[str, str], etag: str) -> None:
    wanted = headers.get("if-match")
    if wanted and wanted.strip() != "*" and etag not in [v.strip() for v in wanted.split(",")]:
        raise calendar_error(
            412,
            "conditionNotMet",
            "Precondition Failed",
            location="If-Match",
            location_type="header",
        )


def send_updates_of(value: str | None, notifications: bool) -> str:
    if value is None:
        return "all" if notifications else "none"
    if value not in SEND_UPDATES:
        raise bad(f"Invalid value for sendUpdates: {value}")
    return value


# -- organizer writes ----------------------------------------------------------------


def insert(ctx: Ctx, store: CalendarStore, body: dict[str, Any], send_updates: str) -> dict:
    event_id = body.get("id")
    if event_id is None:
        event_id = new_event_id()
    elif not isinstance(event_id, str) or not EVENT_ID.match(event_id):
        raise bad("Invalid resource id value.")
    taken = store.events.get(event_id)
    collision = taken is not None
    if collision and not _undetected(ctx, taken):
        raise calendar_error(409, "duplicate", "The requested identifier already exists.")
    content = normalize(replaced(body), store.email, store.email)
    sequence = body.get("sequence")
    data = {
        "kind": "calendar#event",
        "id": event_id,
        "htmlLink": html_link(event_id, store.email),
        "created": rfc3339(ctx.now.replace(microsecond=0)),
        "creator": {"email": store.email, "self": True},
        "organizer": {"email": store.email, "self": True},
        "iCalUID": body.get("iCalUID") or f"{event_id}@google.com",
        **content,
        "sequence": sequence if isinstance(sequence, int) and sequence >= 0 else 0,
    }
    if collision:  # undetected (realism): acknowledged as created, the stored event wins
        data["etag"] = ctx.state.next_etag(ctx.now)
        data["updated"] = rfc3339(ctx.now)
        return data
    event = StoredEvent(data, organizer=store.email, send_updates=send_updates)
    ctx.commit(store, event)
    sync_copies(ctx, store, event)
    record_mail(ctx, event, "invitation", send_updates, set())
    return event.data


COLLISION_WINDOW = timedelta(seconds=60)


def _undetected(ctx: Ctx, taken: StoredEvent) -> bool:
    """Whether an insert colliding with ``taken`` goes unnoticed (realism): only while
    the taken id is fresh, a live event created within ``COLLISION_WINDOW``, the time
    the globally distributed store may take to see its own creations. An older id, or
    a deleted event's (whose id stays occupied, GOOGLE_API.md 4.4), answers 409."""
    if not ctx.sandbox.behaviours.undetected_id_collisions or taken.cancelled:
        return False
    created = datetime.fromisoformat(taken.data["created"].replace("Z", "+00:00"))
    return ctx.now - created < COLLISION_WINDOW


def modify(
    ctx: Ctx,
    store: CalendarStore,
    ref: Ref,
    body: dict[str, Any],
    *,
    replace: bool,
    send_updates: str,
) -> dict:
    """events.patch (``replace=False``) and events.update (``replace=True``)."""
    if ref.organizer != store.email:
        return attendee_modify(ctx, store, ref, body, replace=replace)
    current = ref.data
    is_instance = "recurringEventId" in current
    content = replaced(body) if replace else patched(current, body)
    new = normalize(content, store.email, store.email, instance=is_instance)
    new["sequence"] = next_sequence(current, new, body.get("sequence"))
    before = invited(current)
    event = materialize(store, ref)
    was_cancelled = event.cancelled
    meta = {k: current[k] for k in READ_ONLY if k in current}
    event.data = {**meta, **new}
    event.send_updates = send_updates
    ctx.commit(store, event)
    sync_copies(ctx, store, event)
    if event.is_master and event.cancelled and not was_cancelled:
        cancel_exceptions(ctx, store, event)
    action = "cancellation" if event.cancelled else "update"
    record_mail(ctx, event, action, send_updates, before)
    return event.data


def delete(ctx: Ctx, store: CalendarStore, ref: Ref, send_updates: str) -> None:
    if ref.data.get("status") == "cancelled":
        raise deleted()
    if ref.organizer != store.email:
        respond(ctx, store, ref, "declined", self_deleted=True)
        return
    event = materialize(store, ref)
    event.data["status"] = "cancelled"
    event.send_updates = send_updates
    ctx.commit(store, event)
    sync_copies(ctx, store, event)
    if event.is_master:
        cancel_exceptions(ctx, store, event)
    record_mail(ctx, event, "cancellation", send_updates, invited(event.data))


def cancel_exceptions(ctx: Ctx, store: CalendarStore, master: StoredEvent) -> None:
    for event in list(store.events.values()):
        if event.data.get("recurringEventId") == master.id and not event.cancelled:
            event.data["status"] = "cancelled"
            ctx.commit(store, event)
            sync_copies(ctx, store, event)


def invited(data: dict[str, Any]) -> set[str]:
    organizer = data["organizer"]["email"]
    return {a["email"].lower() for a in data.get("attendees") or []} - {organizer}


# -- attendee copies -----------------------------------------------------------------


def sync_copies(
    ctx: Ctx,
    store: CalendarStore,
    event: StoredEvent,
    overrides: dict[str, tuple[dict | None, bool | None]] | None = None,
) -> None:
    """Create, refresh or cancel the copies of an organizer's event.

    ``overrides`` maps an attendee to (personal fields, self-deleted) to set on their
    copy; that copy is rewritten (new etag) even if nothing visible changed.
    """
    if event.organizer != store.email:
        return
    targets = {e for e in invited(event.data) if ctx.sandbox.account(e) is not None}
    for email in sorted(targets | event.copies):
        other = ctx.store_of(email)
        mine = other.events.get(event.id) if other is not None else None
        if other is None or (mine is not None and mine.organizer != store.email):
            continue  # the id is taken by an unrelated event in that calendar
        removed = email not in targets
        if mine is None:
            master = other.events.get(event.data.get("recurringEventId", ""))
            if removed or (event.cancelled and master is None):
                continue
            inherited = copy.deepcopy(master.personal) if master is not None else {}
            mine = StoredEvent({}, organizer=store.email, personal=inherited)
        personal, self_deleted = (overrides or {}).get(email, (None, None))
        mine.personal = mine.personal if personal is None else personal
        mine.self_deleted = mine.self_deleted if self_deleted is None else self_deleted
        view = copy_view(event, mine, email, removed)
        if email not in (overrides or {}) and _same(view, mine.data):
            continue
        mine.data = {**view, "updated": mine.data.get("updated", view["updated"])}
        ctx.commit(other, mine)
        event.copies.add(email)


def _same(view: dict[str, Any], data: dict[str, Any]) -> bool:
    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k not in ("etag", "updated")}

    return strip(view) == strip(data)


def attendee_modify(
    ctx: Ctx, store: CalendarStore, ref: Ref, body: dict[str, Any], *, replace: bool
) -> dict:
    """An attendee's patch/update of their copy: own response and personal fields only."""
    current = ref.data
    is_instance = "recurringEventId" in current
    content = replaced(body) if replace else patched(current, body)
    if "status" not in content:
        content["status"] = current.get("status")
    new = normalize(content, ref.organizer, store.email, instance=is_instance)
    check_attendee_edit(current, new, store.email)
    entry = own_entry(new, store.email)
    assert entry is not None
    return respond(ctx, store, ref, entry["responseStatus"], personal=personal_of(new))


def respond(
    ctx: Ctx,
    store: CalendarStore,
    ref: Ref,
    response: str,
    *,
    personal: dict[str, Any] | None = None,
    self_deleted: bool | None = None,
) -> dict:
    """Set the attendee's response on the organizer's event, then refresh every copy."""
    me, event_id = store.email, ref.data["id"]
    if self_deleted is None and response != "declined":
        self_deleted = False
    organizer_store = ctx.store_of(ref.organizer)
    organizer_ref = find(organizer_store, event_id) if organizer_store is not None else None
    if organizer_store is None or organizer_ref is None:
        raise not_found()
    entry = own_entry(organizer_ref.data, me)
    changed = entry is not None and entry["responseStatus"] != response
    original = materialize(organizer_store, organizer_ref)
    if changed or organizer_ref.stored is None:  # answering one instance makes an exception
        entry = own_entry(original.data, me)
        if entry is not None:
            entry["responseStatus"] = response
        ctx.commit(organizer_store, original)
    sync_copies(ctx, organizer_store, original, {me: (personal, self_deleted)})
    mine = store.events.get(event_id)
    return mine.data if mine is not None else ref.data


# -- would-be emails -----------------------------------------------------------------


def record_mail(
    ctx: Ctx, event: StoredEvent, action: str, send_updates: str, before: set[str]
) -> None:
    """Keep the invitation/update/cancellation emails Google would have sent."""
    if send_updates not in ("all", "externalOnly"):
        return
    now = invited(event.data)
    for email in sorted(now | before):
        if send_updates == "externalOnly" and ctx.sandbox.account(email) is not None:
            continue
        if action == "cancellation" or email not in now:
            kind = "cancellation"
        else:
            kind = "invitation" if email not in before else action
        ctx.state.outbox.append(
            {
                "from": event.organizer,
                "to": email,
                "eventId": event.id,
                "action": kind,
                "summary": event.data.get("summary", ""),
                "sendUpdates": send_updates,
                "at": rfc3339(ctx.now),
            }
        )
