"""Google persons that already hold the emails of contacts about to be pushed.

A tagged CRM contact with no person yet is pushed (CreatePerson), unless a person
outside the group already has its email: then it is linked to that person, which joins
the group (``contacts_plan``). A full pass lists every person, so the planner sees
them; an incremental run does not, so ``with_found`` asks People's search:

    plan the snapshot as it is           the contacts it would create, and their emails
    people.searchContacts                one empty-query warmup, then one call per email
                                         (matches are prefix phrases, at most 30)
    keep exact matches                   an email equal to the contact's, case aside
    drop persons linked to any contact   (parked links too): never taken for another one
                                         -> Snapshot.found

Search results are eventually consistent: a person created a moment ago may be
missing, and the contact is then pushed as before. Past ``SEARCH_MAX`` emails one
listing of every person replaces the searches. A search Google refuses (outage,
quota) pushes none of those contacts this run (``search_failed``: said per item and
retried), rather than risk a duplicate; the rest of the run goes on. Nothing here
writes.
"""

from __future__ import annotations

import dataclasses

from core.contacts_exec import person_from_api
from core.contacts_plan import CreatePerson, Person, Snapshot, plan
from core.errors import AuthRevoked, GoogleError
from core.model import LINKS
from core.ports import DocumentStore, Filter, PeoplePort

SEARCH_MAX = 20  # more emails to look up than this: one listing instead of searches


def with_found(snap: Snapshot, people: PeoplePort, store: DocumentStore, user_id: str) -> Snapshot:
    """``snap`` with ``found``: the unlinked persons holding emails of contacts to push."""
    if snap.google_complete:
        return snap
    emails = _emails_to_push(snap)
    if not emails:
        return snap
    try:
        held = _holders(people, emails)
    except AuthRevoked:
        raise
    except GoogleError as exc:  # push nothing blind (duplicates); the rest of the run goes on
        reason = f"Google's contact search failed ({exc}); it is pushed once Google answers"
        return dataclasses.replace(snap, search_failed=reason)
    found = {
        n: p
        for n, p in _exact_holders(held, snap.group).items()
        if n not in snap.google and not _linked(store, user_id, n)
    }
    return dataclasses.replace(snap, found=found) if found else snap


def _emails_to_push(snap: Snapshot) -> list[str]:
    """The emails of the contacts the plan would create, sorted."""
    creates = [a for a in plan(snap, force=True) if isinstance(a, CreatePerson)]
    return sorted({email for a in creates for email in snap.crm[a.crm_id].emails})


def _exact_holders(held: dict[str, list[dict]], group: str) -> dict[str, Person]:
    """The live persons holding exactly the email they were found by (case aside),
    by resource name; the first one seen wins."""
    found: dict[str, Person] = {}
    for email, persons in held.items():
        for raw in persons:
            person = person_from_api(raw, group)
            if _holds(person, email) and not person.deleted:
                found.setdefault(person.resource_name, person)
    return found


def _holds(person: Person, email: str) -> bool:
    return email.casefold() in {e.casefold() for e in person.emails}


def _holders(people: PeoplePort, emails: list[str]) -> dict[str, list[dict]]:
    """Persons by the email they may hold: searched one by one, or, past
    ``SEARCH_MAX`` emails (a bulk tagging, a new private tag), from one listing of
    every contact, which costs a page per 1000 persons instead of a call per email."""
    if len(emails) <= SEARCH_MAX:
        return people.search(emails)
    wanted = {e.casefold() for e in emails}

    def holding(raw: dict) -> dict | None:  # each page as it comes: only holders are kept
        found = {(i.get("value") or "").casefold() for i in raw.get("emailAddresses") or []}
        return raw if found & wanted else None

    held: dict[str, list[dict]] = {}
    for raw in people.changes(None, holding).persons:
        if raw is None:
            continue
        for item in raw.get("emailAddresses") or []:
            email = (item.get("value") or "").casefold()
            if email in wanted:
                held.setdefault(email, []).append(raw)
    return held


def _linked(store: DocumentStore, user_id: str, name: str) -> bool:
    where = [Filter("userId", "==", user_id), Filter("googleId", "==", name)]
    return any(doc.data.get("section") == "contacts" for doc in store.query(LINKS, where))
