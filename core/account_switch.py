"""A user's Google account changed: start clean on the new one, lose nothing in the CRM.

Everything a section keeps about Google belongs to one Google account: the People or
Calendar sync token, the contact group, the push channel, the retry lists, and each
link (a resource name or event id means nothing in another account). When the
connected ``accountEmail`` differs from the one ``syncState`` recorded, ``switch``

    archives   the section's links (active, parked and tombstoned alike) under the old
               account in ``linkArchive/{userId}:{account}:{section}:{crmId}``, and
               deletes them from ``links``: the new account's run sees no pair, so no
               CRM contact loses its tag because the new account lacks its person;
    restores   the links archived for the new account, if the user comes back to an
               account used before (the pairs rejoin instead of duplicating);
    resets     the section's cursors, group, channel and retry lists, records the
               switch (``accountSwitch``: from, to, at, archived, restored) for the
               settings page and ``/status``, and makes the section due now.

It runs when the connection is saved (``connect``, the OAuth callback) and again, as
a safety net, at the start of every run (``core.runs``): a run that finds the state
stamped with another account than the connection's switches before it reads Google.

Disconnecting (``functions.accounts.disconnect``) is half a switch: the section's
links are archived under the account (``archive``) and its state keeps only the run
history (``disconnected``: no cursor, group, channel, retry list or schedule; marked
``disconnectedAt`` and ``disconnectedFrom``). On the next connection ``resume``
restores the links archived for the account connected then, when it is the same one
(a different one has been switched to by ``switch_all`` first), so a reconnection to
the same account rejoins its pairs instead of matching or duplicating them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core import lease
from core.errors import LeaseHeld
from core.model import LINKS, SECTIONS, SYNC_STATE, Section, link_id, stamp, state_id
from core.ports import DocumentStore, Filter

LINK_ARCHIVE = "linkArchive"
SWITCH_LEASE_SECONDS = 10 * 60
BATCH = 400  # two writes per link (archive + delete) stay under the 500-write batch limit
GOOGLE_KEYS = (
    "googleCursor",
    "crmCursor",
    "crmReadAt",
    "groupResourceName",
    "retryGoogle",
    "retryCrm",
    "retryCrmLater",
    "crmFullPassAt",
    "channel",
)
# and what a disconnected section drops besides: its place in the schedule (the token's
# ciphertext with it), the push channel's upkeep, and the marks of runs to come
DISCONNECT_KEYS = (
    *GOOGLE_KEYS,
    "slot",
    "nextDueAt",
    "renewAt",
    "tokenCiphertext",
    "pendingCreates",
    "dispatchedAt",
    "queuedAt",
    "queuedBy",
)
DISCONNECT_MARKS = ("disconnectedAt", "disconnectedFrom")


def same_account(a: str | None, b: str | None) -> bool:
    """Unknown on either side counts as the same (nothing to compare against)."""
    return not a or not b or a.strip().lower() == b.strip().lower()


def archive_id(user_id: str, account: str, section: str, crm_id: str) -> str:
    return f"{user_id}:{account.strip().lower()}:{section}:{crm_id}"


def switch(
    store: DocumentStore,
    user_id: str,
    section: Section,
    old: str,
    new: str,
    now: datetime,
) -> dict[str, Any]:
    """Move the section from account ``old`` to ``new``; returns the new state fields,
    which ``reset`` applies to a state document (the caller may hold the lease)."""
    archived = _archive(store, user_id, section, old)
    restored = _restore(store, user_id, section, new)
    record = {"from": old, "to": new, "at": stamp(now), "archived": archived, "restored": restored}
    return {
        "accountEmail": new,
        "accountSwitch": record,
        "nextDueAt": stamp(now),
    }


def reset(state: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """The state with everything of the old account dropped and ``updates`` applied."""
    return {k: v for k, v in state.items() if k not in GOOGLE_KEYS} | updates


def save(store: DocumentStore, sid: str, updates: dict[str, Any]) -> None:
    """Apply a switch to the stored state in place (``reset``), whoever holds its lease:
    for a run that holds it already (``core.runs``)."""

    def apply(tx: Any) -> None:
        tx.put(SYNC_STATE, sid, reset(tx.get(SYNC_STATE, sid) or {}, updates))

    store.transaction(apply)


def switch_all(
    store: DocumentStore, user_id: str, new: str, previous: str | None, now: datetime
) -> dict[str, dict[str, Any]]:
    """On saving a connection to ``new``: switch each section whose state belongs to
    another account (the state's own ``accountEmail``, else ``previous``, the account
    connected until now). Each switch holds the section's lease, as a run does, so it
    never interleaves with a run; a section whose run is under way is left to that
    run's successor, whose safety net (``core.runs``) switches it. Returns the switch
    record of each section that switched (``{"deferred": True}`` for those left)."""
    result: dict[str, dict[str, Any]] = {}
    for section in ("contacts", "activities"):
        sid = state_id(user_id, section)  # type: ignore[arg-type]
        current = store.get(SYNC_STATE, sid)
        if current is None or same_account(current.get("accountEmail") or previous, new):
            continue  # never synced (no cursor, no link), or the same account
        holder = f"account-switch:{stamp(now)}"
        try:
            state = lease.acquire(store, sid, holder, now, seconds=SWITCH_LEASE_SECONDS)
        except LeaseHeld:
            result[section] = {"deferred": True}
            continue
        old = state.get("accountEmail") or previous
        updates: dict[str, Any] = {}
        if not same_account(old, new):
            updates = switch(store, user_id, section, old, new, now)  # type: ignore[arg-type]
            result[section] = updates["accountSwitch"]
        lease.release(store, sid, holder, updates, drop=GOOGLE_KEYS if updates else ())
    return result


def archive(store: DocumentStore, user_id: str, section: Section, account: str | None) -> int:
    """Move the section's links to ``linkArchive`` under ``account`` ("" when unknown),
    as a switch does; returns how many."""
    return _archive(store, user_id, section, account or "")


def disconnected(state: dict[str, Any], account: str | None, now: datetime) -> dict[str, Any]:
    """The state of a section once its Google account is disconnected: the run history
    (``lastRunAt``, ``lastSuccessAt``, ``lastResult``, ``accountSwitch``) and the
    account it belonged to are kept; cursors, group, channel, retry lists and the
    schedule are dropped, and the section is marked for ``resume``."""
    kept = {k: v for k, v in reset(state, {}).items() if k not in DISCONNECT_KEYS}
    marks = {"disconnectedAt": stamp(now), "disconnectedFrom": (account or "").strip().lower()}
    return kept | marks


def resume(store: DocumentStore, user_id: str, new: str | None, now: datetime) -> dict[str, int]:
    """On saving a connection after a disconnect: each section marked ``disconnectedAt``
    gets back the links archived for ``new`` (and for the account it was disconnected
    from, when that is the same one, or unknown on either side), under its lease, and
    loses the marks. Call it after ``switch_all``. Returns the links restored by
    section; a section whose lease is held keeps its marks (and its archive) for the
    next connection."""
    result: dict[str, int] = {}
    for section in SECTIONS:
        sid = state_id(user_id, section)
        current = store.get(SYNC_STATE, sid)
        if not current or not current.get("disconnectedAt"):
            continue
        holder = f"reconnect:{stamp(now)}"
        try:
            state = lease.acquire(store, sid, holder, now, seconds=SWITCH_LEASE_SECONDS)
        except LeaseHeld:
            continue
        recorded = state.get("disconnectedFrom") or None
        accounts = {new.strip().lower()} if new else set()
        if same_account(recorded, new):
            accounts.add(recorded or "")
        result[section] = sum(_restore(store, user_id, section, a) for a in sorted(accounts))
        lease.release(store, sid, holder, {}, drop=DISCONNECT_MARKS)
    return result


def _links(store: DocumentStore, user_id: str, section: str) -> list[dict[str, Any]]:
    where = [Filter("userId", "==", user_id), Filter("section", "==", section)]
    return [d.data for d in store.scan(LINKS, where, order_by="crmId")]


def _archive(store: DocumentStore, user_id: str, section: Section, old: str) -> int:
    links = _links(store, user_id, section)
    for start in range(0, len(links), BATCH):
        with store.batch() as batch:
            for doc in links[start : start + BATCH]:
                key = archive_id(user_id, old, section, doc["crmId"])
                batch.put(LINK_ARCHIVE, key, {**doc, "accountEmail": old.strip().lower()})
                batch.delete(LINKS, link_id(user_id, section, doc["crmId"]))
    return len(links)


def _restore(store: DocumentStore, user_id: str, section: Section, new: str) -> int:
    account = new.strip().lower()
    where = [
        Filter("userId", "==", user_id),
        Filter("section", "==", section),
        Filter("accountEmail", "==", account),
    ]
    docs = [d for d in store.scan(LINK_ARCHIVE, where, order_by="crmId")]
    for start in range(0, len(docs), BATCH):
        with store.batch() as batch:
            for doc in docs[start : start + BATCH]:
                data = {k: v for k, v in doc.data.items() if k != "accountEmail"}
                batch.put(LINKS, link_id(user_id, section, data["crmId"]), data)
                batch.delete(LINK_ARCHIVE, doc.id)
    return len(docs)
