"""The activities executor: applies planned actions through the Calendar port and the
store, as the contacts executor does: Google writes first (HTTP batches), then one
store batch with each item's CRM write and its link. A 412 is re-read, re-merged and
retried once; a 409 on insert means a retried insert and is taken as done; a 404 or
410 on delete is done; 403 forbiddenForNonOrganizer is recorded, never retried.
Each committed change is noted in the run's journal (``RunLog.note``) under the key it
is counted with; updates carry the synced fields they set, a cancellation or a deletion
every synced field as it was (enough to restore the activity or the event).

Attendees the CRM does not know stay on the event: each link keeps them as last seen
(``googleOnlyAttendees``), and a patch sends the synced attendees plus those (from the
event itself when the run holds it; read with a get for links that never kept them).
The patch is conditional on the etag they were seen with, so they cannot be stale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from core import activity_mapping as am
from core.activities_plan import (
    ActivitySnapshot,
    CalEvent,
    CancelActivity,
    DeleteEvent,
    DropEventLink,
    ImportEvent,
    InsertEvent,
    NotPropagated,
    ReconcileEvent,
    Why,
    plan,
)
from core.apply import Apply, Links, Step, link_doc
from core.errors import EtagMismatch, NotFound
from core.merge import Policy
from core.model import ACTIVITIES, LINKS, User, stamp
from core.ports import (
    MAX_BATCH_WRITES,
    CalendarPort,
    Clock,
    DocumentStore,
    EventWrite,
    Progress,
    WriteResult,
)
from core.runs import RunLog, chunked

STORE_CHUNK = MAX_BATCH_WRITES // 2


@dataclass
class Gathered:
    """What the engine read for the plan, that the executor needs too."""

    snap: ActivitySnapshot
    directory: Any  # core.activities_engine.Directory: who is who among the emails in play
    raw: dict[str, dict[str, Any]]  # the events as read, by id (the run adds those it reads)
    to_event: Callable[[dict[str, Any]], CalEvent]  # an event as read, as the planner sees it


class ActivitiesExecutor:
    # a sync deletes the event whatever its etag (the activity is gone; the deletion
    # propagates); an undo deletes only the event as it read it
    conditional_deletes = False

    def __init__(self, store: DocumentStore, calendar: CalendarPort, clock: Clock, *, user: User,
                 policy: Policy, log: RunLog, progress: Progress) -> None:  # fmt: skip
        self.store, self.calendar, self.clock = store, calendar, clock
        self.user, self.policy, self.log, self.progress = user, policy, log, progress
        self.links = Links(store, user.id, "activities")

    def run(self, actions: Sequence[Any], gathered: Gathered) -> None:
        """Apply ``actions``, planned against ``gathered``, in the table's order."""
        self.snap, self.directory = gathered.snap, gathered.directory
        self.raw, self.to_event = gathered.raw, gathered.to_event
        self.reread: dict[str, CalEvent] = {}  # events read again (a 412), replanned against
        Apply(self.steps(), reread=self._reread, retry_kinds=(ReconcileEvent, CancelActivity),
              defer=self._defer, progress=self.progress)(actions)  # fmt: skip

    def steps(self) -> list[Step]:
        """The table: each action type's handler, in the order they apply."""
        return [
            Step(InsertEvent, self._inserts, chunk=200),
            Step(ImportEvent, self._imports, chunk=STORE_CHUNK),
            Step(ReconcileEvent, self._reconciles, chunk=200),
            Step(CancelActivity, self._cancels, chunk=STORE_CHUNK),
            Step(DeleteEvent, self._deletes, chunk=200),
            Step(DropEventLink, self._drops, chunk=MAX_BATCH_WRITES),
            Step(NotPropagated, self._not_propagated),
        ]  # fmt: skip

    # --- documents ----------------------------------------------------------------------

    def _now(self) -> str:
        return stamp(self.clock.now())

    def _link(self, activity_id: str, event: dict[str, Any] | None, event_id: str, etag: str,
              fields: am.ActivityFields, **extra: Any) -> dict[str, Any]:  # fmt: skip
        event = event or {}
        source = event or self.raw.get(event_id, {})
        before = self.snap.links.get(activity_id)
        if source and "organizer" in source:  # not a minimal cancelled instance: id only
            organizer = source.get("organizer") or {}
            read_only = not organizer.get("self")
            organizer_email = (organizer.get("email") or "").lower()
            others = am.unknown_attendees(source, self.directory.known | am.attendee_emails(fields))
        else:  # no event at hand: what the link knew still holds
            read_only = before.read_only if before else False
            organizer_email = before.organizer_email if before else ""
            others = list(before.others) if before and before.others is not None else None
        ical_uid = event.get("iCalUID") or self.raw.get(event_id, {}).get("iCalUID")
        return link_doc(self.links, activity_id, event.get("id", event_id),
                        event.get("etag", etag), fields, am.fingerprint(fields), self._now(),
                        **{"icalUid": ical_uid, "notPropagated": None, "readOnly": read_only,
                           "organizerEmail": organizer_email, "googleOnlyAttendees": others,
                           **extra})  # fmt: skip

    def _participants(self, fields: am.ActivityFields, current: list[dict]) -> list[dict]:
        before = {(p.get("email") or "").lower(): p for p in current}
        out = []
        for attendee in fields["attendees"]:
            email = attendee["email"]
            person = {
                k: v for k, v in before.get(email, {}).items() if k in ("contactId", "userId")
            }
            if not person:
                if email in self.directory.users:
                    person = {"userId": self.directory.users[email]}
                elif email in self.directory.contacts:
                    person = {"contactId": self.directory.contacts[email]}
            out.append({**person, "email": email, "response": attendee["response"]})
        return out

    def _activity_doc(self, current: dict[str, Any], fields: am.ActivityFields) -> dict[str, Any]:
        doc = {**current, **am.to_activity(fields, self.user.timeZone), "modifiedAt": self._now()}
        doc["participants"] = self._participants(fields, current.get("participants") or [])
        if fields["canceled"]:
            doc["status"] = "canceled"
        elif doc.get("status") == "canceled":
            doc["status"] = "planned"
        doc.setdefault("status", "planned")
        return doc

    def _event_body(self, activity_id: str, fields: am.ActivityFields, event_id: str,
                    current: dict[str, Any] | None = None) -> dict:  # fmt: skip
        return am.to_event(fields, activity_id, self._others(activity_id, event_id, fields,
                                                             current))  # fmt: skip

    def _others(self, activity_id: str, event_id: str, fields: am.ActivityFields,
                current: dict[str, Any] | None) -> list[dict[str, Any]]:  # fmt: skip
        """The event's attendees that neither the CRM nor this pair knows (the link's
        synced attendees, the activity's, the ones being written): kept as they are."""
        known = set(self.directory.known) | am.attendee_emails(fields)
        link = self.snap.links.get(activity_id)
        activity = self.snap.crm.get(activity_id)
        for synced in (link.fields if link else {}, activity.fields if activity else {}):
            known |= am.attendee_emails(synced)
        source = current or self.raw.get(event_id)
        if source is not None:
            return am.unknown_attendees(source, known)
        stored = link.others if link is not None and link.others is not None else ()
        return [dict(a) for a in stored if (a.get("email") or "").lower() not in known]

    # --- inserts and imports ------------------------------------------------------------

    def _inserts(self, actions: list[InsertEvent], retry: bool) -> None:
        writes = [
            EventWrite("insert", am.event_id(a.activity_id),
                       self._event_body(a.activity_id, a.fields, ""))
            for a in actions
        ]  # fmt: skip
        results = self.calendar.write(writes)
        retried = [
            w.event_id
            for w, r in zip(writes, results, strict=True)
            if r.error is not None and getattr(r.error, "status", None) == 409
        ]
        existing = self.calendar.get(retried) if retried else {}
        self.directory.add_events(existing.values())  # their attendees, as the CRM knows them
        restored = self._restore(actions, existing)
        existing |= restored
        inserted = []
        with self.store.batch() as batch:
            for action, result in zip(actions, results, strict=True):
                event = result.person or existing.get(am.event_id(action.activity_id))
                if event is None:
                    self.log.fail(action.activity_id, f"insert into Google failed: {result.error}",
                                  crm_id=action.activity_id)  # fmt: skip
                    continue
                known = self.directory.known
                restored = event.get("status") != "cancelled" and not result.person
                ours = result.person or (restored and am.private_activity_id(event))
                fields = action.fields if ours else am.from_event(event, known)
                link = self._link(action.activity_id, event, event["id"], "", fields)
                self.links.put(batch, action.activity_id, link)
                inserted.append((action.activity_id, event["id"], fields["title"]))
        self.log.count("pushed", len(inserted))
        for activity_id, event_id_, title in inserted:
            self.log.note("pushed", "google", crm_id=activity_id, google_id=event_id_, name=title)

    def _restore(self, actions: list[InsertEvent],
                 existing: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:  # fmt: skip
        """A 409 on a cancelled event is our own earlier delete (the activity was hidden,
        then shown again): bring the event back with the activity's fields."""
        writes = [
            EventWrite("patch", event_id, self._event_body(a.activity_id, a.fields, event_id,
                                                           existing[event_id]),
                       existing[event_id].get("etag"))
            for a in actions
            if (event_id := am.event_id(a.activity_id)) in existing
            and existing[event_id].get("status") == "cancelled"
        ]  # fmt: skip
        results = self.calendar.write(writes) if writes else []
        return {r.key: r.person for r in results if r.person}

    def _imports(self, part: list[ImportEvent], retry: bool) -> None:
        ids = {a.event_id: am.import_id(self.user.id, a.event_id) for a in part}
        current = self.store.get_many(ACTIVITIES, list(ids.values()))
        with self.store.batch() as batch:
            for action in part:
                activity_id = ids[action.event_id]
                base = current.get(activity_id) or {"organizerId": self.user.id}
                # an import over one deleted since brings it back (only an undo asks it)
                base = {k: v for k, v in base.items() if k != "deletedAt"}
                base["showInCalendar"] = True
                batch.put(ACTIVITIES, activity_id, self._activity_doc(base, action.fields))
                link = self._link(activity_id, None, action.event_id, action.etag, action.fields)
                self.links.put(batch, activity_id, link)
        self.log.count("imported", len(part))
        for action in part:
            activity_id = ids[action.event_id]
            earlier = current.get(activity_id)  # an earlier import, kept: every field said
            changes = None  # (none: the activity is new, or comes back)
            if earlier and not earlier.get("deletedAt"):
                changes = every_field(self._doc_fields(activity_id, earlier), action.fields)
            self.log.note("imported", "crm", crm_id=activity_id, google_id=action.event_id,
                          name=action.fields["title"], fields=changes)  # fmt: skip

    # --- reconciles ---------------------------------------------------------------------

    def _reconciles(self, actions: list[ReconcileEvent], retry: bool) -> list[ReconcileEvent]:
        """Google first, then the store (each pair's CRM write and link in one batch).
        Returns the ones Google refused as stale, for the retry."""
        results = self._patch([a for a in actions if a.write_google])
        written: dict[str, Any] = {}  # activity id -> the event as patched (None: no patch)
        stale, gone = [], []
        for action in actions:
            result = results.get(action.activity_id)
            if result is None or result.person is not None:
                written[action.activity_id] = result.person if result else None
            elif isinstance(result.error, EtagMismatch) and retry:
                stale.append(action)
            elif isinstance(result.error, NotFound):
                gone.append(action.activity_id)
            else:
                self._refused(action, result.error)
        done = [a for a in actions if a.activity_id in written]
        self._store_reconciles(done, written)
        self._vanished(gone)
        self._note_updated([a for a in done if a.write_google])
        return stale

    def _patch(self, pushing: list[ReconcileEvent]) -> dict[str, WriteResult]:
        """Patch these pairs' events (if their etag still holds); results by activity id."""
        if not pushing:
            return {}
        self._read_unkept_guests(pushing)
        writes = [EventWrite("patch", a.event_id, self._event_body(a.activity_id, a.fields,
                                                                   a.event_id), a.etag)
                  for a in pushing]  # fmt: skip
        results = self.calendar.write(writes)
        return dict(zip([a.activity_id for a in pushing], results, strict=True))

    def _note_updated(self, updated: list[ReconcileEvent]) -> None:
        self.log.count("updatedInGoogle", len(updated))
        for action in updated:
            before = self._google_before(action.activity_id, action.event_id)
            self.log.note("updatedInGoogle", "google", crm_id=action.activity_id,
                          google_id=action.event_id, name=action.fields["title"],
                          fields=_changes(before, action.fields))  # fmt: skip

    def _refused(self, action: ReconcileEvent, error: Any) -> None:
        """A patch Google refused: a participant's copy cannot carry the CRM's edit (403
        forbiddenForNonOrganizer, recorded, never retried), or a failure said."""
        if getattr(error, "reason", None) == "forbiddenForNonOrganizer":
            self._record_not_propagated(action.activity_id, action.event_id,
                                        am.fingerprint(action.fields), str(error))  # fmt: skip
        else:
            self.log.fail(action.activity_id, f"update in Google failed: {error}",
                          crm_id=action.activity_id)  # fmt: skip

    def _vanished(self, activity_ids: list[str]) -> None:
        """The patch found no event (Google purged the one we had cancelled): the link
        goes, and the activity, read again next run, gets a new event."""
        why = "update in Google failed: the event no longer exists; it is created again next run"
        for activity_id in activity_ids:
            self.log.fail(activity_id, why, crm_id=activity_id)
        self._unlink(activity_ids)

    def _read_unkept_guests(self, pushing: list[ReconcileEvent]) -> None:
        """Links written before they kept the event's other guests: read those events,
        so that the patch carries the guests over."""
        unkept = [a.event_id for a in pushing if a.event_id not in self.raw
                  and (link := self.snap.links.get(a.activity_id)) is not None
                  and link.others is None]  # fmt: skip
        if unkept:
            found = self.calendar.get(unkept)
            self.directory.add_events(found.values())
            self.raw.update(found)

    def _store_reconciles(self, actions: list[ReconcileEvent], written: dict[str, Any]) -> None:
        for part in chunked(actions, STORE_CHUNK):
            writing = [a.activity_id for a in part if a.write_crm]
            current = self.store.get_many(ACTIVITIES, writing) if writing else {}
            stored = []
            with self.store.batch() as batch:
                for action in part:
                    if action.write_crm:
                        doc = current.get(action.activity_id)
                        if doc is None:
                            self.log.fail(action.activity_id, "CRM activity vanished")
                            continue
                        if self._saved_since_read(action.activity_id, doc):
                            continue
                        batch.put(ACTIVITIES, action.activity_id,
                                  self._activity_doc(doc, action.fields))  # fmt: skip
                    fields, extra = _link_fields(action)
                    link = self._link(action.activity_id, written.get(action.activity_id),
                                      action.event_id, action.etag, fields, **extra)  # fmt: skip
                    self.links.put(batch, action.activity_id, link)
                    stored.append(action)
            for action in stored:
                ids = {"crm_id": action.activity_id, "google_id": action.event_id,
                       "name": action.fields["title"]}  # fmt: skip
                if action.write_crm:
                    self.log.count("updatedInCrm")
                    before = self._doc_fields(action.activity_id, current[action.activity_id])
                    self.log.note("updatedInCrm", "crm", **ids,
                                  fields=_changes(before, action.fields))  # fmt: skip
                self.log.count("conflicts", len(action.conflicts))
                if action.reason in (Why.OURS, Why.SHARED, Why.IMPORTED):  # an event we know
                    self.log.count("linked")
                    self.log.note("linked", "google", **ids)

    def _saved_since_read(self, activity_id: str, doc: dict[str, Any]) -> bool:
        """Whether the activity must be left as it is, saved since the plan read it (a
        sync writes the merge over it: the CRM has no etag, and the next run merges
        again; an undo never does, ``core.activities_undo``)."""
        return False

    def _reread(self, stale: list[ReconcileEvent]) -> list[Any]:
        """Edited in Google since we read them: re-read these events, plan them again."""
        fresh = self.calendar.get([a.event_id for a in stale])
        self.directory.add_events(fresh.values())
        self.raw.update(fresh)
        events = {eid: self.to_event(raw) for eid, raw in fresh.items()}
        self.reread.update(events)
        ids = {a.activity_id for a in stale}
        snap = replace(self.snap, crm={k: v for k, v in self.snap.crm.items() if k in ids},
                       google=events, links={k: v for k, v in self.snap.links.items() if k in ids},
                       crm_complete=False, google_complete=False)  # fmt: skip
        return plan(snap, self.policy)

    def _defer(self, actions: list[Any]) -> None:
        """What a stale pair's re-plan asks beyond a reconcile or a cancellation: left
        to the next run, which reads the activity again (and the event, changed since)."""
        for action in actions:
            if hasattr(action, "activity_id"):
                self.log.retry_crm.add(action.activity_id)

    # --- cancellations, deletions, links ------------------------------------------------

    def _cancels(self, part: list[CancelActivity], retry: bool) -> None:
        current = self.store.get_many(ACTIVITIES, [a.activity_id for a in part])
        notes = []
        with self.store.batch() as batch:
            for action in part:
                doc = current.get(action.activity_id)
                if doc is not None and doc.get("status") != "canceled":
                    # every synced field as it was, so that it can be restored
                    before = self._doc_fields(action.activity_id, doc)
                    notes.append((action, before.get("title"),
                                  every_field(before, {**before, "canceled": True})))  # fmt: skip
                    doc = {**doc, "status": "canceled", "modifiedAt": self._now()}
                    batch.put(ACTIVITIES, action.activity_id, doc)
                link = self.snap.links.get(action.activity_id)
                fields = am.normalize(link.fields if link else {})
                link = self._link(action.activity_id, None, action.event_id, "", fields,
                                  tombstone=True)  # fmt: skip
                self.links.put(batch, action.activity_id, link)
        self.log.count("canceled", len(notes))  # written: not those gone or canceled already
        for action, title, fields in notes:
            self.log.note("canceled", "crm", crm_id=action.activity_id,
                          google_id=action.event_id, name=title, fields=fields)  # fmt: skip

    def _deletes(self, actions: list[DeleteEvent], retry: bool) -> None:
        etag = self.conditional_deletes
        writes = [EventWrite("delete", a.event_id, etag=a.etag if etag else None) for a in actions]
        results = self.calendar.write(writes) if writes else []
        gone, deleted = [], []
        for action, result in zip(actions, results, strict=True):
            if result.error is None or isinstance(result.error, NotFound):
                gone.append(action.activity_id)  # a 404 or 410: already deleted, done
                if result.error is None:  # this run's delete: counted, and undoable
                    deleted.append(action)
            else:
                self._not_deleted(action, result.error)
        self._unlink(gone)
        self.log.count("deletedInGoogle", len(deleted))
        for action in deleted:  # every synced field the event held, so that it can be restored
            before = self._google_before(action.activity_id, action.event_id)
            self.log.note("deletedInGoogle", "google", crm_id=action.activity_id,
                          google_id=action.event_id, name=before.get("title"),
                          fields=every_field(before, {}))  # fmt: skip

    def _not_deleted(self, action: DeleteEvent, error: Any) -> None:
        self.log.fail(action.activity_id, f"delete in Google failed: {error}",
                      crm_id=action.activity_id)  # fmt: skip

    def _google_before(self, activity_id: str, event_id: str) -> am.ActivityFields:
        """The event's synced fields as the plan saw them (what was synced, when the run
        did not read the event; as the planner's ``_google_side``)."""
        link = self.snap.links.get(activity_id)
        event = self.reread.get(event_id) or self.snap.google.get(event_id)
        if event is None:
            return link.fields if link is not None else {}
        if event.cancelled and not event.fields["start"] and link is not None:
            return {**link.fields, "canceled": True}
        return event.fields

    def _crm_before(self, activity_id: str) -> am.ActivityFields:
        """The activity's synced fields as the plan saw them (else as last synced)."""
        activity = self.snap.crm.get(activity_id)
        if activity is not None:
            return activity.fields
        link = self.snap.links.get(activity_id)
        return link.fields if link is not None else {}

    def _doc_fields(self, activity_id: str, doc: dict[str, Any]) -> am.ActivityFields:
        """The synced fields of the CRM activity as the write found it (it may have
        changed since the plan read it): what the journal's ``before`` must say. Its
        participants are those the plan resolved (they name contacts and users, whose
        emails the plan looked up)."""
        planned = self._crm_before(activity_id)
        keys = ("title", "description", "location", "allDay", "start", "end", "timeZone")
        try:
            fields = am.normalize({**planned, **{k: doc.get(k) for k in keys},
                                   "canceled": doc.get("status") == "canceled"})  # fmt: skip
        except (TypeError, ValueError, AttributeError):  # malformed: the plan's view it is
            return planned
        return {**fields, "attendees": planned.get("attendees") or []}

    def _unlink(self, activity_ids: list[str]) -> None:
        self.links.delete(activity_ids)

    def _drops(self, actions: list[DropEventLink], retry: bool) -> None:
        self._unlink([a.activity_id for a in actions])

    def _not_propagated(self, actions: list[NotPropagated], retry: bool) -> None:
        for action in actions:
            if action.cancelled:
                why = "the event was cancelled in Google, and is never created again"
            else:
                why = "only a read-only calendar copy is reachable"
            self._record_not_propagated(action.activity_id, action.event_id, action.fingerprint,
                                        why, tombstone=action.cancelled)  # fmt: skip

    def _record_not_propagated(self, activity_id: str, event_id: str, fp: str, why: str,
                               tombstone: bool = False) -> None:  # fmt: skip
        self.log.fail(activity_id, f"CRM edit not propagated to Google: {why}", retry=False)
        self.log.count("notPropagated")
        link = self.snap.links.get(activity_id)
        if link is not None:
            read_only = link.read_only if tombstone else True
            doc = self._link(activity_id, None, event_id, link.etag or "", link.fields,
                             notPropagated=fp, readOnly=read_only,
                             tombstone=tombstone)  # fmt: skip
            self.store.put(LINKS, self.links.key(activity_id), doc)


def _link_fields(action: ReconcileEvent) -> tuple[am.ActivityFields, dict[str, Any]]:
    """The fields a reconciled pair's link keeps, and its other keys: as written, or
    for Google's cancellation put back (``tombstone``), as they were before it."""
    if action.tombstone:
        return {**action.fields, "canceled": False}, {"tombstone": True}
    return action.fields, {}


def _changes(before: am.ActivityFields, after: am.ActivityFields) -> dict[str, tuple[Any, Any]]:
    """Each synced field that differs, (before, after), for the run's journal."""
    return {k: (before.get(k), after.get(k)) for k in am.FIELDS if before.get(k) != after.get(k)}


def every_field(before: am.ActivityFields, after: am.ActivityFields) -> dict[str, tuple[Any, Any]]:
    """Every synced field, (before, after): what a removal or cancellation needs to be
    taken back."""
    return {k: (before.get(k), after.get(k)) for k in am.FIELDS} if before else {}
