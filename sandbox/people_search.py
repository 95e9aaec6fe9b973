"""People API v1 ``people.searchContacts`` of the sandbox (``GET /v1/people:searchContacts``).

As Google documents it (discovery text, and the contacts guide's "Search the user's
contacts"):

* ``query`` matches prefix phrases of a contact's names, nicknames, email addresses,
  phone numbers and organizations: a person named "foo name" matches "f", "fo",
  "foo n", "nam", but not "oo n". Case does not matter.
* Clients send a warmup request with an empty ``query`` first "to update the cache":
  searches see the contacts as they were at the last warmup (the first request warms
  up the cache if none did). Results are therefore eventually consistent: a contact
  written after the warmup is found by its old values, or not at all, until the next
  warmup. The persons returned are rendered as they are now; one deleted since is
  left out. A warmup answers ``{}``.
* ``readMask`` is required (400 as for ``personFields`` when absent or invalid);
  ``pageSize`` defaults to 10 (also for 0), values above 30 are capped to 30, negative
  ones are refused; there are no page tokens.
* ``sources`` defaults to READ_SOURCE_TYPE_CONTACT; the sandbox holds contacts only,
  so sources without it find nothing.
* The answer is ``{"results": [{"person": {...}}]}``, proto3 style: no ``results`` key
  when nothing matched.

Word boundaries inside a field are whitespace only here (how Google tokenizes emails
is not documented); full email addresses, the way crmsync searches, match either way.
"""

from __future__ import annotations

import re

from sandbox.people_fields import DOCS_GET, READABLE, bad, parse_mask
from sandbox.people_store import PeopleStore, PersonRecord, render_person, store_of
from sandbox.routing import PEOPLE, Call, Reply, Router

DEFAULT_PAGE = 10
MAX_PAGE = 30
SOURCES = (
    "READ_SOURCE_TYPE_UNSPECIFIED",
    "READ_SOURCE_TYPE_PROFILE",
    "READ_SOURCE_TYPE_CONTACT",
    "READ_SOURCE_TYPE_DOMAIN_CONTACT",
    "READ_SOURCE_TYPE_OTHER_CONTACT",
)
_WORD = re.compile(r"(?<!\S)\S")  # a word's first character
_CACHE = "people.searchCache"  # Account.ext key: resource name -> searchable texts


def searchable(person: PersonRecord) -> list[str]:
    """The texts a query can match: names, nicknames, emails, phones, organizations."""
    f = person.fields
    texts = []
    for name in f.get("names") or []:
        parts = [name.get(k) for k in ("givenName", "middleName", "familyName")]
        texts += [" ".join(str(p) for p in parts if p), str(name.get("unstructuredName") or "")]
        texts += [str(name.get(k) or "") for k in ("givenName", "familyName", "middleName")]
    texts += [str(n.get("value") or "") for n in f.get("nicknames") or []]
    texts += [str(e.get("value") or "") for e in f.get("emailAddresses") or []]
    texts += [str(p.get("value") or "") for p in f.get("phoneNumbers") or []]
    for org in f.get("organizations") or []:
        texts += [str(org.get(k) or "") for k in ("name", "title", "department")]
    return [t.casefold() for t in texts if t.strip()]


def matches(query: str, texts: list[str]) -> bool:
    """``query`` is a prefix of some text from one of its word starts."""
    q = query.strip().casefold()
    return any(text.startswith(q, m.start()) for text in texts for m in _WORD.finditer(text))


def warm_up(call: Call, store: PeopleStore) -> dict[str, list[str]]:
    cache = {p.resource_name: searchable(p) for p in store.live_persons()}
    call.me.ext[_CACHE] = cache
    return cache


def search_contacts(call: Call) -> Reply:
    paths = parse_mask(call.arg("readMask"), "readMask", READABLE, DOCS_GET)
    size = call.int_arg("pageSize", 0) or DEFAULT_PAGE
    if size < 0:
        raise bad(f"Invalid pageSize: {size}. pageSize must not be negative.")
    sources = call.args("sources") or ["READ_SOURCE_TYPE_CONTACT"]
    for source in sources:
        if source not in SOURCES:
            raise bad(f"Invalid value at 'sources' ({source}).")
    store = store_of(call)
    query = call.arg("query") or ""
    if not query.strip():
        warm_up(call, store)
        return Reply.json({})
    cache = call.me.ext.get(_CACHE)
    if cache is None:
        cache = warm_up(call, store)
    if "READ_SOURCE_TYPE_CONTACT" not in sources:
        return Reply.json({})
    found = []
    for name, texts in cache.items():
        person = store.persons.get(name)
        if person is not None and not person.deleted and matches(query, texts):
            found.append({"person": render_person(person, paths)})
        if len(found) == min(size, MAX_PAGE):
            break
    return Reply.json({"results": found} if found else {})


def register(router: Router, read_scopes: tuple[str, ...]) -> None:
    router.add("GET", r"/v1/people:searchContacts", "people.people.searchContacts", PEOPLE,
               search_contacts, scopes=read_scopes)  # fmt: skip
