"""Taking an activities run back: ``plan_undo(entries, now) -> UndoPlan``, pure.

The activities half of ``core.undo``: a run's journal turned back into the sync's own
actions, run by the activities executor in a run of its own (trigger ``undo``), whose
journal can be undone in turn:

    entry                           undo
    updatedInCrm / updatedInGoogle  the fields' before-values (ReconcileEvent; Google's
                                    side only on an event U organizes)
    pushed                          the event is deleted (DeleteEvent; the link goes)
    imported                        the activity the import created is deleted in the
                                    CRM (RemoveImport; the link goes; the sync leaves
                                    the event alone since). An import over an earlier
                                    one gives the CRM its values back.
    canceled                        the event and the activity are restored as they
                                    were (ReconcileEvent: the event confirmed again,
                                    the link no longer a tombstone)
    deletedInGoogle                 the event is restored (ReconcileEvent on Google's
                                    side; the link made again)
    removedFromCrm (an undo's)      the activity comes back (ImportEvent)
    linked                          nothing more: a link is the sync's bookkeeping

Google keeps a deleted event's id and, on its organizer's calendar, its details; a
patch restores it (GOOGLE_API.md 4.4). Only the organizer can: an attendee's copy is a
conflict, as is an event Google purged since.

As for contacts, an item saved on either side after the run ended, or holding an edit
the sync has not carried over, is never overwritten: it is a ``Conflict``, listed and
left alone. An item that holds the run's before-values already needs nothing. The
sync's rules still hold afterwards: an activity still in the calendar is pushed again
by the next sync, an event restored for an activity still deleted or hidden deleted
again (``UndoPlan.redone``). An event whose import was taken back stays unlinked: the
sync never imports it again (``core.activities_plan``), so the undo holds.

A run made with another Google account than the one connected now is refused
(``core.contacts_undo.undoable``): event ids are the account's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core import activity_mapping as am
from core.activities_plan import (
    CalEvent,
    CrmActivity,
    DeleteEvent,
    EventLink,
    ImportEvent,
    ReconcileEvent,
)
from core.undo import Conflict, Item, UndoPlan, changed_since, items

# entries whose fields go back one by one, and the side that holds their after-values
FIELDS_OF = {"updatedInCrm": "crm", "updatedInGoogle": "google", "imported": "crm"}
# entries that made or ended a pair: taken back whole
WHOLE = ("pushed", "canceled", "deletedInGoogle", "removedFromCrm")


@dataclass(frozen=True, kw_only=True, slots=True)
class RemoveImport:
    """The undo of an import: the activity it created is deleted in the CRM (a soft
    delete, ``deletedAt``), and the link goes; the event stays as it is."""

    activity_id: str
    event_id: str


@dataclass(frozen=True)
class Current:
    """The items' records as they are now."""

    user_id: str
    crm: Mapping[str, CrmActivity]  # by activity id (deleted ones too; absent: purged)
    google: Mapping[str, CalEvent]  # by event id (cancelled ones too; absent: purged)
    links: Mapping[str, EventLink]  # by activity id
    since: datetime | None = None  # when the run ended: a record saved after it changed


@dataclass
class _Found:
    actions: list[Any]
    conflict: str = ""
    redone: bool = False  # the next sync does what the run did again


def plan_undo(entries: Iterable[Mapping[str, Any]], now: Current) -> UndoPlan:
    actions: list[Any] = []
    conflicts: list[Conflict] = []
    unchanged: list[str] = []
    redone: list[str] = []
    for item in items(entries, FIELDS_OF, am.FIELDS):
        found = _one(item, now)
        if found.conflict:
            conflicts.append(Conflict(crm_id=item.crm_id, google_id=item.google_id,
                                      name=item.name, reason=found.conflict))  # fmt: skip
            continue
        actions += found.actions
        if not found.actions:
            unchanged.append(item.crm_id)
        elif found.redone:
            redone.append(item.crm_id)
    return UndoPlan(actions, conflicts, unchanged, redone)


def _one(item: Item, now: Current) -> _Found:
    """One item's undo: by what the run did to it."""
    whole = [c for c in WHOLE if c in item.changes]
    if "imported" in item.changes and not item.before:
        whole.append("imported")
    if item.problems:
        return _Found([], "; ".join(dict.fromkeys(item.problems)))
    if len(whole) > 1 or (whole and item.before):
        return _Found([], "the run changed it more than once; take it back by hand")
    if not whole:
        return _fields_back(item, now) if item.before else _Found([])
    return ROWS[whole[0]](item, now)


# --- what is there now -----------------------------------------------------------------


def _records(item: Item, now: Current) -> tuple[CrmActivity | None, CalEvent | None,
                                                EventLink | None]:  # fmt: skip
    return now.crm.get(item.crm_id), now.google.get(item.google_id), now.links.get(item.crm_id)


def _live(activity: CrmActivity | None) -> bool:
    return activity is not None and not activity.gone


def _saved_since(now: Current, activity: CrmActivity | None, event: CalEvent | None) -> str:
    """Where the item was saved after the run ended ("": nowhere, or unknown)."""
    if now.since is None:
        return ""
    if activity is not None and activity.modified_at > now.since:
        return "saved again in the CRM since the run"
    if event is not None and event.updated_at is not None and event.updated_at > now.since:
        return "saved again in Google since the run"
    return ""


def _linked_here(item: Item, link: EventLink | None, dead_too: bool = False) -> str:
    """Why the item's pair is not the run's any more ("": it is). ``dead_too``: a
    tombstone is the run's (it put Google's cancellation back)."""
    if link is None or (link.dead and not dead_too):
        return "no longer synced with its Google event"
    if link.event_id != item.google_id:
        return f"linked to another Google event ({link.event_id}) since"
    return ""


def _pending(link: EventLink, *, event: CalEvent | None, activity: CrmActivity | None) -> str:
    """An edit the sync has not carried over yet: never overwritten."""
    if event is not None and event.fields != link.fields:
        return "changed in Google since its last sync"
    if activity is not None and not activity.gone and activity.fields != link.fields:
        return "changed in the CRM since its last sync"
    return ""


# --- the rows ----------------------------------------------------------------------------


def _unpush(item: Item, now: Current) -> _Found:
    """The run put the activity in Google: its event is deleted."""
    activity, event, link = _records(item, now)
    if link is None and (event is None or event.cancelled):
        return _Found([])  # no event any more, and no pair: as before the run
    problem = _linked_here(item, link)
    if not problem and (event is None or event.cancelled):
        problem = "the event no longer exists in Google"
    if problem or link is None or event is None:
        return _Found([], problem)
    problem = _pending(link, event=event, activity=activity) or _saved_since(now, activity, event)
    if problem:
        return _Found([], problem)
    redone = activity is not None and activity.in_scope and activity.owned
    return _Found([DeleteEvent(activity_id=item.crm_id, event_id=event.id, etag=event.etag)],
                  redone=redone)  # fmt: skip


def _unimport(item: Item, now: Current) -> _Found:
    """The run created the activity from an event: the activity is deleted."""
    activity, event, link = _records(item, now)
    if link is None and not _live(activity):
        return _Found([])  # deleted already (an undo done before)
    if not _live(activity):
        return _Found([], "deleted in the CRM since the run")
    problem = _linked_here(item, link)
    if problem or link is None:
        return _Found([], problem)
    problem = _pending(link, event=event, activity=activity) or _saved_since(now, activity, event)
    if problem:
        return _Found([], problem)
    # never redone: the sync leaves an event alone whose import was deleted in the CRM
    return _Found([RemoveImport(activity_id=item.crm_id, event_id=item.google_id)])


def _restore(item: Item, now: Current) -> _Found:
    """The run cancelled the activity (Google had cancelled the event), or deleted the
    event (the activity had left the calendar): the event comes back as it was, the
    activity too if the run cancelled it."""
    canceled = "canceled" in item.changes
    before = item.whole.get("canceled" if canceled else "deletedInGoogle") or {}
    activity, event, link = _records(item, now)
    if not before:
        return _Found([], "the run kept no values for it")
    if event is None:
        return _Found([], "the event no longer exists in Google")
    target = am.normalize(before)
    if not event.cancelled:
        back = link is not None and link.event_id == event.id and event.fields == target
        return _Found([], "" if back else "restored in Google since the run")
    if not _organizes(event, link, canceled):
        return _Found([], "only its organizer can restore the event in Google")
    problem = _restore_link(item, link, activity, canceled) or _saved_since(now, activity, event)
    if problem:
        return _Found([], problem)
    restore = ReconcileEvent(activity_id=item.crm_id, event_id=event.id, etag=event.etag,
                             fields=target, write_google=True,
                             write_crm=canceled)  # fmt: skip
    return _Found([restore], redone=not canceled and not _live(activity))


def _organizes(event: CalEvent, link: EventLink | None, canceled: bool) -> bool:
    """U organizes the event. A cancelled instance of a series says no more than its id
    (no organizer): the link says whose calendar held it; and the run deleted an event
    only as its organizer (``DeleteEvent``)."""
    if event.organizer_self or not canceled:
        return True
    return link is not None and not link.read_only and not event.organizer_email


def _restore_link(item: Item, link: EventLink | None, activity: CrmActivity | None,
                  canceled: bool) -> str:  # fmt: skip
    """Why the pair cannot be restored: a cancellation's link must still be the run's
    tombstone over a cancelled activity; a deleted event must have no link since."""
    if not canceled:
        return "" if link is None else "linked again since the run"
    if link is None or link.event_id != item.google_id or not link.tombstone:
        return "no longer synced with its Google event"
    if activity is None or activity.gone or not activity.fields["canceled"]:
        return "no longer cancelled in the CRM"
    return ""


def _reimport(item: Item, now: Current) -> _Found:
    """An undo deleted the imported activity: it comes back, linked to its event."""
    activity, event, link = _records(item, now)
    before = item.whole.get("removedFromCrm") or {}
    if _live(activity):
        back = link is not None and link.event_id == item.google_id
        return _Found([], "" if back else "restored in the CRM since the run")
    problem = ""
    if activity is None or not before or item.crm_id != am.import_id(now.user_id, item.google_id):
        problem = "no longer exists in the CRM"
    elif event is None or event.cancelled:
        problem = "the event no longer exists in Google"
    elif link is not None:
        problem = "linked again since the run"
    problem = problem or _saved_since(now, activity, event)
    if problem or event is None:
        return _Found([], problem)
    return _Found([ImportEvent(event_id=event.id, etag=event.etag, ical_uid=event.ical_uid,
                               fields=am.normalize(before))])  # fmt: skip


def _fields_back(item: Item, now: Current) -> _Found:
    """The fields the run set go back, on the sides that held them (Google's only on an
    event U organizes; an import over an earlier one: the CRM's alone)."""
    activity, event, link = _records(item, now)
    problem = _linked_here(item, link, dead_too=_cancelled_both(item, True))
    if problem or link is None:
        return _Found([], problem)
    if activity is None or activity.gone:
        return _without_activity(item, now)
    # Google's side is written back only on an event U organizes
    mine = event if event is not None and event.organizer_self and not item.crm_only else None
    sides = [("the CRM", activity.fields)] + ([("Google", mine.fields)] if mine else [])
    if all(all(held.get(k) == v for k, v in item.before.items()) for _, held in sides):
        return _Found([])  # back already (an undo done before)
    problem = _fields_changed(item, sides, link) or _saved_since(now, activity, mine)
    if problem:
        return _Found([], problem)
    return _restore_fields(item, activity, event, link, mine)


def _restore_fields(item: Item, activity: CrmActivity, event: CalEvent | None,
                    link: EventLink, mine: CalEvent | None) -> _Found:  # fmt: skip
    target = am.normalize({**activity.fields, **item.before})
    write_google = mine is not None and target != mine.fields
    etag = event.etag if event is not None else (link.etag or "")
    restore = ReconcileEvent(activity_id=item.crm_id, event_id=item.google_id, etag=etag,
                             fields=target, write_google=write_google,
                             write_crm=target != activity.fields,
                             tombstone=_cancelled_both(item, False))  # fmt: skip
    redone = event is not None and not write_google and event.fields != target
    return _Found([restore], redone=redone)


def _without_activity(item: Item, now: Current) -> _Found:
    """The activity is deleted or hidden: an event an undo restored for it goes again
    (the undo of that undo); any other item cannot go back."""
    if _restored_deleted(item):
        return _unpush(item, now)
    return _Found([], "no longer exists in the CRM")


def _restored_deleted(item: Item) -> bool:
    """The run (an undo) restored, in Google alone, an event deleted because its
    activity had left the calendar."""
    google = item.after.get("google") or {}
    return (item.before.get("canceled") is True and "crm" not in item.after
            and google.get("canceled") is False)  # fmt: skip


def _cancelled_both(item: Item, cancelled: bool) -> bool:
    """The run set ``canceled`` to ``cancelled`` on both sides, from the other value:
    only an undo does that. Setting it False, an undo restored a cancellation made in
    Google (taken back, it is Google's cancellation again: a tombstone); setting it
    True, it put one back (the tombstone is the run's own)."""
    sides = [item.after.get(side, {}) for side in ("crm", "google")]
    return item.before.get("canceled") is (not cancelled) and all(
        "canceled" in side and side["canceled"] is cancelled for side in sides
    )


def _fields_changed(item: Item, sides: list[tuple[str, Any]], link: EventLink) -> str:
    """A side whose fields changed since the run, or since their last sync ("": none).
    A tombstone's pair was last synced as cancelled."""
    after = {k: v for side in item.after.values() for k, v in side.items()}
    synced = {**link.fields, "canceled": True} if link.dead else link.fields
    for where, held in sides:
        problem = changed_since(where, held, after, item.before, synced, am.FIELDS)
        if problem:
            return problem
    return ""


ROWS = {"pushed": _unpush, "imported": _unimport, "canceled": _restore,
        "deletedInGoogle": _restore, "removedFromCrm": _reimport}  # fmt: skip
