"""The Event resource in the Calendar sandbox: validation, patch/update merge, views.

``normalize`` validates the writable part of an event body (times, recurrence,
attendees, extended properties, status) into stored form. ``patched``/``replaced``
build the new writable content for events.patch (top-level merge; the extended
property maps merge key by key) and events.update (replace). ``render`` turns stored
data into a response: times in the response time zone, key order as Google's,
tombstones for cancelled events. ``instance`` builds one instance of a series and
``copy_view`` an attendee's copy of an event.
"""

from __future__ import annotations

import base64
import copy
from datetime import timedelta
from typing import Any

from sandbox.calendar_recurrence import (
    Original,
    RecurrenceError,
    Series,
    original_field,
    parse_series,
    shifted,
    suffix,
)
from sandbox.calendar_store import StoredEvent
from sandbox.calendar_times import bad, check_range, instant, normalize_time, render_time
from sandbox.routing import ApiError, calendar_error

READ_ONLY = {
    "kind",
    "etag",
    "id",
    "htmlLink",
    "created",
    "updated",
    "creator",
    "organizer",
    "iCalUID",
    "recurringEventId",
    "originalStartTime",
    "hangoutLink",
    "privateCopy",
    "attendeesOmitted",
}
PASSTHROUGH = {
    "summary",
    "description",
    "location",
    "colorId",
    "transparency",
    "visibility",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "anyoneCanAddSelf",
    "source",
    "attachments",
    "conferenceData",
    "locked",
    "endTimeUnspecified",
    "eventType",
    "gadget",
    "workingLocationProperties",
    "outOfOfficeProperties",
    "focusTimeProperties",
    "birthdayProperties",
}
PERSONAL = ("reminders", "colorId")  # an attendee may set these on their own copy
KEY_ORDER = [
    "kind",
    "etag",
    "id",
    "status",
    "htmlLink",
    "created",
    "updated",
    "summary",
    "description",
    "location",
    "colorId",
    "creator",
    "organizer",
    "start",
    "end",
    "endTimeUnspecified",
    "recurrence",
    "recurringEventId",
    "originalStartTime",
    "transparency",
    "visibility",
    "iCalUID",
    "sequence",
    "attendees",
    "attendeesOmitted",
    "extendedProperties",
    "hangoutLink",
    "conferenceData",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "anyoneCanAddSelf",
    "privateCopy",
    "locked",
    "reminders",
    "source",
    "attachments",
    "eventType",
]
STATUSES = ("confirmed", "tentative", "cancelled")
RESPONSES = ("needsAction", "declined", "tentative", "accepted")
ATTENDEE_FIELDS = ("displayName", "optional", "comment", "additionalGuests", "resource", "id")
TIME_FIELDS = ("start", "end", "originalStartTime")
FORBIDDEN_FOR_NON_ORGANIZER = "Shared properties can only be changed by the organizer of the event."


# -- validation ----------------------------------------------------------------------


def content_of(data: dict[str, Any]) -> dict[str, Any]:
    """The writable part of stored event data."""
    return {k: copy.deepcopy(v) for k, v in data.items() if k not in READ_ONLY}


def normalize(
    content: dict[str, Any], organizer: str, owner: str, *, instance: bool = False
) -> dict[str, Any]:
    """Validate writable event fields into stored form (raises 400 ApiErrors)."""
    out = {k: copy.deepcopy(v) for k, v in content.items() if k in PASSTHROUGH and v is not None}
    status = content.get("status") or "confirmed"
    if status not in STATUSES:
        raise bad(f"Invalid value for status: {status}")
    out["status"] = status
    out["start"] = normalize_time(content.get("start"), "start")
    out["end"] = normalize_time(content.get("end"), "end")
    check_range(out["start"], out["end"])
    recurrence = content.get("recurrence")
    if recurrence and not instance:
        if not isinstance(recurrence, list):
            raise bad("Invalid recurrence rule.")
        try:
            parse_series(out["start"], recurrence)
        except RecurrenceError as exc:
            raise bad(str(exc)) from None
        out["recurrence"] = list(recurrence)
    if content.get("attendees"):
        out["attendees"] = attendees(content["attendees"], organizer, owner)
    properties = extended_properties(content.get("extendedProperties"))
    if properties:
        out["extendedProperties"] = properties
    out["reminders"] = content.get("reminders") or {"useDefault": True}
    out["eventType"] = content.get("eventType") or "default"
    if "sequence" in content and not isinstance(content["sequence"], int):
        raise bad("Invalid sequence value.")
    return out


def attendees(items: Any, organizer: str, owner: str) -> list[dict[str, Any]]:
    """Attendee entries with ``organizer``/``self`` as seen from ``owner``'s calendar."""
    if not isinstance(items, list):
        raise bad("Invalid attendees.")
    out, seen = [], set()
    for item in items:
        email = item.get("email") if isinstance(item, dict) else None
        if not isinstance(email, str) or "@" not in email:
            raise bad("Invalid attendee email.")
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        entry: dict[str, Any] = {"email": email}
        entry.update({k: item[k] for k in ATTENDEE_FIELDS if item.get(k) is not None})
        if email.lower() == organizer:
            entry["organizer"] = True
        if email.lower() == owner:
            entry["self"] = True
        response = item.get("responseStatus") or "needsAction"
        if response not in RESPONSES:
            raise bad(f"Invalid value for responseStatus: {response}")
        entry["responseStatus"] = response
        out.append(entry)
    return out


def extended_properties(value: Any) -> dict[str, dict[str, str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad("Invalid extendedProperties.")
    out = {}
    for scope in ("private", "shared"):
        entries = value.get(scope) or {}
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise bad(f"Invalid extendedProperties.{scope}: values must be strings.")
        if entries:
            out[scope] = dict(entries)
    return out


# -- patch and update ----------------------------------------------------------------


def patched(current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """events.patch: top-level fields replace; extended property maps merge key by key."""
    content = content_of(current)
    for key, value in body.items():
        if key in READ_ONLY:
            continue
        if value is None:
            content.pop(key, None)
        elif key == "extendedProperties" and isinstance(value, dict):
            content[key] = _merge_properties(content.get(key) or {}, value)
        else:
            content[key] = copy.deepcopy(value)
    return content


def _merge_properties(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(current)
    for scope, entries in change.items():
        if entries is None:
            merged.pop(scope, None)
        elif isinstance(entries, dict):
            scope_map = {**merged.get(scope, {}), **entries}
            merged[scope] = {k: v for k, v in scope_map.items() if v is not None}
        else:
            merged[scope] = entries  # rejected by validation
    return merged


def replaced(body: dict[str, Any]) -> dict[str, Any]:
    """events.update: the body's writable fields replace the event's."""
    return {k: copy.deepcopy(v) for k, v in body.items() if k not in READ_ONLY}


def next_sequence(current: dict[str, Any], new: dict[str, Any], given: Any) -> int:
    """The new ``sequence``: bumped when times or recurrence change; never lowered."""
    sequence = current.get("sequence", 0)
    if isinstance(given, int) and given < sequence:
        raise bad(
            "Invalid sequence value. The specified sequence number is below the current "
            "sequence number of the resource."
        )
    significant = any(current.get(k) != new.get(k) for k in ("start", "end", "recurrence"))
    base = given if isinstance(given, int) else sequence
    return base + 1 if significant and base == sequence else base


def forbidden_for_non_organizer() -> ApiError:
    return calendar_error(403, "forbiddenForNonOrganizer", FORBIDDEN_FOR_NON_ORGANIZER, "calendar")


def check_attendee_edit(current: dict[str, Any], new: dict[str, Any], me: str) -> None:
    """On an attendee's copy only their own response and personal fields may change."""
    keys = (set(current) | set(new)) - set(READ_ONLY) - set(PERSONAL) - {"sequence"}
    for key in keys - {"attendees", "extendedProperties"}:
        if current.get(key) != new.get(key):
            raise forbidden_for_non_organizer()
    shared = (current.get("extendedProperties") or {}).get("shared")
    if shared != (new.get("extendedProperties") or {}).get("shared"):
        raise forbidden_for_non_organizer()
    if _others(current.get("attendees"), me) != _others(new.get("attendees"), me):
        raise forbidden_for_non_organizer()
    if own_entry(new, me) is None:
        raise forbidden_for_non_organizer()


def _others(entries: list[dict[str, Any]] | None, me: str) -> list[dict[str, Any]]:
    out = []
    for entry in entries or []:
        if entry["email"].lower() == me:
            entry = {k: v for k, v in entry.items() if k in ("email", "optional", "organizer")}
        out.append(entry)
    return sorted(out, key=lambda e: e["email"].lower())


def own_entry(data: dict[str, Any], me: str) -> dict[str, Any] | None:
    return next((a for a in data.get("attendees") or [] if a["email"].lower() == me), None)


# -- views ---------------------------------------------------------------------------


def html_link(event_id: str, calendar: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def ordered(data: dict[str, Any]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(KEY_ORDER)}
    return {k: data[k] for k in sorted(data, key=lambda k: rank.get(k, len(rank)))}


def tombstone(data: dict[str, Any]) -> dict[str, Any]:
    """The minimal shape of a cancelled event: id and status (plus the instance keys)."""
    keep = ("kind", "etag", "id", "status", "recurringEventId", "originalStartTime")
    return {k: copy.deepcopy(data[k]) for k in keep if k in data}


def render(
    data: dict[str, Any],
    out_tz: str,
    *,
    minimal: bool = False,
    max_attendees: int | None = None,
) -> dict[str, Any]:
    """Stored event data as a response shows it."""
    if data.get("status") == "cancelled" and (minimal or "recurringEventId" in data):
        view = tombstone(data)
    else:
        view = copy.deepcopy(data)
    for key in TIME_FIELDS:
        if key in view:
            view[key] = render_time(view[key], out_tz)
    entries = view.get("attendees")
    if entries and max_attendees is not None and len(entries) > max_attendees:
        view["attendees"] = [a for a in entries if a.get("self")]
        view["attendeesOmitted"] = True
    return ordered(view)


def duration(master: dict[str, Any]) -> timedelta:
    return instant(master["end"]) - instant(master["start"])


def instance(master: StoredEvent, series: Series, original: Original, calendar: str) -> dict:
    """The (unmodified) instance of ``master`` at ``original``, in stored form."""
    data = copy.deepcopy(master.data)
    data.pop("recurrence", None)
    data["id"] = f"{master.id}_{suffix(series, original)}"
    data["recurringEventId"] = master.id
    data["originalStartTime"] = original_field(series, original)
    data["start"], data["end"] = shifted(series, original, duration(master.data))
    data["htmlLink"] = html_link(data["id"], calendar)
    return data


def copy_view(original: StoredEvent, mine: StoredEvent, me: str, removed: bool) -> dict:
    """Attendee ``me``'s copy of the organizer's event ``original`` (no etag/updated)."""
    data = copy.deepcopy(original.data)
    data["organizer"] = {k: v for k, v in data["organizer"].items() if k != "self"}
    data["creator"] = {k: v for k, v in data["creator"].items() if k != "self"}
    data["attendees"] = [
        {**{k: v for k, v in a.items() if k != "self"}, **({"self": True} if _is(a, me) else {})}
        for a in data.get("attendees", [])
    ]
    properties = {k: v for k, v in (data.get("extendedProperties") or {}).items() if k != "private"}
    if mine.personal.get("private"):
        properties["private"] = dict(mine.personal["private"])
    data.pop("extendedProperties", None)
    if properties:
        data["extendedProperties"] = properties
    data["reminders"] = mine.personal.get("reminders") or {"useDefault": True}
    data.pop("colorId", None)
    if mine.personal.get("colorId"):
        data["colorId"] = mine.personal["colorId"]
    data["htmlLink"] = html_link(data["id"], me)
    own = own_entry(data, me)
    declined = own is not None and own["responseStatus"] == "declined"
    if removed or (mine.self_deleted and declined):
        data["status"] = "cancelled"
    return data


def _is(entry: dict[str, Any], email: str) -> bool:
    return entry["email"].lower() == email


def personal_of(content: dict[str, Any]) -> dict[str, Any]:
    """The fields of an attendee's edit that stay on their own copy."""
    out = {k: copy.deepcopy(content[k]) for k in PERSONAL if content.get(k)}
    private = (content.get("extendedProperties") or {}).get("private")
    if private:
        out["private"] = dict(private)
    return out
