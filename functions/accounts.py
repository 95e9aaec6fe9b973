"""Connecting a Google account to a CRM user, and disconnecting it: what ``connect``,
the OAuth callback and the settings page share.

The refresh token is checked with Google first, then stored encrypted in
``googleAccounts/{userId}``; a reconnect clears ``reauth_required``, and a reconnect
with another Google account starts that account clean. Nothing is written when the
user is unknown or Google refuses the token.

``disconnect`` revokes the token at Google, stops the Calendar push channel, archives
the links and clears the sync state of both sections (``core.account_switch``), takes
the pairs off the schedule, and leaves ``googleAccounts/{userId}`` ``not_connected``.
A connection the administrator made (domain-wide delegation) is refused (409): the
user cannot end it.
The CRM keeps every record and tag, Google every contact, group and event. A later
connection to the same account rejoins the archived pairs; to another, starts clean.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from adapters.clock import rfc3339
from adapters.delegation import ADMINISTRATOR
from adapters.google_auth import TokenInfo, check_refresh_token, revoke_token
from adapters.google_calls import Retry
from core import account_switch, email_index, lease, schedule
from core.account_switch import switch_all
from core.errors import (
    ConfigError,
    ConnectedByAdministrator,
    NotConnected,
    TokenUnreadable,
    UnknownUser,
)
from core.model import GOOGLE_ACCOUNTS, SECTIONS, SYNC_STATE, USERS, stamp, state_id
from core.ports import DocumentStore, Transaction
from functions import bootstrap
from functions.channels import CHANNELS, stop_channel

log = logging.getLogger("crmsync.accounts")
NOT_CONNECTED = "not_connected"
DISCONNECTED_HINT = "Connect a Google account to sync again."


def connect(
    config: bootstrap.Config, user_id: str, refresh_token: str, *, verify: bool = True
) -> TokenInfo:
    store = bootstrap.store(config)
    try:
        if store.get(USERS, user_id) is None:
            raise UnknownUser(user_id)
        info = TokenInfo(None, ())
        if verify:
            info = check_refresh_token(
                refresh_token,
                config.google_endpoint,
                config.oauth_client_id,
                config.oauth_client_secret,
            )
        save_connection(config, store, user_id, refresh_token, info)
        return info
    finally:
        store.close()


def save_connection(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    refresh_token: str | None,
    info: TokenInfo,
    *,
    delegated_by: str | None = None,
) -> None:
    """Store the token encrypted; a (re)connection is ``connected`` again. A different
    Google account than before starts clean (``core.account_switch``): its cursors,
    group and links are reset, the old account's links archived; the CRM keeps all.

    ``delegated_by``: the connection is the administrator's domain-wide delegation (that
    service account's email, ``functions.delegation``): no token is stored, and the
    document says ``connectedBy: administrator``."""
    stored = store.get(GOOGLE_ACCOUNTS, user_id) or {}
    # after a disconnect the account is remembered as previousAccountEmail
    previous = stored.get("accountEmail") or stored.get("previousAccountEmail")
    now = bootstrap.clock().now()
    if info.account_email:
        switch_all(store, user_id, info.account_email, previous, now)
    # disconnected before: the same account's archived pairs rejoin (no duplicates)
    account_switch.resume(store, user_id, info.account_email, now)
    user_email = (store.get(USERS, user_id) or {}).get("email") or ""
    with store.batch() as batch:  # the account and its email index entries together
        doc: dict[str, Any] = {
            "accountEmail": info.account_email,
            "scopes": list(info.scopes),
            "status": "connected",
            "connectedAt": rfc3339(bootstrap.clock().now()),
        }
        if delegated_by:
            doc |= {"connectedBy": ADMINISTRATOR, "delegatedBy": delegated_by}
        else:
            doc["refreshTokenCiphertext"] = bootstrap.cipher(config).encrypt(refresh_token or "")
        batch.put(GOOGLE_ACCOUNTS, user_id, doc)
        email_index.index_user(batch, user_id, [user_email, info.account_email or ""], store)
    # connected again: its pairs are back on the schedule, and due at once
    schedule.reschedule(store, user_id, bootstrap.clock().now(), due_now=True)


def disconnect(config: bootstrap.Config, store: DocumentStore, user_id: str) -> dict[str, Any]:
    """Disconnect the user's Google account. In order, so that a failure changes nothing
    (the user retries):

    1. take both sections' leases (a run under way: ``LeaseHeld``, nothing changed);
    2. stop the Calendar push channel, if one is open (best-effort: it needs the token);
    3. revoke the refresh token at Google; one Google already takes for invalid or
       revoked is gone anyway. Unreachable, 5xx or 429: ``Unavailable`` /
       ``QuotaExceeded``, the leases are given back and nothing else changes (but a
       channel stopped in step 2, which the state then no longer lists, so the next
       tick opens a new one);
    4. archive both sections' links (``core.account_switch.archive``), and in one
       transaction clear the sections' state (``account_switch.disconnected``: cursors,
       group, channel, retry lists and schedule go; run history stays) and write
       ``googleAccounts/{userId}`` as ``not_connected`` with ``disconnectedAt`` and
       ``previousAccountEmail`` (the ciphertext and scopes go);
    5. drop the user from the email index entry of the account's email (unless it is
       the user's CRM email too); take the pairs off the schedule.

    Unknown user: ``UnknownUser``; no connection (never, or disconnected already):
    ``NotConnected``; the administrator's connection: ``ConnectedByAdministrator``; nothing
    is written either way."""
    user, account = _connection(config, store, user_id)
    ciphertext, email = account.get("refreshTokenCiphertext"), account.get("accountEmail") or None
    now = bootstrap.clock().now()
    token = _token(config, ciphertext) if ciphertext else None  # none: the administrator's
    holder = f"disconnect:{uuid.uuid4().hex}"
    before = _lease_all(store, user_id, holder, now)
    stopped = False
    try:
        stopped = _stop_channel(config, store, token, before[state_id(user_id, "activities")])
        revoked = revoke_token(token, config.google_endpoint) if token else False
    except BaseException:
        _give_back(store, holder, before, now, channel_stopped=stopped)
        raise
    try:
        unlinked = _archive_all(store, user_id, before, email, stopped)
        replaced = store.transaction(
            lambda tx: _finish(tx, user_id, holder, before, ciphertext, email, now)
        )
    except BaseException:
        # the token is revoked already: the account says so (reconnect or disconnect
        # again), and the leases go back, so that a retry is not refused as "busy"
        _give_back(store, holder, before, now, channel_stopped=stopped)
        if ciphertext:  # the administrator's connection had no token to revoke
            _mark_revoked(store, user_id, ciphertext)
        raise
    if not replaced:
        _unindex(store, user, user_id, email)
    schedule.unschedule(store, user_id)
    if replaced:
        _rejoin(store, user_id, email, now)
    log.info(
        "disconnected a Google account",
        extra={"fields": {"userId": user_id, "revoked": revoked, "unlinked": unlinked}},
    )
    return {
        "outcome": "done",
        "reason": "disconnected",
        "revoked": revoked,
        "previousAccountEmail": email,
        "unlinked": unlinked,
        "hint": DISCONNECTED_HINT,
    }


def _connection(config: bootstrap.Config, store: DocumentStore,
                user_id: str) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """The user and their Google connection; ``UnknownUser``, or ``NotConnected`` (never
    connected, or disconnected already). The administrator's connection is theirs to
    end (``ConnectedByAdministrator``) while the delegation covers the user's email;
    once it no longer does (its domain, or the key, taken out of the configuration),
    the user can end it: nothing else would."""
    from functions.delegation import covers  # delegation imports this module's callers

    user = store.get(USERS, user_id)
    if user is None:
        raise UnknownUser(user_id)
    account = store.get(GOOGLE_ACCOUNTS, user_id) or {}
    delegated = account.get("connectedBy") == ADMINISTRATOR
    if delegated and covers(config, user.get("email")):
        raise ConnectedByAdministrator(
            f"user {user_id}'s Google connection is the administrator's domain-wide "
            "delegation: the user cannot disconnect it"
        )
    if delegated and account.get("status") != NOT_CONNECTED:
        return user, account
    if account.get("status") == NOT_CONNECTED or not account.get("refreshTokenCiphertext"):
        raise NotConnected(f"user {user_id} has no Google account connected: nothing to disconnect")
    return user, account


def _token(config: bootstrap.Config, ciphertext: str) -> str | None:
    """The refresh token, or None when the key changed: no one can use (or revoke) it."""
    try:
        return bootstrap.cipher(config).decrypt(ciphertext)
    except (ConfigError, TokenUnreadable) as exc:
        log.warning("disconnect: the stored token cannot be decrypted: %s", exc)
        return None


def _unindex(store: DocumentStore, user: dict[str, Any], user_id: str, email: str | None) -> None:
    """Connect listed the user under its account's email: no more (unless it is the
    user's CRM email too)."""
    if email and email_index.norm(email) != email_index.norm(user.get("email")):
        with store.batch() as batch:
            batch.remove_from_array(email_index.EMAIL_INDEX, email_index.key(email), "users",
                                    [user_id])  # fmt: skip


def _rejoin(store: DocumentStore, user_id: str, email: str | None, now: datetime) -> None:
    """Reconnected meanwhile: that connection stays, and its pairs rejoin (another account
    than the one just archived starts clean first)."""
    fresh = (store.get(GOOGLE_ACCOUNTS, user_id) or {}).get("accountEmail")
    if fresh:
        switch_all(store, user_id, fresh, email, now)
    account_switch.resume(store, user_id, fresh, now)
    schedule.reschedule(store, user_id, now, due_now=True)


def _archive_all(store: DocumentStore, user_id: str, before: dict[str, dict[str, Any]],
                 email: str | None, stopped: bool) -> dict[str, int]:  # fmt: skip
    """Both sections' links archived (a reconnection to the account restores them); a
    channel Google did not stop is forgotten (its notifications answer 404)."""
    unlinked = {}
    for section in SECTIONS:
        state = before[state_id(user_id, section)]
        owner = state.get("accountEmail") or email
        unlinked[section] = account_switch.archive(store, user_id, section, owner)
    channel = before[state_id(user_id, "activities")].get("channel")
    if channel and not stopped:
        store.delete(CHANNELS, channel["id"])
    return unlinked


def _mark_revoked(store: DocumentStore, user_id: str, ciphertext: str) -> None:
    """Best effort, after a disconnect failed past the revocation: the connection is
    ``reauth_required`` (its token no longer works), unless it was replaced meanwhile."""

    def mark(tx: Transaction) -> None:
        account = tx.get(GOOGLE_ACCOUNTS, user_id) or {}
        if account.get("refreshTokenCiphertext") == ciphertext:
            tx.put(GOOGLE_ACCOUNTS, user_id, {**account, "status": "reauth_required"})

    try:
        store.transaction(mark)
    except Exception as exc:  # the store is down: the next run meets invalid_grant
        log.warning("disconnect: could not mark the account reauth_required: %s", exc)


def _lease_all(
    store: DocumentStore, user_id: str, holder: str, now: datetime
) -> dict[str, dict[str, Any]]:
    """Both sections' leases, as a run takes them; the states as they were, by id. A
    section under way: the leases taken so far are given back and ``LeaseHeld`` raised."""
    before: dict[str, dict[str, Any]] = {}
    try:
        for section in SECTIONS:
            sid = state_id(user_id, section)
            before[sid] = lease.acquire(
                store, sid, holder, now, seconds=account_switch.SWITCH_LEASE_SECONDS
            )
    except BaseException:
        _give_back(store, holder, before, now)
        raise
    return before


def _give_back(
    store: DocumentStore,
    holder: str,
    before: dict[str, dict[str, Any]],
    now: datetime,
    *,
    channel_stopped: bool = False,
) -> None:
    """Undo ``_lease_all``: each state as it was (a state the lease made is deleted),
    with what others wrote meanwhile. A channel stopped already is no longer listed,
    and comes up for upkeep at once."""
    for sid, was in before.items():

        def undo(tx: Transaction, sid: str = sid, was: dict[str, Any] = was) -> None:
            current = tx.get(SYNC_STATE, sid) or {}
            if (current.get("lease") or {}).get("holder") != holder:
                return  # not ours (any more)
            state = {k: v for k, v in current.items() if k != "lease"}
            if "lease" in was:
                state["lease"] = was["lease"]
            if channel_stopped and state.get("channel"):
                state |= {"channel": None, "renewAt": stamp(now)}
            if state:
                tx.put(SYNC_STATE, sid, state)
            else:
                tx.delete(SYNC_STATE, sid)

        store.transaction(undo)


def _stop_channel(
    config: bootstrap.Config, store: DocumentStore, token: str | None, state: dict[str, Any]
) -> bool:
    """Stop the activities push channel at Google, best-effort (it takes the token, so
    before revoking it); True if it was stopped."""
    channel = state.get("channel")
    if not channel or token is None:
        return False
    try:
        creds = bootstrap.credentials(config, token)
        calendar = bootstrap.calendar_port(config, creds, Retry(attempts=2, base_seconds=0.2))
        stop_channel(store, calendar, channel)
    except Exception as exc:  # it expires by itself within days; pushes to it answer 404
        log.warning("disconnect: the push channel could not be stopped: %s", type(exc).__name__)
        return False
    return True


def _finish(
    tx: Transaction,
    user_id: str,
    holder: str,
    before: dict[str, dict[str, Any]],
    ciphertext: str | None,
    email: str | None,
    now: datetime,
) -> bool:
    """The sections' states cleared and the leases given back, the connection marked
    ``not_connected``: one transaction. Returns True when the user reconnected
    meanwhile (another token stored): that connection is left as it is."""
    account = tx.get(GOOGLE_ACCOUNTS, user_id) or {}
    replaced = account.get("refreshTokenCiphertext") not in (None, ciphertext)
    states = {sid: tx.get(SYNC_STATE, sid) or {} for sid in before}  # every read first
    for sid, was in before.items():
        current = states[sid]
        ours = (current.get("lease") or {}).get("holder") == holder
        if ours and not was and set(current) <= {"lease"}:
            tx.delete(SYNC_STATE, sid)  # never synced: no state, as before
            continue
        owner = current.get("accountEmail") or email
        state = account_switch.disconnected(current, owner, now)
        state["lease"] = None if ours else current.get("lease")
        tx.put(SYNC_STATE, sid, state)
    if not replaced:
        tx.put(GOOGLE_ACCOUNTS, user_id, {
            "status": NOT_CONNECTED,
            "disconnectedAt": rfc3339(now),
            "previousAccountEmail": email,
        })  # fmt: skip
    return replaced
