"""Per-account People state for the sandbox: contacts, contact groups, change log, tokens.

One ``PeopleStore`` lives in ``Account.ext["people"]``. Every write stamps the records
it touches with the next value of a per-store sequence number, a fresh etag and a
strictly increasing ``updateTime``; sync tokens carry the sequence number they were
issued at, so an incremental list is "every record whose sequence is greater".
Deleted contacts and groups stay as tombstones for that purpose. Page tokens name a
server-side snapshot of the result, so paging is stable while writes go on.

Sync tokens encode (kind, store nonce, sequence, chain start). They expire seven days
of sandbox time after the *full* sync that began the chain: tokens handed out by
incremental calls keep that start, as Google's text reads ("expire 7 days after the
full sync"); the ``syncTokenExtends`` switch makes each call restart the seven days.
Contact-group sync tokens do not expire (Google documents no expiry for them).
With ``Behaviours.people_propagation_seconds`` a connections.list delta sees only the
writes at least that old (``propagated``) and its token stops there.

Rules enforced here (GOOGLE_API.md 3.2, 3.3): a contact keeps at least one
contact-group membership; only user groups, ``myContacts`` and ``starred`` accept
additions; user-group names are unique.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import secrets
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.people_fields import (
    DEPRECATED_GROUP,
    EXPIRED_TOKEN,
    MISSING_ETAG,
    STALE_ETAG,
    STORED,
    bad,
    default_photo,
    failed_precondition,
    field_items,
    membership_item,
    not_found,
    supplied_etags,
)
from sandbox.routing import Call, people_error
from sandbox.state import rfc3339

SYNC_TOKEN_SECONDS = 7 * 24 * 3600
MY_CONTACTS = "contactGroups/myContacts"
SYSTEM_GROUPS = {  # id -> formattedName; only the first two accept new members
    "myContacts": "My Contacts",
    "starred": "Starred",
    "friends": "Friends",
    "family": "Family",
    "coworkers": "Coworkers",
    "chatBuddies": "Chat contacts",
    "all": "All Contacts",
    "blocked": "Blocked",
}
ADDABLE_SYSTEM = ("myContacts", "starred")
# Serialized FieldMask ids in front of the source etag inside a person etag (fixed here).
_ETAG_PREFIX = b"\x12\x0e\x01\x02=\x05\x07\t>\x0b?\x0c\x10@7.\x1a\x04\x01\x02\x05\x07\x22\x0c"
_TOKEN = struct.Struct(">BIQQ")  # kind, store nonce, sequence, chain start (ms)
KIND_CONNECTIONS, KIND_GROUPS = 1, 2

DEFAULT_SETTINGS = {
    # Creating a contact with memberships that lack myContacts also adds myContacts.
    "autoAddMyContacts": False,
    # An incremental connections.list issues a token whose 7 days start again.
    "syncTokenExtends": False,
}


def settings(sandbox: Any) -> dict[str, Any]:
    """Sandbox-wide People switches (``POST /_sandbox/people/settings``)."""
    return sandbox.ext.setdefault("people.settings", dict(DEFAULT_SETTINGS))


def store_of(call: Call) -> PeopleStore:
    """The caller's store, created on first use."""
    ext = call.me.ext
    if "people" not in ext:
        ext["people"] = PeopleStore(call.me.email, call.me.numeric_id, call.sandbox)
    return ext["people"]


def _source_etag() -> str:
    return "#" + base64.b64encode(secrets.token_bytes(8)).decode()


def person_etag(source_etag: str) -> str:
    """``%…``: Google's person etag embeds the source etag after a field-mask prefix."""
    return "%" + base64.b64encode(_ETAG_PREFIX + source_etag[1:].encode()).decode()


def source_etag_in(etag: str) -> str | None:
    """The source etag carried by a person etag, or None if it is not one of ours."""
    try:
        raw = base64.b64decode(etag[1:], validate=True) if etag.startswith("%") else b""
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_ETAG_PREFIX) or len(raw) != len(_ETAG_PREFIX) + 12:
        return None
    return "#" + raw[len(_ETAG_PREFIX) :].decode("ascii", "replace")


@dataclass
class PersonRecord:
    source_id: str  # lowercase hex; the resource name is its decimal value
    fields: dict[str, list[dict]]
    groups: list[str]  # contact group resource names
    source_etag: str = ""
    update_time: datetime | None = None
    seq: int = 0
    deleted: bool = False

    @property
    def resource_name(self) -> str:
        return f"people/c{int(self.source_id, 16)}"

    @property
    def etag(self) -> str:
        return person_etag(self.source_etag)

    @property
    def source(self) -> dict[str, str]:
        return {"type": "CONTACT", "id": self.source_id}

    def sort_name(self, key: str) -> str:
        names = self.fields.get("names") or [{}]
        return str(names[0].get(key) or "").casefold()


@dataclass
class GroupRecord:
    group_id: str
    name: str
    system: bool
    formatted_name: str = ""
    client_data: list[dict] = field(default_factory=list)
    members: dict[str, None] = field(default_factory=dict)  # ordered set of person names
    etag: str = ""
    update_time: datetime | None = None
    seq: int = 0
    deleted: bool = False

    @property
    def resource_name(self) -> str:
        return f"contactGroups/{self.group_id}"

    @property
    def accepts_members(self) -> bool:
        return not self.system or self.group_id in ADDABLE_SYSTEM


@dataclass
class Snapshot:
    """One list result, frozen at its first page so later pages are stable."""

    kind: int
    params: tuple
    names: list[str]
    seq: int  # the store sequence the result reflects
    chain_start: float
    incremental: bool
    key: bytes = field(default_factory=lambda: secrets.token_bytes(12))


class PeopleStore:
    MAX_SNAPSHOTS = 500

    def __init__(self, email: str, account_id: str, sandbox: Any) -> None:
        self.email = email
        self.account_id = account_id
        self.sandbox = sandbox
        self.nonce = secrets.randbits(32)
        self.seq = 0
        self.last_time: datetime | None = None
        self.persons: dict[str, PersonRecord] = {}  # by resource name, tombstones included
        self.groups: dict[str, GroupRecord] = {}
        self.snapshots: dict[bytes, Snapshot] = {}  # by Snapshot.key, for page tokens
        self.write_times: list[float] = []  # sandbox time of write number n at [n - 1]
        self.profile_etag = _source_etag()
        for group_id, formatted in SYSTEM_GROUPS.items():
            group = GroupRecord(group_id, group_id, system=True, formatted_name=formatted)
            self.groups[group.resource_name] = group
            self._touch(group)

    # -- stamps -------------------------------------------------------------------

    def now(self) -> datetime:
        return self.sandbox.clock.now()

    def _touch(self, record: PersonRecord | GroupRecord) -> None:
        """A write: next sequence number, new etag, strictly later update time."""
        moment = self.now()
        if self.last_time is not None and moment <= self.last_time:
            moment = self.last_time + timedelta(microseconds=1)
        self.last_time = moment
        self.seq += 1
        self.write_times.append(moment.timestamp())
        record.seq, record.update_time = self.seq, moment
        if isinstance(record, PersonRecord):
            record.source_etag = _source_etag()
        else:
            record.etag = base64.b64encode(secrets.token_bytes(8)).decode()

    def _new_hex_id(self, taken: Any) -> str:
        while True:
            value = format(secrets.randbits(62) | (1 << 59), "x")
            if value not in taken:
                return value

    def propagated(self, delay: float) -> int:
        """The last sequence number whose write is at least ``delay`` seconds old: what
        sync requests see when writes take ``delay`` to propagate."""
        if delay <= 0:
            return self.seq
        horizon = self.sandbox.clock.timestamp() - delay
        return bisect.bisect_right(self.write_times, horizon)

    # -- lookups ------------------------------------------------------------------

    def person(self, name: str) -> PersonRecord:
        """A live contact by resource name; 404 otherwise (other accounts' too)."""
        record = self.persons.get(name)
        if record is None or record.deleted:
            raise not_found()
        return record

    def group(self, name: str) -> GroupRecord:
        record = self.groups.get(name)
        if record is None or record.deleted:
            raise not_found()
        return record

    def live_persons(self) -> list[PersonRecord]:
        return [p for p in self.persons.values() if not p.deleted]

    def live_groups(self) -> list[GroupRecord]:
        return [g for g in self.groups.values() if not g.deleted]

    def member_names(self, group: GroupRecord) -> list[str]:
        if group.group_id == "all":
            return [p.resource_name for p in self.live_persons()]
        return list(group.members)

    # -- contacts -----------------------------------------------------------------

    def addable_group(self, name: str) -> GroupRecord:
        """A group a contact may be added to; 400 for unknown or deprecated groups."""
        group = self.groups.get(name)
        if group is None or group.deleted:
            raise bad(f"Contact group resource name {name} is not valid or does not exist.")
        if not group.accepts_members:
            raise bad(DEPRECATED_GROUP)
        return group

    def initial_groups(self, requested: list[dict] | None) -> list[str]:
        names = list(dict.fromkeys(m["contactGroupResourceName"] for m in requested or []))
        for name in names:
            self.addable_group(name)
        if not names:
            return [MY_CONTACTS]
        if settings(self.sandbox)["autoAddMyContacts"] and MY_CONTACTS not in names:
            names.append(MY_CONTACTS)
        return names

    def check_new_groups(self, person: PersonRecord, requested: list[dict]) -> list[str]:
        names = list(dict.fromkeys(m["contactGroupResourceName"] for m in requested))
        if not names:
            raise bad("A contact must have at least one contact group membership.")
        for name in names:
            if name not in person.groups:
                self.addable_group(name)
        return names

    def create_person(self, fields: dict[str, list[dict]], groups: list[str]) -> PersonRecord:
        source_id = self._new_hex_id({p.source_id for p in self.persons.values()})
        stored = {f: fields.get(f, []) for f in STORED if fields.get(f)}
        person = PersonRecord(source_id, stored, [])
        self.persons[person.resource_name] = person
        self._set_groups(person, groups)
        self._touch(person)
        return person

    def check_etag(self, person: PersonRecord, body: dict[str, Any]) -> None:
        """400 without an etag; FAILED_PRECONDITION when it is not the current one."""
        top, source_etags = supplied_etags(body)
        if top is None and not source_etags:
            raise bad(MISSING_ETAG)
        current = person.source_etag
        if top is not None and source_etag_in(top) != current:
            raise failed_precondition(STALE_ETAG)
        if source_etags and current not in source_etags:
            raise failed_precondition(STALE_ETAG)

    def update_person(
        self, person: PersonRecord, fields: dict[str, list[dict]], groups: list[str] | None
    ) -> None:
        """Replace the given fields wholesale (an empty list clears one)."""
        for name, items in fields.items():
            if name == "memberships":
                continue
            if items:
                person.fields[name] = items
            else:
                person.fields.pop(name, None)
        if groups is not None:
            self._set_groups(person, groups)
        self._touch(person)

    def delete_person(self, person: PersonRecord) -> None:
        self._set_groups(person, [])
        person.fields, person.deleted = {}, True
        self._touch(person)

    def _set_groups(self, person: PersonRecord, names: list[str]) -> None:
        """Move the person to exactly ``names``; every group that changes is touched."""
        name = person.resource_name
        for gone in [g for g in person.groups if g not in names]:
            group = self.groups[gone]
            group.members.pop(name, None)
            self._touch(group)
        for added in [g for g in names if g not in person.groups]:
            group = self.groups[added]
            group.members[name] = None
            self._touch(group)
        person.groups = list(names)

    # -- groups -------------------------------------------------------------------

    def _check_unique(self, name: Any, exclude: GroupRecord | None = None) -> str:
        if not isinstance(name, str) or not name.strip():
            raise bad("Contact group name must not be empty.")
        for group in self.live_groups():
            if group is not exclude and not group.system and group.name == name:
                raise people_error(409, "Requested entity already exists")
        return name

    def create_group(self, name: Any, client_data: list[dict]) -> GroupRecord:
        name = self._check_unique(name)
        group_id = self._new_hex_id({g.group_id for g in self.groups.values()})
        group = GroupRecord(group_id, name, system=False, client_data=client_data)
        self.groups[group.resource_name] = group
        self._touch(group)
        return group

    def update_group(self, group: GroupRecord, changes: dict[str, Any]) -> None:
        if group.system:
            raise bad("Cannot update a system contact group.")
        if "name" in changes:
            group.name = self._check_unique(changes["name"], exclude=group)
        if "clientData" in changes:
            group.client_data = changes["clientData"]
        self._touch(group)

    def delete_group(self, group: GroupRecord, delete_contacts: bool) -> None:
        """Members leave the group; a contact left with no group goes to myContacts
        (or is deleted with ``deleteContacts``)."""
        if group.system:
            raise bad("Cannot delete a system contact group.")
        for name in list(group.members):
            person = self.persons[name]
            if delete_contacts:
                self.delete_person(person)
                continue
            rest = [g for g in person.groups if g != group.resource_name] or [MY_CONTACTS]
            self._set_groups(person, rest)
            self._touch(person)
        group.deleted, group.client_data = True, []
        self._touch(group)

    def modify_members(
        self, group: GroupRecord, add: list[str], remove: list[str]
    ) -> tuple[list[str], list[str]]:
        """(not found, cannot remove last group) after applying the additions and removals."""
        if add and not group.accepts_members:
            raise bad(DEPRECATED_GROUP)
        missing: dict[str, None] = {}
        last: dict[str, None] = {}
        for name in add:
            person = self.persons.get(name)
            if person is None or person.deleted:
                missing[name] = None
            elif group.resource_name not in person.groups:
                self._set_groups(person, [*person.groups, group.resource_name])
                self._touch(person)
        for name in remove:
            person = self.persons.get(name)
            if person is None or person.deleted:
                missing[name] = None
            elif group.resource_name in person.groups:
                if len(person.groups) == 1:
                    last[name] = None
                    continue
                self._set_groups(person, [g for g in person.groups if g != group.resource_name])
                self._touch(person)
        return list(missing), list(last)

    # -- sync and page tokens -----------------------------------------------------

    def sync_token(self, kind: int, seq: int, chain_start: float) -> str:
        raw = _TOKEN.pack(kind, self.nonce, seq, int(chain_start * 1000))
        return base64.b64encode(b"\x08\x01" + raw).decode()

    def read_sync_token(self, token: str, kind: int, expires: bool) -> tuple[int, float]:
        """(sequence, chain start) of a token; 400 INVALID_ARGUMENT when malformed or not
        ours, 400 FAILED_PRECONDITION EXPIRED_SYNC_TOKEN seven days after the chain's full
        sync."""
        try:
            raw = base64.b64decode(token, validate=True)
            if not raw.startswith(b"\x08\x01"):
                raise ValueError(token)
            got_kind, nonce, seq, start_ms = _TOKEN.unpack(raw[2:])
        except (binascii.Error, ValueError, struct.error):
            raise bad("Request contains an invalid argument.") from None
        if got_kind != kind or nonce != self.nonce or seq > self.seq:
            raise bad("Request contains an invalid argument.")
        chain_start = start_ms / 1000
        if expires and self.sandbox.clock.timestamp() >= chain_start + SYNC_TOKEN_SECONDS:
            raise failed_precondition(EXPIRED_TOKEN, reason="EXPIRED_SYNC_TOKEN")
        return seq, chain_start

    def resume(self, token: str, kind: int, params: tuple) -> tuple[Snapshot, int]:
        """(snapshot, offset) named by a page token; 400 if unknown or parameters differ."""
        snapshot, offset, _ = self.resume_at(token, kind, params)
        return snapshot, offset

    def resume_at(self, token: str, kind: int, params: tuple) -> tuple[Snapshot, int, int]:
        """(snapshot, offset, page index) named by a page token (see ``resume``)."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            snapshot, (offset, index) = self.snapshots[raw[:12]], struct.unpack(">II", raw[12:])
        except (binascii.Error, ValueError, KeyError, struct.error):
            raise bad("Request contains an invalid argument.") from None
        if snapshot.kind != kind:
            raise bad("Request contains an invalid argument.")
        if snapshot.params != params:
            raise bad(
                "Parameters provided with a page token must match the call that "
                "provided the page token."
            )
        return snapshot, offset, index

    def page(
        self, snapshot: Snapshot, offset: int, size: int, index: int = 0
    ) -> tuple[list[str], str | None]:
        """Names on the page at ``offset`` (the ``index``-th page; ``size`` may be 0 for an
        empty one) and the token of the next page, if any. The same page always hands
        out the same next token."""
        end = offset + size
        if end >= len(snapshot.names):
            return snapshot.names[offset:], None
        self.snapshots[snapshot.key] = snapshot
        while len(self.snapshots) > self.MAX_SNAPSHOTS:
            del self.snapshots[next(iter(self.snapshots))]
        raw = snapshot.key + struct.pack(">II", end, index + 1)
        return snapshot.names[offset:end], base64.urlsafe_b64encode(raw).decode().rstrip("=")


# -- rendering ----------------------------------------------------------------------


def render_person(person: PersonRecord, paths: list[str]) -> dict[str, Any]:
    """A contact as Google returns it for ``paths`` (resourceName and etag always)."""
    out: dict[str, Any] = {"resourceName": person.resource_name, "etag": person.etag}
    source = person.source
    if person.deleted:
        out["metadata"] = {**_person_metadata(person), "deleted": True}
        if "photos" in paths:
            out["photos"] = default_photo(source)
        return out
    for path in sorted(paths, key=lambda p: p != "metadata"):  # Google puts it first
        if path == "metadata":
            out["metadata"] = _person_metadata(person)
        elif path == "memberships" and person.groups:
            out["memberships"] = [membership_item(g, source) for g in person.groups]
        elif path == "photos":
            out["photos"] = default_photo(source)
        elif person.fields.get(path):
            out[path] = field_items(path, person.fields[path], source)
    return out


def _person_metadata(person: PersonRecord) -> dict[str, Any]:
    assert person.update_time is not None
    source = {
        **person.source,
        "etag": person.source_etag,
        "updateTime": rfc3339(person.update_time, 6),
    }
    return {"sources": [source], "objectType": "PERSON"}


def render_profile(store: PeopleStore, paths: list[str]) -> dict[str, Any]:
    """``people/me``: the account's own PROFILE person."""
    account_id = store.account_id
    out: dict[str, Any] = {
        "resourceName": f"people/{account_id}",
        "etag": person_etag(store.profile_etag),
    }
    profile = {"type": "PROFILE", "id": account_id}
    account = {"type": "ACCOUNT", "id": account_id}
    local = store.email.split("@")[0].replace(".", " ").title()
    values = {
        "names": field_items("names", [{"givenName": local}], profile),
        "emailAddresses": [
            {
                "metadata": {"primary": True, "verified": True, "source": account},
                "value": store.email,
            }
        ],
        "photos": default_photo(profile),
        "metadata": {
            "sources": [
                {
                    **profile,
                    "etag": store.profile_etag,
                    "profileMetadata": {"objectType": "PERSON", "userTypes": ["GOOGLE_USER"]},
                }
            ],
            "objectType": "PERSON",
        },
    }
    out.update({path: values[path] for path in paths if path in values})
    return out


def render_group(
    store: PeopleStore, group: GroupRecord, paths: list[str], max_members: int = 0
) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceName": group.resource_name, "etag": group.etag}
    assert group.update_time is not None
    if group.deleted:
        out["metadata"] = {"updateTime": rfc3339(group.update_time), "deleted": True}
        return out
    members = store.member_names(group)
    for path in paths:
        if path == "metadata":
            out["metadata"] = {"updateTime": rfc3339(group.update_time)}
        elif path == "groupType":
            out["groupType"] = "SYSTEM_CONTACT_GROUP" if group.system else "USER_CONTACT_GROUP"
        elif path == "name":
            out["name"] = group.name
            out["formattedName"] = group.formatted_name or group.name
        elif path == "memberCount" and members:
            out["memberCount"] = len(members)
        elif path == "clientData" and group.client_data:
            out["clientData"] = [dict(c) for c in group.client_data]
    if max_members > 0 and members:
        out["memberResourceNames"] = members[:max_members]
    return out
