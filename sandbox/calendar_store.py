"""Calendar sandbox state: one ``CalendarStore`` per account, one ``CalendarState`` in all.

A store holds the account's primary calendar: events by id (masters, single events,
recurrence exceptions, and copies of events other accounts organize) and a change log
of ``(sequence, event id)`` with a monotonically increasing sequence. Every write goes
through ``commit``, which gives the event a new etag and ``updated`` and logs it.

Sync tokens encode (issue time, sequence, invalidation generation, store epoch) in a
protobuf-like varint record, base64 like Google's (``CPjf...=``). A token is good for
``SYNC_TOKEN_DAYS`` of sandbox time, for its own calendar only, and until the next
``POST /_sandbox/calendar/invalidateSyncTokens``. With
``Behaviours.cancelled_event_ttl_seconds``, deleted events are purged that long after
their last write (``purge_cancelled``); the log keeps their ids, lists skip them.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.calendar_times import CALENDAR_TZ
from sandbox.state import rfc3339

BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
SYNC_TOKEN_DAYS = 28


def new_event_id() -> str:
    """A server-generated event id: 26 base32hex characters, as Google's are."""
    return "".join(secrets.choice(BASE32HEX) for _ in range(26))


@dataclass
class StoredEvent:
    """One event as this calendar shows it (``data`` is the Event resource)."""

    data: dict[str, Any]
    organizer: str  # email of the account whose calendar holds the original
    copies: set[str] = field(default_factory=set)  # organizer side: accounts with a copy
    personal: dict[str, Any] = field(default_factory=dict)  # copy side: own reminders etc.
    self_deleted: bool = False  # copy side: the attendee deleted their copy
    send_updates: str | None = None  # the last write's sendUpdates

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def cancelled(self) -> bool:
        return self.data.get("status") == "cancelled"

    @property
    def is_master(self) -> bool:
        return bool(self.data.get("recurrence")) and "recurringEventId" not in self.data

    @property
    def is_exception(self) -> bool:
        return "recurringEventId" in self.data


@dataclass
class Channel:
    """A push notification channel created by events.watch."""

    id: str
    resource_id: str
    resource_uri: str
    token: str | None
    expiration_ms: int
    address: str
    owner: str  # account that created it
    calendar: str  # email of the watched calendar
    number: int = 1


@dataclass
class CalendarState:
    """Sandbox-wide Calendar state: etag clock, channels, token generation, outbox."""

    generation: int = 0
    last_etag: int = 0
    channels: dict[str, Channel] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)  # would-be emails

    def next_etag(self, now: datetime) -> str:
        self.last_etag = max(self.last_etag + 1, int(now.timestamp() * 1_000_000) * 2)
        return f'"{self.last_etag}"'


class CalendarStore:
    """An account's primary calendar."""

    def __init__(self, email: str, now: datetime) -> None:
        self.email = email
        self.time_zone = CALENDAR_TZ
        self.epoch = secrets.randbits(40)
        self.resource_id = secrets.token_urlsafe(15).replace("-", "a").replace("_", "b")
        self.events: dict[str, StoredEvent] = {}
        self.log: list[tuple[int, str]] = []
        self.seq = 0
        self.updated = now
        self.etag = '"0"'

    def commit(self, event: StoredEvent, state: CalendarState, now: datetime) -> None:
        """Record a write: new etag, new ``updated`` (ms, strictly later), a log entry."""
        previous = event.data.get("updated")
        moment = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if previous and rfc3339(moment) <= previous:
            moment = datetime.fromisoformat(previous.replace("Z", "+00:00"))
            moment += timedelta(milliseconds=1)
        event.data["etag"] = self.etag = state.next_etag(now)
        event.data["updated"] = rfc3339(moment)
        self.events[event.id] = event
        self.seq += 1
        self.log.append((self.seq, event.id))
        self.updated = max(self.updated, moment)

    def purge_cancelled(self, before: datetime) -> None:
        """Forget deleted events last written before ``before``: "Such cancelled events
        will eventually disappear" (realism). Cancelled exceptions of a live series stay,
        as clients keep them "for the lifetime of the parent recurring event"."""
        cutoff = rfc3339(before)
        for event in list(self.events.values()):
            if not event.cancelled or event.data.get("updated", "") >= cutoff:
                continue
            master = self.events.get(event.data.get("recurringEventId", ""))
            if master is not None and not master.cancelled:
                continue
            del self.events[event.id]

    def changed_between(self, since: int, upto: int) -> dict[str, int]:
        """Event ids changed in sequence range (since, upto], with their first sequence."""
        start = bisect.bisect_right(self.log, (since, "\uffff"))
        changed: dict[str, int] = {}
        for seq, event_id in self.log[start:]:
            if seq > upto:
                break
            changed.setdefault(event_id, seq)
        return changed

    # -- sync and page tokens --------------------------------------------------------

    def sync_token(self, state: CalendarState, now: datetime, seq: int) -> str:
        fields = [int(now.timestamp() * 1000), seq, state.generation, self.epoch]
        return base64.urlsafe_b64encode(_varint_record(fields)).decode()

    def check_sync_token(self, token: str, state: CalendarState, now: datetime) -> int | None:
        """The sequence a sync token stands for, or None if it is not (or no longer) valid."""
        fields = _read_varint_record(token)
        if fields is None or len(fields) != 4:
            return None
        issued_ms, seq, generation, epoch = fields
        age = now.timestamp() - issued_ms / 1000
        if epoch != self.epoch or generation != state.generation or seq > self.seq:
            return None
        return seq if 0 <= age <= SYNC_TOKEN_DAYS * 86400 else None

    def page_token(self, page: dict[str, Any]) -> str:
        text = json.dumps({**page, "e": self.epoch}, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def read_page_token(self, token: str) -> dict[str, Any] | None:
        try:
            page = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(page, dict) or page.get("e") != self.epoch:
            return None
        return page


def _varint_record(values: list[int]) -> bytes:
    out = bytearray()
    for number, value in enumerate(values, 1):
        for part in (number << 3, value):
            while True:
                byte, part = part & 0x7F, part >> 7
                out.append(byte | (0x80 if part else 0))
                if not part:
                    break
    return bytes(out)


def _read_varint_record(token: str) -> list[int] | None:
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4))
    except (ValueError, binascii.Error):
        return None
    values: list[int] = []
    index, number = 0, 0
    while index < len(raw):
        decoded = []
        for _ in range(2):
            value, shift = 0, 0
            while True:
                if index >= len(raw) or shift > 70:
                    return None
                byte = raw[index]
                index += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            decoded.append(value)
        number += 1
        if decoded[0] != number << 3:
            return None
        values.append(decoded[1])
    return values
