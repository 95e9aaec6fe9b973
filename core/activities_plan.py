"""The activities planner: ``plan(snapshot, policy) -> list[Action]``, pure.

Same shape as the contacts planner (``core.contacts_plan``): a pair changed only when
its fingerprint differs from the link's, a three-way merge (``core.merge``) when both
sides changed. What differs is ownership: an event has one organizer, and only the
organizer's calendar can be written (DESIGN.md, "Sync semantics / Activities").

    linked pair
      link tombstoned                      -> nothing, ever (never re-created)
      event cancelled in Google            -> CancelActivity (+ tombstone); DropEventLink
                                              when the activity is gone as well, or when
                                              only U's copy of a connected organizer's
                                              meeting went away (U was removed)
      activity deleted / not in calendar   -> DeleteEvent if U owns it, else DropLink
      neither side changed                 -> nothing (ReconcileEvent "etag" if it moved)
      changed, U owns the event            -> ReconcileEvent (merge; write where differs)
      changed, U holds a read-only copy    -> Google's changes to the CRM only when no
                                              connected organizer syncs it; CRM edits
                                              NotPropagated (once per version)
    unlinked activity in scope, U owns it  -> InsertEvent (id derived from the activity)
    unlinked event in the window
      carries our activity id              -> ReconcileEvent (a retried insert, or the
                                              copy of an activity another user pushed)
      its iCalUID is linked by any user    -> ReconcileEvent (one meeting, one activity)
      U organizes it                       -> ImportEvent
      U attends; organizer is a connected
        CRM user                           -> nothing (the organizer's sync owns it)
      U attends; organizer unknown         -> ImportEvent with U as organizer
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from core.activity_mapping import ActivityFields, fingerprint
from core.merge import Policy, merge


@dataclass(frozen=True)
class CrmActivity:
    id: str
    fields: ActivityFields
    in_scope: bool  # showInCalendar, start on or after syncFrom, not deleted
    gone: bool  # deleted, or showInCalendar cleared (out of the window is not gone)
    owned: bool  # U organizes it, or U takes part and its organizer has no connection
    modified_at: datetime

    @cached_property
    def fp(self) -> str:
        return fingerprint(self.fields)


@dataclass(frozen=True)
class CalEvent:
    id: str
    etag: str
    fields: ActivityFields
    ical_uid: str
    organizer_self: bool
    organizer_email: str
    cancelled: bool
    in_window: bool
    updated_at: datetime | None = None
    activity_id: str | None = None  # ours: private property, or the id we derived

    @cached_property
    def fp(self) -> str:
        return fingerprint(self.fields)


@dataclass(frozen=True)
class EventLink:
    activity_id: str
    event_id: str
    etag: str | None
    fingerprint: str
    fields: ActivityFields
    tombstone: bool = False
    not_propagated: str | None = None  # fingerprint of a CRM version we could not push
    read_only: bool = False  # U's calendar holds an attendee's copy, not the organizer's
    organizer_email: str = ""


@dataclass(frozen=True)
class ActivitySnapshot:
    crm: Mapping[str, CrmActivity]
    google: Mapping[str, CalEvent]  # by event id
    links: Mapping[str, EventLink]  # by activity id
    crm_complete: bool = False
    google_complete: bool = False
    shared: Mapping[str, str] = field(default_factory=dict)  # iCalUID -> activity id (any user)
    connected: frozenset[str] = frozenset()  # emails of CRM users with a Google connection


# --- actions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InsertEvent:
    activity_id: str
    fields: ActivityFields


@dataclass(frozen=True)
class ImportEvent:
    event_id: str
    etag: str
    ical_uid: str
    fields: ActivityFields


@dataclass(frozen=True)
class ReconcileEvent:
    activity_id: str
    event_id: str
    etag: str
    fields: ActivityFields
    write_google: bool
    write_crm: bool
    conflicts: tuple[str, ...] = ()
    reason: str = "changed"  # changed | etag | ours | shared


@dataclass(frozen=True)
class CancelActivity:
    activity_id: str
    event_id: str


@dataclass(frozen=True)
class DeleteEvent:
    activity_id: str
    event_id: str
    etag: str | None


@dataclass(frozen=True)
class DropEventLink:
    activity_id: str


@dataclass(frozen=True)
class NotPropagated:
    """A CRM edit only a read-only calendar copy could carry: recorded once, not retried."""

    activity_id: str
    event_id: str
    fingerprint: str


# --- planning --------------------------------------------------------------------------


def plan(snap: ActivitySnapshot, policy: Policy = Policy.FIELD_MOST_RECENT) -> list:
    actions: list[Any] = []
    for activity_id in sorted(snap.links):
        actions += _linked(snap, snap.links[activity_id], policy)
    linked_events = {link.event_id for link in snap.links.values()}
    claimed = set(snap.links)
    for event_id in sorted(snap.google):
        event = snap.google[event_id]
        if event_id in linked_events or event.cancelled or not event.in_window:
            continue
        action = _unlinked_event(snap, event, claimed)
        if isinstance(action, ReconcileEvent):
            claimed.add(action.activity_id)
        if action is not None:
            actions.append(action)
    for activity_id in sorted(snap.crm):
        activity = snap.crm[activity_id]
        if activity_id not in claimed and activity.in_scope and activity.owned:
            actions.append(InsertEvent(activity_id, activity.fields))
    return actions


def _linked(snap: ActivitySnapshot, link: EventLink, policy: Policy) -> list:
    if link.tombstone:
        return []
    activity = snap.crm.get(link.activity_id)
    event = snap.google.get(link.event_id)
    crm_gone = (activity is None and snap.crm_complete) or (activity is not None and activity.gone)
    if event is not None and event.cancelled:
        if crm_gone:  # gone on both sides (e.g. our own delete, seen again after a crash)
            return [DropEventLink(link.activity_id)]
        copy = link.read_only or (bool(event.organizer_email) and not event.organizer_self)
        if copy and (event.organizer_email or link.organizer_email) in snap.connected:
            # U's copy went away (U was removed, or declined); the meeting lives on with
            # its organizer, whose sync carries any real cancellation
            return [DropEventLink(link.activity_id)]
        return [CancelActivity(link.activity_id, link.event_id)]
    if event is None and snap.google_complete and not crm_gone:
        return []  # outside the listed window: nothing to say about it
    if crm_gone:
        owner = event.organizer_self if event else (activity.owned if activity else True)
        if owner:
            return [
                DeleteEvent(link.activity_id, link.event_id, event.etag if event else link.etag)
            ]
        return [DropEventLink(link.activity_id)]
    return _changed(snap, link, activity, event, policy)


def _changed(snap: ActivitySnapshot, link: EventLink, activity: CrmActivity | None,
             event: CalEvent | None, policy: Policy) -> list:  # fmt: skip
    crm_fields = activity.fields if activity else link.fields
    google_fields = event.fields if event else link.fields
    crm_changed = activity is not None and activity.fp != link.fingerprint
    google_changed = event is not None and event.fp != link.fingerprint
    etag = event.etag if event else (link.etag or "")
    if not crm_changed and not google_changed:
        if event is not None and event.etag != link.etag:
            return [ReconcileEvent(link.activity_id, link.event_id, etag, link.fields,
                                   False, False, reason="etag")]  # fmt: skip
        return []
    writable = event.organizer_self if event else not link.read_only
    if not writable:
        return _read_only(snap, link, activity, event, crm_changed, google_changed)
    merged = merge(link.fields, crm_fields, google_fields,
                   activity.modified_at if activity else None,
                   event.updated_at if event else None, policy)  # fmt: skip
    return [ReconcileEvent(
        link.activity_id, link.event_id, etag, merged.fields,
        write_google=fingerprint(merged.fields) != fingerprint(google_fields),
        write_crm=fingerprint(merged.fields) != fingerprint(crm_fields),
        conflicts=merged.conflicts,
    )]  # fmt: skip


def _read_only(
    snap: ActivitySnapshot,
    link: EventLink,
    activity: CrmActivity | None,
    event: CalEvent | None,
    crm_changed: bool,
    google_changed: bool,
) -> list:
    """U holds an attendee's copy. A connected organizer's own sync carries the edits
    both ways; otherwise Google's changes come in here, and CRM edits cannot go out."""
    organizer = event.organizer_email if event is not None else link.organizer_email
    organizer_syncs = organizer in snap.connected
    actions: list[Any] = []
    if google_changed and event is not None:
        write_crm = not organizer_syncs and activity is not None and activity.fp != event.fp
        actions.append(ReconcileEvent(link.activity_id, link.event_id, event.etag, event.fields,
                                      False, write_crm, reason="copy"))  # fmt: skip
    elif (
        crm_changed
        and activity is not None
        and not organizer_syncs
        and link.not_propagated != activity.fp
    ):
        actions.append(NotPropagated(link.activity_id, link.event_id, activity.fp))
    return actions


def _unlinked_event(snap: ActivitySnapshot, event: CalEvent, claimed: set[str]) -> Any:
    ours = event.activity_id if event.activity_id in snap.crm else None
    shared = snap.shared.get(event.ical_uid)
    for activity_id, reason in ((ours, "ours"), (shared, "shared")):
        if activity_id and activity_id not in claimed:
            return _first_link(activity_id, snap.crm.get(activity_id), event, reason)
    if event.organizer_self or event.organizer_email not in snap.connected:
        return ImportEvent(event.id, event.etag, event.ical_uid, event.fields)
    return None  # the organizer is a connected CRM user: their sync imports it


def _first_link(activity_id: str, activity: CrmActivity | None, event: CalEvent,
                reason: str) -> ReconcileEvent:  # fmt: skip
    """Link an event to an activity that has no last-synced state with it. On the
    organizer's calendar the newer side wins each difference; a copy is only linked."""
    if activity is None or not event.organizer_self:
        return ReconcileEvent(activity_id, event.id, event.etag, event.fields, False, False,
                              reason=reason)  # fmt: skip
    crm_newer = event.updated_at is None or activity.modified_at >= event.updated_at
    fields = {
        key: (activity.fields[key] if crm_newer else event.fields[key]) for key in activity.fields
    }
    return ReconcileEvent(
        activity_id, event.id, event.etag, fields,
        write_google=fingerprint(fields) != event.fp,
        write_crm=fingerprint(fields) != activity.fp,
        reason=reason,
    )  # fmt: skip
