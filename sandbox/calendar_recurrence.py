"""Recurring events: RRULE/EXRULE/RDATE/EXDATE parsing, bounded expansion, instance ids.

A timed series is expanded in its start's time zone, so instances keep their local
wall-clock time across DST changes; an all-day series is expanded in dates. As RFC 5545
says, the series start is always the first instance. Expansion is bounded: it stops
at the caller's ``until``, after ``MAX_STEPS`` raw occurrences, and callers cap kept
instances at ``MAX_INSTANCES`` and unbounded windows at ``HORIZON`` past "now".

Instance ids are ``{masterId}_{YYYYMMDDTHHMMSSZ}`` (UTC original start) for timed series
and ``{masterId}_{YYYYMMDD}`` for all-day ones.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from sandbox.calendar_times import CALENDAR_TZ, instant, utc_text, zone

MAX_INSTANCES = 730
MAX_STEPS = 50_000
HORIZON = timedelta(days=2 * 365)

Original = datetime | date  # a timed original start (aware, local zone) or an all-day date


class RecurrenceError(ValueError):
    pass


@dataclass
class Series:
    """A parsed recurrence: the first start plus inclusion and exclusion rules."""

    first: Original
    tz: ZoneInfo | None  # None for all-day series
    rules: list[rrule] = field(default_factory=list)
    exrules: list[rrule] = field(default_factory=list)
    rdates: list[Original] = field(default_factory=list)
    exdates: set[Any] = field(default_factory=set)  # UTC datetimes (timed) or dates
    exdays: set[date] = field(default_factory=set)  # VALUE=DATE exclusions of a timed series

    @property
    def all_day(self) -> bool:
        return self.tz is None


def parse_series(start: dict[str, str], lines: list[Any]) -> Series:
    """Parse ``recurrence`` lines for a series starting at the stored ``start``."""
    if "date" in start:
        series = Series(date.fromisoformat(start["date"]), None)
    else:
        tz = zone(start.get("timeZone"))
        if tz is None:
            raise RecurrenceError("Missing time zone definition for start time.")
        series = Series(instant(start).astimezone(tz), tz)
    for line in lines:
        if not isinstance(line, str) or ":" not in line:
            raise RecurrenceError("Invalid recurrence rule.")
        _add_line(series, line.strip())
    if not series.rules and not series.rdates:
        raise RecurrenceError("Invalid recurrence rule.")
    return series


def _add_line(series: Series, line: str) -> None:
    head, _, value = line.partition(":")
    name, *params = head.split(";")
    name = name.upper()
    if name in ("RRULE", "EXRULE"):
        rule = _rule(series, value)
        (series.rules if name == "RRULE" else series.exrules).append(rule)
    elif name in ("RDATE", "EXDATE"):
        options = {k.upper(): v for k, _, v in (p.partition("=") for p in params)}
        for item in value.split(","):
            moment = _date_value(series, item.strip(), options)
            if name == "RDATE":
                series.rdates.append(moment)
            elif isinstance(moment, datetime):
                series.exdates.add(moment.astimezone(UTC))
            elif series.all_day:
                series.exdates.add(moment)
            else:
                series.exdays.add(moment)
    else:
        raise RecurrenceError("Invalid recurrence rule.")


def _rule(series: Series, body: str) -> rrule:
    parts = [p for p in body.split(";") if p]
    until = [p.split("=", 1)[1] for p in parts if p.upper().startswith("UNTIL=")]
    rest = ";".join(p for p in parts if not p.upper().startswith("UNTIL="))
    first = series.first
    dtstart = datetime.combine(first, time()) if series.all_day else first
    try:
        rule = rrulestr(rest, dtstart=dtstart)
        if until:
            if "COUNT=" in rest.upper():
                raise RecurrenceError("Invalid recurrence rule.")
            rule = rule.replace(until=_until(series, until[0]))
    except (ValueError, TypeError, KeyError) as exc:
        raise RecurrenceError("Invalid recurrence rule.") from exc
    if not isinstance(rule, rrule):
        raise RecurrenceError("Invalid recurrence rule.")
    return rule


def _until(series: Series, text: str) -> datetime:
    if re.fullmatch(r"\d{8}", text):
        day = datetime.strptime(text, "%Y%m%d")
        if series.all_day:
            return day
        return day.replace(hour=23, minute=59, second=59, tzinfo=series.tz)
    moment = datetime.strptime(text.rstrip("Zz"), "%Y%m%dT%H%M%S")
    if series.all_day:
        return datetime.combine(moment.date(), time())
    return moment.replace(tzinfo=UTC if text[-1] in "Zz" else series.tz)


def _date_value(series: Series, text: str, options: dict[str, str]) -> Original:
    try:
        if options.get("VALUE", "").upper() == "DATE" or re.fullmatch(r"\d{8}", text):
            return datetime.strptime(text, "%Y%m%d").date()
        moment = datetime.strptime(text.rstrip("Zz"), "%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise RecurrenceError("Invalid recurrence rule.") from exc
    if series.all_day:
        return moment.date()
    if text[-1] in "Zz":
        return moment.replace(tzinfo=UTC).astimezone(series.tz)
    tz = zone(options.get("TZID")) if "TZID" in options else series.tz
    if tz is None:
        raise RecurrenceError("Invalid recurrence rule.")
    return moment.replace(tzinfo=tz).astimezone(series.tz)


def start_of(series: Series, original: Original) -> datetime:
    """The UTC instant an original start denotes."""
    if isinstance(original, datetime):
        return original.astimezone(UTC)
    midnight = datetime.combine(original, time(), ZoneInfo(CALENDAR_TZ))
    return midnight.astimezone(UTC)


def originals(series: Series, until: datetime) -> Iterator[Original]:
    """Original starts in order, up to (not including) the UTC instant ``until``."""
    streams = [_stream(series, rule) for rule in series.rules]
    streams.append(iter(sorted({series.first, *series.rdates})))
    excluded = _excluded_by_rules(series, until)
    previous = None
    for steps, original in enumerate(heapq.merge(*streams)):
        if steps >= MAX_STEPS or start_of(series, original) >= until:
            return
        if original == previous or _is_excluded(series, original, excluded):
            continue
        previous = original
        yield original


def _stream(series: Series, rule: rrule) -> Iterator[Original]:
    for moment in rule:
        yield moment.date() if series.all_day else moment


def _excluded_by_rules(series: Series, until: datetime) -> set[Any]:
    excluded: set[Any] = set()
    for rule in series.exrules:
        for steps, moment in enumerate(_stream(series, rule)):
            if steps >= MAX_STEPS or start_of(series, moment) >= until:
                break
            excluded.add(moment if series.all_day else moment.astimezone(UTC))
    return excluded


def _is_excluded(series: Series, original: Original, excluded: set[Any]) -> bool:
    if isinstance(original, datetime):
        key = original.astimezone(UTC)
        return key in series.exdates or key in excluded or original.date() in series.exdays
    return original in series.exdates or original in excluded


def suffix(series: Series, original: Original) -> str:
    if isinstance(original, datetime):
        return original.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return original.strftime("%Y%m%d")


def original_from_suffix(series: Series, text: str) -> Original | None:
    """The original start an instance-id suffix names, if the series has that instance."""
    try:
        if series.all_day:
            wanted: Original = datetime.strptime(text, "%Y%m%d").date()
        else:
            moment = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            wanted = moment.astimezone(series.tz)
    except ValueError:
        return None
    until = start_of(series, wanted) + timedelta(seconds=1)
    return next((o for o in originals(series, until) if o == wanted), None)


def original_field(series: Series, original: Original) -> dict[str, str]:
    """``originalStartTime`` (stored form) of an instance."""
    if isinstance(original, datetime):
        assert series.tz is not None
        return {"dateTime": utc_text(original), "timeZone": series.tz.key}
    return {"date": original.isoformat()}


def shifted(series: Series, original: Original, duration: timedelta) -> tuple[dict, dict]:
    """(start, end) in stored form of the instance at ``original``."""
    if isinstance(original, datetime):
        assert series.tz is not None
        extra = {"timeZone": series.tz.key}
        return (
            {"dateTime": utc_text(original), **extra},
            {"dateTime": utc_text(original + duration), **extra},
        )
    return {"date": original.isoformat()}, {"date": (original + duration).isoformat()}
