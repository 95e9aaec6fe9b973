"""events.list and events.instances: filters, recurring expansion, paging, sync tokens.

Full lists hold every event matching the filters; incremental lists (``syncToken``)
hold every event changed since the token, unclipped by any window, with cancelled
events as minimal tombstones unless ``showDeleted``. Pages are cut by keyset (the last
item's sort key travels in ``pageToken``) over a snapshot sequence fixed on the first
page, so concurrent writes never make a page skip an item: whatever changed meanwhile
is newer than the snapshot and comes back in the next incremental sync. Only the last
page carries ``nextSyncToken``. With ``Behaviours.short_pages`` a page may hold fewer
items than ``maxResults``, or none, and still carry ``nextPageToken``. With
``Behaviours.series_deletion_instances`` a deleted series is listed with
``singleEvents=true`` as its cancelled instances, never as the master.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.calendar_events import duration, instance, render
from sandbox.calendar_recurrence import (
    HORIZON,
    MAX_INSTANCES,
    Original,
    RecurrenceError,
    originals,
    parse_series,
    start_of,
)
from sandbox.calendar_store import SYNC_TOKEN_DAYS, CalendarState, CalendarStore, StoredEvent
from sandbox.calendar_times import instant, query_time, sort_text, zone
from sandbox.realism import Behaviours, page_length
from sandbox.routing import ApiError, Call, calendar_error
from sandbox.state import rfc3339

DEFAULT_PAGE = 250
MAX_PAGE = 2500
NOT_WITH_SYNC_TOKEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
DEFAULT_REMINDERS = [{"method": "popup", "minutes": 10}]
Entry = tuple[list[Any], dict[str, Any]]  # (sort key, rendered item)


def full_sync_required() -> ApiError:
    return calendar_error(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        domain="calendar",
        location="syncToken",
    )


@dataclass
class Query:
    """The parsed, validated parameters of events.list or events.instances."""

    max_results: int = DEFAULT_PAGE
    page_token: str | None = None
    sync_token: str | None = None
    show_deleted: bool = False
    single_events: bool = False
    time_min: datetime | None = None
    time_max: datetime | None = None
    updated_min: datetime | None = None
    order_by: str | None = None
    private: list[tuple[str, str]] = field(default_factory=list)
    shared: list[tuple[str, str]] = field(default_factory=list)
    ical_uid: str | None = None
    text: str | None = None
    event_types: list[str] = field(default_factory=list)
    out_tz: str = "UTC"
    max_attendees: int | None = None
    realism: Behaviours = field(default_factory=Behaviours)


def parse_query(call: Call, store: CalendarStore) -> Query:
    query = Query(
        page_token=call.arg("pageToken"),
        sync_token=call.arg("syncToken"),
        show_deleted=call.bool_arg("showDeleted"),
        single_events=call.bool_arg("singleEvents"),
        order_by=call.arg("orderBy"),
        ical_uid=call.arg("iCalUID"),
        text=call.arg("q"),
        event_types=call.args("eventTypes"),
        out_tz=response_zone(call, store),
        max_attendees=call.int_arg("maxAttendees"),
        realism=call.sandbox.behaviours,
    )
    if query.sync_token is not None:
        for name in NOT_WITH_SYNC_TOKEN:
            if name in call.query:
                raise calendar_error(
                    400,
                    "invalid",
                    f"The {name} parameter cannot be used together with syncToken.",
                    location=name,
                )
    if query.order_by == "startTime" and not query.single_events:
        raise calendar_error(
            400,
            "invalid",
            "The requested ordering is not available for the particular query.",
            location="orderBy",
        )
    query.max_results = _page_size(call)
    _parse_window(call, query)
    query.private = _properties(call, "privateExtendedProperty")
    query.shared = _properties(call, "sharedExtendedProperty")
    return query


def _page_size(call: Call) -> int:
    size = call.int_arg("maxResults", DEFAULT_PAGE)
    assert size is not None
    if size < 1:
        raise calendar_error(
            400,
            "invalid",
            f"Invalid value '{size}'. Values must be within the range: [1, {MAX_PAGE}]",
            location="maxResults",
        )
    return min(size, MAX_PAGE)


def _parse_window(call: Call, query: Query) -> None:
    query.time_min = query_time(call.arg("timeMin"), "timeMin")
    query.time_max = query_time(call.arg("timeMax"), "timeMax")
    query.updated_min = query_time(call.arg("updatedMin"), "updatedMin")
    if query.time_min and query.time_max and query.time_max <= query.time_min:
        raise calendar_error(
            400,
            "timeRangeEmpty",
            "The specified time range is empty.",
            domain="calendar",
            location="timeMax",
        )


def _properties(call: Call, name: str) -> list[tuple[str, str]]:
    out = []
    for constraint in call.args(name):
        key, sep, value = constraint.partition("=")
        if not sep or not key:
            raise calendar_error(400, "invalid", f"Invalid {name}: {constraint}", location=name)
        out.append((key, value))
    return out


# -- events.list ---------------------------------------------------------------------


def list_events(store: CalendarStore, state: CalendarState, now: datetime, call: Call) -> dict:
    query = parse_query(call, store)
    page = _page(store, query.page_token, cursor=True)
    since = None
    if query.sync_token is not None:
        since = store.check_sync_token(query.sync_token, state, now)
        if since is None:
            raise full_sync_required()
    if query.updated_min and now - query.updated_min > timedelta(days=SYNC_TOKEN_DAYS):
        raise calendar_error(
            410,
            "updatedMinTooLongAgo",
            "The requested minimum modification time lies too far in the past.",
            domain="calendar",
            location="updatedMin",
        )
    if page is not None:
        since, upto = page.get("s"), page["u"]
    else:
        upto = store.seq
    if since is not None:
        entries = _incremental(store, query, since, upto, now)
    else:
        entries = _full(store, query, now)
    body, last = _paginate(store, query, entries, page, {"s": since, "u": upto})
    if last:
        body["nextSyncToken"] = store.sync_token(state, now, upto)
    return body


def response_zone(call: Call, store: CalendarStore) -> str:
    """The ``timeZone`` parameter (validated), else the calendar's time zone."""
    name = call.arg("timeZone") or store.time_zone
    if zone(name) is None:
        raise calendar_error(400, "invalid", f"Invalid time zone: {name}", location="timeZone")
    return name


def _page(store: CalendarStore, token: str | None, cursor: bool) -> dict[str, Any] | None:
    """The decoded ``pageToken``; ``cursor``: it must come from events.list."""
    if token is None:
        return None
    page = store.read_page_token(token)
    if page is None or not isinstance(page.get("k"), list) or (cursor and "u" not in page):
        raise calendar_error(400, "invalid", "Invalid page token.", location="pageToken")
    return page


def _paginate(
    store: CalendarStore,
    query: Query,
    entries: list[Entry],
    page: dict[str, Any] | None,
    cursor: dict[str, Any],
) -> tuple[dict[str, Any], bool]:
    """(response body, is last page) for the page after ``page``'s key."""
    entries.sort(key=lambda entry: entry[0])
    if page is not None:
        entries = [entry for entry in entries if entry[0] > page["k"]]
    index = page.get("n", 0) if page is not None else 0
    length = page_length(query.realism, query.max_results, len(entries), len(entries), index)
    chunk = entries[:length]
    body = envelope(store)
    last = length >= len(entries)
    if not last:
        key = chunk[-1][0] if chunk else (page["k"] if page is not None else [])
        body["nextPageToken"] = store.page_token({**cursor, "k": key, "n": index + 1})
    body["items"] = [item for _, item in chunk]
    return body, last


def envelope(store: CalendarStore) -> dict[str, Any]:
    return {
        "kind": "calendar#events",
        "etag": store.etag,
        "summary": store.email,
        "updated": rfc3339(store.updated),
        "timeZone": store.time_zone,
        "accessRole": "owner",
        "defaultReminders": list(DEFAULT_REMINDERS),
    }


def _full(store: CalendarStore, query: Query, now: datetime) -> list[Entry]:
    entries: list[Entry] = []
    for event in list(store.events.values()):
        if event.is_master and query.single_events:
            deleted_series = query.show_deleted and query.realism.series_deletion_instances
            if not event.cancelled or deleted_series:
                entries.extend(_instances_in_list(store, event, query, now))
        elif _listed(store, event, query) and _visible(store, event, query, now):
            minimal = event.cancelled and not query.show_deleted
            entries.append(_entry(event.data, query, minimal))
    return entries


def _listed(store: CalendarStore, event: StoredEvent, query: Query) -> bool:
    """Whether a stored event's status lets it into a full list."""
    if not event.cancelled or query.show_deleted or query.updated_min:
        return True
    if event.is_exception and not query.single_events:
        master = store.events.get(event.data["recurringEventId"])
        return master is not None and not master.cancelled
    return False


def _visible(store: CalendarStore, event: StoredEvent, query: Query, now: datetime) -> bool:
    return _matches(event.data, query) and _in_window(store, event, query, now)


def _in_window(store: CalendarStore, event: StoredEvent, query: Query, now: datetime) -> bool:
    if query.time_min is None and query.time_max is None:
        return True
    if event.is_master:
        return next(expand(store, event, query.time_min, query.time_max, now), None) is not None
    return _overlaps(event.data, query.time_min, query.time_max)


def _overlaps(data: dict[str, Any], time_min: datetime | None, time_max: datetime | None) -> bool:
    if time_max is not None and instant(data["start"]) >= time_max:
        return False
    return time_min is None or instant(data["end"]) > time_min


def _matches(data: dict[str, Any], query: Query) -> bool:
    if query.ical_uid is not None and data.get("iCalUID") != query.ical_uid:
        return False
    if query.updated_min is not None and data.get("updated", "") < rfc3339(query.updated_min):
        return False
    if query.event_types and data.get("eventType", "default") not in query.event_types:
        return False
    properties = data.get("extendedProperties") or {}
    for scope, wanted in (("private", query.private), ("shared", query.shared)):
        values = properties.get(scope) or {}
        if any(values.get(key) != value for key, value in wanted):
            return False
    return query.text is None or _text_match(data, query.text)


def _text_match(data: dict[str, Any], text: str) -> bool:
    fields = [data.get("summary"), data.get("description"), data.get("location")]
    fields.append((data.get("organizer") or {}).get("email"))
    for attendee in data.get("attendees") or []:
        fields += [attendee.get("email"), attendee.get("displayName")]
    haystack = "\n".join(f for f in fields if isinstance(f, str)).casefold()
    return all(word in haystack for word in text.casefold().split())


def _entry(data: dict[str, Any], query: Query, minimal: bool, seq: int | None = None) -> Entry:
    if seq is not None:
        key: list[Any] = [seq, sort_text(data["start"]) if "start" in data else "", data["id"]]
    elif query.order_by == "updated":
        key = [data.get("updated", ""), data["id"]]
    else:
        key = [sort_text(data["start"]), data["id"]]
    item = render(data, query.out_tz, minimal=minimal, max_attendees=query.max_attendees)
    return key, item


def _instances_in_list(
    store: CalendarStore, master: StoredEvent, query: Query, now: datetime
) -> list[Entry]:
    """singleEvents=true: the unmodified instances (exceptions are listed on their own),
    cancelled ones if the series is deleted."""
    entries = []
    for _, data in expand(store, master, query.time_min, query.time_max, now):
        if data["id"] not in store.events and _matches(data, query):
            if master.cancelled:
                data = {**data, "status": "cancelled"}
            entries.append(_entry(data, query, minimal=False))
    return entries


def _incremental(
    store: CalendarStore, query: Query, since: int, upto: int, now: datetime
) -> list[Entry]:
    entries: dict[str, Entry] = {}
    changed = store.changed_between(since, upto)
    for event_id, seq in changed.items():
        event = store.events.get(event_id)
        if event is None:
            continue  # purged since (realism: cancelled events eventually disappear)
        deleted_series = event.cancelled and query.realism.series_deletion_instances
        if query.single_events and event.is_master and (not event.cancelled or deleted_series):
            for _, data in expand(store, event, None, None, now):
                exception = store.events.get(data["id"])
                if exception is not None and exception.id in changed:
                    continue
                data = exception.data if exception is not None else data
                if event.cancelled:
                    data = {**data, "status": "cancelled"}
                minimal = data.get("status") == "cancelled" and not query.show_deleted
                entries.setdefault(data["id"], _entry(data, query, minimal, seq))
        else:
            minimal = event.cancelled and not query.show_deleted
            entries.setdefault(event_id, _entry(event.data, query, minimal, seq))
    return list(entries.values())


# -- recurring expansion and events.instances ----------------------------------------


def expand(
    store: CalendarStore,
    master: StoredEvent,
    time_min: datetime | None,
    time_max: datetime | None,
    now: datetime,
    *,
    min_inclusive: bool = False,
) -> Iterator[tuple[Original, dict[str, Any]]]:
    """Instances of ``master`` overlapping the window, at most ``MAX_INSTANCES``."""
    try:
        series = parse_series(master.data["start"], master.data["recurrence"])
    except RecurrenceError:
        return
    length = duration(master.data)
    first = start_of(series, series.first)
    until = time_max or max(now, time_min or first, first) + HORIZON
    kept = 0
    for original in originals(series, until):
        end = start_of(series, original) + length
        if time_min is not None and (end < time_min or (end == time_min and not min_inclusive)):
            continue
        yield original, instance(master, series, original, store.email)
        kept += 1
        if kept >= MAX_INSTANCES:
            return


def list_instances(
    store: CalendarStore, now: datetime, call: Call, event_id: str
) -> dict[str, Any]:
    master = store.events.get(event_id)
    if master is None:
        raise calendar_error(404, "notFound", "Not Found")
    query = Query(
        max_results=_page_size(call),
        page_token=call.arg("pageToken"),
        show_deleted=call.bool_arg("showDeleted"),
        time_min=query_time(call.arg("timeMin"), "timeMin"),
        time_max=query_time(call.arg("timeMax"), "timeMax"),
        out_tz=response_zone(call, store),
        max_attendees=call.int_arg("maxAttendees"),
        realism=call.sandbox.behaviours,
    )
    original_start = query_time(call.arg("originalStart"), "originalStart")
    entries = []
    if master.is_master:
        for data in _series_instances(store, master, query, now):
            if original_start and instant(data["originalStartTime"]) != original_start:
                continue
            key = [sort_text(data["originalStartTime"]), data["id"]]
            minimal = data.get("status") == "cancelled" and not query.show_deleted
            entries.append((key, render(data, query.out_tz, minimal=minimal)))
    body, _ = _paginate(store, query, entries, _page(store, query.page_token, False), {})
    return body


def _series_instances(
    store: CalendarStore, master: StoredEvent, query: Query, now: datetime
) -> Iterator[dict[str, Any]]:
    found = expand(store, master, query.time_min, query.time_max, now, min_inclusive=True)
    for _, data in found:
        exception = store.events.get(data["id"])
        data = exception.data if exception is not None else data
        if master.cancelled:
            data = {**data, "status": "cancelled"}
        if data.get("status") != "cancelled" or query.show_deleted:
            yield data
