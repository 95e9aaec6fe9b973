"""Event times for the Calendar sandbox: EventDateTime validation, instants, rendering.

An event's ``start``/``end`` is stored normalized: ``{"date": "YYYY-MM-DD"}`` for an
all-day event, or ``{"dateTime": "YYYY-MM-DDTHH:MM:SSZ", "timeZone"?: name}`` (UTC) for a
timed one. Responses render ``dateTime`` in the response time zone (the ``timeZone``
query parameter, else the calendar's: the account's ``timeZone``, else
``Behaviours.default_time_zone``, UTC unless changed), as Google does; ``timeZone`` is
kept as given.
All-day dates are never shifted.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.routing import ApiError, calendar_error

CALENDAR_TZ = "UTC"  # all-day dates sit on UTC midnights, whatever the calendar's zone
_UTC_NAMES = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Etc/Zulu", "Zulu"}
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class NeedsZone(ValueError):
    """A dateTime without an offset and without a time zone to read it in."""


def bad(message: str) -> ApiError:
    return calendar_error(400, "invalid", message)


def zone(name: Any) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None if there is no such zone."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_datetime(text: Any, tz: ZoneInfo | None = None) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime; None if malformed.

    Without an offset the wall-clock time is read in ``tz``; ``NeedsZone`` if none.
    """
    found = _RFC3339.match(text) if isinstance(text, str) else None
    if not found:
        return None
    fraction = found[7] or ".0"
    try:
        naive = datetime(
            *(int(found[i]) for i in range(1, 7)), microsecond=int(fraction[1:7].ljust(6, "0"))
        )
    except ValueError:
        return None
    offset = found[8]
    if offset is None:
        if tz is None:
            raise NeedsZone(text)
        return naive.replace(tzinfo=tz).astimezone(UTC)
    if offset in ("Z", "z"):
        return naive.replace(tzinfo=UTC)
    sign = 1 if offset[0] == "+" else -1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return naive.replace(tzinfo=timezone(sign * delta)).astimezone(UTC)


def parse_date(text: Any) -> date | None:
    if not isinstance(text, str) or not _DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_in(moment: datetime, tz_name: str) -> str:
    """``moment`` as RFC 3339 wall-clock time with the offset of ``tz_name``."""
    if tz_name in _UTC_NAMES:
        return utc_text(moment)
    return moment.astimezone(ZoneInfo(tz_name)).isoformat(timespec="seconds")


def normalize_time(value: Any, label: str) -> dict[str, str]:
    """Validate one EventDateTime (``label``: "start"/"end") into its stored form."""
    if not isinstance(value, dict) or not (value.get("date") or value.get("dateTime")):
        raise bad(f"Missing {label} time.")
    tz_name = value.get("timeZone")
    tz = zone(tz_name) if tz_name is not None else None
    if tz_name is not None and tz is None:
        raise bad(f"Invalid time zone definition for {label} time.")
    if value.get("date") and value.get("dateTime"):
        raise bad(f"Invalid {label} time.")
    extra = {"timeZone": tz_name} if tz_name is not None else {}
    if value.get("date"):
        day = parse_date(value["date"])
        if day is None:
            raise bad(f"Invalid {label} time.")
        return {"date": day.isoformat(), **extra}
    try:
        moment = parse_datetime(value["dateTime"], tz)
    except NeedsZone:
        raise bad(f"Missing time zone definition for {label} time.") from None
    if moment is None:
        raise bad(f"Invalid {label} time.")
    return {"dateTime": utc_text(moment), **extra}


def check_range(start: dict[str, str], end: dict[str, str]) -> None:
    if ("date" in start) != ("date" in end):
        raise bad("Start and end times must either both be date or both be dateTime.")
    first, last = instant(start), instant(end)
    if last < first or ("date" in start and last == first):
        raise calendar_error(
            400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar"
        )


def is_all_day(value: dict[str, str]) -> bool:
    return "date" in value


def instant(value: dict[str, str]) -> datetime:
    """The UTC instant a stored EventDateTime starts at (all-day: calendar midnight)."""
    if "date" in value:
        day = date.fromisoformat(value["date"])
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(CALENDAR_TZ)).astimezone(UTC)
    return datetime.strptime(value["dateTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def sort_text(value: dict[str, str]) -> str:
    return utc_text(instant(value))


def render_time(value: dict[str, str], out_tz: str) -> dict[str, str]:
    """A stored EventDateTime as a response shows it in time zone ``out_tz``."""
    if "dateTime" not in value:
        return dict(value)
    return {**value, "dateTime": format_in(instant(value), out_tz)}


def query_time(raw: str | None, name: str) -> datetime | None:
    """A ``timeMin``-style query parameter (an offset is mandatory)."""
    if raw is None:
        return None
    try:
        moment = parse_datetime(raw)
    except NeedsZone:
        moment = None
    if moment is None:
        raise calendar_error(400, "invalid", f"Invalid value for {name}: {raw}", location=name)
    return moment
