"""The contacts executor: applies planned actions through the ports, in batches.

Order: creates, imports, reconciles, group removals, untags, dropped links, and
ambiguous email matches (reported per item, retried next run, never guessed). Each
item's link is saved as soon as its write succeeded, in the same store batch as its
CRM write, so a crash never leaves a CRM write without its link; a CRM contact write
carries the email index entries it changes (``core.email_index``: its new emails
list it, those it dropped no longer do) in that batch too. Google writes go
first, then the store batch that records them: a crash between the two is healed on
the rerun (the person carries our ``clientData`` id, or its change is seen again and
is an echo). Per-item failures are collected in the report and remembered for retry;
a failed store write aborts the run. Each committed change is noted in the run's
journal (``RunLog.note``) under the key it is counted with: the side written, the
pair's ids and name, and for updates each synced field set, (before, after).

A Google update writes only the person fields that changed, into the person's current
values (``core.person_patch``): the person as read in this run, or fetched just
before when the run did not read it (a CRM-only change). A fetched person that
changed meanwhile, or a stale etag (400 FAILED_PRECONDITION), means a re-read and a
re-merge against it, never a write of values it no longer holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from core import contact_mapping as cm
from core import email_index, pairs, person_patch
from core.apply import Apply, Links, Step, link_doc
from core.contacts_plan import (
    AmbiguousEmail,
    CreatePerson,
    CrmContact,
    DropLink,
    ImportPerson,
    LeaveGroup,
    LinkRecord,
    Person,
    Reconcile,
    Snapshot,
    Untag,
    Why,
    plan,
)
from core.errors import EtagMismatch
from core.merge import Policy
from core.model import CONTACTS, LINKS, SYNC_STATE, parse_timestamp, stamp, state_id
from core.ports import (
    MAX_BATCH_WRITES,
    Clock,
    DocumentStore,
    PeoplePort,
    Progress,
    WriteResult,
    no_progress,
)
from core.runs import RunLog, chunked

MY_CONTACTS = "contactGroups/myContacts"
_LATER = CreatePerson | ImportPerson | AmbiguousEmail  # a pair planned again mid-run: next run
STORE_CHUNK = MAX_BATCH_WRITES // 2  # each item may write its contact and its link


class ContactsExecutor:
    def __init__(self, store: DocumentStore, people: PeoplePort, clock: Clock, *, user_id: str,
                 tag_id: str, group: str, policy: Policy, log: RunLog,
                 progress: Progress = no_progress) -> None:  # fmt: skip
        self.store, self.people, self.clock = store, people, clock
        self.user_id, self.tag_id, self.group, self.policy = user_id, tag_id, group, policy
        self.log, self.progress = log, progress
        self.links = Links(store, user_id, "contacts")

    def run(self, actions: Sequence[Any], snap: Snapshot) -> None:
        """Apply ``actions``, planned against ``snap``, in the table's order."""
        self.snap = snap
        known = {**snap.found, **snap.google}
        # the persons' current values as read: never edited in place (updates build
        # new bodies from them)
        self.current = {n: p.raw for n, p in known.items() if p.raw is not None}
        self.persons: dict[str, Person] = known  # as planned against: the journal's "before"
        self.fetched: set[str] = set()  # read again during this run (found or not)
        self.pending_noted = False
        steps = (
            Step(CreatePerson, self._creates, chunk=200),
            Step(ImportPerson, self._imports, chunk=STORE_CHUNK // 9),
            Step(Reconcile, self._reconciles, chunk=200),
            Step(LeaveGroup, self._leaves),
            Step(Untag, self._untags, chunk=STORE_CHUNK),
            Step(DropLink, self._drops, chunk=MAX_BATCH_WRITES),
            Step(AmbiguousEmail, self._ambiguous),
        )  # fmt: skip
        retry_kinds = (Reconcile, LeaveGroup, Untag, DropLink)
        Apply(steps, reread=self._reread, retry_kinds=retry_kinds, defer=self._defer,
              progress=self.progress)(actions)  # fmt: skip

    # --- helpers --------------------------------------------------------------------------

    def _now(self) -> str:
        return stamp(self.clock.now())

    def _link_doc(self, crm_id: str, person: dict[str, Any] | None, name: str, etag: str,
                  fields: cm.ContactFields) -> dict[str, Any]:  # fmt: skip
        return link_doc(self.links, crm_id, person["resourceName"] if person else name,
                        person.get("etag", etag) if person else etag, fields,
                        cm.fingerprint(fields), self._now(), parked=False)  # fmt: skip

    def _contact_doc(self, current: dict[str, Any], fields: cm.ContactFields,
                     tag: bool | None) -> dict[str, Any]:  # fmt: skip
        """The stored contact with the synced fields replaced; other CRM fields kept."""
        doc = {**current, **cm.to_crm(fields), "modifiedAt": self._now()}
        tags = [t for t in doc.get("tagIds", []) if t != self.tag_id]
        if tag or (tag is None and self.tag_id in current.get("tagIds", [])):
            tags.append(self.tag_id)
        doc["tagIds"] = tags
        return doc

    # --- creates and imports ------------------------------------------------------------

    def _creates(self, part: list[CreatePerson], retry: bool) -> None:
        if not self.pending_noted:
            self._note_pending_creates()
            self.pending_noted = True
        results = self.people.create([(a.crm_id, self._new_person(a)) for a in part])
        fields = {a.crm_id: a.fields for a in part}
        created = []
        with self.store.batch() as batch:
            for result in results:
                if result.error or not result.person:
                    self.log.fail(result.key, f"create in Google failed: {result.error}",
                                  crm_id=result.key)  # fmt: skip
                    continue
                doc = self._link_doc(result.key, result.person, "", "", fields[result.key])
                self.links.put(batch, result.key, doc)
                created.append(result)
        self.log.count("pushed", len(created))
        for result in created:
            self.log.note("pushed", "google", crm_id=result.key,
                          google_id=result.person["resourceName"],
                          name=cm.display_name(fields[result.key]))  # fmt: skip

    def _new_person(self, action: CreatePerson) -> dict[str, Any]:
        """The person to create: in the group, carrying our id (``clientData``)."""
        body = cm.to_person(action.fields)
        body["memberships"] = [{"contactGroupMembership": {"contactGroupResourceName": self.group}}]
        body["clientData"] = [{"key": cm.CLIENT_DATA_KEY, "value": action.crm_id}]
        return body

    def _note_pending_creates(self) -> None:
        """Persons are about to be created. Until the run succeeds, ``pendingCreates``
        stays set: a rerun after a failure between a create and its link cannot count on
        Google's deltas to show the new person (they lag minutes behind writes), so it
        lists every contact and finds the person by its clientData instead."""
        sid = state_id(self.user_id, "contacts")

        def mark(tx: Any) -> None:
            tx.put(SYNC_STATE, sid, {**(tx.get(SYNC_STATE, sid) or {}), "pendingCreates": True})

        self.store.transaction(mark)

    def import_ids(self, resource_name: str) -> list[str]:
        """Deterministic candidates, so a retried import rewrites the same contact."""
        base = f"g-{self.user_id}-{resource_name.rsplit('/', 1)[-1]}"
        return [base] + [f"{base}-{n}" for n in range(2, 10)]

    def _imports(self, part: list[ImportPerson], retry: bool) -> None:
        candidates = {a.resource_name: self.import_ids(a.resource_name) for a in part}
        existing = self.store.get_many(CONTACTS, [c for ids in candidates.values() for c in ids])
        items = []
        for action in part:
            # the first id not taken by a deleted contact: an existing live one is this
            # person's earlier import, kept with its other CRM fields
            crm_id = next(c for c in candidates[action.resource_name]
                          if not existing.get(c, {}).get("deletedAt"))  # fmt: skip
            doc = self._contact_doc(existing.get(crm_id, {}), action.fields, tag=True)
            link = self._link_doc(crm_id, None, action.resource_name, action.etag, action.fields)
            items.append((crm_id, existing.get(crm_id), doc, link))
        self._write_contacts(items)
        self.log.count("imported", len(part))
        for action, (crm_id, earlier, _, _) in zip(part, items, strict=True):
            # an earlier import of the person, kept: its fields before are said
            changes = None
            if earlier and not earlier.get("deletedAt"):
                changes = _crm_changes(earlier, action.fields)
                changes |= {"tagged": (self.tag_id in (earlier.get("tagIds") or []), True)}
            self.log.note("imported", "crm", crm_id=crm_id, google_id=action.resource_name,
                          name=cm.display_name(action.fields), fields=changes)  # fmt: skip

    def _write_contacts(self, items: list[tuple[str, dict | None, dict | None, dict]]) -> None:
        """Each item's contact (before, after; None: no CRM write), its link and the email
        index entries the contact write changes (``core.email_index``: atomic array
        writes, after one read of the entries they add to), all in one batch; items are
        packed into as few batches as the write limit allows. A contact whose emails
        alone take more than a batch has its contact write with the first of them, the
        rest in the next batches (a crash in between leaves additions to ``catch_up``,
        removals to ``prune``)."""
        changes_of = [[] if after is None else email_index.contact_changes(crm_id, before, after)
                      for crm_id, before, after, _ in items]  # fmt: skip
        # the entries these add to, read once: an entry at its size limit is marked instead
        adding = sorted({email_index.key(e) for cs in changes_of for e, _, _, add in cs if add})
        known = self.store.get_many(email_index.EMAIL_INDEX, adding) if adding else {}
        batches = _Batches(self.store, email_index.EntryWrites(known))
        for (crm_id, _, after, link), changes in zip(items, changes_of, strict=True):
            mine = [(LINKS, self.links.key(crm_id), link)]
            if after is not None:
                mine.insert(0, (CONTACTS, crm_id, after))
            batches.add(mine, changes)
        batches.close()

    # --- reconciles ---------------------------------------------------------------------

    def _reconciles(self, part: list[Reconcile], retry: bool) -> list[Reconcile]:
        """Google first (its stale ones left for the retry), then the group, then the
        store: each pair's CRM write and link in one batch. Returns the stale ones."""
        part = self._with_current(part)
        written, stale = self._google_updates([a for a in part if a.write_google], retry)
        done = [a for a in part if a not in stale and a.crm_id not in written["failed"]]
        gone = self._join_group([a for a in done if a.join_group], written)
        self._store_reconciles([a for a in done if a.crm_id not in gone], written)
        return stale

    def _with_current(self, actions: list[Reconcile]) -> list[Reconcile]:
        """Google writes go into the person's current values: read the persons this run
        has not read, and plan those pairs again against what they hold now (a Google
        edit not yet in the deltas is merged, not overwritten). What is not a Reconcile
        any more (the person left the group meanwhile) is done now."""
        known = self.current.keys() | self.fetched
        unread = [a for a in actions if a.write_google and a.resource_name not in known]
        if not unread:
            return actions
        again = self._replan(unread, self.people.get([a.resource_name for a in unread]))
        self._now_instead(again)
        self._defer([a for a in again if isinstance(a, _LATER)])
        rest = [a for a in actions if a not in unread]
        return rest + [a for a in again if isinstance(a, Reconcile)]

    def _now_instead(self, actions: list[Any]) -> None:
        """Pairs planned again that no longer reconcile: their removal, done now."""
        kinds = {Untag: self._untags, LeaveGroup: self._leaves, DropLink: self._drops}
        for kind, handle in kinds.items():
            handle([a for a in actions if isinstance(a, kind)], False)

    def _defer(self, actions: list[Any]) -> None:
        """A pair planned again mid-run that now needs a push, an import or a report:
        left to the next run, which reads both records again (never done here on a
        snapshot that lacks what a run gathers for them: searches, other contacts)."""
        for action in actions:
            if isinstance(action, ImportPerson):
                self.log.retry_google.add(action.resource_name)
            else:
                self.log.retry_crm.add(action.crm_id)

    def _reread(self, stale: list[Reconcile]) -> list[Any]:
        """Someone edited these persons since we read them: re-read, plan them again."""
        for action in stale:
            self.current.pop(action.resource_name, None)
        return self._replan(stale, self.people.get([a.resource_name for a in stale]))

    def _replan(self, actions: list[Reconcile], fresh: dict[str, Any]) -> list[Any]:
        """Plan ``actions``' pairs again with the persons as ``fresh`` holds them."""
        self.fetched |= {a.resource_name for a in actions}
        self.current.update({name: dict(p) for name, p in fresh.items()})
        people = {name: person_from_api(p, self.group) for name, p in fresh.items()}
        self.persons.update(people)
        ids = [a.crm_id for a in actions]
        contacts = {i: self.snap.crm[i] for i in ids if i in self.snap.crm}
        links = {i: self.snap.links[i] for i in ids if i in self.snap.links}
        snap = replace(self.snap, crm=contacts, google=people, links=links, crm_complete=False,
                       google_complete=False, found={})  # fmt: skip
        return plan(snap, self.policy, force=True)

    def _google_updates(self, actions: list[Reconcile],
                        retry: bool) -> tuple[dict[str, Any], list[Reconcile]]:  # fmt: skip
        """Write these pairs' changed person fields. Returns what was written (by CRM
        id; its ``failed`` key: the CRM ids that failed) and the stale ones to retry."""
        written: dict[str, Any] = {"failed": set()}
        readable = []
        for action in actions:
            if action.resource_name in self.current:
                readable.append(action)
            else:  # never a body rebuilt from the CRM's fields alone: it would erase data
                self._failed(written, action, "update in Google skipped: the Google contact "
                                              "could not be read")  # fmt: skip
        results = self._update_persons(readable)
        stale = []
        for action in readable:
            result = results.get(action.resource_name)
            if result and result.person:
                written[action.crm_id] = result.person
            elif result and isinstance(result.error, EtagMismatch) and retry:
                stale.append(action)
            else:
                why = result.error if result else "no result"
                self._failed(written, action, f"update in Google failed: {why}")
        updated = [a for a in actions if a.crm_id in written]
        self.log.count("updatedInGoogle", len(updated))
        for action in updated:
            self.log.note("updatedInGoogle", "google", crm_id=action.crm_id,
                          google_id=action.resource_name, name=cm.display_name(action.fields),
                          fields=self._google_changes(action))  # fmt: skip
        return written, stale

    def _update_persons(self, actions: list[Reconcile]) -> dict[str, WriteResult]:
        """One update call per set of changed person fields, into the current values."""
        by_mask: dict[tuple[str, ...], list[Reconcile]] = {}
        for action in actions:
            by_mask.setdefault(action.person_fields, []).append(action)
        results: dict[str, WriteResult] = {}
        for mask, group in sorted(by_mask.items()):
            items = [(a.resource_name, person_patch.body(self.current[a.resource_name], a.fields,
                                                         mask)) for a in group]  # fmt: skip
            results |= {r.key: r for r in self.people.update(items, ",".join(mask))}
        return results

    def _failed(self, written: dict[str, Any], action: Reconcile, why: str) -> None:
        self.log.fail(action.crm_id, why, crm_id=action.crm_id, google_id=action.resource_name)
        written["failed"].add(action.crm_id)

    def _google_changes(self, action: Reconcile) -> dict[str, tuple[Any, Any]]:
        """The synced fields a Google update set, (before, after): those of the person
        fields it wrote that differ from the person's values as planned against. A
        yearless birthday it replaced reads as its ``--MM-DD``."""
        person = self.persons.get(action.resource_name)
        if person is not None:
            before, yearless = person.fields, person.yearless_birthday
        else:  # not planned against a listed person: its values as read for the update
            current = self.current.get(action.resource_name) or {}
            before, yearless = cm.from_person(current), cm.yearless_birthday(current)
        mask, after = action.person_fields, action.fields
        changes = {k: (before.get(k), after.get(k)) for k in cm.FIELDS
                   if cm.PERSON_FIELD_OF[k] in mask and before.get(k) != after.get(k)}  # fmt: skip
        if yearless and "birthday" in changes and changes["birthday"][0] is None:
            changes["birthday"] = (yearless, changes["birthday"][1])
        return changes

    def _join_group(self, actions: list[Reconcile], written: dict[str, Any]) -> set[str]:
        """Put persons back in the group; joining changes their etag, so read it back.
        Returns the CRM ids whose person is gone (deleted since we found it): no link
        is saved for them, the failure is said, and the contact is read again next run
        (where it is pushed or linked anew, never untagged for a pair it never had)."""
        if not actions:
            return set()
        names = [a.resource_name for a in actions]
        result = self.people.modify_members(self.group, add=names)
        fresh = self.people.get(names)
        gone = set()
        for action in actions:
            if action.resource_name in fresh and action.resource_name not in result.not_found:
                written[action.crm_id] = fresh[action.resource_name]
            else:
                gone.add(action.crm_id)
                self.log.fail(action.crm_id, f"{action.resource_name} was deleted in Google "
                              "before it could join the group", crm_id=action.crm_id)  # fmt: skip
        return gone

    def _store_reconciles(self, actions: list[Reconcile], written: dict[str, Any]) -> None:
        crm_writes = [a for a in actions if a.write_crm or a.tag]
        current = self.store.get_many(CONTACTS, [a.crm_id for a in crm_writes])
        items, stored = [], []
        for action in actions:
            doc = None
            if action in crm_writes:
                if action.crm_id not in current:
                    self.log.fail(action.crm_id, "CRM contact vanished during the run")
                    continue
                if self._saved_since_read(action.crm_id, current[action.crm_id]):
                    continue
                doc = self._contact_doc(current[action.crm_id], action.fields,
                                        tag=True if action.tag else None)  # fmt: skip
            person = written.get(action.crm_id)
            link = self._link_doc(action.crm_id, person, action.resource_name, action.etag,
                                  action.fields)  # fmt: skip
            items.append((action.crm_id, current.get(action.crm_id), doc, link))
            stored.append(action)
        self._write_contacts(items)
        for action in stored:
            self._note_reconciled(action, current.get(action.crm_id))

    def _note_reconciled(self, action: Reconcile, before: dict[str, Any] | None) -> None:
        """The journal's entries of a stored pair: its CRM update (``before``: the contact
        as the write found it), and how it was linked or came back."""
        name = cm.display_name(action.fields)
        ids = {"crm_id": action.crm_id, "google_id": action.resource_name, "name": name}
        if action.write_crm and before is not None:
            self.log.count("updatedInCrm")
            self.log.note("updatedInCrm", "crm", **ids, fields=_crm_changes(before, action.fields))
        self.log.count("conflicts", len(action.conflicts))
        if action.reason == Why.CLIENT_DATA:  # the person an interrupted run created
            self.log.count("relinked")  # (or a link set aside): counted, nothing to undo
        if action.reason == Why.EMAIL:  # the contact tagged, or the person put in the group
            self.log.count("linkedByEmail")
            self.log.note("linkedByEmail", "crm" if action.tag else "google", **ids)
            return
        # a pair coming back (a parked link, a person found by our clientData): what was
        # done to each side is said, so that it can be taken back
        if action.tag:
            self.log.count("retagged")
            self.log.note("retagged", "crm", **ids)
        if action.join_group:
            self.log.count("rejoinedGroup")
            self.log.note("rejoinedGroup", "google", **ids)

    # --- group removals, untags, dropped links ------------------------------------------

    def _leaves(self, actions: list[LeaveGroup], retry: bool) -> None:
        if not actions:
            return
        names = [a.resource_name for a in actions]
        last = [a.resource_name for a in actions if a.last_group]
        if last:
            self.people.modify_members(MY_CONTACTS, add=last)
        result = self.people.modify_members(self.group, remove=names)
        if result.last_group:  # their groups were not known: keep them in myContacts
            self.people.modify_members(MY_CONTACTS, add=list(result.last_group))
            self.people.modify_members(self.group, remove=list(result.last_group))
        self._unlink(actions)
        # a person Google no longer has left no group: unlinked, but no removal to count
        # (nor to take back)
        removed = [a for a in actions if a.resource_name not in set(result.not_found)]
        self.log.count("removedFromGroup", len(removed))
        for action in removed:
            name = self._name_of(action.crm_id)
            self.log.note("removedFromGroup", "google", crm_id=action.crm_id,
                          google_id=action.resource_name, name=name)  # fmt: skip

    def _untags(self, part: list[Untag], retry: bool) -> None:
        if not part:
            return
        current = self.store.get_many(CONTACTS, [a.crm_id for a in part])
        done = []  # the contacts whose tag this run took off: a contact gone from the
        # CRM, or untagged there already, is only unlinked
        with self.store.batch() as batch:
            for action in part:
                doc = current.get(action.crm_id)
                if doc is not None and self._saved_since_read(action.crm_id, doc):
                    continue
                if doc is not None and self.tag_id in doc.get("tagIds", []):
                    tags = [t for t in doc["tagIds"] if t != self.tag_id]
                    batch.put(CONTACTS, action.crm_id,
                              {**doc, "tagIds": tags, "modifiedAt": self._now()})  # fmt: skip
                    done.append(action)
                self._unlink_in(batch, action)
        self.log.count("untagged", len(done))
        for action in done:
            name = self._name_of(action.crm_id)
            self.log.note("untagged", "crm", crm_id=action.crm_id,
                          google_id=action.resource_name, name=name)  # fmt: skip

    def _saved_since_read(self, crm_id: str, doc: dict[str, Any]) -> bool:
        """Whether the contact must be left as it is, saved since the plan read it (a
        sync writes over it: the CRM has no etag, and the next run merges again; an
        undo never does, ``core.contacts_undo``)."""
        return False

    def _name_of(self, crm_id: str) -> str:
        """The pair's name as last synced (else as the CRM holds it), for the journal."""
        link = self.snap.links.get(crm_id)
        contact = self.snap.crm.get(crm_id)
        fields = link.fields if link is not None else contact.fields if contact else {}
        return cm.display_name(fields)

    def _ambiguous(self, actions: list[AmbiguousEmail], retry: bool) -> None:
        """Said per item in the run's result; read again until resolved: a contact two
        persons share when either side changes (or a day on, ``runs.RECHECK_AFTER``),
        one whose search failed at the next run."""
        for action in actions:
            persons = f" ({', '.join(action.resource_names)})" if action.resource_names else ""
            kind = "AmbiguousEmail" if action.resource_names else "SearchFailed"
            self.log.errors.append({"id": action.crm_id, "kind": kind,
                                    "message": f"not pushed to Google: {action.reason}"
                                               f"{persons}; nothing was created or linked",
                                    "googleIds": list(action.resource_names)})  # fmt: skip
            if action.resource_names:  # the user's to resolve: read again when a side
                self.log.later_crm.add(action.crm_id)  # changes, or a day on
            else:  # Google's search failed: next run
                self.log.retry_crm.add(action.crm_id)
        if actions:
            self.log.count("ambiguous", len(actions))

    def _drops(self, actions: list[DropLink], retry: bool) -> None:
        self._unlink(actions)

    def _unlink(self, actions: Sequence[Any]) -> None:
        for part in chunked(list(actions), MAX_BATCH_WRITES):
            with self.store.batch() as batch:
                for action in part:
                    self._unlink_in(batch, action)

    def _unlink_in(self, batch: Any, action: Any) -> None:
        """Park the link when both records live on (a re-tag or a move back rejoins
        them); delete it when one of them is gone."""
        key = self.links.key(action.crm_id)
        link = self.snap.links.get(action.crm_id)
        if getattr(action, "park", False) and link is not None:
            batch.put(LINKS, key, {**self._link_doc(action.crm_id, None, link.resource_name,
                                                    link.etag or "", link.fields),
                                   "parked": True})  # fmt: skip
        else:
            batch.delete(LINKS, key)


class _Batches:
    """Document writes and email index changes, packed into as few store batches as
    the write limit allows; an item's writes share a batch with its first changes."""

    def __init__(self, store: DocumentStore, entries: email_index.EntryWrites) -> None:
        self.store, self.entries = store, entries
        self.writes: list[tuple[str, str, dict]] = []

    def add(self, writes: list[tuple[str, str, dict]], changes: list[Any]) -> None:
        if (
            self._pending()
            and self._used(len(writes) + self.entries.cost(changes)) > MAX_BATCH_WRITES
        ):
            self._commit()
        self.writes.extend(writes)
        for change in changes:
            if self._used(self.entries.cost([change])) > MAX_BATCH_WRITES:
                self._commit()  # one contact's changes alone over a batch: the rest follow
            self.entries.change(*change)

    def close(self) -> None:
        if self._pending():
            self._commit()

    def _pending(self) -> bool:
        return bool(self.writes) or bool(self.entries)

    def _used(self, more: int) -> int:
        return len(self.writes) + len(self.entries) + more

    def _commit(self) -> None:
        with self.store.batch() as batch:
            for collection, doc_id, data in self.writes:
                batch.put(collection, doc_id, data)
            self.entries.write(batch)
        self.writes.clear()


# --- converting port data into planner inputs -------------------------------------------


def person_from_api(person: dict[str, Any], group: str) -> Person:
    meta = person.get("metadata", {})
    sources = meta.get("sources") or [{}]
    updated = sources[0].get("updateTime")
    groups = frozenset(cm.group_names(person))
    fields = cm.from_person(person)
    return Person(
        resource_name=person["resourceName"],
        etag=person.get("etag", ""),
        fields=fields,
        in_group=group in groups,
        deleted=bool(meta.get("deleted")),
        updated_at=parse_timestamp(updated) if updated else None,
        crm_id=cm.client_data_id(person),
        groups=groups,
        emails=frozenset(e["value"].lower() for e in fields["emails"]),
        yearless_birthday=cm.yearless_birthday(person),
        raw=Packed(current_values(person)),
    )


def current_values(person: dict[str, Any]) -> dict[str, Any]:
    """What an update needs of a person as read (``core.person_patch``): its etag and
    the items of the fields it may write, less what an update body never carries
    (names Google derives, canonical forms), with only the item metadata that decides
    which items are ours (a source other than CONTACT) and which is primary. The rest
    (sources, memberships, clientData, source ids) is left behind."""
    out: dict[str, Any] = {"etag": person.get("etag", "")}
    for name in cm.UPDATE_FIELDS.split(","):
        items = person.get(name)
        if items is not None:
            drop = _DERIVED.get(name, ())
            out[name] = [_slim(i, drop) for i in items] if isinstance(items, list) else items
    return out


# keys person_patch drops from the items it writes: Google derives them again
_DERIVED = {"names": ("displayName", "displayNameLastFirst", "unstructuredName"),
            "emailAddresses": ("canonicalForm",), "phoneNumbers": ("canonicalForm",)}  # fmt: skip


def _slim(item: Any, drop: tuple[str, ...]) -> Any:
    if not isinstance(item, dict):
        return item
    slim = {k: v for k, v in item.items() if k != "metadata" and k not in drop}
    meta = item.get("metadata") or {}
    kept: dict[str, Any] = {}
    if meta.get("primary"):
        kept["primary"] = meta["primary"]
    source = meta.get("source")
    if isinstance(source, dict) and source.get("type", "CONTACT") != "CONTACT":
        kept["source"] = {"type": source["type"]}
    if kept:
        slim["metadata"] = kept
    return slim


class Packed(Mapping[str, Any]):
    """A person's current values (``current_values``), kept as compact JSON until an
    update reads them: a run that lists every person of a large account holds one
    string each instead of their items' dicts. Read, they are decoded once."""

    __slots__ = ("_data", "_text")

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._text: str | None = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
        self._data: dict[str, Any] | None = None

    def _values(self) -> dict[str, Any]:
        if self._data is None:
            self._data = json.loads(self._text or "{}")
            self._text = None
        return self._data

    def __getitem__(self, name: str) -> Any:
        return self._values()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())


def contact_from_doc(contact: Any, tag_id: str) -> CrmContact:
    fields = cm.from_contact(contact)
    return CrmContact(
        id=contact.id,
        fields=fields,
        tagged=tag_id in contact.tagIds and contact.deletedAt is None,
        modified_at=parse_timestamp(contact.modifiedAt),
        emails=frozenset(e["value"].lower() for e in fields["emails"]),
        deleted=contact.deletedAt is not None,
    )


def link_from_doc(doc: dict[str, Any]) -> LinkRecord:
    return LinkRecord(*pairs.link_basics(doc, cm.normalize), bool(doc.get("parked")))


def _crm_changes(before: dict[str, Any], after: cm.ContactFields) -> dict[str, tuple[Any, Any]]:
    """The synced fields a CRM write changes, (before, after): ``before`` the stored
    contact as the write found it."""
    was = cm.normalize(before)
    return {k: (was[k], after.get(k)) for k in cm.FIELDS if was[k] != after.get(k)}
