"""When each (user, section) sync is due, found by query so a tick costs O(due jobs).

A pair that syncs automatically has a *slot* in ``syncState``: ``slot = "{I}:{p}"``
for interval ``I`` minutes and phase ``p`` (a stable hash of the pair, in [0, I)).
It is due at every minute ``m`` (minutes since the epoch) with ``m % I == p``: the
schedule is a function of the clock, so a run that finds nothing to do writes
nothing, and the pair is still due again ``I`` minutes later. Phases spread the
pairs of one interval over its minutes.

``nextDueAt`` marks a pair due *sooner* than its slot: a first sync, a settings
change, a (re)connection, a failed run. The dispatcher's queries:

    nextDueAt <= now                        the pairs due at once (paged)
    slot == "{I}:{m % I}"                   for each interval I in use, for each minute
                                            m since the last tick (at most CATCH_UP)

A pair is scheduled only while its section syncs automatically and the user's Google
account is connected: turning auto off, ``reauth_required`` and disconnecting clear
``slot`` and ``nextDueAt`` (``reschedule``), so such pairs cost the tick nothing.
The intervals in use live in ``schedule/intervals`` (added on save, never removed: a
stale one costs one empty query per tick).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import MalformedDocument
from core.model import (
    GOOGLE_ACCOUNTS,
    SECTIONS,
    SYNC_SETTINGS,
    SYNC_STATE,
    Section,
    SyncSettings,
    parse_timestamp,
    section_settings,
    stamp,
    state_id,
    when,
)
from core.ports import Doc, DocumentStore, Transaction

SCHEDULE = "schedule"
INTERVALS = "intervals"  # schedule/intervals: {"minutes": [15, 60, ...]}
TICKS = "ticks"  # schedule/ticks: {"lastTickAt": ...}
CATCH_UP = 10  # minutes of missed ticks a tick makes up for
DISPATCH_GRACE = timedelta(minutes=5)
SWEEP = "sweep"  # schedule/sweep: the daily pass over syncSettings
SWEEP_PAGE = 100
SWEEP_EVERY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Probe:
    """What a scheduled run needs to look for changes before it takes the lease: the
    cursors, and the settings the last run used (a new tag, "sync from" date or
    interval is a change too)."""

    google_cursor: str
    crm_cursor: str
    crm_read_at: str | None = None
    slot: str | None = None
    tag_id: str | None = None
    sync_from: str | None = None  # the date the last run used
    sync_from_setting: str | None = None  # the setting it came from (None: today)
    time_zone: str | None = None
    token_ciphertext: str | None = None  # the connection's, while the pair is scheduled


@dataclass(frozen=True, order=True)
class Job:
    user_id: str
    section: Section
    trigger: str = "schedule"
    # set when nothing forces a run: the run first looks for changes, and writes
    # nothing when there are none
    probe: Probe | None = field(default=None, compare=False)
    # a run started by hand: its record (queued, then running) exists under this id
    run_id: str | None = field(default=None, compare=False)


# --- pure -----------------------------------------------------------------------------


def minute_of(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() // 60)


def phase(user_id: str, section: str, every: int) -> int:
    digest = hashlib.sha256(state_id(user_id, section).encode()).digest()  # type: ignore[arg-type]
    return int.from_bytes(digest[:8], "big") % every


def slot_key(every: int, at: int) -> str:
    return f"{every}:{at}"


def wanted_slot(
    settings: SyncSettings | None, account: Mapping[str, Any] | None, user_id: str, section: str
) -> tuple[str | None, int | None]:
    """The pair's slot and interval, or (None, None) when it is not scheduled."""
    if settings is None or (account or {}).get("status") != "connected":
        return None, None
    part = getattr(settings, section)
    if not part.auto:
        return None, None
    every = part.intervalMinutes
    return slot_key(every, phase(user_id, section, every)), every


def due_keys(intervals: Iterable[int], last_tick: datetime | None, now: datetime) -> list[str]:
    """The slot keys due at the minutes since the last tick (this one included)."""
    current = minute_of(now)
    first = current if last_tick is None else max(minute_of(last_tick) + 1, current - CATCH_UP + 1)
    keys: list[str] = []
    for every in sorted(set(intervals)):
        for minute in range(first, current + 1):  # empty for a second tick in one minute
            key = slot_key(every, minute % every)
            if key not in keys:
                keys.append(key)
    return keys


def leased(state: Mapping[str, Any], now: datetime) -> bool:
    from core.lease import held  # lease imports this module

    lease = held(state.get("lease"))
    return lease is not None and when(lease["expiresAt"]) > now  # type: ignore[operator]


def must_run(state: Mapping[str, Any], now: datetime) -> bool:
    """Something forces a full run: due at once, never synced, items to retry (or put
    off, and due), creates to find, or a Google account switch to finish."""
    due = state.get("nextDueAt")
    return bool(
        (due and (when(due) or now) <= now)  # an unreadable mark: due (the run mends it)
        or not state.get("googleCursor")
        or not state.get("lastSuccessAt")
        or state.get("retryCrm")
        or state.get("crmFullPassAt") is not None
        or _later_due(state.get("retryCrmLater"), now)
        or state.get("retryGoogle")
        or state.get("pendingCreates")
    )


def _later_due(later: Any, now: datetime) -> bool:
    """An item put off (``core.runs.RECHECK_AFTER``) is due: a run reads it again. The
    others wait for a change on either side, which the look finds."""
    if not isinstance(later, dict):
        return False
    # an unreadable one is due: the run reads it, and sets the state right
    return any((when(at) or now) <= now for at in later.values())


def job_for(user_id: str, section: Section, state: Mapping[str, Any], now: datetime) -> Job:
    if must_run(state, now) or not state.get("crmCursor"):
        return Job(user_id, section)
    probe = Probe(state["googleCursor"], state["crmCursor"], state.get("crmReadAt"),
                  state.get("slot"), state.get("tagId"), state.get("syncFrom"),
                  state.get("syncFromSetting"), state.get("timeZone"),
                  state.get("tokenCiphertext"))  # fmt: skip
    return Job(user_id, section, probe=probe)


def recently_dispatched(state: Mapping[str, Any], now: datetime) -> bool:
    """A full run sent less than DISPATCH_GRACE ago that has not started (taken its
    lease) yet: not sent again at every tick while it waits in the queue."""
    sent, ran = when(state.get("dispatchedAt")), when(state.get("lastRunAt"))
    if not sent or (ran and ran >= sent):
        return False  # never sent, or its run came (and a new reason to run is new)
    return sent > now - DISPATCH_GRACE


def next_due(state: Mapping[str, Any], now: datetime) -> str | None:
    """For display: the earlier of ``nextDueAt`` and the next slot time; None when the
    pair is not scheduled."""
    slot, due = state.get("slot"), state.get("nextDueAt")
    times = [when(due) or now] if due else []
    if slot:
        every, at = (int(part) for part in slot.split(":"))
        current = minute_of(now)
        wait = (at - current) % every or every
        times.append(EPOCH + timedelta(minutes=current + wait))
    return stamp(min(times)) if times else None


# --- the store side -------------------------------------------------------------------


def reschedule(
    store: DocumentStore,
    user_id: str,
    now: datetime,
    *,
    due_now: bool = False,
    sections: Iterable[Section] = SECTIONS,
) -> dict[str, str | None]:
    """Bring the pairs' ``slot`` and ``nextDueAt`` in line with the user's settings and
    connection (call after saving either). ``due_now``: the pairs that are scheduled
    run at the next tick. Activities also get ``renewAt`` = now, so that the next tick
    opens or stops the push channel as the settings now say. Returns the slots."""
    settings = _settings(user_id, store.get(SYNC_SETTINGS, user_id) or {})
    account = store.get(GOOGLE_ACCOUNTS, user_id)
    slots: dict[str, str | None] = {}
    intervals: set[int] = set()
    for section in sections:
        slot, every = wanted_slot(settings, account, user_id, section)
        slots[section] = slot
        if every:
            intervals.add(every)
        fields: dict[str, Any] = {"userId": user_id, "section": section, "slot": slot}
        # the look of a scheduled pair needs the connection: kept here, encrypted as in
        # googleAccounts, so that a look reads no account document
        fields["tokenCiphertext"] = (account or {}).get("refreshTokenCiphertext") if slot else None
        if slot is None:
            fields["nextDueAt"] = None
        elif due_now:
            fields["nextDueAt"] = stamp(now)
        _apply(store, state_id(user_id, section), fields, stamp(now))
    if intervals:
        register_intervals(store, intervals, now)
    return slots


def _settings(user_id: str, data: Mapping[str, Any]) -> SyncSettings | None:
    """The user's settings, each section's part checked on its own: a malformed part
    is off (its pair unscheduled until the settings are saved again), the other runs
    on. None when neither part can be read."""
    parts = {}
    for section in SECTIONS:
        try:
            parts[section] = getattr(section_settings(user_id, data, section), section)
        except MalformedDocument:
            continue
    if not parts:
        return None
    return SyncSettings(**parts)


def _apply(store: DocumentStore, sid: str, fields: dict[str, Any], now: str) -> None:
    """``fields`` into the state; activities channels come up for upkeep when the pair
    is scheduled or still has a channel to stop. A pair with no state and nothing to
    schedule gets none (a dry run still finds no state)."""

    def merge(tx: Transaction) -> None:
        state = tx.get(SYNC_STATE, sid) or {}
        wanted = dict(fields)
        if sid.endswith(":activities") and (fields["slot"] or state.get("channel")):
            wanted["renewAt"] = now
        if not state and wanted.get("slot") is None and "renewAt" not in wanted:
            return
        if all(state.get(k) == v for k, v in wanted.items()):
            return
        tx.put(SYNC_STATE, sid, {**state, **wanted})

    store.transaction(merge)


def unschedule(store: DocumentStore, user_id: str) -> None:
    """The connection cannot be used (``reauth_required``): no scheduled runs for it."""
    for section in SECTIONS:
        update_state(store, state_id(user_id, section),
                     {"slot": None, "nextDueAt": None, "tokenCiphertext": None})  # fmt: skip


def update_state(store: DocumentStore, sid: str, fields: Mapping[str, Any]) -> None:
    """Merge ``fields`` into ``syncState/{sid}``, whoever holds the lease (the lease's
    own release merges too, so neither write loses the other's fields)."""

    def merge(tx: Transaction) -> None:
        state = tx.get(SYNC_STATE, sid) or {}
        if all(state.get(k) == v for k, v in fields.items()):
            return  # nothing new (and no document made only to hold nothing)
        tx.put(SYNC_STATE, sid, {**state, **fields})

    store.transaction(merge)


def register_intervals(store: DocumentStore, intervals: Iterable[int], now: datetime) -> None:
    wanted = set(intervals)

    def add(tx: Transaction) -> None:
        doc = tx.get(SCHEDULE, INTERVALS) or {}
        known = set(doc.get("minutes") or [])
        if not wanted <= known:
            added = {**(doc.get("added") or {}), **{str(i): stamp(now) for i in wanted - known}}
            tx.put(SCHEDULE, INTERVALS, {"minutes": sorted(known | wanted), "added": added})

    store.transaction(add)


def sweep(store: DocumentStore, now: datetime) -> int:
    """Once a day, a pass over every ``syncSettings`` document, a page per tick: the
    slots of pairs whose settings the CRM wrote directly (not through the settings
    API), of pairs stored before slots existed, and ``renewAt`` of their channels are
    set right; intervals no pair uses any more stop costing a query per tick. Returns
    the number of settings documents read (0 when the day's pass is done)."""
    doc = store.get(SCHEDULE, SWEEP) or {}
    progress = _sweep_round(doc, now)
    if progress is None:
        return 0
    started, seen = progress
    after = doc.get("after")
    cursor = Doc(SYNC_SETTINGS, after, {}) if after else None
    page = store.query(SYNC_SETTINGS, limit=SWEEP_PAGE, start_after=cursor)
    ids = [d.id for d in page]
    accounts, states = _pairs_of(store, ids)
    for settings_doc in page:
        user_id = settings_doc.id
        account = accounts.get(user_id)
        seen |= _sweep_user(store, user_id, settings_doc.data, account, states, now)
    last = ids[-1] if len(page) == SWEEP_PAGE else None
    _save_round(store, last, started, seen)
    return len(page)


def _sweep_round(doc: Mapping[str, Any], now: datetime) -> tuple[str | None, set[int]] | None:
    """The day's pass as ``schedule/sweep`` leaves it: (when it began, the intervals
    seen in use so far); a new one when the last ended a day ago; None when today's
    is done."""
    after, started = doc.get("after"), doc.get("roundStartedAt")
    if after is not None:
        return started, set(doc.get("seen") or [])
    if started and parse_timestamp(started) > now - SWEEP_EVERY:
        return None
    return stamp(now), set()


def _pairs_of(store: DocumentStore, ids: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Google accounts of a page's users and the states of their pairs, by id."""
    accounts = store.get_many(GOOGLE_ACCOUNTS, ids) if ids else {}
    sids = [state_id(u, s) for u in ids for s in SECTIONS]  # type: ignore[arg-type]
    states = store.get_many(SYNC_STATE, sids) if sids else {}
    return accounts, states


def _sweep_user(store: DocumentStore, user_id: str, data: Mapping[str, Any],
                account: Mapping[str, Any] | None, states: Mapping[str, Any],
                now: datetime) -> set[int]:  # fmt: skip
    """One user's pairs set right: rescheduled when any is stale, due at once when
    its settings drifted. Returns the intervals they use."""
    settings = _settings(user_id, data)
    used: set[int] = set()
    stale = False
    for section in SECTIONS:
        slot, every = wanted_slot(settings, account, user_id, section)
        state = states.get(state_id(user_id, section)) or {}
        if every:
            used.add(every)
        stale |= _stale(state, slot, account)
        if slot and settings is not None and drifted(section, settings, state):
            update_state(store, state_id(user_id, section), {"nextDueAt": stamp(now)})
    if stale:
        reschedule(store, user_id, now)
    return used


def _stale(state: Mapping[str, Any], slot: str | None, account: Mapping[str, Any] | None) -> bool:
    """The pair's state is out of line with its settings or connection: another slot,
    a channel with no upkeep mark, or another connection kept for its look."""
    token = (account or {}).get("refreshTokenCiphertext") if slot else None
    return (
        state.get("slot") != slot
        or (bool(state.get("channel")) and not state.get("renewAt"))
        or state.get("tokenCiphertext") != token
    )


def _save_round(store: DocumentStore, last: str | None, started: str | None,
                seen: set[int]) -> None:  # fmt: skip
    """Where the pass goes on from (``last``, the page's last user), or, past the last
    page, the pass ended: the intervals no pair uses pruned."""
    if last is not None:
        store.put(SCHEDULE, SWEEP, {"after": last, "roundStartedAt": started,
                                    "seen": sorted(seen)})  # fmt: skip
        return
    _prune_intervals(store, seen, started)  # type: ignore[arg-type]
    store.put(SCHEDULE, SWEEP, {"after": None, "roundStartedAt": started})


def drifted(section: str, settings: SyncSettings, state: Mapping[str, Any]) -> bool:
    """Settings the pair's last run did not use (the CRM wrote them itself): a new tag,
    a new "sync from" date. Looks do not read settings, so the sweep asks for a run."""
    if not state.get("lastSuccessAt"):
        return False  # never synced: it runs in full anyway
    if section == "contacts":
        return settings.contacts.tagId != state.get("tagId")
    if "syncFromSetting" in state:
        return settings.activities.syncFrom != state.get("syncFromSetting")
    return bool(settings.activities.syncFrom) and settings.activities.syncFrom != state.get(
        "syncFrom"
    )


def _prune_intervals(store: DocumentStore, seen: set[int], started: str) -> None:
    """Keep the intervals the pass saw in use, and those added since it began."""

    def prune(tx: Transaction) -> None:
        doc = tx.get(SCHEDULE, INTERVALS) or {}
        added = doc.get("added") or {}
        keep = {
            i for i in doc.get("minutes") or [] if i in seen or added.get(str(i), "") >= started
        }
        keep |= seen
        if keep != set(doc.get("minutes") or []):
            added = {k: v for k, v in added.items() if int(k) in keep}
            tx.put(SCHEDULE, INTERVALS, {"minutes": sorted(keep), "added": added})

    store.transaction(prune)
