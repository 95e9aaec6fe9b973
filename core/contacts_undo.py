"""Undo of a contacts run: a run of its own (trigger ``undo``) through the shared shell
(``core.runs.run_section``: the section's lease, a run record, a journal of its own).

    settings  as a contacts run (the private tag, the interval)
    gather    the run's record and journal; the CRM contacts, links and persons it
              names, as they are now (one read each, by id)
    plan      ``core.undo.plan_undo`` (pure): the sync's own actions, and conflicts
    execute   the contacts executor; a person edited between our read and our write
              (a stale etag) is a conflict too, never merged

The section's cursors do not move. The pairs the undo touched are read again by the
next sync (its retry ids): restored fields are then the pair's last synced state
(nothing to do), and what the sync's rules still ask for is done (a contact still
tagged is pushed again). A record changed since that run is left alone and listed,
item by item (``UndoConflict``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core import runs
from core.account_switch import same_account
from core.contacts_engine import ContactsEngine, ContactsSettings
from core.contacts_exec import ContactsExecutor, contact_from_doc, link_from_doc, person_from_api
from core.contacts_plan import Snapshot
from core.errors import UndoRefused
from core.lease import held, run_of
from core.model import (
    CONTACTS,
    LINKS,
    SYNC_RUNS,
    SYNC_STATE,
    Contact,
    link_id,
    load_each,
    state_id,
    when,
)
from core.outcome import CONFLICT
from core.ports import DocumentStore
from core.runs import Options, Report, RunLog
from core.schedule import update_state
from core.undo import Current, UndoPlan, items, plan_undo, saved_after


def undoable(store: DocumentStore, run_id: str, user_id: str, section: str,
             account: str | None,
             now: datetime) -> tuple[list[dict[str, Any]], datetime | None]:  # fmt: skip
    """The journal of run ``run_id`` and when it ended, after checking that it is
    ``user_id``'s finished ``section`` run that kept its journal, made with the Google
    account connected now (``account``; ids in Google are the account's own): else
    ``UndoRefused``."""
    record = store.get(SYNC_RUNS, run_id)
    if record is None or record.get("userId") != user_id:
        raise UndoRefused(f"no run {run_id} of this user")  # another's: not said
    if record.get("section") != section:
        raise UndoRefused(f"run {run_id} is not a {section} run")
    made_with = record.get("accountEmail")
    if made_with and account and not same_account(made_with, account):
        raise UndoRefused(f"run {run_id} was made with the Google account {made_with}, not "
                          f"{account}: connect {made_with} again to undo it")  # fmt: skip
    if record.get("outcome") == "running" and not _holds(store, run_id, user_id, section, now):
        raise UndoRefused(f"run {run_id} was interrupted before it could record what it "
                          "changed, so it cannot be undone; the next sync carries on from "
                          "where it stopped")  # fmt: skip
    if record.get("outcome") in ("queued", "running"):
        raise UndoRefused(f"run {run_id} has not finished; undo it once it has")
    if record.get("journalLost"):
        raise UndoRefused(f"run {run_id} kept no journal of its changes")
    pages = runs.page_count(record.get("itemPages") or 0)
    ended = record.get("finishedAt")
    if pages is None or (ended is not None and when(ended) is None):
        raise UndoRefused(f"run {run_id}'s record is damaged (its journal or its end "
                          "cannot be read), so it cannot be undone")  # fmt: skip
    return runs.journal(store, run_id, pages), when(ended)


def _holds(store: DocumentStore, run_id: str, user_id: str, section: str,
           now: datetime) -> bool:  # fmt: skip
    """Whether run ``run_id`` still holds its section's lease (it is under way); a run
    whose lease lapsed, was taken, or never was, while its record says running, was
    interrupted."""
    state = store.get(SYNC_STATE, state_id(user_id, section)) or {}  # type: ignore[arg-type]
    taken = held(state.get("lease"))
    live = taken is not None and when(taken["expiresAt"]) > now  # type: ignore[operator]
    return live and run_of(taken["holder"]) == run_id  # type: ignore[index]


class ContactsUndo(ContactsEngine):
    """``ContactsEngine`` whose sync takes run ``undo_of`` back."""

    def __init__(self, *args: Any, undo_of: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.undo_of = undo_of

    def sync(self, settings: ContactsSettings, state: dict[str, Any], options: Options,
             log: RunLog, report: Report) -> dict[str, Any]:  # fmt: skip
        entries, ended = undoable(self.store, self.undo_of, settings.user_id, "contacts",
                                  report.account_email, self.clock.now())  # fmt: skip
        current = self.current(settings, state, entries, ended)
        undo = plan_undo(entries, current)
        report.plan = undo.actions
        self.progress(f"planned {len(undo.actions)} actions to take run {self.undo_of} back")
        say(undo, log)
        again = _read_again(undo, state)
        if not options.dry_run:
            # saved before any write: an undo that fails half-way still has the pairs it
            # touched read again by the next sync
            update_state(self.store, state_id(settings.user_id, "contacts"), again)
            snap = Snapshot(current.crm, current.google, current.links, current.group)
            UndoExecutor(self.store, self.people, self.clock, user_id=settings.user_id,
                         tag_id=settings.tag_id, group=current.group, policy=options.policy,
                         log=log, progress=self.progress).run(undo.actions, snap)  # fmt: skip
        return again  # the cursors stay

    def current(self, settings: ContactsSettings, state: dict[str, Any],
                entries: list[dict[str, Any]], ended: datetime | None) -> Current:  # fmt: skip
        """The pairs the journal names, as they are now."""
        group = state.get("groupResourceName") or ""
        touched = items(entries)
        crm_ids = [i.crm_id for i in touched]
        docs = self.store.get_many(CONTACTS, crm_ids)
        good, _ = load_each(Contact, CONTACTS, sorted(docs.items()))
        crm = {c.id: contact_from_doc(c, settings.tag_id) for c in good}
        keys = [link_id(settings.user_id, "contacts", i) for i in crm_ids]
        links = {d["crmId"]: link_from_doc(d) for d in self.store.get_many(LINKS, keys).values()}
        names = sorted({i.google_id for i in touched if i.google_id})
        google = {n: person_from_api(p, group) for n, p in self.people.get(names).items()}
        return Current(crm, google, links, group, ended)


class UndoExecutor(ContactsExecutor):
    """The contacts executor, except that an item saved after the undo read it is a
    conflict, left as it is: a person (a stale etag) or a contact (a ``modifiedAt``
    past the one read). An undo never merges into a later change."""

    def _saved_since_read(self, crm_id: str, doc: dict[str, Any]) -> bool:
        read = self.snap.crm.get(crm_id)
        if read is None or not saved_after(read.modified_at, doc):
            return False
        self.log.errors.append({"id": crm_id, "kind": CONFLICT,
                                "message": "changed in the CRM while the undo ran; left as it is",
                                "googleIds": []})  # fmt: skip
        return True

    def _reread(self, stale: list[Any]) -> list[Any]:
        for action in stale:
            self.log.errors.append({"id": action.crm_id, "kind": CONFLICT,
                                    "message": "changed in Google while the undo ran; "
                                               "left as it is",
                                    "googleIds": [action.resource_name]})  # fmt: skip
        return []


def _read_again(undo: UndoPlan, state: dict[str, Any]) -> dict[str, Any]:
    """The pairs the undo touched, for the next sync to read again whatever its cursors
    say: the sync's rules apply to them at once (a contact still tagged is pushed
    again, a person still in the group imported again; restored fields are settled)."""
    crm = {a.crm_id for a in undo.actions}
    google = {a.resource_name for a in undo.actions}
    return {"retryCrm": sorted(crm | set(state.get("retryCrm") or [])),
            "retryGoogle": sorted(google | set(state.get("retryGoogle") or []))}  # fmt: skip


def say(undo: UndoPlan, log: RunLog) -> None:
    """Conflicts item by item; and how many pairs the next sync links again."""
    for c in undo.conflicts:
        message = f"{c.name or c.crm_id}: not taken back: {c.reason}"
        log.errors.append({"id": c.crm_id, "kind": CONFLICT, "googleIds": [c.google_id],
                           "message": message})  # fmt: skip
    if undo.conflicts:
        log.count("conflicts", len(undo.conflicts))
    if undo.redone:  # the contact is still tagged, or the person still in the group
        log.count("redoneByNextSync", len(undo.redone))
