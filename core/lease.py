"""Leases on ``syncState/{userId}:{section}``: one run per user and section at a time.

``acquire`` is one store transaction: it takes the lease when it is free or expired,
and raises ``LeaseHeld`` otherwise. ``release`` gives it back, only if still ours.
Expiry bounds the damage of a crashed run: the next trigger after ``expiresAt`` runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from core.errors import LeaseHeld, LeaseLost
from core.model import SYNC_STATE, parse_timestamp, stamp, when
from core.ports import DocumentStore, Transaction

logger = logging.getLogger("crmsync.lease")
# a run renews its lease as it goes (``renew``, at most every HEARTBEAT_SECONDS), so the
# lease can be short: a run that dies holds its pair for at most this long
LEASE_SECONDS = 3 * 60
HEARTBEAT_SECONDS = 45


def acquire(
    store: DocumentStore,
    state_id: str,
    holder: str,
    now: datetime,
    seconds: int = LEASE_SECONDS,
    process: Any = None,
) -> dict[str, Any]:
    """Take the lease; returns the state document as it was before. ``process`` (a
    command-line run's, ``adapters.process``): its owner facts go with the lease, and a
    lease whose owner it finds dead (killed on this machine) is taken over at once."""

    def take(tx: Transaction) -> dict[str, Any]:
        state = tx.get(SYNC_STATE, state_id) or {}
        lease = held(state.get("lease"))
        live = lease is not None and when(lease["expiresAt"]) > now  # type: ignore[operator]
        if live and lease["holder"] != holder and not _dead(process, lease):  # type: ignore[index]
            raise LeaseHeld(state_id, lease["holder"], lease["expiresAt"])  # type: ignore[index]
        expires = stamp(now + timedelta(seconds=seconds))
        mine = {"holder": holder, "expiresAt": expires}
        if process is not None:
            mine["owner"] = dict(process.owner)
        tx.put(SYNC_STATE, state_id, {**state, "lease": mine})
        return state

    return store.transaction(take)


def _dead(process: Any, lease: Mapping[str, Any]) -> bool:
    return process is not None and process.dead(lease.get("owner"))


def renew(store: DocumentStore, state_id: str, holder: str, now: datetime,
          seconds: int = LEASE_SECONDS) -> None:  # fmt: skip
    """Extend the lease ``holder`` holds; ``LeaseHeld`` if another run has taken it (this
    one was too slow to renew it: it stops, as a crash would, and loses nothing)."""

    def extend(tx: Transaction) -> None:
        state = tx.get(SYNC_STATE, state_id) or {}
        lease = held(state.get("lease"))
        if lease is None or lease["holder"] != holder:
            taker = lease or {"holder": "(none)", "expiresAt": "(none)"}
            raise LeaseLost(state_id, taker["holder"], taker["expiresAt"])
        expires = stamp(now + timedelta(seconds=seconds))
        tx.put(SYNC_STATE, state_id, {**state, "lease": {**lease, "expiresAt": expires}})

    store.transaction(extend)


class Heartbeat:
    """Keeps a run's lease while the run lives: renewed at most every
    ``HEARTBEAT_SECONDS`` of the clock (one store write per beat, none in between),
    both when the section says progress and from a background thread (``start``),
    so that one slow Google call (a batch retried for minutes) never outlasts the
    lease. A lease another run has taken is said at the section's next progress
    (``LeaseHeld``): the run stops there, as a crash would, and loses nothing."""

    POLL_SECONDS = 5.0  # how often the thread looks at the clock (real time)

    def __init__(self, store: DocumentStore, clock: Any, state_id: str, holder: str) -> None:
        self.store, self.clock, self.state_id, self.holder = store, clock, state_id, holder
        self.last = clock.now()
        self.lost: LeaseLost | None = None  # the lease was taken: said at next progress
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self) -> None:
        """The section's progress: renew if a beat is due; raise if the lease was lost.
        A store that fails to renew is no reason to stop: the thread tries again."""
        try:
            self._beat()
        except Exception as exc:
            logger.warning("the lease could not be renewed: %s", exc,
                           extra={"fields": {"stateId": self.state_id,
                                             "error": type(exc).__name__}})  # fmt: skip
        if self.lost is not None:
            raise self.lost

    def _beat(self) -> None:
        with self._lock:
            if self.lost is not None:
                return
            now = self.clock.now()
            if (now - self.last).total_seconds() < HEARTBEAT_SECONDS:
                return
            try:
                renew(self.store, self.state_id, self.holder, now)
            except LeaseLost as taken:
                self.lost = taken
                return
            self.last = now

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name=f"lease {self.state_id}",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.POLL_SECONDS):
            try:
                self._beat()
            except Exception as exc:  # the store failed: the next beat tries again
                logger.warning("the lease could not be renewed: %s", exc,
                               extra={"fields": {"stateId": self.state_id,
                                                 "error": type(exc).__name__}})  # fmt: skip


def held(lease: Any) -> dict[str, Any] | None:
    """A lease as crmsync writes it, else None: a corrupt one holds nothing (the run
    that takes the lease writes a good one over it)."""
    if not isinstance(lease, dict) or not isinstance(lease.get("holder"), str):
        return None
    return lease if when(lease.get("expiresAt")) is not None else None


def release(
    store: DocumentStore,
    state_id: str,
    holder: str,
    updates: dict[str, Any],
    drop: Iterable[str] = (),
    due_served: str | None = None,
    due_retry: tuple[str, str] | None = None,
    consumed: Mapping[str, Iterable[str]] | None = None,
    served: Mapping[str, Any] | None = None,
    drop_if: Mapping[str, Any] | None = None,
) -> None:
    """Write ``updates`` into the state (less the fields named in ``drop``) and drop the
    lease, if ``holder`` still has it.

    ``due_served``: the run's start; a ``nextDueAt`` at or before it was this run's
    reason to be and is cleared (a later one, set by a settings change during the
    run, stays). ``due_retry`` = (start, when): a failed run moves such a
    ``nextDueAt`` to ``when``, so it is retried then and not at every tick.
    ``consumed``: for id lists the run took from the state (``retryCrm``), the ids it
    read at the start; ids added meanwhile (the webhook's hard deletes) are kept
    beside the run's own. ``served``: marks the run saw at its start and has served
    (``crmFullPassAt``): cleared unless set anew meanwhile. ``drop_if``: keys dropped
    if they still hold these values (set aside as corrupt; one written anew stays)."""
    gone = set(drop)

    def give_back(tx: Transaction) -> None:
        state = tx.get(SYNC_STATE, state_id) or {}
        lease = held(state.get("lease")) or {}
        if lease.get("holder") not in (None, holder):
            return  # expired and taken over: the new holder's state wins
        dropped = gone | {k for k, v in (drop_if or {}).items() if _same(state.get(k), v)}
        kept = {k: v for k, v in state.items() if k not in dropped}
        due = when(kept.get("nextDueAt"))
        if kept.get("nextDueAt") is not None and due is None:  # not a time: as if served
            due, kept["nextDueAt"] = None, None
        if due_served and due and due <= parse_timestamp(due_served):
            kept["nextDueAt"] = None
        if due_retry and due and due <= parse_timestamp(due_retry[0]):
            kept["nextDueAt"] = due_retry[1]
        for key, seen in (served or {}).items():
            if _same(kept.get(key), seen):
                kept[key] = None
        merged = dict(updates)
        for key, taken in (consumed or {}).items():
            if key in merged:
                added = set(kept.get(key) or []) - set(taken)
                merged[key] = sorted(set(merged[key]) | added)
        tx.put(SYNC_STATE, state_id, {**kept, **merged, "lease": None})

    store.transaction(give_back)


def _same(stored: Any, seen: Any) -> bool:
    """The value a run read is still there (a NaN, which a store may hold, is itself)."""
    return stored == seen or (stored != stored and seen != seen)


def holder_of(run_id: str, attempt: str) -> str:
    """The lease holder of one attempt of a run: a redelivered message is another
    attempt, and waits for the first instead of running beside it."""
    return f"{run_id}@{attempt}"


def run_of(holder: str | None) -> str | None:
    """The run id of a lease holder, or None for holders that are not runs (an account
    switch, a disconnect)."""
    run_id, at, _ = (holder or "").partition("@")
    return run_id if at else None
