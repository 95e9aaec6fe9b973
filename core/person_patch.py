"""An update of a person as Google holds it: the synced fields written into its current
values, never a person rebuilt from the CRM's fields.

``updateContact`` and ``batchUpdateContacts`` replace each listed person field
wholesale (GOOGLE_API.md 3.1). A body built from the synced fields alone would erase
what the CRM cannot hold: name prefixes, suffixes and phonetic names, a second
organization, a yearless birthday, an email's display name, an address's extra lines.
So the planner lists only the person fields whose synced values change
(``Reconcile.person_fields``), and ``body(current, fields, person_fields)`` builds each
of them from the person's current items (read in this run, or just fetched):

    names          the contact's name item: given, family and middle name set; every
                   other key kept (honorificPrefix/Suffix, phonetic*); the derived
                   unstructuredName dropped so that Google derives it again
    organizations  the primary organization: name, title and department set, and put
                   first; the others kept as they are (one emptied is dropped, and
                   the next becomes the primary: its values then reach the CRM)
    birthdays      the date set (a free-form ``text`` beside it dropped), or cleared
    biographies    the value set as TEXT_PLAIN, or cleared
    emailAddresses entries in the target's order; an entry whose identity (the address,
    phoneNumbers   case-insensitive; the digits of a number) is already there keeps its
    addresses      other keys (displayName, ...). Addresses match on content, then on
                   type; a changed address drops its formattedValue (and countryCode
                   when the country changed), Google derives them again

Items from other sources (a linked profile) are not ours to write and are left out.
Item ``metadata`` is left out too: list order decides the primary entry, as the
synced fields read it (``contact_mapping.from_person``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core import contact_mapping as cm

Item = dict[str, Any]
_NAME = {"givenName": "givenName", "familyName": "familyName", "middleName": "middleName"}
_ORG = {"name": "company", "title": "jobTitle", "department": "department"}
_ADDRESS = {"street": "streetAddress"}
_DERIVED_NAME = ("displayName", "displayNameLastFirst", "unstructuredName")
_HOLLOW = {"metadata", "type", "formattedType", "current"}  # an item with only these is empty


def body(current: dict[str, Any], fields: cm.ContactFields, person_fields: tuple[str, ...]) -> dict:
    """The update body (with the current etag) writing ``person_fields`` of ``current``."""
    target = cm.normalize(fields)
    out: dict[str, Any] = {"etag": current.get("etag", "")}
    for name in person_fields:
        items = _own(current.get(name))
        out[name] = _BUILDERS[name]([_bare(i) for i in items], _primary(items), target)
    return out


def _own(items: Any) -> list[Item]:
    """The contact's own items of a field (CONTACT source; the others are not ours)."""
    return [
        item
        for item in items or []
        if ((item.get("metadata") or {}).get("source") or {}).get("type", "CONTACT") == "CONTACT"
    ]


def _bare(item: Item) -> Item:
    return {k: v for k, v in item.items() if k != "metadata"}


def _primary(items: list[Item]) -> int:
    """The index of the primary item (as ``from_person`` picks it), else 0."""
    for index, item in enumerate(items):
        if (item.get("metadata") or {}).get("primary"):
            return index
    return 0


def _set(item: Item, key: str, value: Any) -> None:
    if value:
        item[key] = value
    else:
        item.pop(key, None)


def _hollow(item: Item) -> bool:
    return not set(item) - _HOLLOW


# --- singletons, and the primary organization (the others are kept) ---------------------


def _names(items: list[Item], primary: int, f: cm.ContactFields) -> list[Item]:
    name = dict(items[primary]) if items else {}
    for key, src in _NAME.items():
        _set(name, key, f[src])
    for key in _DERIVED_NAME:
        name.pop(key, None)
    return [] if _hollow(name) else [name]


def _birthdays(items: list[Item], primary: int, f: cm.ContactFields) -> list[Item]:
    if not f["birthday"]:
        return []
    year, month, day = (int(part) for part in f["birthday"].split("-"))
    birthday = {k: v for k, v in (items[primary] if items else {}).items() if k != "text"}
    birthday["date"] = {"year": year, "month": month, "day": day}
    return [birthday]


def _biographies(items: list[Item], primary: int, f: cm.ContactFields) -> list[Item]:
    if not f["notes"]:
        return []
    bio = items[primary] if items else {}
    return [{**bio, "value": f["notes"], "contentType": "TEXT_PLAIN"}]


def _organizations(items: list[Item], primary: int, f: cm.ContactFields) -> list[Item]:
    """The primary organization first (list order makes it primary), the others after."""
    org = dict(items[primary]) if items else {}
    for key, src in _ORG.items():
        _set(org, key, f[src])
    others = [dict(item) for index, item in enumerate(items) if index != primary]
    return others if _hollow(org) else [org, *others]


# --- lists of entries ---------------------------------------------------------------------


def _typed(key: Callable[[str], str]) -> Callable[[list[Item], list[dict[str, str]]], list[Item]]:
    def build(items: list[Item], entries: list[dict[str, str]]) -> list[Item]:
        pool = list(items)
        out = []
        for entry in entries:
            found = next((i for i in pool if key(str(i.get("value", ""))) == key(entry["value"])),
                         None)  # fmt: skip
            if found is not None:
                pool.remove(found)
            item = dict(found or {})
            item["value"] = entry["value"]
            item.pop("canonicalForm", None)
            if item.get("type") != entry.get("type"):
                item.pop("formattedType", None)
            _set(item, "type", entry.get("type"))
            out.append(item)
        return out

    return build


_emails = _typed(cm.email_key)
_phones = _typed(cm.phone_key)


def _address_view(item: Item) -> dict[str, str]:
    raw = {k: item.get(_ADDRESS.get(k, k)) for k in cm.ADDRESS_KEYS}
    found = cm.normalize({"addresses": [raw]})["addresses"]
    return found[0] if found else {}


def _addresses(items: list[Item], entries: list[dict[str, str]]) -> list[Item]:
    pool = list(items)
    matched: list[Item | None] = []
    for entry in entries:  # the same address first, untouched
        found = next((i for i in pool if _address_view(i) == entry), None)
        if found is not None:
            pool.remove(found)
        matched.append(found)
    out = []
    for entry, found in zip(entries, matched, strict=True):
        if found is not None:
            out.append(dict(found))
            continue
        same_type = next((i for i in pool if i.get("type") == entry.get("type")), None)
        if same_type is not None:
            pool.remove(same_type)
        out.append(_edited_address(same_type or {}, entry))
    return out


def _edited_address(item: Item, entry: dict[str, str]) -> Item:
    out = {k: v for k, v in item.items() if k not in ("formattedValue", "formattedType")}
    if _address_view(item).get("country") != entry.get("country"):
        out.pop("countryCode", None)
    for key in cm.ADDRESS_KEYS:
        _set(out, _ADDRESS.get(key, key), entry.get(key))
    return out


_BUILDERS: dict[str, Callable[[list[Item], int, cm.ContactFields], list[Item]]] = {
    "names": _names,
    "organizations": _organizations,
    "birthdays": _birthdays,
    "biographies": _biographies,
    "emailAddresses": lambda items, _, f: _emails(items, f["emails"]),
    "phoneNumbers": lambda items, _, f: _phones(items, f["phones"]),
    "addresses": lambda items, _, f: _addresses(items, f["addresses"]),
}
