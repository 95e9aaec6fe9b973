"""How unkind the sandbox is: one ``Behaviours`` record of switches, and named profiles.

``Behaviours()`` (the ``default`` profile) is the sandbox's historical, kind behaviour:
writes show up at once, pages are full, batch parts run in order. ``realistic`` turns on
what real Google does and documents. Each switch, what it does and where Google says so
(quotes from the bundled discovery documents, calendar.v3 / people.v1, unless noted):

``peoplePropagationSeconds`` (realistic 120): a People write (create, update, delete,
    members:modify, the batch variants) shows in ``connections.list`` sync-token deltas
    only once it is this many sandbox seconds old. A delta then hands out a token that
    stops before the first write not yet propagated, so a late write is never lost: it
    shows in a later delta. Full listings reflect current state. people.v1
    connections.list: "Writes may have a propagation delay of several minutes for sync
    requests. Incremental syncs are not intended for read-after-write use cases."
    (https://developers.google.com/people/api/rest/v1/people.connections/list). Two
    minutes is "several minutes" at its short end; 5-15 s was observed (GOOGLE_API.md 3.3).

``shortPages`` with ``seed``: events.list, events.instances and connections.list
    pages may hold fewer items than asked for, even none, and still carry
    ``nextPageToken``; the union over the pages is exactly the full result. Each cut is
    drawn from ``random.Random`` seeded by (``seed``, the page's position), so a run is
    reproducible and a retried page cuts the same way. "maxResults does not guarantee
    the number of results on one page. Incomplete results can be detected by a
    non-empty nextPageToken" (https://developers.google.com/calendar/api/guides/pagination);
    calendar.v3 events.list maxResults: "The number of events in the resulting page may
    be less than this value, or none at all, even if there are more events matching the
    query." People documents no such promise either way; the sandbox treats its pages
    alike, as a client must expect of any Google list.

``shuffleBatches`` (with ``seed``): the parts of an HTTP batch run in a shuffled order
    (a per-sandbox ``random.Random(seed)``); the response keeps one part per request,
    in request order, mapped by Content-ID. "The server might perform your calls in any
    order. Don't count on their being executed in the order in which you specified
    them." (https://developers.google.com/calendar/api/guides/batch); "The server
    processes the individual calls within a batch request in any order" (the same
    batch guide of other Google APIs).

``undetectedIdCollisions``: events.insert with an id the calendar already holds is not
    refused with 409. Event.id: "Due to the globally distributed nature of the system,
    we cannot guarantee that ID collisions will be detected at event creation time."
    Google documents no more, so the sandbox decides what an undetected collision is:
    the insert is acknowledged as a creation (200 and the event the request described,
    with a fresh etag and ``updated``), and nothing is stored: when the two copies meet,
    the event stored first wins. So the caller is told "created", a get or list shows the
    old event, and no sync reports anything. Answering with the stored event instead
    would mean the server had detected the collision. "At event creation time" is a
    consistency window, so only ids taken by a live event created in the last 60 s
    go undetected (``calendar_ops.COLLISION_WINDOW``): an older id, and a deleted
    event's id, still answer 409 duplicate, which clients are documented to meet and
    rely on ("Inserting with the id of a deleted event gives 409", GOOGLE_API.md 4.4,
    4.5; the restore-by-patch workaround of SO 27542721).

``cancelledEventTtlSeconds`` (realistic 30 days; null = never): a deleted event (status
    cancelled) is purged that long after its last write: get answers 404, full lists
    with showDeleted omit it, sync deltas no longer report it, and its id is free again.
    Cancelled exceptions of a live series are kept ("Clients should store these events
    for the lifetime of the parent recurring event"). Event.status: "All other cancelled
    events represent deleted events. Clients should remove their locally synced copies.
    Such cancelled events will eventually disappear, so do not rely on them being
    available indefinitely." Google gives no number. 30 days is what Google Calendar's
    trash keeps deleted events (its help: events deleted in the last 30 days can be
    restored), and it outlives the sandbox's 28-day Calendar sync tokens, so a client
    syncing incrementally can never miss a deletion silently: its token expires (410)
    first. A few simulated hours of testing never reach it.

``seriesDeletionInstances``: when a recurring series is deleted, events.list with
    ``singleEvents=true`` (incremental, and full with showDeleted) reports its
    expanded instances as cancelled, never the master: events.list showDeleted: "If
    showDeleted and singleEvents are both True, only single instances of deleted events
    (but not the underlying recurring events) are returned." The instances are those of
    the sandbox's expansion (``calendar_recurrence``: at most 730, up to two years past
    now, clipped to timeMin/timeMax on full lists).

``defaultTimeZone`` (realistic "America/New_York"): the time zone of a calendar whose
    account was created without ``timeZone`` (``POST /_sandbox/accounts {"email",
    "timeZone"}`` sets one per account). It is the calendar's ``timeZone`` in
    calendars.get and events.list, and responses render dateTimes in it, with its
    offset, unless the request names ``timeZone``: "Time zone used in the response.
    Optional. The default is the time zone of the calendar." Instance ids stay in UTC
    (``{id}_{YYYYMMDDTHHMMSSZ}``, GOOGLE_API.md 4.2). All-day dates are never shifted;
    for window filters and ordering the sandbox places them on UTC midnights.

``testingModeRefreshExpiry`` (realistic off): the OAuth client is in the "Testing"
    publishing status, so refresh tokens stop working 7 days of sandbox time after they
    were issued (400 ``invalid_grant`` "Token has been expired or revoked."), unless
    their scopes are only openid/email/profile. "A Google Cloud Platform project with an
    OAuth consent screen configured for an external user type and a publishing status
    of 'Testing' is issued a refresh token expiring in 7 days, unless the only OAuth
    scopes requested are a subset of name, email address, and user profile"
    (https://developers.google.com/identity/protocols/oauth2#expiration). Off in
    ``realistic`` because a deployed crmsync is a published (In production) app, whose
    refresh tokens live until revoked; a test that wants the weekly expiry turns it on.

``peopleFullSyncQuotaPerMinute`` (realistic 10; null = off): per account and sandbox
    minute, at most this many first pages of a full People sync (connections.list with
    neither syncToken nor pageToken); the next one answers 429 RESOURCE_EXHAUSTED
    (GOOGLE_API.md 3.4) with ``Retry-After`` (seconds to the next minute). connections.list:
    "The first page of a full sync request has an additional quota. If the quota is
    exceeded, a 429 error will be returned. This quota is fixed and can not be
    increased." Google does not publish the number; 10 a minute lets a normal sync (one
    full pass per run, a retry or two) through and stops a loop of full syncs.

Control: ``GET /_sandbox/behaviours`` gives the values (camelCase keys, plus
``profile``, the last profile applied); ``POST /_sandbox/behaviours`` takes
``{"profile": name}`` and/or keys; ``POST /_sandbox/reset`` restores the server's base
profile. The environment variable ``CRMSYNC_SANDBOX_PROFILE`` names the base profile
where none is given to ``Sandbox``/``SandboxServer``.
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PROFILE = "CRMSYNC_SANDBOX_PROFILE"
DAY = 86400


@dataclass(frozen=True)
class Behaviours:
    people_propagation_seconds: float = 0
    short_pages: bool = False
    shuffle_batches: bool = False
    seed: int = 0
    undetected_id_collisions: bool = False
    cancelled_event_ttl_seconds: float | None = None
    series_deletion_instances: bool = False
    default_time_zone: str = "UTC"
    testing_mode_refresh_expiry: bool = False
    people_full_sync_quota_per_minute: int | None = None


PROFILES: dict[str, Behaviours] = {
    "default": Behaviours(),
    "realistic": Behaviours(
        people_propagation_seconds=120,
        short_pages=True,
        shuffle_batches=True,
        undetected_id_collisions=True,
        cancelled_event_ttl_seconds=30 * DAY,
        series_deletion_instances=True,
        default_time_zone="America/New_York",
        testing_mode_refresh_expiry=False,
        people_full_sync_quota_per_minute=10,
    ),
}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


FIELDS = {camel(f.name): f.name for f in dataclasses.fields(Behaviours)}
_BOOLS = {"short_pages", "shuffle_batches", "undetected_id_collisions"} | {
    "series_deletion_instances",
    "testing_mode_refresh_expiry",
}
_OPTIONAL = {"cancelled_event_ttl_seconds", "people_full_sync_quota_per_minute"}


def profile(name: Any) -> Behaviours:
    """The profile called ``name``; ValueError naming the known ones otherwise."""
    if not isinstance(name, str) or name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: expected one of {sorted(PROFILES)}")
    return PROFILES[name]


def base_profile(name: str | None) -> str:
    """``name``, else ``$CRMSYNC_SANDBOX_PROFILE``, else "default" (validated)."""
    chosen = name or os.environ.get(ENV_PROFILE) or "default"
    profile(chosen)
    return chosen


def as_json(behaviours: Behaviours) -> dict[str, Any]:
    return {key: getattr(behaviours, name) for key, name in FIELDS.items()}


def changed(behaviours: Behaviours, changes: dict[str, Any]) -> Behaviours:
    """``behaviours`` with camelCase ``changes`` applied; ValueError for a bad key/value."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown behaviour(s) {unknown}: expected some of {sorted(FIELDS)}")
    values = {FIELDS[key]: _checked(key, FIELDS[key], value) for key, value in changes.items()}
    return dataclasses.replace(behaviours, **values)


def _checked(key: str, name: str, value: Any) -> Any:
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise ValueError(f"'{key}' must be true or false")
        return value
    if name == "default_time_zone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"'{key}' must be an IANA time zone name, not {value!r}") from None
        return value
    if value is None and name in _OPTIONAL:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    whole = name in ("seed", "people_full_sync_quota_per_minute")
    if not number or value < 0 or (whole and not isinstance(value, int)):
        kind = "an integer" if whole else "a number"
        extra = " or null" if name in _OPTIONAL else ""
        raise ValueError(f"'{key}' must be {kind} >= 0{extra}")
    return value


def page_length(behaviours: Behaviours, size: int, remaining: int, *position: Any) -> int:
    """How many of the ``remaining`` items the page at ``position`` holds (≤ ``size``).

    Without ``short_pages`` a page is as full as it can be. With it, the cut is drawn
    from ``seed`` and ``position`` (which must include the page's index in its listing):
    some pages are full, some short, some (never two in a row) empty.
    """
    full = min(size, remaining)
    if not behaviours.short_pages or full == 0:
        return full
    rng = random.Random("|".join(map(str, (behaviours.seed, *position))))
    draw = rng.random()
    index = position[-1] if position and isinstance(position[-1], int) else 0
    if draw < 0.15 and index % 2 == 0:
        return 0
    if draw < 0.6 and full > 1:
        return rng.randint(1, full - 1)
    return full
