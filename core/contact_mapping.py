"""Contact field mapping between CRM contacts and People API persons, and fingerprints.

The synced fields of a contact are a plain dict (``ContactFields``) in one normal
form, whichever side they came from:

    CRM                                  People API
    givenName, familyName, middleName    names[0]
    emails [{value, type}]               emailAddresses
    phones [{value, type}]               phoneNumbers
    company, jobTitle, department        organizations[0] (name, title, department)
    addresses [{street, ...}]            addresses (streetAddress, city, region, ...)
    birthday YYYY-MM-DD                  birthdays[0].date
    notes                                biographies[0] (TEXT_PLAIN)

Group membership and the CRM id (``clientData`` key ``crmsync.contactId``) are not
content: the planner handles them. ``fingerprint`` hashes the normal form, so etag
churn and our own echoes, which leave the content as it was, never count as changes.

A Google birthday without a year (``{month, day}``) has no CRM form: it reads as no
birthday (an imported contact's birthday stays empty), ``yearless_birthday`` keeps it
as ``--MM-DD`` so that the planner can take it as equal to a CRM birthday with the
same month and day, and it stays in Google untouched until the CRM sets a birthday
(``core.person_patch`` writes only the person fields that changed).
"""

from __future__ import annotations

import re
from typing import Any

from core.merge import Entries
from core.model import Contact
from core.pairs import fingerprint  # noqa: F401  (the mappings' hash)

CLIENT_DATA_KEY = "crmsync.contactId"
PERSON_FIELDS = (
    "names,emailAddresses,phoneNumbers,organizations,addresses,birthdays,biographies,"
    "memberships,clientData,metadata"
)
UPDATE_FIELDS = "names,emailAddresses,phoneNumbers,organizations,addresses,birthdays,biographies"
SCALARS = ("givenName", "familyName", "middleName", "company", "jobTitle", "department",
           "birthday", "notes")  # fmt: skip
LISTS = ("emails", "phones", "addresses")
FIELDS = SCALARS + LISTS
ADDRESS_KEYS = ("street", "city", "region", "postalCode", "country", "type")
_PEOPLE_ADDRESS = {"street": "streetAddress"}
PERSON_FIELD_OF = {  # synced key -> the person field that holds it
    "givenName": "names", "familyName": "names", "middleName": "names",
    "emails": "emailAddresses", "phones": "phoneNumbers", "addresses": "addresses",
    "company": "organizations", "jobTitle": "organizations", "department": "organizations",
    "birthday": "birthdays", "notes": "biographies",
}  # fmt: skip

ContactFields = dict[str, Any]


def _text(value: Any) -> str | None:
    """Strings are stripped; empty means absent."""
    if value is None:
        return None
    text = (value if value.__class__ is str else str(value)).strip()
    return text or None


def _typed(items: Any) -> list[dict[str, str]]:
    out = []
    for item in items or ():
        value = _text(item.get("value"))
        if value:
            kind = _text(item.get("type"))
            out.append({"value": value, "type": kind} if kind else {"value": value})
    return out


def _address(item: dict[str, Any]) -> dict[str, str]:
    return {k: v for k in ADDRESS_KEYS if (v := _text(item.get(k)))}


def normalize(fields: dict[str, Any]) -> ContactFields:
    """The normal form: every synced key present, stripped strings, no empty entries."""
    get = fields.get
    out: ContactFields = {}
    for key in SCALARS:  # _text, inlined: this runs for every record read
        value = get(key)
        if value is None:
            out[key] = None
        else:
            text = (value if value.__class__ is str else str(value)).strip()
            out[key] = text or None
    out["emails"] = _typed(get("emails"))
    out["phones"] = _typed(get("phones"))
    addresses = get("addresses")
    out["addresses"] = [a for a in map(_address, addresses) if a] if addresses else []
    return out


_FIELD_SET = frozenset(FIELDS)


def from_contact(contact: Contact) -> ContactFields:
    return normalize(contact.model_dump(include=_FIELD_SET, exclude_none=False))


def to_crm(fields: ContactFields) -> dict[str, Any]:
    """The synced fields as CRM contact keys (they share names; absent is None)."""
    return normalize(fields)


def to_person(fields: ContactFields) -> dict[str, Any]:
    """The People API body for the synced fields (without memberships or clientData)."""
    f = normalize(fields)
    person: dict[str, Any] = {}
    name = {k: f[src] for k, src in _NAME.items() if f[src]}
    person["names"] = [name] if name else []
    person["emailAddresses"] = [dict(e) for e in f["emails"]]
    person["phoneNumbers"] = [dict(p) for p in f["phones"]]
    org = {k: f[src] for k, src in _ORG.items() if f[src]}
    person["organizations"] = [org] if org else []
    person["addresses"] = [
        {_PEOPLE_ADDRESS.get(k, k): v for k, v in a.items()} for a in f["addresses"]
    ]
    person["birthdays"] = [{"date": _date_parts(f["birthday"])}] if f["birthday"] else []
    person["biographies"] = (
        [{"value": f["notes"], "contentType": "TEXT_PLAIN"}] if f["notes"] else []
    )
    return person


def from_person(person: dict[str, Any]) -> ContactFields:
    """The synced fields of a person, in normal form."""
    name = _primary(person.get("names"))
    org = _primary(person.get("organizations"))
    raw: dict[str, Any] = {src: name.get(k) for k, src in _NAME.items()}
    raw |= {src: org.get(k) for k, src in _ORG.items()}
    raw["emails"] = person.get("emailAddresses")
    raw["phones"] = person.get("phoneNumbers")
    raw["addresses"] = [
        {k: a.get(_PEOPLE_ADDRESS.get(k, k)) for k in ADDRESS_KEYS}
        for a in person.get("addresses") or []
    ]
    raw["birthday"] = _date_text(_primary(person.get("birthdays")).get("date"))
    raw["notes"] = _primary(person.get("biographies")).get("value")
    return normalize(raw)


def yearless_birthday(person: dict[str, Any]) -> str | None:
    """``--MM-DD`` for a primary birthday with a month and day but no year, else None."""
    date = _primary(person.get("birthdays")).get("date") or {}
    if date.get("month") and date.get("day") and not date.get("year"):
        return f"--{date['month']:02d}-{date['day']:02d}"
    return None


def changed_person_fields(current: ContactFields, target: ContactFields) -> tuple[str, ...]:
    """The person fields to write to bring synced fields ``current`` to ``target``."""
    return tuple(sorted({PERSON_FIELD_OF[k] for k in FIELDS if current.get(k) != target.get(k)}))


def display_name(fields: ContactFields) -> str:
    """What the user calls a contact: its full name, else its company; never an email
    or a number (run journals show it)."""
    name = " ".join(fields[k] for k in ("givenName", "middleName", "familyName") if fields.get(k))
    return name or fields.get("company") or ""


def email_key(value: str) -> str:
    """The identity of an email entry: its address, case-insensitive."""
    return value.strip().casefold()


def phone_key(value: str) -> str:
    """The identity of a phone entry: its digits (and a leading +), formatting aside."""
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    return ("+" if text.startswith("+") else "") + digits if digits else text.casefold()


def _content(entry: dict[str, Any]) -> tuple:
    return tuple(sorted(entry.items()))


# how the entries of each list are told apart when both sides edited it (core.merge)
LIST_ENTRIES = {
    "emails": Entries(lambda e: email_key(e["value"])),
    "phones": Entries(lambda e: phone_key(e["value"])),
    "addresses": Entries(_content, fallback=lambda a: a.get("type")),  # an edit keeps its type
}


def client_data_id(person: dict[str, Any]) -> str | None:
    """The CRM contact id we stamped on the person, if any."""
    for item in person.get("clientData") or []:
        if item.get("key") == CLIENT_DATA_KEY and item.get("value"):
            return item["value"]
    return None


def group_names(person: dict[str, Any]) -> set[str]:
    return {
        m["contactGroupMembership"]["contactGroupResourceName"]
        for m in person.get("memberships") or []
        if m.get("contactGroupMembership", {}).get("contactGroupResourceName")
    }


_NAME = {"givenName": "givenName", "familyName": "familyName", "middleName": "middleName"}
_ORG = {"name": "company", "title": "jobTitle", "department": "department"}


def _primary(items: Any) -> dict[str, Any]:
    """The item marked primary, else the first, else {} (People singletons)."""
    items = items or []
    for item in items:
        if item.get("metadata", {}).get("primary"):
            return item
    return items[0] if items else {}


def _date_parts(text: str) -> dict[str, int]:
    year, month, day = (int(part) for part in text.split("-"))
    return {"year": year, "month": month, "day": day}


def _date_text(date: dict[str, int] | None) -> str | None:
    if not date or not date.get("month") or not date.get("day"):
        return None
    year = date.get("year") or 0
    return f"{year:04d}-{date['month']:02d}-{date['day']:02d}" if year else None
