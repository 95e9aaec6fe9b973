"""The sample CRM the demo and the local server start from.

Two users, each with a private tag; a public and a corporate tag; contacts that carry
Alice's private tag (they sync), contacts with only public or corporate tags or no
tag (they never sync); and a few activities. ``seed`` writes it in one batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from adapters.clock import rfc3339
from core import email_index, schedule
from core.model import ACTIVITIES, CONTACTS, SYNC_SETTINGS, TAGS, USERS
from core.ports import DocumentStore

ALICE, BOB = "u-alice", "u-bob"
ALICE_TAG, BOB_TAG = "t-alice-google", "t-bob-google"
PUBLIC_TAG, CORPORATE_TAG = "t-customers", "t-partners"


def _contact(given: str, family: str, email: str, tags: list[str], **extra: Any) -> dict:
    return {
        "givenName": given,
        "familyName": family,
        "emails": [{"value": email, "type": "work"}],
        "tagIds": tags,
        **extra,
    }


CONTACT_DATA: dict[str, dict[str, Any]] = {
    "c-ada": _contact(
        "Ada",
        "Lovelace",
        "ada@analytical.example",
        [ALICE_TAG, PUBLIC_TAG],
        phones=[{"value": "+44 20 7946 0001", "type": "mobile"}],
        company="Analytical Engines",
        jobTitle="Chief Engineer",
        birthday="1815-12-10",
        notes="Prefers email.",
    ),
    "c-grace": _contact(
        "Grace",
        "Hopper",
        "grace@navy.example",
        [ALICE_TAG],
        company="US Navy",
        department="Computing",
        addresses=[{"street": "1 Navy Yard", "city": "Arlington", "country": "US", "type": "work"}],
    ),
    "c-alan": _contact("Alan", "Turing", "alan@bletchley.example", [ALICE_TAG]),
    "c-katherine": _contact("Katherine", "Johnson", "kj@nasa.example", [ALICE_TAG, CORPORATE_TAG]),
    "c-linus": _contact("Linus", "Torvalds", "linus@kernel.example", [PUBLIC_TAG]),
    "c-margaret": _contact("Margaret", "Hamilton", "mh@apollo.example", [CORPORATE_TAG]),
    "c-dennis": _contact("Dennis", "Ritchie", "dmr@bell.example", []),
    "c-barbara": _contact("Barbara", "Liskov", "liskov@mit.example", [BOB_TAG]),
}


def documents(now: datetime) -> dict[str, dict[str, dict[str, Any]]]:
    stamp = rfc3339(now)
    today = now.date()
    users = {
        ALICE: {"email": "alice@example.com", "displayName": "Alice", "timeZone": "Europe/Berlin"},
        BOB: {"email": "bob@example.com", "displayName": "Bob", "timeZone": "America/New_York"},
    }
    tags = {
        ALICE_TAG: {"name": "Alice: Google", "kind": "private", "ownerId": ALICE},
        BOB_TAG: {"name": "Bob: Google", "kind": "private", "ownerId": BOB},
        PUBLIC_TAG: {"name": "Customers", "kind": "public"},
        CORPORATE_TAG: {"name": "Partners", "kind": "corporate"},
    }
    contacts = {cid: {**data, "modifiedAt": stamp} for cid, data in CONTACT_DATA.items()}
    day = (today + timedelta(days=2)).isoformat()
    activities = {
        "a-kickoff": {
            "title": "Kick-off with Ada",
            "start": f"{day}T09:00:00+01:00",
            "end": f"{day}T10:00:00+01:00",
            "timeZone": "Europe/Berlin",
            "showInCalendar": True,
            "organizerId": ALICE,
            "participants": [{"contactId": "c-ada", "email": "ada@analytical.example"}],
            "status": "planned",
            "modifiedAt": stamp,
        },
        "a-offsite": {
            "title": "Team offsite",
            "start": (today + timedelta(days=7)).isoformat(),
            "end": (today + timedelta(days=8)).isoformat(),
            "allDay": True,
            "showInCalendar": True,
            "organizerId": ALICE,
            "status": "planned",
            "modifiedAt": stamp,
        },
        "a-internal-note": {
            "title": "Not for the calendar",
            "start": f"{day}T15:00:00+01:00",
            "end": f"{day}T15:30:00+01:00",
            "showInCalendar": False,
            "organizerId": ALICE,
            "status": "planned",
            "modifiedAt": stamp,
        },
    }
    settings = {
        ALICE: {
            "contacts": {"auto": True, "intervalMinutes": 30, "tagId": ALICE_TAG},
            "activities": {"auto": True, "intervalMinutes": 15, "syncFrom": today.isoformat()},
        },
        BOB: {"contacts": {"auto": False, "intervalMinutes": 60, "tagId": BOB_TAG}},
    }
    return {
        USERS: users,
        TAGS: tags,
        CONTACTS: contacts,
        ACTIVITIES: activities,
        SYNC_SETTINGS: settings,
    }


def seed(store: DocumentStore, now: datetime) -> dict[str, int]:
    """Write the sample CRM; returns how many documents went into each collection."""
    docs = documents(now)
    with store.batch() as batch:
        for collection, items in docs.items():
            for doc_id, data in items.items():
                batch.put(collection, doc_id, data)
        for user_id, user in docs[USERS].items():  # provisioned users are found by email
            email_index.index_user(batch, user_id, [user["email"]], store)
    for user_id in docs[SYNC_SETTINGS]:  # as the settings API does after a save
        schedule.reschedule(store, user_id, now, due_now=True)
    return {collection: len(items) for collection, items in docs.items()}
