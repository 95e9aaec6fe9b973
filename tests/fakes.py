"""Fast fakes of our Google ports, below the adapters: dict-backed ``PeoplePort`` and
``CalendarPort`` that answer as ``adapters.people_api`` / ``adapters.calendar_api`` do
over the sandbox (held honest by ``tests/contract/test_*_port.py``, which run the same
tests against both, and against live Google when credentials are given).

What they keep, as Google does:

* every write gets a new etag and a strictly later update time, and is logged; a sync
  token names a position in that log, so ``changes(token)`` is every record written
  since (our own writes too: echoes), deletions as tombstones, in write order;
* People tokens expire 7 days (of the fake clock) after the full sync that began their
  chain; Calendar tokens after 28 days, or at once with ``expire_tokens()``;
* People: a contact keeps at least one group (``MembersResult.last_group``), a stale
  etag is that item's ``EtagMismatch`` and a deleted person that item's ``NotFound``
  (the adapter retries an all-or-nothing ``batchUpdateContacts`` one by one); groups
  are found by our ``clientData`` mark, else by name;
* Calendar: client-chosen ids (``[a-v0-9]{5,1024}``; taken, even by a deleted event:
  409), ``If-Match`` patches and deletes (``EtagMismatch``), deletion is status
  ``cancelled`` (a second delete: ``NotFound``), full listings are the events
  overlapping the window, cancelled ones included, incremental ones are unclipped.

Unlike Google they are instantly consistent (no propagation delay, full pages, searches
always current) and do not model recurring events, attendee copies in other calendars,
quotas or outages. The ``delete``/``edit``/``insert`` helpers are what a user does in
Google, outside the port.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import EtagMismatch, GoogleError, NotFound, SyncTokenExpired
from core.ports import EventChanges, EventWrite, MembersResult, PeopleChanges, WriteResult

MY_CONTACTS = "contactGroups/myContacts"
GROUP_KEY = "crmsync.group"  # adapters.people_api marks its group with this clientData key
PEOPLE_TOKEN_DAYS = 7
CALENDAR_TOKEN_DAYS = 28
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_serial = itertools.count(1)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeClock:
    """A ``Clock`` that moves ``tick`` on every reading, so that every write, CRM or
    Google, happens at its own instant (and ``advance`` jumps ahead)."""

    def __init__(self, start: datetime | None = None, tick: timedelta = timedelta(milliseconds=1)):
        self.moment = start or datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
        self.tick = tick

    def now(self) -> datetime:
        self.moment += self.tick
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


class _Log:
    """Writes in order: record ids by sequence number, and the update times handed out."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.ids: list[str] = []
        self.last: datetime | None = None
        self.nonce = next(_serial)

    def write(self, ident: str) -> tuple[int, datetime]:
        moment = self.clock.now()
        if self.last is not None and moment <= self.last:
            moment = self.last + timedelta(microseconds=1)
        self.last = moment
        self.ids.append(ident)
        return len(self.ids), moment

    def since(self, seq: int) -> list[str]:
        """Ids written after ``seq``, once each, in the order of their first write since."""
        return list(dict.fromkeys(self.ids[seq:]))


# --- People ------------------------------------------------------------------------------


@dataclass
class _Person:
    name: str
    fields: dict[str, list[dict[str, Any]]]
    groups: list[str]
    etag: str = ""
    updated: str = ""
    deleted: bool = False


class FakePeople:
    """``PeoplePort`` over dicts: one user's contacts and contact groups."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock or FakeClock()
        self.log = _Log(self.clock)
        self.persons: dict[str, _Person] = {}  # by resource name, tombstones included
        self.groups: dict[str, dict[str, Any]] = {MY_CONTACTS: {"name": "myContacts"}}
        self.calls: dict[str, int] = {}

    def _count(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1

    def _touch(self, person: _Person) -> None:
        seq, moment = self.log.write(person.name)
        person.etag, person.updated = f"%fake{self.log.nonce}.{seq}", stamp(moment)

    def _live(self, name: str) -> _Person | None:
        person = self.persons.get(name)
        return person if person is not None and not person.deleted else None

    def render(self, person: _Person) -> dict[str, Any]:
        source = {"type": "CONTACT", "id": person.name.removeprefix("people/c"),
                  "etag": person.etag, "updateTime": person.updated}  # fmt: skip
        metadata = {"sources": [source], "objectType": "PERSON"}
        out: dict[str, Any] = {"resourceName": person.name, "etag": person.etag,
                               "metadata": metadata}  # fmt: skip
        if person.deleted:
            out["metadata"]["deleted"] = True
            return out
        out |= copy.deepcopy({k: v for k, v in person.fields.items() if v})
        out["memberships"] = [{"contactGroupMembership": {"contactGroupResourceName": g}}
                              for g in person.groups]  # fmt: skip
        return out

    # --- the group ----------------------------------------------------------------------

    def find_group(self, name: str) -> str | None:
        self._count("find_group")
        marked = [g for g, d in self.groups.items() if {"key": GROUP_KEY, "value": name}
                  in d.get("clientData", [])]  # fmt: skip
        named = [g for g, d in self.groups.items() if g != MY_CONTACTS and d["name"] == name]
        return (marked + named + [None])[0]

    def find_or_create_group(self, name: str) -> str:
        found = self.find_group(name)
        if found:
            return found
        group = f"contactGroups/{next(_serial):x}"
        self.groups[group] = {"name": name, "clientData": [{"key": GROUP_KEY, "value": name}]}
        return group

    # --- reads --------------------------------------------------------------------------

    def _token(self, seq: int, chain_start: float) -> str:
        return f"fake{self.log.nonce}.{seq}.{chain_start}"

    def _read_token(self, token: str) -> tuple[int, float]:
        try:
            nonce, seq, start = token.removeprefix("fake").split(".", 2)
            assert int(nonce) == self.log.nonce and int(seq) <= len(self.log.ids)
        except (ValueError, AssertionError):
            raise GoogleError("Request contains an invalid argument.", status=400) from None
        age = self.clock.now().timestamp() - float(start)
        if age >= PEOPLE_TOKEN_DAYS * 86400:
            raise SyncTokenExpired("Sync token is expired.", status=400,
                                   reason="EXPIRED_SYNC_TOKEN")  # fmt: skip
        return int(seq), float(start)

    def changes(
        self, sync_token: str | None, transform: Callable[[dict[str, Any]], Any] | None = None
    ) -> PeopleChanges:
        self._count("changes")
        if sync_token is None:
            start = self.clock.now().timestamp()
            listed = [p for p in self.persons.values() if not p.deleted]
        else:
            seq, start = self._read_token(sync_token)
            listed = [self.persons[n] for n in self.log.since(seq)]
        persons = [self.render(p) for p in listed]
        if transform is not None:
            persons = [transform(p) for p in persons]
        token = self._token(len(self.log.ids), start)
        return PeopleChanges(persons, token, sync_token is None)

    def has_changes(self, sync_token: str) -> bool:
        self._count("has_changes")
        seq, _ = self._read_token(sync_token)
        return bool(self.log.since(seq))

    def get(self, resource_names: Sequence[str]) -> dict[str, dict[str, Any]]:
        self._count("get")
        found = {n: self._live(n) for n in resource_names}
        return {n: self.render(p) for n, p in found.items() if p is not None}

    def search(self, queries: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        self._count("search")
        return {q: [self.render(p) for p in self.persons.values()
                    if not p.deleted and _matches(q, p)][:30] for q in queries}  # fmt: skip

    # --- writes -------------------------------------------------------------------------

    def create(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[WriteResult]:
        self._count("create")
        bodies = [copy.deepcopy(body) for _, body in items]
        groups = [_groups_of(b) or [MY_CONTACTS] for b in bodies]
        for group in itertools.chain.from_iterable(groups):
            if group not in self.groups:  # batchCreateContacts: all or nothing
                raise GoogleError(f"Contact group resource name {group} is not valid "
                                  "or does not exist.", status=400)  # fmt: skip
        results = []
        for (key, _), body, names in zip(items, bodies, groups, strict=True):
            person = _Person(f"people/c{next(_serial) + 7_000_000_000}", body, names)
            self.persons[person.name] = person
            self._touch(person)
            results.append(WriteResult(key, self.render(person)))
        return results

    def update(self, items: Sequence[tuple[str, dict[str, Any]]], fields: str) -> list[WriteResult]:
        self._count("update")
        mask = [f for f in fields.split(",") if f]
        assert "memberships" not in mask, "not modelled: use modify_members"
        errors: dict[str, GoogleError] = {}
        for name, body in items:
            person = self._live(name)
            if person is None:
                errors[name] = NotFound(f"{name}: Requested entity was not found.", status=404)
            elif "etag" not in body:
                errors[name] = GoogleError(f"{name}: Request must set person.etag", status=400)
            elif body["etag"] != person.etag:
                errors[name] = EtagMismatch(f"{name}: Request person.etag is different than "
                                            "the current person.etag.", status=400)  # fmt: skip
        first = next(iter(errors.values()), None)
        if first is not None and not isinstance(first, EtagMismatch | NotFound):
            raise first  # the whole call fails: a malformed request is not the item's
        results = []
        for name, body in items:
            if name in errors:
                results.append(WriteResult(name, None, errors[name]))
                continue
            person = self.persons[name]
            for key in mask:
                person.fields[key] = copy.deepcopy(body.get(key) or [])
            self._touch(person)
            results.append(WriteResult(name, self.render(person)))
        return results

    def modify_members(
        self, group: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> MembersResult:
        self._count("modify_members")
        if group not in self.groups:
            raise NotFound(f"{group}: Requested entity was not found.", status=404)
        missing = [n for n in [*add, *remove] if self._live(n) is None]
        last = []
        for name in add:
            person = self._live(name)
            if person is not None and group not in person.groups:
                person.groups.append(group)
                self._touch(person)
        for name in remove:
            person = self._live(name)
            if person is not None and group in person.groups:
                if person.groups == [group]:
                    last.append(name)
                    continue
                person.groups.remove(group)
                self._touch(person)
        return MembersResult(tuple(dict.fromkeys(missing)), tuple(last))

    # --- what a user does in Google (outside the port) ----------------------------------

    def delete(self, name: str) -> None:
        person = self.persons[name]
        person.deleted, person.fields, person.groups = True, {}, []
        self._touch(person)

    def edit(self, name: str, **fields: list[dict[str, Any]]) -> None:
        person = self.persons[name]
        person.fields |= copy.deepcopy(fields)
        self._touch(person)

    def add_person(self, body: dict[str, Any], groups: Sequence[str] = ()) -> str:
        body = {**body, "memberships": [{"contactGroupMembership": {
            "contactGroupResourceName": g}} for g in groups]}  # fmt: skip
        person = self.create([("user", body)])[0].person
        assert person is not None
        return person["resourceName"]


def _groups_of(body: dict[str, Any]) -> list[str]:
    names = [m.get("contactGroupMembership", {}).get("contactGroupResourceName")
             for m in body.pop("memberships", None) or []]  # fmt: skip
    return list(dict.fromkeys(n for n in names if n))


def _matches(query: str, person: _Person) -> bool:
    """People search: a prefix of a name, email, phone or organization word."""
    f = person.fields
    texts = [str(n.get(k) or "") for n in f.get("names", []) for k in ("givenName", "familyName")]
    texts += [str(i.get("value") or "") for k in ("emailAddresses", "phoneNumbers")
              for i in f.get(k, [])]  # fmt: skip
    texts += [str(o.get("name") or "") for o in f.get("organizations", [])]
    q = query.strip().casefold()
    return bool(q) and any(word.startswith(q) for t in texts for word in _starts(t.casefold()))


def _starts(text: str) -> list[str]:
    return [text[m.start() :] for m in re.finditer(r"(?<!\S)\S", text)]


# --- Calendar ----------------------------------------------------------------------------


@dataclass
class FakeCalendar:
    """``CalendarPort`` over a dict: one user's primary calendar, single events only."""

    email: str = "alice@example.com"
    clock: Any = field(default_factory=FakeClock)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    generation: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log = _Log(self.clock)
        self.etags = itertools.count(1)

    def _count(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1

    def account_email(self) -> str:
        return self.email

    def expire_tokens(self) -> None:
        """Every sync token handed out so far now answers ``SyncTokenExpired`` (410)."""
        self.generation += 1

    def _commit(self, event: dict[str, Any]) -> dict[str, Any]:
        _, moment = self.log.write(event["id"])
        event["etag"] = f'"{self.log.nonce}{next(self.etags):08d}"'
        event["updated"] = stamp(moment)[:23] + "Z"
        self.events[event["id"]] = event
        return copy.deepcopy(event)

    # --- reads --------------------------------------------------------------------------

    def _token(self) -> str:
        issued = self.clock.now().timestamp()
        return f"cal{self.log.nonce}.{self.generation}.{len(self.log.ids)}.{issued}"

    def _read_token(self, token: str) -> int:
        try:
            nonce, generation, seq, issued = token.removeprefix("cal").split(".", 3)
            fresh = self.clock.now().timestamp() - float(issued) <= CALENDAR_TOKEN_DAYS * 86400
            ok = (int(nonce), int(generation)) == (self.log.nonce, self.generation) and fresh
        except ValueError:
            ok = False
        if not ok:
            raise SyncTokenExpired("Sync token is no longer valid, a full sync is required.",
                                   status=410, reason="fullSyncRequired")  # fmt: skip
        return int(seq)

    def changes(
        self,
        sync_token: str | None,
        time_min: str,
        time_max: str,
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> EventChanges:
        self._count("changes")
        if sync_token is None:
            low, high = _instant(time_min), _instant(time_max)
            listed = sorted((e for e in self.events.values()
                             if _at(e["start"]) < high and _at(e["end"]) > low),
                            key=lambda e: (_at(e["start"]), e["id"]))  # fmt: skip
        else:
            listed = [self.events[i] for i in self.log.since(self._read_token(sync_token))]
        events = [copy.deepcopy(e) for e in listed]
        if transform is not None:
            events = [transform(e) for e in events]
        return EventChanges(events, self._token(), sync_token is None)

    def has_changes(self, sync_token: str) -> bool:
        self._count("has_changes")
        return bool(self.log.since(self._read_token(sync_token)))

    def get(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self._count("get")
        return {i: copy.deepcopy(self.events[i]) for i in event_ids if i in self.events}

    # --- writes -------------------------------------------------------------------------

    def write(self, writes: Sequence[EventWrite]) -> list[WriteResult]:
        self._count("write")
        results = []
        for w in writes:
            try:
                results.append(WriteResult(w.event_id, self._apply(w)))
            except GoogleError as exc:
                results.append(WriteResult(w.event_id, None, exc))
        return results

    def _apply(self, w: EventWrite) -> dict[str, Any]:
        if w.kind == "insert":
            return self.insert({**(w.body or {}), "id": w.event_id})
        current = self.events.get(w.event_id)
        if current is None:
            raise NotFound(f"{w.event_id}: Not Found", status=404, reason="notFound")
        if w.kind == "get":
            return copy.deepcopy(current)
        if w.etag and w.etag != current["etag"]:
            raise EtagMismatch("Precondition Failed", status=412, reason="conditionNotMet")
        if w.kind == "delete":
            if current["status"] == "cancelled":
                raise NotFound("Resource has been deleted", status=410, reason="deleted")
            self._commit({**current, "status": "cancelled"})
            return {}
        return self._commit(_patched(current, w.body or {}, self.email))

    # --- what a user does in Google (also the insert of the port) -----------------------

    def insert(self, body: dict[str, Any]) -> dict[str, Any]:
        event_id = body.get("id") or f"u{next(_serial):08d}"
        if not EVENT_ID.match(event_id):
            raise GoogleError("Invalid resource id value.", status=400, reason="invalid")
        if event_id in self.events:  # a deleted event's id stays taken
            raise GoogleError("The requested identifier already exists.", status=409,
                              reason="duplicate")  # fmt: skip
        me = {"email": self.email, "self": True}
        base = {"kind": "calendar#event", "id": event_id, "status": "confirmed",
                "iCalUID": f"{event_id}@google.com", "organizer": me, "creator": me}  # fmt: skip
        return self._commit(_patched(base, {**body, "id": event_id}, self.email))

    def patch(self, event_id: str, **body: Any) -> dict[str, Any]:
        return self._commit(_patched(self.events[event_id], body, self.email))

    def delete(self, event_id: str) -> None:
        self._commit({**self.events[event_id], "status": "cancelled"})


READ_ONLY = ("kind", "etag", "id", "iCalUID", "organizer", "creator", "updated")


def _patched(current: dict[str, Any], body: dict[str, Any], me: str) -> dict[str, Any]:
    """events.patch: top-level fields replace (None removes), extendedProperties merge by
    scope; times are kept in UTC ``...Z`` (as a UTC calendar answers); attendees get a
    ``responseStatus`` and the ``organizer``/``self`` marks."""
    event = copy.deepcopy(current)
    for key, value in copy.deepcopy(body).items():
        if key in READ_ONLY:
            continue
        if value is None:
            event.pop(key, None)
        elif key == "extendedProperties":
            merged = event.get(key) or {}
            for scope, entries in value.items():
                entries = {**merged.get(scope, {}), **(entries or {})}
                merged[scope] = {k: v for k, v in entries.items() if v is not None}
            event[key] = merged
        else:
            event[key] = value
    for key in ("start", "end"):
        if "dateTime" in event.get(key, {}):
            event[key]["dateTime"] = _at(event[key]).strftime("%Y-%m-%dT%H:%M:%SZ")
    for attendee in event.get("attendees") or []:
        attendee.setdefault("responseStatus", "needsAction")
        if attendee["email"].lower() == me:
            attendee.update(organizer=True, self=True)
    return event


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _at(when: dict[str, str]) -> datetime:
    """The instant an EventDateTime stands for (all-day dates: UTC midnight)."""
    if "date" in when:
        return datetime.fromisoformat(when["date"]).replace(tzinfo=UTC)
    return _instant(when["dateTime"])
