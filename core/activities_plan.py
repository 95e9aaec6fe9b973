"""The activities planner: ``plan(snapshot, policy) -> list[Action]``, pure.

Same shape as the contacts planner (``core.contacts_plan``): a pair changed only when
its fingerprint differs from the link's (fields equal to the link's are not hashed), a
three-way merge (``core.merge``) when both
sides changed. What differs is ownership: an event has one organizer, and only the
organizer's calendar can be written (DESIGN.md, "Sync semantics / Activities").

    guard: a complete read of one side that holds none of the live links' items
           (Google: none listed, some confirmed gone; CRM: none of the activities)
                                           -> SideEmpty, unless forced
    linked pair
      link tombstoned (Google cancelled)   -> nothing, ever (never re-created); a later
                                              CRM edit NotPropagated (once per version)
      event cancelled, or gone, in Google  -> CancelActivity (+ tombstone); DropEventLink
                                              when the activity is gone as well, or when
                                              only U's copy of a connected organizer's
                                              meeting went away (U was removed)
        ... but the pair was synced as
        cancelled, or the CRM cancelled it -> not Google's cancellation (the echo of
                                              ours): compared as any pair, so planning
                                              it again in the CRM restores the event
      activity deleted / not in calendar   -> DeleteEvent if U owns it, else DropLink
      neither side changed                 -> nothing (ReconcileEvent "etag" if it moved)
      changed, U owns the event            -> ReconcileEvent (merge; write where differs)
      changed, U holds a read-only copy    -> Google's changes to the CRM only when no
                                              connected organizer syncs it; CRM edits
                                              NotPropagated (once per version)
    unlinked activity in scope, U owns it  -> InsertEvent (id derived from the activity),
                                              but not U's import of another organizer's
                                              meeting Google lists cancelled for U
    unlinked event in the window
      carries our activity id              -> ReconcileEvent (a retried insert, or the
                                              copy of an activity another user pushed)
      its iCalUID is linked by any user    -> ReconcileEvent (one meeting, one activity)
      an earlier import of it exists       -> ReconcileEvent (linked again, never
                                              imported over the CRM's edits)
      ... (any of these three) whose
        activity is deleted or hidden in
        the CRM                            -> nothing: linking it would delete the
                                              event (the user's, or an undone
                                              import's); but the event our own insert
                                              made is linked, and goes with it
      U organizes it                       -> ImportEvent
      U attends; organizer is a connected
        CRM user                           -> nothing (the organizer's sync owns it)
      U attends; organizer unknown         -> ImportEvent with U as organizer
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from core import activity_mapping as am
from core import pairs
from core.activity_mapping import ActivityFields, fingerprint
from core.merge import Policy
from core.pairs import QUIET, Side

GUARD_MIN_LINKS = pairs.GUARD_MIN_LINKS


@dataclass(frozen=True)
class CrmActivity:
    id: str
    fields: ActivityFields
    in_scope: bool  # showInCalendar, start on or after syncFrom, not deleted
    gone: bool  # deleted, or showInCalendar cleared (out of the window is not gone)
    owned: bool  # U organizes it, or U takes part and its organizer has no connection
    modified_at: datetime
    organizer_id: str = ""  # the CRM user who organizes it

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


@dataclass(frozen=True, slots=True)
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
    # the event's attendees the CRM does not know, as last seen (kept on every patch);
    # None for a link written before they were kept
    others: tuple[dict[str, Any], ...] | None = None

    @property
    def dead(self) -> bool:
        """Tombstoned by a cancellation made in Google. A tombstone over fields synced
        as cancelled was the echo of our own cancellation: not dead."""
        return self.tombstone and not self.fields.get("canceled")


@dataclass(frozen=True)
class ActivitySnapshot:
    crm: Mapping[str, CrmActivity]
    google: Mapping[str, CalEvent]  # by event id
    links: Mapping[str, EventLink]  # by activity id
    crm_complete: bool = False
    google_complete: bool = False
    shared: Mapping[str, str] = field(default_factory=dict)  # iCalUID -> activity id (any user)
    connected: frozenset[str] = frozenset()  # emails of CRM users with a Google connection
    # linked events Google no longer has, though not listed as cancelled: instances of a
    # deleted series, events a get no longer finds
    gone: frozenset[str] = frozenset()
    # the Google account is the one the links were made with (core.runs.Report)
    account_confirmed: bool = False
    # unlinked events an earlier run imported: event id -> the activity an import of it
    # would write, which exists (after an account switch archived the links, say); ""
    # when that activity was deleted or taken out of the calendar since (an undo of
    # the import, or the user's): the event is not imported again
    imported: Mapping[str, str] = field(default_factory=dict)


# --- actions ---------------------------------------------------------------------------


class Why(StrEnum):
    """Why a pair is reconciled: what the run's journal and report say of it."""

    CHANGED = "changed"  # a side changed since the last sync
    ETAG = "etag"  # only the event's etag moved: the link learns it
    OURS = "ours"  # first linked: the event carries our activity's id
    SHARED = "shared"  # first linked: another user linked the same meeting (iCalUID)
    IMPORTED = "imported"  # first linked: an earlier import of the event exists
    COPY = "copy"  # a read-only calendar copy's change, taken into the CRM


@dataclass(frozen=True, kw_only=True, slots=True)
class InsertEvent:
    activity_id: str
    fields: ActivityFields


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportEvent:
    event_id: str
    etag: str
    ical_uid: str
    fields: ActivityFields


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconcileEvent:
    activity_id: str
    event_id: str
    etag: str
    fields: ActivityFields
    write_google: bool
    write_crm: bool
    conflicts: tuple[str, ...] = ()
    reason: Why = Why.CHANGED
    # the pair is left as Google's cancellation leaves it (an undo putting one back):
    # the link a tombstone over the fields as they were before it
    tombstone: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelActivity:
    activity_id: str
    event_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class DeleteEvent:
    activity_id: str
    event_id: str
    etag: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class DropEventLink:
    activity_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class NotPropagated:
    """A CRM edit that cannot reach Google: only a read-only calendar copy could carry
    it, or Google cancelled the event (never re-created). Recorded once, not retried."""

    activity_id: str
    event_id: str
    fingerprint: str
    cancelled: bool = False  # Google cancelled the event (the link is a tombstone)


# --- planning --------------------------------------------------------------------------


def plan(snap: ActivitySnapshot, policy: Policy = Policy.FIELD_MOST_RECENT,
         force: bool = False) -> list:  # fmt: skip
    """Every action one run should take, in a deterministic order: the linked pairs,
    then the unlinked events in the window, then the unlinked activities U owns."""
    _guard(snap, force)
    actions = _linked_pairs(snap, policy)
    claimed = set(snap.links)
    actions += _unlinked_events(snap, claimed)
    to_insert = [i for i, a in snap.crm.items()
                 if i not in claimed and a.in_scope and a.owned and not _left(snap, a)]  # fmt: skip
    return actions + [
        InsertEvent(activity_id=i, fields=snap.crm[i].fields) for i in sorted(to_insert)
    ]


def _left(snap: ActivitySnapshot, activity: CrmActivity) -> bool:
    """The activity is U's import of another organizer's meeting, which Google now
    lists cancelled in U's calendar (U was removed, or it was called off): it is never
    created again as U's own event."""
    prefix = am.import_id(activity.organizer_id, "")
    if not activity.id.startswith(prefix):
        return False
    event = snap.google.get(activity.id.removeprefix(prefix))
    return event is not None and event.cancelled and not event.organizer_self


def _linked_pairs(snap: ActivitySnapshot, policy: Policy) -> list:
    """The actions of the linked pairs, in activity id order: most have nothing to do,
    so only the pairs that do are sorted."""
    planned = []
    for activity_id, link in snap.links.items():
        activity, event = snap.crm.get(link.activity_id), snap.google.get(link.event_id)
        if not _quiet(snap, link, activity, event):
            found = _linked(snap, link, policy)
            if found:
                planned.append((activity_id, found))
    return [a for _, found in sorted(planned, key=_first) for a in found]


def _unlinked_events(snap: ActivitySnapshot, claimed: set[str]) -> list:
    """The events no link holds, in the window and not cancelled: linked to their
    activity, or imported (``_unlinked_event``). ``claimed`` gains what they take."""
    linked = {link.event_id for link in snap.links.values()}
    actions = []
    for event_id in sorted(snap.google):
        event = snap.google[event_id]
        if event_id in linked or event.cancelled or not event.in_window:
            continue
        action = _unlinked_event(snap, event, claimed)
        if isinstance(action, ReconcileEvent):
            claimed.add(action.activity_id)
        if action is not None:
            actions.append(action)
    return actions


def _first(item: tuple[str, Any]) -> str:
    return item[0]


def _quiet(snap: ActivitySnapshot, link: EventLink, activity: CrmActivity | None,
           event: CalEvent | None) -> bool:  # fmt: skip
    """A quick answer for the common linked pair: neither side gone nor cancelled, both
    with the link's fields (or not read) and the link's etag, so ``_linked`` would plan
    nothing. False means "ask ``_linked``", never that something changed."""
    if link.tombstone:
        return False
    if activity is None:
        if snap.crm_complete:
            return False
    elif activity.gone or activity.fields != link.fields:
        return False
    if event is None:
        return link.event_id not in snap.gone
    return not event.cancelled and event.etag == link.etag and event.fields == link.fields


def _guard(snap: ActivitySnapshot, force: bool) -> None:
    """One side suddenly holding none of the linked items means a broken side (another
    Google account, a wiped CRM), not a user's intent. While the account cannot be
    confirmed as the links' own, a complete read that lacks them all stops the run
    whatever their number; once it is, it takes ``GUARD_MIN_LINKS`` of them. Google's
    side counts as lacking them when it lists none and the gets confirm some gone;
    explicit cancellations are listed, so they never trip it (nor does anything on an
    incremental run)."""
    live = [link for link in snap.links.values() if not link.dead]
    if not pairs.guarded(len(live), force, snap.account_confirmed):
        return
    # Google's side lacks them when it lists none and the gets confirmed some gone
    lacks = (snap.google_complete and not any(link.event_id in snap.google for link in live)
             and any(link.event_id in snap.gone for link in live))  # fmt: skip
    pairs.refuse_empty("Google", len(live), "activities", complete=snap.google_complete,
                       holds_any=not lacks)  # fmt: skip
    held = snap.crm_complete and any(link.activity_id in snap.crm for link in live)
    pairs.refuse_empty("CRM", len(live), "activities", complete=snap.crm_complete,
                       holds_any=held)  # fmt: skip


def _sides(snap: ActivitySnapshot, link: EventLink) -> tuple[Side, Side]:
    """Each side of a linked pair against the link (``core.pairs.Side``). The CRM side
    is GONE when deleted or out of the calendar (or absent from a complete read);
    Google's when Google cancelled the event (``_cancelled_by_google``). An event
    cancelled as the echo of ours is compared as any event."""
    activity = snap.crm.get(link.activity_id)
    event = snap.google.get(link.event_id)
    crm_gone = (activity is None and snap.crm_complete) or (activity is not None and activity.gone)
    crm = pairs.side(read=activity is not None, gone=crm_gone,
                     fields=activity.fields if activity else None, synced=link.fields,
                     synced_fp=link.fingerprint)  # fmt: skip
    google_gone = _cancelled(snap, link) and _cancelled_by_google(link, activity)
    google = pairs.side(read=event is not None, gone=google_gone,
                        fields=_google_side(link, event) if event else None,
                        synced=link.fields, synced_fp=link.fingerprint)  # fmt: skip
    return crm, google


def _cancelled(snap: ActivitySnapshot, link: EventLink) -> bool:
    """Google lists the event cancelled, or no longer has it (``snap.gone``)."""
    event = snap.google.get(link.event_id)
    return event.cancelled if event is not None else link.event_id in snap.gone


def _linked(snap: ActivitySnapshot, link: EventLink, policy: Policy) -> list:
    """A linked pair: the rows of the module's table, by the state of each side."""
    if link.dead:
        return _edited_after_cancel(link, snap.crm.get(link.activity_id))
    activity = snap.crm.get(link.activity_id)
    event = snap.google.get(link.event_id)
    match _sides(snap, link):
        case Side.GONE, Side.GONE:  # e.g. our own delete, seen again after a crash
            return [DropEventLink(activity_id=link.activity_id)]
        case _, Side.GONE:
            return [_cancel(snap, link, event)]
        case Side.GONE, _:
            return [_remove(snap, link, activity, event)]
        case _, Side.ABSENT if _cancelled(snap, link):  # gone, synced as cancelled
            return _recreate(link, activity)
        case _, Side.ABSENT if snap.google_complete:
            return []  # outside the listed window: nothing to say about it
        case crm, google:
            return _changed(snap, link, activity, event, policy, crm, google)


def _cancel(snap: ActivitySnapshot, link: EventLink, event: CalEvent | None) -> Any:
    """Google cancelled the event: the activity is cancelled, unless this is only U's
    copy of a connected organizer's meeting that went away (U was removed, or
    declined): the meeting lives on with its organizer, whose sync carries any real
    cancellation."""
    organizer = (event.organizer_email if event else "") or link.organizer_email
    copy = link.read_only or (event is not None and bool(event.organizer_email)
                              and not event.organizer_self)  # fmt: skip
    if copy and organizer in snap.connected:
        return DropEventLink(activity_id=link.activity_id)
    return CancelActivity(activity_id=link.activity_id, event_id=link.event_id)


def _remove(snap: ActivitySnapshot, link: EventLink, activity: CrmActivity | None,
            event: CalEvent | None) -> Any:  # fmt: skip
    """Deleted in the CRM, or taken out of the calendar: the event goes from the
    organizer's calendar when U owns it; otherwise only the link goes."""
    # unread: the link says whose calendar held it (an import of an attendee's copy is
    # the user's activity, never the user's event to delete)
    owner = event.organizer_self if event else not link.read_only
    if owner and not _cancelled(snap, link):
        etag = event.etag if event else link.etag
        return DeleteEvent(activity_id=link.activity_id, event_id=link.event_id, etag=etag)
    return DropEventLink(activity_id=link.activity_id)


def _edited_after_cancel(link: EventLink, activity: CrmActivity | None) -> list:
    """Google cancelled the event, so it never comes back: a later CRM edit (planning
    it again included) is said once per version, not dropped in silence."""
    if activity is None or activity.gone or link.not_propagated == activity.fp:
        return []
    if activity.fields == {**link.fields, "canceled": True}:
        return []  # only the cancellation we applied
    return [NotPropagated(activity_id=link.activity_id, event_id=link.event_id,
                          fingerprint=activity.fp, cancelled=True)]  # fmt: skip


def _cancelled_by_google(link: EventLink, activity: CrmActivity | None) -> bool:
    """A cancelled event is Google's own cancellation unless the pair was last synced
    as cancelled (our cancellation, seen again) or the CRM cancelled it as well."""
    return not link.fields.get("canceled") and not (activity and activity.fields["canceled"])


def _recreate(link: EventLink, activity: CrmActivity | None) -> list:
    """Synced as cancelled, and Google no longer has the event: planned again in the
    CRM, the activity gets a new event; otherwise both sides agree it is over, and the
    link goes (planning it again later inserts a new event)."""
    wanted = activity is not None and not activity.fields["canceled"] and activity.in_scope
    if wanted and activity.owned:
        return [InsertEvent(activity_id=link.activity_id, fields=activity.fields)]
    return [DropEventLink(activity_id=link.activity_id)]


def _google_side(link: EventLink, event: CalEvent | None) -> ActivityFields:
    """Google's fields for the pair: the event's, or, for a cancelled event that kept
    only its id and status, what was synced with cancelled set."""
    if event is None:
        return link.fields
    if event.cancelled and not event.fields["start"]:
        return {**link.fields, "canceled": True}
    return event.fields


def _changed(snap: ActivitySnapshot, link: EventLink, activity: CrmActivity | None,
             event: CalEvent | None, policy: Policy, crm: Side, google: Side) -> list:  # fmt: skip
    """A pair in scope on both sides: nothing when neither side changed (a refresh of
    the etag when it moved); on U's own event, the three-way merge, written where it
    differs; on a read-only copy, ``_read_only``."""
    crm_fields = activity.fields if activity else link.fields
    google_fields = _google_side(link, event)
    crm_changed, google_changed = crm is Side.CHANGED, google is Side.CHANGED
    etag = event.etag if event else (link.etag or "")
    if crm in QUIET and google in QUIET:
        if event is not None and event.etag != link.etag:
            return [_keep(link.activity_id, link.event_id, etag, link.fields, Why.ETAG)]
        return []
    known_organizer = event is not None and bool(event.organizer_email)
    writable = event.organizer_self if known_organizer else not link.read_only
    if not writable:
        return _read_only(snap, link, activity, event, google_fields, crm_changed, google_changed)
    merged = pairs.reconcile(link.fields, crm_fields, google_fields,
                             activity.modified_at if activity else None,
                             event.updated_at if event else None, policy)  # fmt: skip
    return [ReconcileEvent(
        activity_id=link.activity_id, event_id=link.event_id, etag=etag, fields=merged.fields,
        write_google=pairs.differ(merged.fields, google_fields),
        write_crm=pairs.differ(merged.fields, crm_fields),
        conflicts=merged.conflicts,
    )]  # fmt: skip


def _read_only(
    snap: ActivitySnapshot,
    link: EventLink,
    activity: CrmActivity | None,
    event: CalEvent | None,
    google_fields: ActivityFields,
    crm_changed: bool,
    google_changed: bool,
) -> list:
    """U holds an attendee's copy. A connected organizer's own sync carries the edits
    both ways; otherwise Google's changes come in here, and CRM edits cannot go out."""
    organizer = (event.organizer_email if event is not None else "") or link.organizer_email
    organizer_syncs = organizer in snap.connected
    actions: list[Any] = []
    if google_changed and event is not None:
        write_crm = (
            not organizer_syncs
            and activity is not None
            and pairs.differ(activity.fields, google_fields)
        )
        actions.append(_keep(link.activity_id, link.event_id, event.etag, google_fields, Why.COPY,
                             write_crm=write_crm))  # fmt: skip
    elif (
        crm_changed
        and activity is not None
        and not organizer_syncs
        and link.not_propagated != activity.fp
    ):
        actions.append(NotPropagated(activity_id=link.activity_id, event_id=link.event_id,
                                     fingerprint=activity.fp))  # fmt: skip
    return actions


def _unlinked_event(snap: ActivitySnapshot, event: CalEvent, claimed: set[str]) -> Any:
    ours = event.activity_id if event.activity_id in snap.crm else None
    shared = snap.shared.get(event.ical_uid)
    imported = snap.imported.get(event.id)
    for activity_id, reason in ((ours, Why.OURS), (shared, Why.SHARED), (imported, Why.IMPORTED)):
        if activity_id and activity_id not in claimed:
            activity = snap.crm.get(activity_id)
            if activity is not None and activity.gone and not _our_insert(event, activity):
                return None  # deleted or hidden in the CRM: linking it would delete it
            return _first_link(activity_id, activity, event, reason)
    if imported == "":
        return None  # its import was deleted or hidden in the CRM: not imported again
    if event.organizer_self or event.organizer_email not in snap.connected:
        return ImportEvent(
            event_id=event.id, etag=event.etag, ical_uid=event.ical_uid, fields=event.fields
        )
    return None  # the organizer is a connected CRM user: their sync imports it


def _our_insert(event: CalEvent, activity: CrmActivity) -> bool:
    """The event is the one our insert made for the activity on U's calendar (its id
    derives from the activity's; an attendee's copy shares that id, but not U's
    organizing), not restored in Google since the activity went (a later word of the
    user's): a mirror of the activity, which goes where the activity goes. Any other
    event is never deleted for an activity's sake unless a link says they are one."""
    later = event.updated_at is not None and event.updated_at > activity.modified_at
    return event.organizer_self and event.id == am.event_id(activity.id) and not later


def _first_link(activity_id: str, activity: CrmActivity | None, event: CalEvent,
                reason: Why) -> ReconcileEvent:  # fmt: skip
    """Link an event to an activity that has no last-synced state with it. On the
    organizer's calendar the newer side wins each difference; a copy is only linked."""
    if activity is None or not event.organizer_self:
        return _keep(activity_id, event.id, event.etag, event.fields, reason)
    crm_newer = pairs.newest_is_crm(activity.modified_at, event.updated_at)
    fields = pairs.first_link(activity.fields, event.fields, crm_newer, fill=False)
    return ReconcileEvent(
        activity_id=activity_id, event_id=event.id, etag=event.etag, fields=fields,
        write_google=pairs.differ(fields, event.fields),
        write_crm=pairs.differ(fields, activity.fields),
        reason=reason,
    )  # fmt: skip


def _keep(activity_id: str, event_id: str, etag: str, fields: ActivityFields, reason: Why,
          write_crm: bool = False) -> ReconcileEvent:  # fmt: skip
    """Save the pair's link at ``etag`` with ``fields``; nothing is written to Google
    (the CRM takes ``fields`` when ``write_crm``)."""
    return ReconcileEvent(activity_id=activity_id, event_id=event_id, etag=etag, fields=fields,
                          write_google=False, write_crm=write_crm, reason=reason)  # fmt: skip
