"""Activity field mapping between CRM activities and Calendar API events.

The synced fields of an activity are a plain dict (``ActivityFields``) in one normal
form, whichever side they came from:

    CRM                          Calendar API
    title                        summary
    description, location        description, location
    allDay, start, end           start/end {date} (all-day; Google's end is exclusive,
                                 the CRM's inclusive: the last day of the activity)
                                 or {dateTime, timeZone}
    timeZone                     start.timeZone
    participants (email, resp.)  attendees (email, responseStatus), CRM-known ones only
    status canceled              status cancelled

Timed starts and ends are compared as instants (UTC, ``...Z``): Google answers in the
calendar's zone, the CRM writes its own offsets. All-day dates are plain dates and never
pass through a time zone, so they keep their exact days for a UTC+14 or UTC-12 user.
Attendees the CRM does not know (no contact or user with that email) are not content:
they stay on the event untouched and create nothing in the CRM.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from core.pairs import fingerprint  # noqa: F401  (the mappings' hash)

ACTIVITY_KEY = "crmsync.activityId"
RESPONSES = ("needsAction", "accepted", "declined", "tentative")
FIELDS = ("title", "description", "location", "allDay", "start", "end", "timeZone",
          "canceled", "attendees")  # fmt: skip

ActivityFields = dict[str, Any]


def event_id(activity_id: str) -> str:
    """The Google event id of an activity: base32hex of its id, lower case, no padding,
    so it is deterministic (a retried insert answers 409) and within ``[a-v0-9]{5,}``."""
    encoded = base64.b32hexencode(activity_id.encode()).decode().rstrip("=").lower()
    return encoded if len(encoded) >= 5 else encoded + "0" * (5 - len(encoded))


def import_id(user_id: str, event_id_: str) -> str:
    """The id of the CRM activity an event is imported as, for the user importing it:
    deterministic, so that an import seen again lands on the same activity."""
    return f"gcal-{user_id}-{event_id_}"


def activity_id_of(event_id_: str) -> str | None:
    """The activity id behind an event id made by ``event_id``, if it is one."""
    padded = event_id_.upper() + "=" * (-len(event_id_) % 8)
    try:
        return base64.b32hexdecode(padded).decode()
    except (ValueError, UnicodeDecodeError):
        return None


_INSTANCE_SUFFIX = re.compile(r"\d{8}(T\d{6}Z)?")


def series_of(event_id_: str) -> str | None:
    """The master's id of a recurring instance's id (``{masterId}_{YYYYMMDD[THHMMSSZ]}``,
    GOOGLE_API.md 4.2), or None for any other event."""
    master, sep, suffix = event_id_.rpartition("_")
    return master if sep and master and _INSTANCE_SUFFIX.fullmatch(suffix) else None


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> str:
    return _utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))


def _text(value: Any) -> str | None:
    text = (value or "").strip() if isinstance(value, str) else value
    return text or None


def _attendees(items: Any) -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    for item in items or []:
        email = (item.get("email") or "").strip().lower()
        if email:
            response = item.get("response") or "needsAction"
            seen[email] = response if response in RESPONSES else "needsAction"
    return [{"email": e, "response": r} for e, r in sorted(seen.items())]


def normalize(fields: Mapping[str, Any]) -> ActivityFields:
    all_day = bool(fields.get("allDay"))
    start, end = fields.get("start"), fields.get("end")
    if not all_day and start and end:
        start, end = _instant(start), _instant(end)
    return {
        "title": _text(fields.get("title")) or "",
        "description": _text(fields.get("description")),
        "location": _text(fields.get("location")),
        "allDay": all_day,
        "start": start,
        "end": end,
        "timeZone": None if all_day else _text(fields.get("timeZone")),
        "canceled": bool(fields.get("canceled")),
        "attendees": _attendees(fields.get("attendees")),
    }


# --- CRM side --------------------------------------------------------------------------


def from_activity(
    activity: Any, emails: Mapping[tuple[str, str], str], zone: str
) -> ActivityFields:
    """The synced fields of a CRM activity. ``emails`` resolves participants that name a
    contact or user: ``("contact", id)`` or ``("user", id)`` -> email. ``zone`` is kept
    for callers; an activity without a time zone keeps none (its offsets say it all)."""
    attendees = []
    for p in activity.participants:
        email = (
            p.email
            or emails.get(("contact", p.contactId or ""))
            or emails.get(("user", p.userId or ""))
        )
        if email:
            attendees.append({"email": email, "response": p.response})
    return normalize({
        "title": activity.title, "description": activity.description,
        "location": activity.location, "allDay": activity.allDay,
        "start": activity.start, "end": activity.end,
        "timeZone": activity.timeZone,
        "canceled": activity.status == "canceled", "attendees": attendees,
    })  # fmt: skip


def to_activity(fields: ActivityFields, zone: str) -> dict[str, Any]:
    """CRM activity keys for the synced fields (participants are resolved by the caller).
    Timed start and end are written with the offset of the activity's zone."""
    tz = ZoneInfo(fields["timeZone"] or zone)
    start, end = fields["start"], fields["end"]
    if not fields["allDay"]:
        start, end = (_local(value, tz) for value in (start, end))
    out = {
        "title": fields["title"], "description": fields["description"],
        "location": fields["location"], "allDay": fields["allDay"],
        "start": start, "end": end, "timeZone": fields["timeZone"],
    }  # fmt: skip
    return out


def _local(instant: str, tz: ZoneInfo) -> str:
    moment = dt.datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(tz)
    return moment.isoformat(timespec="seconds")


# --- Google side -----------------------------------------------------------------------


def from_event(event: Mapping[str, Any], known: set[str]) -> ActivityFields:
    """The synced fields of an event. Only attendees in ``known`` (lower-case emails of
    CRM contacts and users) count; the organizer's own entry never does."""
    start, end = event.get("start") or {}, event.get("end") or {}
    all_day = "date" in start
    if all_day:
        first, after = start["date"], end.get("date") or start["date"]
        last = (dt.date.fromisoformat(after) - dt.timedelta(days=1)).isoformat()
        start_value, end_value = first, max(first, last)
    else:
        start_value, end_value = start.get("dateTime"), end.get("dateTime")
    attendees = [
        {"email": a.get("email", ""), "response": a.get("responseStatus")}
        for a in event.get("attendees") or []
        if not a.get("organizer") and (a.get("email") or "").lower() in known
    ]
    return normalize({
        "title": event.get("summary"), "description": event.get("description"),
        "location": event.get("location"), "allDay": all_day,
        "start": start_value, "end": end_value, "timeZone": start.get("timeZone"),
        "canceled": event.get("status") == "cancelled", "attendees": attendees,
    })  # fmt: skip


def to_event(fields: ActivityFields, activity_id: str, others: list[dict[str, Any]] = ()) -> dict:
    """The event body for the synced fields. ``others`` are the event's current attendees
    the CRM does not know; they are kept as they are."""
    if fields["allDay"]:
        after = dt.date.fromisoformat(fields["end"]) + dt.timedelta(days=1)
        start, end = {"date": fields["start"]}, {"date": after.isoformat()}
    else:
        zone = fields["timeZone"]
        tz = ZoneInfo(zone or "UTC")
        start = {"dateTime": _local(fields["start"], tz)}
        end = {"dateTime": _local(fields["end"], tz)}
        if zone:  # without one, the offset in dateTime says it all
            start["timeZone"] = end["timeZone"] = zone
    attendees = [
        {"email": a["email"], "responseStatus": a["response"]} for a in fields["attendees"]
    ]
    return {
        "summary": fields["title"],
        "description": fields["description"] or "",
        "location": fields["location"] or "",
        "start": start,
        "end": end,
        "attendees": attendees + [dict(o) for o in others],
        "status": "cancelled" if fields["canceled"] else "confirmed",
        "extendedProperties": {"private": {ACTIVITY_KEY: activity_id}},
    }


def attendee_emails(fields: Mapping[str, Any]) -> set[str]:
    return {a["email"] for a in fields.get("attendees") or []}


def unknown_attendees(event: Mapping[str, Any], known: set[str]) -> list[dict[str, Any]]:
    """The event's attendees outside ``known`` (lower-case emails), the organizer's
    entry aside: the ones a patch must carry over untouched."""
    return [
        a for a in event.get("attendees") or []
        if (a.get("email") or "").lower() not in known and not a.get("organizer")
    ]  # fmt: skip


def private_activity_id(event: Mapping[str, Any]) -> str | None:
    return ((event.get("extendedProperties") or {}).get("private") or {}).get(ACTIVITY_KEY)
