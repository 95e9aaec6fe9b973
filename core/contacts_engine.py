"""One user's contacts sync run: lease, gather, plan, execute, persist.

    run(user, options)
      lease    syncState/{user}:contacts, in a transaction (a second run is a no-op)
      gather   Google: the People sync token's changes (a full listing when there is
               none, or it expired); CRM: contacts with modifiedAt past the cursor
               less an overlap window (equal or late timestamps are never missed;
               re-reads are free because unchanged fingerprints plan nothing); the
               links those touch; items that failed last time; CRM contacts holding
               the emails of persons to import (the email index, not a scan)
      plan     core.contacts_plan.plan (pure)
      execute  core.contacts_exec (batched writes, links saved per item)
      persist  cursors move only now, after the whole run succeeded; a syncRuns
               record with counts and errors; lastRunAt / lastSuccessAt

``--dry-run`` gathers and plans, and writes nothing anywhere (not even the lease).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from core import email_index
from core.contact_mapping import normalize
from core.contacts_exec import (
    ContactsExecutor,
    contact_from_doc,
    link_from_doc,
    person_from_api,
)
from core.contacts_lookup import with_found
from core.contacts_plan import CrmContact, LinkRecord, Person, Snapshot, plan
from core.errors import (
    GoogleError,
    NoTag,
    SettingsError,
    SyncTokenExpired,
    UnknownUser,
)
from core.gather import Preloaded, crm_changes, read_by_id, read_once
from core.model import (
    CONTACTS,
    LINKS,
    SYNC_SETTINGS,
    TAGS,
    USERS,
    Contact,
    Tag,
    link_id,
    load,
    load_each,
    section_settings,
    stamp,
)
from core.pairs import links_from, repair_links
from core.ports import (
    Clock,
    DocumentStore,
    Filter,
    PeopleChanges,
    PeoplePort,
    Progress,
    no_progress,
)
from core.runs import (
    DEFAULT_OPTIONS,
    Options,
    Report,
    RunLog,
    later_state,
    recheck,
    run_section,
)

CRM_OVERLAP = email_index.OVERLAP
NEW_GROUP = "contactGroups/(to be created)"
LINK_CHUNK = 500  # links read by id per call, and made LinkRecords before the next ones


@dataclass(frozen=True)
class ContactsSettings:
    """The user's contacts sync settings, checked."""

    user_id: str
    tag_id: str
    interval: timedelta


@dataclass
class Gathered:
    snapshot: Snapshot
    google_cursor: str
    crm_cursor: str | None
    crm_read_at: str
    group: str
    full_pass: bool
    later: dict[str, str] = field(default_factory=dict)  # retryCrmLater not read this run


class ContactsEngine:
    """settings -> gather -> plan -> execute; what flows between them is returned."""

    def __init__(
        self,
        store: DocumentStore,
        people: PeoplePort,
        clock: Clock,
        *,
        new_id: Callable[[], str],
        group_name: str = "CRM",
        progress: Progress = no_progress,
        preloaded: Preloaded | None = None,
    ) -> None:
        self.store, self.people, self.clock = store, people, clock
        self.new_id, self.group_name, self.progress = new_id, group_name, progress
        self.preloaded = preloaded or {}

    name = "contacts"

    def run(self, user_id: str, options: Options = DEFAULT_OPTIONS) -> Report:
        return run_section(self.store, self.clock, self.new_id, self, user_id, options)

    def sync(self, settings: ContactsSettings, state: dict[str, Any], options: Options,
             log: RunLog, report: Report) -> dict[str, Any]:  # fmt: skip
        gathered = self.gather(settings, state, options, log)
        report.full_pass = gathered.full_pass
        snapshot = replace(gathered.snapshot, account_confirmed=report.account_confirmed)
        report.plan = self.plan(snapshot, options)
        if not options.dry_run:
            self.execute(settings, replace(gathered, snapshot=snapshot), report.plan, options,
                         log)  # fmt: skip
        repaired = not options.dry_run and repair_links(self.store, log)
        return {
            "googleCursor": None if repaired else gathered.google_cursor,
            "crmCursor": None if repaired else gathered.crm_cursor,
            "crmReadAt": gathered.crm_read_at,
            "groupResourceName": gathered.group,
            "tagId": settings.tag_id,
            "pendingCreates": False,
            "retryCrm": sorted(log.retry_crm),
            "retryCrmLater": later_state(gathered.later, log, self.clock.now()),
            "retryGoogle": sorted(log.retry_google),
        }

    def plan(self, snapshot: Snapshot, options: Options) -> list[Any]:
        actions = plan(snapshot, options.policy, options.force)
        self.progress(f"planned {len(actions)} actions")
        return actions

    def execute(self, settings: ContactsSettings, gathered: Gathered, actions: list[Any],
                options: Options, log: RunLog) -> None:  # fmt: skip
        executor = ContactsExecutor(self.store, self.people, self.clock,
                                    user_id=settings.user_id, tag_id=settings.tag_id,
                                    group=gathered.group, policy=options.policy, log=log,
                                    progress=self.progress)  # fmt: skip
        executor.run(actions, gathered.snapshot)

    # --- settings ---------------------------------------------------------------------

    def settings(self, user_id: str) -> ContactsSettings:
        if read_once(self.store, self.preloaded, USERS, user_id) is None:
            raise UnknownUser(user_id)
        raw = read_once(self.store, self.preloaded, SYNC_SETTINGS, user_id) or {}
        settings = section_settings(user_id, raw, "contacts")
        tag_id = settings.contacts.tagId
        if not tag_id:
            raise NoTag(f"user {user_id} has not chosen a private tag for contacts sync")
        tag_doc = self.store.get(TAGS, tag_id)
        if tag_doc is None:
            raise SettingsError(f"user {user_id}'s contacts tag {tag_id} does not exist")
        tag = load(Tag, TAGS, tag_id, tag_doc)
        if tag.kind != "private" or tag.ownerId != user_id:
            raise SettingsError(
                f"tag {tag_id} is not a private tag of user {user_id}; "
                "only a user's own private tag can drive the sync"
            )
        return ContactsSettings(user_id, tag_id,
                                timedelta(minutes=settings.contacts.intervalMinutes))  # fmt: skip

    # --- gather -----------------------------------------------------------------------

    def gather(self, settings: ContactsSettings, state: dict[str, Any], options: Options,
               log: RunLog) -> Gathered:  # fmt: skip
        user_id, tag_id = settings.user_id, settings.tag_id
        group = self._group(state, options)
        persons, changes = self._google_changes(group, state, options)
        # a new private tag in the settings: every CRM contact is read again this run,
        # so that those with the new tag join and those with only the old one leave
        retagged = bool(state.get("tagId")) and state.get("tagId") != tag_id
        if retagged:
            self.progress("the private tag changed: reading every CRM contact")
        # ... as when deletes piled up past what the state keeps (``crmFullPassAt``)
        full = options.full or retagged or state.get("crmFullPassAt") is not None
        crm_cursor = None if full else state.get("crmCursor")
        now = self.clock.now()
        read_at = stamp(now)
        # contacts put off (two persons hold their email): read again once Google changed
        later, kept = recheck(state, now, changed=bool(persons) or changes.complete)
        also = sorted(set(state.get("retryCrm") or []) | set(later))
        crm, next_cursor = self._crm_changes(tag_id, crm_cursor, state, also, log)
        complete_crm = crm_cursor is None
        self.progress(f"CRM: {len(crm)} contacts {'listed' if complete_crm else 'changed'}")

        if changes.complete or complete_crm:
            links = self._all_links(user_id, crm, persons, log)
        else:
            links = self._links_for(user_id, crm, persons, log)
        if complete_crm:  # linked contacts the listing missed are read by id
            self._read_unlisted(tag_id, crm, links, log)
        _set_aside(log, crm, links, persons)
        self._fetch_parked(crm, persons, links, group)
        by_email = self._by_email(settings, crm, persons, links, complete_crm, options.dry_run,
                                  log)  # fmt: skip
        snapshot = Snapshot(
            crm, persons, links, group, complete_crm, changes.complete, by_email, retagged
        )
        snapshot = with_found(snapshot, self.people, self.store, user_id)  # searchContacts
        return Gathered(snapshot, changes.next_sync_token, next_cursor, read_at, group,
                        changes.complete or complete_crm, kept)  # fmt: skip

    def _read_unlisted(self, tag_id: str, crm: dict[str, CrmContact],
                       links: dict[str, LinkRecord], log: RunLog) -> None:  # fmt: skip
        """The linked contacts a complete listing did not list, read by id (a contact
        without ``modifiedAt`` is not listed: it is reported, never taken as deleted)."""
        unlisted = sorted(i for i, link in links.items() if i not in crm
                          and i not in log.skipped_ids and not link.parked)  # fmt: skip

        def take(contact: Contact) -> None:
            crm[contact.id] = contact_from_doc(contact, tag_id)

        read_by_id(self.store, CONTACTS, Contact, unlisted, log, take)

    def _group(self, state: dict[str, Any], options: Options) -> str:
        group = state.get("groupResourceName")
        if group:
            return group
        if options.dry_run:  # look, never create
            return self.people.find_group(self.group_name) or NEW_GROUP
        return self.people.find_or_create_group(self.group_name)

    def _google_changes(self, group: str, state: dict[str, Any],
                        options: Options) -> tuple[dict[str, Person], PeopleChanges]:  # fmt: skip
        """The persons changed since the People sync token (all of them without one),
        and those to read again; each raw person becomes a Person as its page arrives."""
        token = None if options.full else state.get("googleCursor")
        if token and state.get("pendingCreates"):
            # the last run failed after creating persons: its creates may not show in
            # the deltas yet, so list everything and find them by clientData
            self.progress("the last run was cut short after creating contacts: listing all")
            token = None
        convert = functools.partial(person_from_api, group=group)
        changes = self._listing(token, convert)
        persons = {p.resource_name: p for p in changes.persons}
        changes.persons.clear()  # the dict holds them now
        again = sorted(set(state.get("retryGoogle", [])) - set(persons))
        for name, raw in self.people.get(again).items():
            persons[name] = person_from_api(raw, group)
        self.progress(
            f"Google: {len(persons)} contacts {'listed' if changes.complete else 'changed'}"
        )
        return persons, changes

    def _listing(self, token: str | None, convert: Callable[[dict], Person]) -> PeopleChanges:
        try:
            return self.people.changes(token, convert)
        except SyncTokenExpired:
            self.progress("People sync token expired: listing every contact")
        except GoogleError as exc:
            if not token or exc.status != 400:
                raise
            # a token Google no longer takes as its own (400 INVALID_ARGUMENT: another
            # account's, or corrupted) is as good as expired: list everything, and let
            # the guard stop the run if none of the linked persons is there
            self.progress("People refused the sync token: listing every contact")
        return self.people.changes(None, convert)

    def _crm_changes(self, tag_id: str, cursor: str | None, state: dict[str, Any],
                     also: list[str],
                     log: RunLog) -> tuple[dict[str, CrmContact], str | None]:  # fmt: skip
        """The CRM contacts past the cursor and those to retry, each validated and made
        a ``CrmContact`` as it is read (no list of raw documents or models is kept)."""
        contacts: dict[str, CrmContact] = {}

        def take(contact: Contact) -> None:
            contacts[contact.id] = contact_from_doc(contact, tag_id)

        read = crm_changes(self.store, CONTACTS, Contact, cursor=cursor,
                           read_at=state.get("crmReadAt"), also=also,
                           log=log, take=take)  # fmt: skip
        now = self.clock.now()
        for gone in read.hard_deleted:  # hard-deleted (the webhook told us)
            contacts[gone] = CrmContact(gone, normalize({}), False, now, deleted=True)
        return contacts, read.cursor

    def _fetch_parked(
        self,
        crm: dict[str, CrmContact],
        persons: dict[str, Person],
        links: dict[str, LinkRecord],
        group: str,
    ) -> None:
        """Re-tagged contacts with a parked link: read their old person, if it still is."""
        wanted = [
            link.resource_name
            for crm_id, link in links.items()
            if link.parked
            and crm_id in crm
            and crm[crm_id].tagged
            and link.resource_name not in persons
        ]
        for name, raw in self.people.get(wanted).items():
            persons[name] = person_from_api(raw, group)

    def _all_links(self, user_id: str, crm: dict[str, CrmContact], persons: dict[str, Person],
                   log: RunLog) -> dict[str, LinkRecord]:  # fmt: skip
        where = [Filter("userId", "==", user_id), Filter("section", "==", "contacts")]
        docs = self.store.scan(LINKS, where, order_by="crmId")
        found = links_from(((d.id, d.data) for d in docs), link_from_doc, log)
        return {i: _share_fields(link, crm, persons) for i, link in found.items()}

    def _links_for(
        self, user_id: str, crm: dict[str, CrmContact], persons: dict[str, Person], log: RunLog
    ) -> dict[str, LinkRecord]:
        ids = set(crm) | {p.crm_id for p in persons.values() if p.crm_id}
        keys = [link_id(user_id, "contacts", i) for i in sorted(ids)]
        links: dict[str, LinkRecord] = {}
        for start in range(0, len(keys), LINK_CHUNK):  # converted chunk by chunk
            found = self.store.get_many(LINKS, keys[start : start + LINK_CHUNK])
            read = links_from(found.items(), link_from_doc, log)
            links |= {i: _share_fields(link, crm, persons) for i, link in read.items()}
        known = {link.resource_name for link in links.values()}
        for name in sorted(set(persons) - known):
            where = [Filter("userId", "==", user_id), Filter("googleId", "==", name)]
            docs = [(d.id, d.data) for d in self.store.query(LINKS, where)
                    if d.data.get("section") == "contacts"]  # fmt: skip
            links |= links_from(docs, link_from_doc, log)
        return links

    def _by_email(
        self,
        settings: ContactsSettings,
        crm: dict[str, CrmContact],
        persons: dict[str, Person],
        links: dict[str, LinkRecord],
        complete: bool,
        dry_run: bool,
        log: RunLog,
    ) -> dict[str, tuple[str, ...]]:
        """CRM contacts by email, for persons that may need linking. Incremental runs
        look their emails up in the email index (``core.email_index``: the contacts
        holding them, checked one by one) when such a person appears (an import); the
        candidates come with their links, so a linked contact is never linked twice."""
        wanted = _unlinked_emails(persons, links)
        if not wanted:
            return {}
        if not complete:
            self._add_holders(settings, wanted, crm, links, dry_run, log)
        index: dict[str, list[str]] = {}
        for contact in sorted(crm.values(), key=lambda c: c.id):
            if contact.id in links or contact.deleted:
                continue
            for email in contact.emails & wanted:
                index.setdefault(email, []).append(contact.id)
        return {email: tuple(ids) for email, ids in index.items()}

    def _add_holders(self, settings: ContactsSettings, wanted: set[str],
                     crm: dict[str, CrmContact], links: dict[str, LinkRecord],
                     dry_run: bool, log: RunLog) -> None:  # fmt: skip
        """The live CRM contacts the email index says hold ``wanted`` emails, added to
        ``crm`` with their links (a real run prunes the index's stale ids)."""
        held = email_index.lookup(self.store, wanted, users=False)
        if held.stale and not dry_run:
            email_index.prune(self.store, held.stale)
        docs = [(i, d) for i, d in sorted(held.contact_docs.items()) if i not in crm]
        good, _ = load_each(Contact, CONTACTS, docs)
        found = [contact_from_doc(c, settings.tag_id) for c in good if c.deletedAt is None]
        found = [c for c in found if c.emails & wanted]
        keys = [link_id(settings.user_id, "contacts", c.id) for c in found]
        links |= links_from(self.store.get_many(LINKS, keys).items(), link_from_doc, log)
        crm.update({c.id: c for c in found if c.id not in log.skipped_ids})


def _unlinked_emails(persons: dict[str, Person], links: dict[str, LinkRecord]) -> set[str]:
    """The emails of the persons in the group that no link names."""
    linked = {link.resource_name for link in links.values()}
    return {email for p in persons.values()
            if p.in_group and not p.deleted and p.resource_name not in linked
            for email in p.emails}  # fmt: skip


def _share_fields(link: LinkRecord, crm: dict[str, CrmContact],
                  persons: dict[str, Person]) -> LinkRecord:  # fmt: skip
    """The link, and its pair's sides, with one fields dict where their fields are
    equal (most pairs of a large run): fields are values, never edited in place, and
    25,000 pairs would otherwise hold three equal copies each."""
    person = persons.get(link.resource_name)
    contact = crm.get(link.crm_id)
    for side in (person, contact):
        if side is not None and side.fields is not link.fields and side.fields == link.fields:
            link = replace(link, fields=side.fields)
            break
    if contact is not None and contact.fields is not link.fields and contact.fields == link.fields:
        crm[link.crm_id] = replace(contact, fields=link.fields)
    return link


def _set_aside(log: RunLog, crm: dict[str, CrmContact], links: dict[str, LinkRecord],
               persons: dict[str, Person]) -> None:  # fmt: skip
    """A malformed record (or corrupt link) is skipped, never taken as deleted: its pair
    waits, unplanned: its contact is never pushed as unlinked, its person never taken
    for an unlinked one (and imported), and is read again next run, so that its changes
    are not lost."""
    for bad in log.skipped_ids:
        crm.pop(bad, None)
        link = links.pop(bad, None)
        if link is not None:
            persons.pop(link.resource_name, None)
            log.retry_google.add(link.resource_name)
