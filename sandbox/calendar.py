"""Calendar API v3 of the sandbox: routes and request handlers.

Serves the primary calendar of each sandbox account at Google's paths (GOOGLE_API.md
section 4): events list/get/insert/patch/update/delete/instances/watch,
channels.stop and calendars.get. ``calendarId`` is ``primary`` or the caller's own
email; any other calendar is 404 (the sandbox has no ACL sharing). The work is split:

- ``calendar_store``: per-account store, change log, etags, sync and page tokens
- ``calendar_times`` / ``calendar_recurrence``: event times, RRULE expansion
- ``calendar_events``: the Event resource (validation, merge, views, copies)
- ``calendar_ops``: writes, attendee copies, would-be emails
- ``calendar_list``: events.list and events.instances
- ``calendar_push``: watch channels and notifications

Control routes: ``POST /_sandbox/calendar/invalidateSyncTokens`` makes every
outstanding sync token fail with 410; ``GET /_sandbox/calendar/outbox`` lists the
emails Google would have sent (``sendUpdates`` all/externalOnly).
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox import calendar_ops as ops
from sandbox.calendar_events import render
from sandbox.calendar_list import list_events, list_instances, response_zone
from sandbox.calendar_push import stop, watch
from sandbox.calendar_store import CalendarStore
from sandbox.routing import CALENDAR, PLAIN, Call, Reply, Router

SCOPE = "https://www.googleapis.com/auth/calendar"
EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
WRITE = (SCOPE, EVENTS_SCOPE)
READ = (*WRITE, SCOPE + ".readonly", EVENTS_SCOPE + ".readonly")


def _calendar(ctx: ops.Ctx, call: Call) -> CalendarStore:
    calendar_id = call.params["calendarId"]
    if calendar_id != "primary" and calendar_id.lower() != call.me.email:
        raise ops.not_found()
    store = ctx.store_of(call.me.email)
    assert store is not None
    return store


def _ref(store: CalendarStore, call: Call) -> ops.Ref:
    ref = ops.find(store, call.params["eventId"])
    if ref is None:
        raise ops.not_found()
    return ref


def _event_reply(call: Call, store: CalendarStore, data: dict) -> Reply:
    out_tz = response_zone(call, store)
    view = render(data, out_tz, max_attendees=call.int_arg("maxAttendees"))
    return Reply.json(view, headers={"ETag": data["etag"]})


def _send_updates(call: Call) -> str:
    return ops.send_updates_of(call.arg("sendUpdates"), call.bool_arg("sendNotifications"))


def get_calendar(ctx: ops.Ctx, call: Call) -> Reply:
    store = _calendar(ctx, call)
    return Reply.json(
        {
            "kind": "calendar#calendar",
            "etag": f'"{store.epoch}"',
            "id": store.email,
            "summary": store.email,
            "timeZone": store.time_zone,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }
    )


def list_(ctx: ops.Ctx, call: Call) -> Reply:
    store = _calendar(ctx, call)
    return Reply.json(list_events(store, ctx.state, ctx.now, call))


def instances(ctx: ops.Ctx, call: Call) -> Reply:
    store = _calendar(ctx, call)
    return Reply.json(list_instances(store, ctx.now, call, call.params["eventId"]))


def get(ctx: ops.Ctx, call: Call) -> Reply:
    store = _calendar(ctx, call)
    ref = _ref(store, call)
    ops.check_if_match(call.headers, ref.data["etag"])
    if call.headers.get("if-none-match") == ref.data["etag"]:
        return Reply(304, b"", {"ETag": ref.data["etag"], "Content-Length": "0"})
    return _event_reply(call, store, ref.data)


def insert(ctx: ops.Ctx, call: Call) -> Reply:
    store = _calendar(ctx, call)
    data = ops.insert(ctx, store, call.json(), _send_updates(call))
    return _event_reply(call, store, data)


def _modifier(replace: bool) -> Callable[[ops.Ctx, Call], Reply]:
    def modify(ctx: ops.Ctx, call: Call) -> Reply:
        store = _calendar(ctx, call)
        ref = _ref(store, call)
        ops.check_if_match(call.headers, ref.data["etag"])
        body, send_updates = call.json(), _send_updates(call)
        data = ops.modify(ctx, store, ref, body, replace=replace, send_updates=send_updates)
        return _event_reply(call, store, data)

    return modify


def delete(ctx: ops.Ctx, call: Call) -> Reply:
    store = _calendar(ctx, call)
    ref = _ref(store, call)
    ops.check_if_match(call.headers, ref.data["etag"])
    ops.delete(ctx, store, ref, _send_updates(call))
    return Reply.empty()


def watch_events(ctx: ops.Ctx, call: Call) -> Reply:
    store = _calendar(ctx, call)
    channel = watch(
        ctx.sandbox, ctx.state, store, call.me.email, call.params["calendarId"], call.json()
    )
    return Reply.json(channel)


def stop_channel(ctx: ops.Ctx, call: Call) -> Reply:
    stop(ctx.state, call.me.email, call.json())
    return Reply.empty()


def invalidate_sync_tokens(call: Call) -> Reply:
    state = ops.calendar_state(call.sandbox)
    state.generation += 1
    return Reply.json({"generation": state.generation})


def outbox(call: Call) -> Reply:
    return Reply.json({"messages": ops.calendar_state(call.sandbox).outbox})


def _handler(fn: Callable[[ops.Ctx, Call], Reply]) -> Callable[[Call], Reply]:
    """Run ``fn`` with a request context; notify watchers of what it changed."""

    def handle(call: Call) -> Reply:
        ctx = ops.Ctx(call.sandbox)
        try:
            return fn(ctx, call)
        finally:
            ctx.finish()

    return handle


def register(router: Router) -> None:
    cal = r"/calendar/v3/calendars/(?P<calendarId>[^/]+)"
    event = cal + r"/events/(?P<eventId>[^/]+)"
    routes = [
        ("GET", cal, "calendar.calendars.get", get_calendar, READ),
        ("GET", cal + "/events", "calendar.events.list", list_, READ),
        ("POST", cal + "/events", "calendar.events.insert", insert, WRITE),
        ("POST", cal + "/events/watch", "calendar.events.watch", watch_events, READ),
        ("GET", event, "calendar.events.get", get, READ),
        ("PATCH", event, "calendar.events.patch", _modifier(False), WRITE),
        ("PUT", event, "calendar.events.update", _modifier(True), WRITE),
        ("DELETE", event, "calendar.events.delete", delete, WRITE),
        ("GET", event + "/instances", "calendar.events.instances", instances, READ),
        ("POST", r"/calendar/v3/channels/stop", "calendar.channels.stop", stop_channel, READ),
    ]
    for method, pattern, method_id, fn, scopes in routes:
        router.add(method, pattern, method_id, CALENDAR, _handler(fn), scopes=scopes)
    router.add(
        "POST",
        "/_sandbox/calendar/invalidateSyncTokens",
        "sandbox.control",
        PLAIN,
        invalidate_sync_tokens,
    )
    router.add("GET", "/_sandbox/calendar/outbox", "sandbox.control", PLAIN, outbox)
