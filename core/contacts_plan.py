"""The contacts planner: ``plan(snapshot, policy, force) -> list[Action]``, pure.

A snapshot holds what the engine gathered: CRM contacts (changed ones, plus any it
looked up), Google persons (changed ones, or all of them on a full pass), the links
(the last synced state of each pair), the contact group, and CRM contacts by email
for linking imports. A side marked ``complete`` listed everything, so an absent item
there is gone; otherwise absence means "unchanged". Presence alone never means
changed: a side changed only if the fingerprint of its synced fields differs from the
link's (echoes of our own writes and etag churn are therefore no-ops). Fields equal to
the link's are its content, so the hash is only taken for fields that differ: a pair
that changed on neither side costs two dict comparisons (``_quiet``).

The decision table, one row per case (DESIGN.md, "Sync semantics / Contacts"):

    linked pair
      CRM gone or untagged, Google gone  -> DropLink
      CRM gone or untagged               -> LeaveGroup (the person stays in Google)
      Google deleted or left the group   -> Untag (the CRM contact stays)
      neither side changed               -> nothing (SaveLink refresh if the etag moved)
      one or both sides changed          -> Reconcile (3-way merge; write where differs)
    unlinked person in the group
      carries our clientData id          -> Reconcile + link (a retried create)
      email matches an unlinked contact  -> Reconcile with tag (linked by email)
      otherwise                          -> ImportPerson (new CRM contact, tagged)
    unlinked tagged CRM contact
      a person carries its id            -> Reconcile (+ rejoin the group)
      one unlinked person has its email  -> Reconcile (+ join the group; linked by email)
      several, or one wanted by several  -> AmbiguousEmail (reported, nothing created)
      otherwise                          -> CreatePerson (in the group, with clientData)

Persons that may hold a new contact's email: on a full pass every person is listed;
on incremental runs the engine adds those People search finds (``Snapshot.found``,
``core.contacts_lookup``). A person linked to any contact (parked links too) is
never taken for another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from core import pairs
from core.contact_mapping import LIST_ENTRIES, ContactFields, changed_person_fields, fingerprint
from core.errors import SideEmpty
from core.merge import Policy
from core.pairs import QUIET, Side

GUARD_MIN_LINKS = pairs.GUARD_MIN_LINKS


@dataclass(frozen=True, slots=True)
class CrmContact:
    id: str
    fields: ContactFields
    tagged: bool  # carries the user's private tag and is not deleted
    modified_at: datetime
    emails: frozenset[str] = frozenset()
    deleted: bool = False

    @property
    def fp(self) -> str:  # not cached (slots): the planner compares fields first
        return fingerprint(self.fields)


@dataclass(frozen=True, slots=True)
class Person:
    resource_name: str
    etag: str
    fields: ContactFields
    in_group: bool
    deleted: bool = False
    updated_at: datetime | None = None
    crm_id: str | None = None  # our clientData id, if the person carries one
    groups: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    yearless_birthday: str | None = None  # --MM-DD: a Google birthday the CRM cannot hold
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)  # as read

    @property
    def fp(self) -> str:  # not cached (slots): the planner compares fields first
        return fingerprint(self.fields)

    def view(self, base: ContactFields) -> ContactFields:
        """The synced fields as compared with ``base``: a yearless birthday with the
        month and day of base's birthday reads as that birthday (so that neither side
        takes it for an edit)."""
        born = base.get("birthday")
        if self.yearless_birthday and born and born[4:] == self.yearless_birthday[1:]:
            return {**self.fields, "birthday": born}
        return self.fields


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """The last synced state of a pair. A *parked* link is a pair that was dissolved
    (untagged, or left the group) while both records still exist: it is remembered so
    that re-tagging, or moving the person back, rejoins the same two records."""

    crm_id: str
    resource_name: str
    etag: str | None
    fingerprint: str
    fields: ContactFields
    parked: bool = False


@dataclass(frozen=True)
class Snapshot:
    crm: Mapping[str, CrmContact]
    google: Mapping[str, Person]  # by resource name
    links: Mapping[str, LinkRecord]  # by CRM id
    group: str
    crm_complete: bool = False
    google_complete: bool = False
    by_email: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # email -> CRM ids
    retagged: bool = False  # the user chose another private tag since the last run
    # the Google account is the one the links were made with (core.runs): a complete
    # read without them is then a user's deletions, not another account
    account_confirmed: bool = False
    found: Mapping[str, Person] = field(default_factory=dict)  # by email search, unlinked
    search_failed: str = ""  # why the email search could not be made: push nothing blind


# --- actions ---------------------------------------------------------------------------


class Why(StrEnum):
    """Why a pair is reconciled: what the run's journal and report say of it."""

    CHANGED = "changed"  # a side changed since the last sync
    ETAG = "etag"  # only the person's etag moved: the link learns it
    EMAIL = "email"  # first linked by a shared email
    CLIENT_DATA = "clientData"  # first linked by our id on the person (a crash's rerun)
    REJOINED = "rejoined"  # a parked pair comes back (re-tagged, or back in the group)


@dataclass(frozen=True, kw_only=True, slots=True)
class CreatePerson:
    crm_id: str
    fields: ContactFields


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportPerson:
    resource_name: str
    etag: str
    fields: ContactFields


@dataclass(frozen=True, kw_only=True, slots=True)
class Reconcile:
    """Bring a pair to ``fields``: write Google and/or the CRM where they differ, then
    save the link. ``tag`` adds the private tag; ``join_group`` puts the person back.
    ``person_fields`` are the person fields a Google write changes (only those are
    written, into the person's current values: ``core.person_patch``)."""

    crm_id: str
    resource_name: str
    etag: str
    fields: ContactFields
    write_google: bool
    write_crm: bool
    conflicts: tuple[str, ...] = ()
    tag: bool = False
    join_group: bool = False
    reason: Why = Why.CHANGED
    person_fields: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class LeaveGroup:
    crm_id: str
    resource_name: str
    last_group: bool | None  # True: add to myContacts first; None: not known
    park: bool = True  # keep the link parked (False: the CRM contact is deleted)


@dataclass(frozen=True, kw_only=True, slots=True)
class Untag:
    crm_id: str
    resource_name: str
    park: bool = True  # keep the link parked (False: the person was deleted)


@dataclass(frozen=True, kw_only=True, slots=True)
class DropLink:
    crm_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AmbiguousEmail:
    """A tagged contact to push whose emails Google persons already hold, but not one
    person for this one contact: nothing is created or linked, the run reports it."""

    crm_id: str
    resource_names: tuple[str, ...]
    reason: str


Action = CreatePerson | ImportPerson | Reconcile | LeaveGroup | Untag | DropLink | AmbiguousEmail


# --- planning --------------------------------------------------------------------------


def plan(snap: Snapshot, policy: Policy = Policy.FIELD_MOST_RECENT, force: bool = False) -> list:
    """Every action one run should take, in a deterministic order: the linked pairs,
    then the unlinked persons in the group, then the unlinked tagged contacts."""
    active = {i: link for i, link in snap.links.items() if not link.parked}
    actions = _linked_pairs(snap, active, policy)
    _guard(snap, active, actions, force)
    found = _Unlinked(snap, policy, active)
    people = [found.person(snap.google[name]) for name in found.people()]
    actions += [a for a in people if a is not None]
    return actions + found.contacts(actions)


def _linked_pairs(snap: Snapshot, active: Mapping[str, LinkRecord], policy: Policy) -> list:
    """The actions of the linked pairs, in CRM id order: most have nothing to do, so
    only the pairs that do are sorted."""
    planned = []
    for crm_id, link in active.items():
        contact, person = snap.crm.get(link.crm_id), snap.google.get(link.resource_name)
        if not _quiet(snap, link, contact, person):
            found = _linked(snap, link, policy)
            if found:
                planned.append((crm_id, found))
    return [a for _, found in sorted(planned, key=_first) for a in found]


def _ours_elsewhere(snap: Snapshot, person: Person) -> bool:
    """The person carries our clientData id of a CRM contact this run has not linked it
    to: not read (skipped as malformed, say), or taken by another person. Imported, it
    would be a second CRM contact of one; left alone instead. A contact deleted in the
    CRM is the exception: the user moving its person into the group asks to import it."""
    if not person.crm_id:
        return False
    contact = snap.crm.get(person.crm_id)
    return contact is None or not contact.deleted


class _Unlinked:
    """The unlinked records of one plan, each tried against an ordered tuple of
    matchers, the first that answers wins (the module's table):

        a person in the group   parked link -> our clientData id -> an email -> import
                                (not a person carrying the clientData id of a contact that
                                is not known deleted: left alone)
        a tagged contact        parked link -> a person with our clientData id -> push

    ``claimed`` holds the CRM contacts taken so far, so that none is taken twice."""

    def __init__(self, snap: Snapshot, policy: Policy, active: Mapping[str, LinkRecord]):
        self.snap, self.policy = snap, policy
        parked = [link for link in snap.links.values() if link.parked]
        self.parked = {link.crm_id: link for link in parked}
        self.parked_people = {link.resource_name: link for link in parked}
        self.linked_people = {link.resource_name for link in active.values()}
        self.claimed: set[str] = set(active)

    def people(self) -> list[str]:
        return sorted(name for name, person in self.snap.google.items()
                      if name not in self.linked_people and not person.deleted
                      and person.in_group)  # fmt: skip

    def person(self, person: Person) -> Any:
        for matcher in (self._parked_person, self._own_contact, self._email_contact):
            action = matcher(person)
            if action is not None:
                self.claimed.add(action.crm_id)
                return action
        if _ours_elsewhere(self.snap, person):
            return None
        return ImportPerson(
            resource_name=person.resource_name, etag=person.etag, fields=person.fields
        )

    def _parked_person(self, person: Person) -> Reconcile | None:
        back = self.parked_people.get(person.resource_name)  # moved back into the group
        if back is not None and _alive(self.snap.crm.get(back.crm_id)):
            return _rejoin(self.snap, back, self.policy)
        return None

    def _own_contact(self, person: Person) -> Reconcile | None:
        own = person.crm_id
        if own and own not in self.claimed and _alive(self.snap.crm.get(own)):
            return _first_link(self.snap.crm[own], person, Why.CLIENT_DATA)
        return None

    def _email_contact(self, person: Person) -> Reconcile | None:
        for email in sorted(person.emails):
            for crm_id in self.snap.by_email.get(email, ()):
                if crm_id not in self.claimed and _alive(self.snap.crm.get(crm_id)):
                    return _first_link(self.snap.crm[crm_id], person, Why.EMAIL)
        return None

    def contacts(self, actions: list) -> list:
        """The tagged contacts no pair holds: rejoined, linked to their own person, or
        pushed (``_push``)."""
        snap = self.snap
        candidates = sorted(i for i, c in snap.crm.items() if i not in self.claimed and c.tagged)
        if not candidates:
            return []
        self.taken = {link.resource_name for link in snap.links.values()} | {
            a.resource_name for a in actions if isinstance(a, Reconcile | ImportPerson)
        }
        known = {**snap.found, **snap.google}.values()
        self.by_crm_id = {p.crm_id: p for p in known if p.crm_id and not p.deleted}
        found, to_push = [], []
        for crm_id in candidates:
            contact = snap.crm[crm_id]
            action = self._parked_contact(contact) or self._own_person(contact)
            if action is None:
                to_push.append(contact)
            else:
                found.append(action)
        return found + _push(snap, to_push, self.taken)

    def _parked_contact(self, contact: CrmContact) -> Reconcile | None:
        link = self.parked.get(contact.id)  # tagged again
        person = self.snap.google.get(link.resource_name) if link else None
        if link and person is not None and not person.deleted:
            return _rejoin(self.snap, link, self.policy)
        return None

    def _own_person(self, contact: CrmContact) -> Reconcile | None:
        own = self.by_crm_id.get(contact.id)
        if own is None or own.resource_name in self.linked_people:
            return None
        self.taken.add(own.resource_name)
        return _with_group(_first_link(contact, own, Why.CLIENT_DATA), own)


def _first(item: tuple[str, Any]) -> str:
    return item[0]


def _quiet(snap: Snapshot, link: LinkRecord, contact: CrmContact | None,
           person: Person | None) -> bool:  # fmt: skip
    """A quick answer for the common linked pair: both sides still there (or not read)
    with the link's fields and etag, so ``_linked`` would plan nothing. False means
    "ask ``_linked``", never that something changed."""
    if contact is None:
        if snap.crm_complete:
            return False
    elif not contact.tagged or contact.fields != link.fields:
        return False
    if person is None:
        return not snap.google_complete
    return (
        person.etag == link.etag
        and person.in_group
        and not person.deleted
        and person.yearless_birthday is None
        and person.fields == link.fields
    )


def _alive(contact: CrmContact | None) -> bool:
    return contact is not None and not contact.deleted


def _sides(snap: Snapshot, link: LinkRecord, in_scope: bool = True) -> tuple[Side, Side]:
    """Each side of a linked pair against the link (``core.pairs.Side``). The CRM side
    is GONE when untagged or deleted (or absent from a complete read), Google's when
    deleted or out of the group (or absent from a complete read). ``in_scope=False``
    compares the fields only (a parked pair coming back)."""
    contact = snap.crm.get(link.crm_id)
    person = snap.google.get(link.resource_name)
    crm_gone = (contact is None and snap.crm_complete) or (
        contact is not None and not contact.tagged
    )
    google_gone = snap.google_complete if person is None else person.deleted or not person.in_group
    crm = pairs.side(read=contact is not None, gone=in_scope and crm_gone,
                     fields=contact.fields if contact else None, synced=link.fields,
                     synced_fp=link.fingerprint)  # fmt: skip
    google = pairs.side(read=person is not None, gone=in_scope and google_gone,
                        fields=person.view(link.fields) if person else None,
                        synced=link.fields, synced_fp=link.fingerprint)  # fmt: skip
    return crm, google


def _linked(snap: Snapshot, link: LinkRecord, policy: Policy) -> list:
    """A linked pair: the rows of the module's table, by the state of each side."""
    person = snap.google.get(link.resource_name)
    match _sides(snap, link):
        case Side.GONE, Side.GONE:
            return [DropLink(crm_id=link.crm_id)]
        case Side.GONE, _:  # untagged or deleted in the CRM: the person stays in Google
            return [_leave(snap, link, person)]
        case _, Side.GONE:  # deleted in Google or out of the group: the contact stays
            park = person is not None and not person.deleted
            return [Untag(crm_id=link.crm_id, resource_name=link.resource_name, park=park)]
        case crm, google:
            found = _settle(snap, link, crm, google, policy)
            return [found] if found else []


def _leave(snap: Snapshot, link: LinkRecord, person: Person | None) -> LeaveGroup:
    last = None if person is None else person.groups <= {snap.group}
    return LeaveGroup(crm_id=link.crm_id, resource_name=link.resource_name, last_group=last,
                      park=_alive(snap.crm.get(link.crm_id)))  # fmt: skip


def _as_synced(link: LinkRecord, etag: str, reason: Why = Why.CHANGED) -> Reconcile:
    """The pair as last synced, with nothing to write: the link saved with ``etag``."""
    return Reconcile(crm_id=link.crm_id, resource_name=link.resource_name, etag=etag,
                     fields=link.fields, write_google=False, write_crm=False,
                     reason=reason)  # fmt: skip


def _settle(snap: Snapshot, link: LinkRecord, crm: Side, google: Side,
            policy: Policy) -> Reconcile | None:  # fmt: skip
    """A pair in scope on both sides: nothing when neither side changed (a refresh of
    the etag when it moved), else the three-way merge, written where it differs."""
    contact = snap.crm.get(link.crm_id)
    person = snap.google.get(link.resource_name)
    etag = person.etag if person else (link.etag or "")
    if crm in QUIET and google in QUIET:
        if person is not None and person.etag != link.etag:
            return _as_synced(link, etag, Why.ETAG)
        return None
    crm_fields = contact.fields if contact else link.fields
    google_fields = person.view(link.fields) if person else link.fields
    merged = pairs.reconcile(link.fields, crm_fields, google_fields,
                             contact.modified_at if contact else None,
                             person.updated_at if person else None, policy,
                             LIST_ENTRIES)  # fmt: skip
    to_write = changed_person_fields(google_fields, merged.fields)
    return Reconcile(
        crm_id=link.crm_id,
        resource_name=link.resource_name,
        etag=etag,
        fields=merged.fields,
        write_google=bool(to_write),
        write_crm=pairs.differ(merged.fields, crm_fields),
        conflicts=merged.conflicts,
        person_fields=to_write,
    )


def _rejoin(snap: Snapshot, link: LinkRecord, policy: Policy) -> Reconcile:
    """A parked pair comes back: tag the contact, put the person back in the group, and
    merge what changed meanwhile against the state they were parked with."""
    person = snap.google[link.resource_name]
    crm, google = _sides(snap, link, in_scope=False)
    base = _settle(snap, link, crm, google, policy) or _as_synced(link, person.etag)
    contact = snap.crm.get(link.crm_id)
    tag = not (contact and contact.tagged)
    return replace(base, etag=person.etag, reason=Why.REJOINED, tag=tag,
                   join_group=not person.in_group)  # fmt: skip


def _first_link(contact: CrmContact, person: Person, reason: Why) -> Reconcile:
    """Link a pair that has no last-synced state: the newer side wins each difference,
    and a field empty on one side is filled from the other."""
    google = person.view(contact.fields)
    crm_newer = pairs.newest_is_crm(contact.modified_at, person.updated_at)
    fields = pairs.first_link(contact.fields, google, crm_newer, fill=True)
    to_write = changed_person_fields(google, fields)
    return Reconcile(
        crm_id=contact.id,
        resource_name=person.resource_name,
        etag=person.etag,
        fields=fields,
        write_google=bool(to_write),
        write_crm=pairs.differ(fields, contact.fields),
        tag=not contact.tagged,
        reason=reason,
        person_fields=to_write,
    )


def _with_group(action: Reconcile, person: Person) -> Reconcile:
    return replace(action, join_group=not person.in_group)


def _push(snap: Snapshot, contacts: list[CrmContact], taken: set[str]) -> list:
    """Tagged contacts with no person yet: linked to the one unlinked person holding
    their emails (moved into the group), else created; never a guess between several."""
    pool = {n: p for n, p in {**snap.google, **snap.found}.items()
            if not p.deleted and n not in taken}  # fmt: skip
    holders = {c.id: sorted(n for n, p in pool.items() if p.emails & c.emails) for c in contacts}
    wanted: dict[str, int] = {}
    for names in holders.values():
        for name in names:
            wanted[name] = wanted.get(name, 0) + 1
    return [_push_one(snap, c, holders[c.id], pool, wanted) for c in contacts]


def _push_one(snap: Snapshot, contact: CrmContact, names: list[str], pool: dict[str, Person],
              wanted: dict[str, int]) -> Any:  # fmt: skip
    """One tagged contact without a person: ``names`` are the unlinked persons holding
    its emails, ``wanted`` how many such contacts each of them is wanted by."""
    if not names:
        if snap.search_failed and contact.emails:  # we could not look: never a guess
            return _ambiguous(contact, names, snap.search_failed)
        return CreatePerson(crm_id=contact.id, fields=contact.fields)
    if len(names) > 1:
        return _ambiguous(contact, names, "several Google contacts have its emails")
    if wanted[names[0]] > 1:
        return _ambiguous(contact, names, "other CRM contacts have the emails of this Google "
                                          "contact too")  # fmt: skip
    person = pool[names[0]]
    return _with_group(_first_link(contact, person, Why.EMAIL), person)


def _ambiguous(contact: CrmContact, names: list[str], why: str) -> AmbiguousEmail:
    return AmbiguousEmail(crm_id=contact.id, resource_names=tuple(names), reason=why)


def _guard(snap: Snapshot, active: Mapping[str, LinkRecord], actions: list, force: bool) -> None:
    """One side suddenly dropping every link means a broken side (a different Google
    account, a wiped CRM), not a user's intent. While the Google account cannot be
    confirmed as the links' own, a *complete* read that lists none of the linked
    records stops the run whatever the number of links. Otherwise, and for explicit
    deletions (tombstones, untagging), it takes ``GUARD_MIN_LINKS`` or more links all
    gone at once: a user who deleted their only synced contact is not stuck."""
    if not pairs.guarded(len(active), force, snap.account_confirmed):
        return
    listed = snap.google_complete and any(_listed(snap.google.get(link.resource_name))
                                          for link in active.values())  # fmt: skip
    pairs.refuse_empty("Google", len(active), "contacts", complete=snap.google_complete,
                       holds_any=listed)  # fmt: skip
    held = snap.crm_complete and any(crm_id in snap.crm for crm_id in active)
    pairs.refuse_empty("CRM", len(active), "contacts", complete=snap.crm_complete,
                       holds_any=held)  # fmt: skip
    if len(active) < GUARD_MIN_LINKS:
        return
    sides = [("Google", Untag)] + ([] if snap.retagged else [("CRM", LeaveGroup)])
    for side, kind in sides:  # a new tag may untag them all: the user's choice
        if sum(isinstance(a, kind | DropLink) for a in actions) == len(active):
            raise SideEmpty(side, len(active))


def _listed(person: Person | None) -> bool:
    return person is not None and not person.deleted
