"""The domain model: the documents of DESIGN.md ("Store: documents"), validated on read.

Every model is a frozen pydantic model. ``load`` turns a stored document into a
model or raises ``MalformedDocument`` naming the collection, the id and the field;
``load_each`` does that for many documents and returns the good ones plus one
problem per bad one, so a single malformed CRM record never stops a whole run.

Unknown fields are ignored on read. The sync never writes a CRM document from a
model: it patches the stored document, so fields crmsync does not know survive.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from core.errors import MalformedDocument

USERS = "users"
TAGS = "tags"
CONTACTS = "contacts"
ACTIVITIES = "activities"
SYNC_SETTINGS = "syncSettings"
GOOGLE_ACCOUNTS = "googleAccounts"
SYNC_STATE = "syncState"
LINKS = "links"
SYNC_RUNS = "syncRuns"
# a run's journal, in pages of at most JOURNAL_PAGE items: {runId}-{page:04d}
SYNC_RUN_ITEMS = "syncRunItems"

Section = Literal["contacts", "activities"]
SECTIONS: tuple[Section, ...] = ("contacts", "activities")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def _timestamp(value: str) -> str:
    """An RFC 3339 timestamp with an explicit offset (``Z`` or ``+hh:mm``)."""
    if not _OFFSET.search(value) or "T" not in value:
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2024-05-01T10:00:00Z")
    dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def _utc_timestamp(value: str) -> str:
    """A UTC timestamp ending in ``Z``, as DESIGN.md fixes for store timestamps: cursors
    compare them as strings, which only orders correctly in one zone."""
    _timestamp(value)
    if not value.endswith("Z"):
        raise ValueError("must be a UTC timestamp ending in Z, e.g. 2024-05-01T10:00:00Z")
    return value


def _date(value: str) -> str:
    if not _DATE.match(value):
        raise ValueError("must be a date, YYYY-MM-DD")
    dt.date.fromisoformat(value)
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{value}'") from None
    return value


def _email(value: str) -> str:
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or "." not in domain:
        raise ValueError(f"'{value}' is not an email address")
    return value.strip()


MAX_ID_BYTES = 1_500  # Firestore's limit on a document id
_RESERVED = re.compile(r"__.*__")


def id_problem(value: object) -> str | None:
    """Why ``value`` cannot be a document id (Firestore's rules, which the SQLite store
    keeps too: no "/", not "." or "..", not "__x__", at most 1,500 bytes of UTF-8), or
    None. What comes in as an id is checked with it at the door."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if "/" in value or value in (".", "..") or _RESERVED.fullmatch(value):
        return "may not contain '/', nor be '.', '..' or __x__"
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        return "is not valid text"
    return f"is longer than {MAX_ID_BYTES} bytes" if size > MAX_ID_BYTES else None


def _doc_id(value: str) -> str:
    problem = id_problem(value)
    if problem:
        raise ValueError(f"an id {problem}")
    return value


DocId = Annotated[str, AfterValidator(_doc_id)]
Timestamp = Annotated[str, AfterValidator(_timestamp)]
UtcTimestamp = Annotated[str, AfterValidator(_utc_timestamp)]
Date = Annotated[str, AfterValidator(_date)]
TimeZone = Annotated[str, AfterValidator(_zone)]
Email = Annotated[str, AfterValidator(_email)]


def parse_timestamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def when(value: Any) -> dt.datetime | None:
    """A time crmsync wrote (RFC 3339 text with an offset), or None: absent, or not
    one (a corrupt document holds nothing, and never stops a run or the tick)."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_timestamp(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def stamp(moment: dt.datetime) -> str:
    """UTC, microseconds, ``Z``: one fixed width, so these strings sort as times do."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    id: str = ""


class User(Model):
    email: Email
    displayName: str = ""
    timeZone: TimeZone = "UTC"


class Tag(Model):
    name: str
    kind: Literal["private", "public", "corporate"]
    ownerId: str | None = None

    @model_validator(mode="after")
    def _private_has_owner(self) -> Tag:
        if self.kind == "private" and not self.ownerId:
            raise ValueError("ownerId: a private tag needs an owner")
        return self


class EmailValue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    value: Email
    type: str | None = None


class PhoneValue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    value: Annotated[str, Field(min_length=1)]
    type: str | None = None


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    street: str | None = None
    city: str | None = None
    region: str | None = None
    postalCode: str | None = None
    country: str | None = None
    type: str | None = None


class Contact(Model):
    givenName: str | None = None
    familyName: str | None = None
    middleName: str | None = None
    emails: list[EmailValue] = []
    phones: list[PhoneValue] = []
    company: str | None = None
    jobTitle: str | None = None
    department: str | None = None
    addresses: list[Address] = []
    birthday: Date | None = None
    notes: str | None = None
    tagIds: list[str] = []
    modifiedAt: UtcTimestamp
    deletedAt: UtcTimestamp | None = None


Response = Literal["needsAction", "accepted", "declined", "tentative"]


class Participant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    contactId: str | None = None
    userId: str | None = None
    email: Email | None = None
    response: Response | None = None

    @model_validator(mode="after")
    def _identifies_someone(self) -> Participant:
        if not (self.contactId or self.userId or self.email):
            raise ValueError("a participant needs a contactId, a userId or an email")
        return self


class Activity(Model):
    title: str = ""
    description: str | None = None
    location: str | None = None
    start: str
    end: str
    allDay: bool = False
    timeZone: TimeZone | None = None
    showInCalendar: bool = False
    organizerId: str
    participants: list[Participant] = []
    status: Literal["planned", "completed", "canceled"] = "planned"
    modifiedAt: UtcTimestamp
    deletedAt: UtcTimestamp | None = None

    @model_validator(mode="after")
    def _times_agree(self) -> Activity:
        check = _date if self.allDay else _timestamp
        for name in ("start", "end"):
            try:
                check(getattr(self, name))
            except ValueError as exc:
                kind = "all-day" if self.allDay else "timed"
                raise ValueError(f"{name}: {exc} (the activity is {kind})") from None
        if self._bound(self.end) < self._bound(self.start):
            raise ValueError("end: is before start")
        return self

    def _bound(self, value: str) -> dt.datetime:
        if self.allDay:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
        return parse_timestamp(value)


class ContactSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    auto: bool = False
    intervalMinutes: Annotated[int, Field(ge=5, le=1440)] = 60
    tagId: DocId | None = None


class ActivitySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    auto: bool = False
    intervalMinutes: Annotated[int, Field(ge=5, le=1440)] = 60
    syncFrom: Date | None = None


SYNC_FROM_YEARS_BACK = 10
SYNC_FROM_DAYS_AHEAD = 180  # the expansion horizon: a later start leaves an empty window
SYNC_FROM_EARLIEST = dt.date(1970, 1, 1)


def sync_from_problem(
    value: str | dt.date | None, today: dt.date, *, saving: bool = False
) -> str | None:
    """Why a "sync activities from" date is unusable, or None. The window runs from it
    to today + 180 days (Google lists no further), so a later start syncs nothing.
    ``saving`` (the settings API) also refuses starts over ten years back: years of
    events for no one's benefit. A run refuses only what cannot work (before 1970,
    where time zones overflow), so a date accepted once never goes bad with time."""
    if value is None:
        return None
    day = dt.date.fromisoformat(value) if isinstance(value, str) else value
    earliest = SYNC_FROM_EARLIEST
    if saving:
        earliest = max(earliest, dt.date(today.year - SYNC_FROM_YEARS_BACK, today.month, 1))
    latest = today + dt.timedelta(days=SYNC_FROM_DAYS_AHEAD)
    if day < earliest:
        limit = f"at most {SYNC_FROM_YEARS_BACK} years back" if saving else "1970 or later"
        return f"must be on or after {earliest.isoformat()} ({limit})"
    if day > latest:
        return (
            f"must be on or before {latest.isoformat()}: Google Calendar is synced up to "
            f"{SYNC_FROM_DAYS_AHEAD} days ahead, so a later start would sync nothing"
        )
    return None


class SyncSettings(Model):
    contacts: ContactSettings = ContactSettings()
    activities: ActivitySettings = ActivitySettings()


def section_settings(user_id: str, data: Any, section: str) -> SyncSettings:
    """The user's settings as one section reads them: only its own part is checked
    (``MalformedDocument`` if it is malformed); the other's is left to that section,
    so that a malformed contacts part never stops the activities, nor the reverse."""
    part = data.get(section) if isinstance(data, dict) else None
    return load(SyncSettings, SYNC_SETTINGS, user_id, {} if part is None else {section: part})


class GoogleAccount(Model):
    """googleAccounts/{userId}. A disconnected account (``not_connected``) keeps only
    ``disconnectedAt`` and ``previousAccountEmail``: runs meet ``NotConnected`` before
    loading it (functions.sync)."""

    accountEmail: str | None = None
    scopes: list[str] = []
    refreshTokenCiphertext: str
    status: Literal["connected", "reauth_required"] = "connected"
    connectedAt: Timestamp


class Lease(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    holder: str
    expiresAt: Timestamp


class SyncState(Model):
    userId: str
    section: Section
    googleCursor: str | None = None
    crmCursor: str | None = None
    groupResourceName: str | None = None
    lastRunAt: Timestamp | None = None
    lastSuccessAt: Timestamp | None = None
    nextDueAt: Timestamp | None = None
    lastResult: dict[str, Any] | None = None
    lease: Lease | None = None


class Link(Model):
    userId: str
    section: Section
    crmId: str
    googleId: str
    googleEtag: str | None = None
    fingerprint: str | None = None
    fields: dict[str, Any] = {}
    syncedAt: Timestamp
    tombstone: bool = False


class SyncRun(Model):
    userId: str
    section: Section
    trigger: str
    startedAt: Timestamp
    finishedAt: Timestamp | None = None
    counts: dict[str, int] = {}
    errors: list[dict[str, Any]] = []
    plan: dict[str, int] = {}


def state_id(user_id: str, section: Section) -> str:
    return f"{user_id}:{section}"


def link_id(user_id: str, section: Section, crm_id: str) -> str:
    return f"{user_id}:{section}:{crm_id}"


M = TypeVar("M", bound=Model)


def load(model: type[M], collection: str, doc_id: str, data: Any) -> M:
    """Validate one stored document; ``MalformedDocument`` names the first bad field."""
    if not isinstance(data, dict):
        raise MalformedDocument(collection, doc_id, "(document)", "is not a JSON object")
    try:
        return model.model_validate({**data, "id": doc_id})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        problem = first["msg"].removeprefix("Value error, ")
        if not field:  # a cross-field check: its message starts with "field: "
            field, _, problem = problem.partition(": ") if ": " in problem else ("", "", problem)
        raise MalformedDocument(collection, doc_id, field or "(document)", problem) from None


def load_each(
    model: type[M], collection: str, docs: Iterable[tuple[str, Any]]
) -> tuple[list[M], list[MalformedDocument]]:
    """Validate many documents: the good ones, and a problem for each bad one."""
    good: list[M] = []
    bad: list[MalformedDocument] = []
    for doc_id, data in docs:
        try:
            good.append(load(model, collection, doc_id, data))
        except MalformedDocument as problem:
            bad.append(problem)
    return good, bad
