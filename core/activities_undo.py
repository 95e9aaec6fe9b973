"""Undo of an activities run: a run of its own (trigger ``undo``) through the shared
shell (``core.runs.run_section``), as ``core.contacts_undo`` is for contacts.

    settings  as an activities run (the user, the "sync activities from" date)
    gather    the run's record and journal; the activities, links and events it
              names, as they are now (one read each, by id)
    plan      ``core.event_undo.plan_undo`` (pure): the sync's own actions, and conflicts
    execute   the activities executor, plus the removal of an import; an event edited
              between our read and our write (a stale etag) is a conflict, never merged

The section's cursors do not move; the activities the undo touched are read again by
the next sync (its retry ids).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from core import activity_mapping as am
from core.activities_engine import (
    ActivitiesEngine,
    ActivitiesSettings,
    link_from_doc,
    pair_known,
    sync_window,
    to_cal_event,
    users_in_play,
)
from core.activities_exec import ActivitiesExecutor, Gathered, every_field
from core.activities_plan import ActivitySnapshot, CrmActivity, DeleteEvent
from core.apply import Step
from core.contacts_undo import say, undoable
from core.errors import EtagMismatch
from core.event_undo import Current, RemoveImport, plan_undo
from core.model import ACTIVITIES, LINKS, Activity, link_id, load_each, state_id
from core.outcome import CONFLICT
from core.runs import Options, Report, RunLog
from core.schedule import update_state
from core.undo import UndoPlan, items, saved_after


class ActivitiesUndo(ActivitiesEngine):
    """``ActivitiesEngine`` whose sync takes run ``undo_of`` back."""

    def __init__(self, *args: Any, undo_of: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.undo_of = undo_of

    def sync(self, settings: ActivitiesSettings, state: dict[str, Any], options: Options,
             log: RunLog, report: Report) -> dict[str, Any]:  # fmt: skip
        entries, ended = undoable(self.store, self.undo_of, settings.user.id, "activities",
                                  report.account_email, self.clock.now())  # fmt: skip
        gathered, current = self.current(settings, options, entries, ended)
        undo = plan_undo(entries, current)
        report.plan = undo.actions
        self.progress(f"planned {len(undo.actions)} actions to take run {self.undo_of} back")
        say(undo, log)
        again = _read_again(undo, state, settings.user.id)
        if not options.dry_run:
            # saved before any write: an undo that fails half-way still has the
            # activities it touched read again by the next sync
            update_state(self.store, state_id(settings.user.id, "activities"), again)
            UndoExecutor(self.store, self.calendar, self.clock, user=settings.user,
                         policy=options.policy, log=log,
                         progress=self.progress).run(undo.actions, gathered)  # fmt: skip
        return again  # the cursors stay

    def current(self, settings: ActivitiesSettings, options: Options,
                entries: list[dict[str, Any]],
                ended: datetime | None) -> tuple[Gathered, Current]:  # fmt: skip
        """The activities, links and events the journal names, as they are now."""
        user_id = settings.user.id
        touched = items(entries)
        ids = [i.crm_id for i in touched]
        docs = self.store.get_many(ACTIVITIES, ids)
        good, _ = load_each(Activity, ACTIVITIES, sorted(docs.items()))
        directory = self._directory(settings, options)
        directory.add_users(users_in_play(good, user_id))  # as a sync resolves them
        found = {a.id: self._crm(a, settings, directory) for a in good}
        activities: dict[str, CrmActivity] = {k: v for k, v in found.items() if v is not None}
        keys = [link_id(user_id, "activities", i) for i in ids]
        links = {d["crmId"]: link_from_doc(d) for d in self.store.get_many(LINKS, keys).values()}
        event_ids = {i.google_id for i in touched if i.google_id}
        raw = self.calendar.get(sorted(event_ids | {k.event_id for k in links.values()}))
        directory.add_events(raw.values())
        window = sync_window(settings, self.clock.now())
        pair = pair_known(links, activities, {})
        to_event = functools.partial(to_cal_event, directory=directory, pair=pair, window=window)
        events = {eid: to_event(e) for eid, e in raw.items()}
        snap = ActivitySnapshot(activities, events, links, connected=frozenset(directory.connected))
        gathered = Gathered(snap, directory, raw, to_event)
        return gathered, Current(user_id, activities, events, links, ended)


class UndoExecutor(ActivitiesExecutor):
    """The activities executor, plus the removal of an import. An item saved after the
    undo read it is a conflict, left as it is: an event (a stale etag, on a patch or a
    delete), or an activity (a ``modifiedAt`` past the one read)."""

    conditional_deletes = True

    def steps(self) -> list[Step]:
        return [*super().steps(), Step(RemoveImport, self._remove_imports)]

    def _reread(self, stale: list[Any]) -> list[Any]:
        for action in stale:
            self._conflict(action.activity_id, action.event_id, "Google")
        return []

    def _not_deleted(self, action: DeleteEvent, error: Any) -> None:
        if isinstance(error, EtagMismatch):
            self._conflict(action.activity_id, action.event_id, "Google")
        else:
            super()._not_deleted(action, error)

    def _saved_since_read(self, activity_id: str, doc: dict[str, Any]) -> bool:
        read = self.snap.crm.get(activity_id)
        if read is None or not saved_after(read.modified_at, doc):
            return False
        self._conflict(activity_id, "", "the CRM")
        return True

    def _conflict(self, activity_id: str, event_id: str, where: str) -> None:
        self.log.errors.append({"id": activity_id, "kind": CONFLICT,
                                "message": f"changed in {where} while the undo ran; "
                                           "left as it is",
                                "googleIds": [event_id] if event_id else []})  # fmt: skip

    def _remove_imports(self, part: list[RemoveImport], retry: bool) -> None:
        """Each imported activity deleted in the CRM (``deletedAt``), its link gone, in
        one batch; every synced field noted, so that an undo brings it back."""
        current = self.store.get_many(ACTIVITIES, [a.activity_id for a in part])
        removed = []
        now = self._now()
        with self.store.batch() as batch:
            for action in part:
                doc = current.get(action.activity_id)
                if doc is None or doc.get("deletedAt"):
                    continue
                if self._saved_since_read(action.activity_id, doc):
                    continue
                batch.put(ACTIVITIES, action.activity_id,
                          {**doc, "deletedAt": now, "modifiedAt": now})  # fmt: skip
                batch.delete(LINKS, self.links.key(action.activity_id))
                removed.append((action, self._doc_fields(action.activity_id, doc)))
        self.log.count("removedFromCrm", len(removed))
        for action, before in removed:
            self.log.note("removedFromCrm", "crm", crm_id=action.activity_id,
                          google_id=action.event_id, name=before.get("title"),
                          fields=every_field(before, {}))  # fmt: skip


def _read_again(undo: UndoPlan, state: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The activities the undo touched, for the next sync to read again."""
    touched = {getattr(a, "activity_id", None) or am.import_id(user_id, a.event_id)
               for a in undo.actions}  # fmt: skip
    return {"retryCrm": sorted(touched | set(state.get("retryCrm") or []))}
