"""Leases on ``syncState/{userId}:{section}``: one run per user and section at a time.

``acquire`` is one store transaction: it takes the lease when it is free or expired,
and raises ``LeaseHeld`` otherwise. ``release`` gives it back, only if still ours.
Expiry bounds the damage of a crashed run: the next trigger after ``expiresAt`` runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from core.errors import LeaseHeld
from core.model import SYNC_STATE, parse_timestamp, stamp
from core.ports import DocumentStore, Transaction

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
        live = lease is not None and parse_timestamp(lease["expiresAt"]) > now
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
            raise LeaseHeld(state_id, taker["holder"], taker["expiresAt"])
        expires = stamp(now + timedelta(seconds=seconds))
        tx.put(SYNC_STATE, state_id, {**state, "lease": {**lease, "expiresAt": expires}})

    store.transaction(extend)


class Heartbeat:
    """Renews a run's lease when its section says progress, at most every
    ``HEARTBEAT_SECONDS``: one store write per beat, none in between."""

    def __init__(self, store: DocumentStore, clock: Any, state_id: str, holder: str) -> None:
        self.store, self.clock, self.state_id, self.holder = store, clock, state_id, holder
        self.last = clock.now()

    def __call__(self) -> None:
        now = self.clock.now()
        if (now - self.last).total_seconds() >= HEARTBEAT_SECONDS:
            renew(self.store, self.state_id, self.holder, now)
            self.last = now


def held(lease: Any) -> dict[str, Any] | None:
    """A lease as crmsync writes it, else None: a corrupt one holds nothing (the run
    that takes the lease writes a good one over it)."""
    if not isinstance(lease, dict) or not isinstance(lease.get("holder"), str):
        return None
    try:
        parse_timestamp(lease.get("expiresAt"))
    except (TypeError, ValueError, AttributeError):
        return None
    return lease


def release(
    store: DocumentStore,
    state_id: str,
    holder: str,
    updates: dict[str, Any],
    drop: Iterable[str] = (),
    due_served: str | None = None,
    due_retry: tuple[str, str] | None = None,
    consumed: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Write ``updates`` into the state (less the fields named in ``drop``) and drop the
    lease, if ``holder`` still has it.

    ``due_served``: the run's start; a ``nextDueAt`` at or before it was this run's
    reason to be and is cleared (a later one, set by a settings change during the
    run, stays). ``due_retry`` = (start, when): a failed run moves such a
    ``nextDueAt`` to ``when``, so it is retried then and not at every tick.
    ``consumed``: for id lists the run took from the state (``retryCrm``), the ids it
    read at the start; ids added meanwhile (the webhook's hard deletes) are kept
    beside the run's own."""
    gone = set(drop)

    def give_back(tx: Transaction) -> None:
        state = tx.get(SYNC_STATE, state_id) or {}
        lease = held(state.get("lease")) or {}
        if lease.get("holder") not in (None, holder):
            return  # expired and taken over: the new holder's state wins
        kept = {k: v for k, v in state.items() if k not in gone}
        due = kept.get("nextDueAt")
        if due_served and due and parse_timestamp(due) <= parse_timestamp(due_served):
            kept["nextDueAt"] = None
        if due_retry and due and parse_timestamp(due) <= parse_timestamp(due_retry[0]):
            kept["nextDueAt"] = due_retry[1]
        merged = dict(updates)
        for key, taken in (consumed or {}).items():
            if key in merged:
                added = set(kept.get(key) or []) - set(taken)
                merged[key] = sorted(set(merged[key]) | added)
        tx.put(SYNC_STATE, state_id, {**kept, **merged, "lease": None})

    store.transaction(give_back)


def holder_of(run_id: str, attempt: str) -> str:
    """The lease holder of one attempt of a run: a redelivered message is another
    attempt, and waits for the first instead of running beside it."""
    return f"{run_id}@{attempt}"


def run_of(holder: str | None) -> str | None:
    """The run id of a lease holder, or None for holders that are not runs (an account
    switch, a disconnect)."""
    run_id, at, _ = (holder or "").partition("@")
    return run_id if at else None
