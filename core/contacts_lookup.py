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
missing, and the contact is then pushed as before. Nothing here writes.
"""

from __future__ import annotations

import dataclasses

from core.contacts_exec import person_from_api
from core.contacts_plan import CreatePerson, Person, Snapshot, plan
from core.model import LINKS
from core.ports import DocumentStore, Filter, PeoplePort


def with_found(snap: Snapshot, people: PeoplePort, store: DocumentStore, user_id: str) -> Snapshot:
    """``snap`` with ``found``: the unlinked persons holding emails of contacts to push."""
    if snap.google_complete:
        return snap
    creates = [a for a in plan(snap, force=True) if isinstance(a, CreatePerson)]
    emails = sorted({email for a in creates for email in snap.crm[a.crm_id].emails})
    if not emails:
        return snap
    found: dict[str, Person] = {}
    for email, persons in people.search(emails).items():
        for raw in persons:
            person = person_from_api(raw, snap.group)
            if email.casefold() in {e.casefold() for e in person.emails} and not person.deleted:
                found.setdefault(person.resource_name, person)
    found = {
        n: p for n, p in found.items() if n not in snap.google and not _linked(store, user_id, n)
    }
    return dataclasses.replace(snap, found=found) if found else snap


def _linked(store: DocumentStore, user_id: str, name: str) -> bool:
    where = [Filter("userId", "==", user_id), Filter("googleId", "==", name)]
    return any(doc.data.get("section") == "contacts" for doc in store.query(LINKS, where))
