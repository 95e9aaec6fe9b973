"""Connections made by the Workspace administrator: domain-wide delegation.

With ``CRMSYNC_DELEGATION_KEY`` (the service account's JSON key, from Secret Manager in
the cloud) and ``CRMSYNC_DELEGATION_DOMAINS`` set, crmsync acts for every CRM user whose
email is in one of those domains, with no OAuth of their own (``adapters.delegation``:
the JWT-bearer grant with ``sub`` = the user's email).

Such a connection is a ``googleAccounts/{userId}`` document like any other, so that the
schedule, the email index, the activities' "organizer has a connection" rule and the
page see it unchanged: ``accountEmail`` (the user's CRM email), ``scopes``, ``status``,
``connectedAt``, plus ``connectedBy: "administrator"`` and ``delegatedBy`` (the service
account's email), and no ``refreshTokenCiphertext``.

Precedence: a working connection of the user's own (OAuth) wins; the delegation steps in
where the user has none: never connected, disconnected, or ``reauth_required``.
``ensure`` makes that connection, after one grant that proves Google accepts it; it is
called when the user opens the page (the status) and before each sync run, so that a
domain user is connected at the first look with no step of theirs. A user cannot
disconnect it (``functions.accounts.disconnect`` answers 409).

Revoked: a run whose grant Google refuses (``DelegationRevoked``) marks the connection
``reauth_required`` (``core.runs``) and the page says to ask the administrator
(``core.outcome.DELEGATION``). ``ensure`` tries a revoked one again at most once a
minute, and a restored delegation is ``connected`` again, due at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from adapters import delegation
from adapters.delegation import ADMINISTRATOR
from adapters.google_api import SCOPES
from adapters.google_auth import TokenInfo
from core.errors import DelegationRevoked, GoogleError
from core.model import GOOGLE_ACCOUNTS, USERS, parse_timestamp, stamp
from core.ports import DocumentStore, Filter
from functions import bootstrap

log = logging.getLogger("crmsync.delegation")
RETRY_REVOKED = timedelta(minutes=1)  # a refused delegation is asked again this often
RESTORE_EVERY = timedelta(minutes=15)  # the tick asks again for revoked ones this often
RESTORE_PER_TICK = 50  # grants a tick may ask for: a large domain is served in turns


def is_delegated(account: Mapping[str, Any] | None) -> bool:
    """The connection is the administrator's (domain-wide delegation)."""
    return (account or {}).get("connectedBy") == ADMINISTRATOR


def covers(config: bootstrap.Config, email: str | None) -> bool:
    """The delegation is configured and ``email`` is in one of its domains."""
    if not (email and config.delegation_key and config.delegation_domains):
        return False
    return email.rpartition("@")[2].strip().lower() in config.delegation_domains


def ensure(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    user: Mapping[str, Any] | None = None,
    account: Mapping[str, Any] | None = None,
    *,
    read: bool = True,
) -> dict[str, Any] | None:
    """The user's connection, made through the delegation when it covers the user's email
    and the user has no working connection (``connected``). Returns the account document
    as it now is (``read``: ``user`` and ``account`` are read from the store, else taken
    as given). Google's refusal leaves a new user unconnected and marks a delegated one
    ``reauth_required``; passing trouble changes nothing."""
    if read:
        user, account = store.get(USERS, user_id), store.get(GOOGLE_ACCOUNTS, user_id)
    email = (user or {}).get("email")
    current = dict(account) if account is not None else None
    if not covers(config, email) or _working(current, email):
        return current
    now = bootstrap.clock().now()
    if is_delegated(current) and _asked_lately(current, now):
        return current
    if _claimed(store, user_id, email):  # type: ignore[arg-type]
        log.warning("the delegation does not serve %s: another CRM user has its mailbox",
                    user_id)  # fmt: skip
        return current
    creds = bootstrap.delegated_credentials(config, email.lower())  # type: ignore[union-attr]
    try:
        delegation.check(creds)
    except DelegationRevoked as exc:
        log.warning("the delegation does not serve %s: %s", user_id, exc)
        return _refused(store, user_id, current, now)
    except GoogleError as exc:  # passing trouble: the next look asks again
        log.warning("the delegation could not be checked for %s: %s", user_id, exc)
        return current
    from functions.accounts import save_connection  # accounts imports the sync modules

    info = TokenInfo(email.lower(), tuple(sorted(SCOPES)))  # type: ignore[union-attr]
    save_connection(config, store, user_id, None, info, delegated_by=creds.service_account_email)
    log.info("connected by the administrator's delegation", extra={"fields": {"userId": user_id}})
    return store.get(GOOGLE_ACCOUNTS, user_id)


def _working(account: Mapping[str, Any] | None, email: str | None) -> bool:
    """A connection that works, and (the administrator's) is the user's own mailbox."""
    if (account or {}).get("status") != "connected":
        return False
    mailbox = (account or {}).get("accountEmail") or ""
    return not is_delegated(account) or mailbox.lower() == (email or "").lower()


def _claimed(store: DocumentStore, user_id: str, email: str) -> bool:
    """Another CRM user has this email, or a connection to this mailbox, in any letter
    case: the subject of a delegated grant is a mailbox (Google reads it case-blind),
    and it is never one user's and another's. The email index answers case-blind
    (users by CRM email and by connected account); the exact spellings are asked too,
    for what the index has not caught up with yet."""
    from core import email_index

    found = email_index.lookup(store, [email])
    if any(u != user_id for u in found.users.get(email_index.norm(email), [])):
        return True
    for spelling in {email, email.lower()}:
        users = store.query(USERS, [Filter("email", "==", spelling)])
        accounts = store.query(GOOGLE_ACCOUNTS, [Filter("accountEmail", "==", spelling)])
        if any(d.id != user_id for d in users) or any(
            d.id != user_id and d.data.get("status") == "connected" for d in accounts
        ):
            return True
    return False


def _asked_lately(account: Mapping[str, Any], now: Any) -> bool:
    asked = account.get("delegationCheckedAt")
    return bool(asked) and parse_timestamp(asked) + RETRY_REVOKED > now


def _refused(
    store: DocumentStore, user_id: str, account: dict[str, Any] | None, now: Any
) -> dict[str, Any] | None:
    """A delegated connection Google refused again: ``reauth_required``, with when it
    was asked (the next ask waits ``RETRY_REVOKED``). Others are left as they are."""
    if not is_delegated(account):
        return account
    updated = {**account, "status": "reauth_required", "delegationCheckedAt": stamp(now)}  # type: ignore[dict-item]
    store.put(GOOGLE_ACCOUNTS, user_id, updated)
    return updated


def restore_revoked(config: bootstrap.Config, store: DocumentStore, now: Any) -> int:
    """The tick's upkeep: delegated connections Google refused are asked again (every
    ``RESTORE_EVERY``, ``RESTORE_PER_TICK`` at a time), so that users whose
    administrator restored the delegation sync again without a step of theirs (a
    restored connection is rescheduled, due at once). Returns how many came back.
    No delegation configured: nothing is read."""
    if not (config.delegation_key and config.delegation_domains):
        return 0
    where = [Filter("connectedBy", "==", ADMINISTRATOR),
             Filter("status", "==", "reauth_required")]  # fmt: skip
    asked = 0
    back = 0
    for doc in store.query(GOOGLE_ACCOUNTS, where):
        checked = doc.data.get("delegationCheckedAt")
        if checked and parse_timestamp(checked) + RESTORE_EVERY > now:
            continue
        if asked >= RESTORE_PER_TICK:
            break
        asked += 1
        account = ensure(config, store, doc.id)
        if (account or {}).get("status") == "connected":
            back += 1
        else:  # asked, whatever kept it refused: the next ones get their turn
            _stamp_asked(store, doc.id, now)
    return back


def _stamp_asked(store: DocumentStore, user_id: str, now: Any) -> None:
    def stamp_it(tx: Any) -> None:
        account = tx.get(GOOGLE_ACCOUNTS, user_id)
        if is_delegated(account) and account.get("status") == "reauth_required":  # type: ignore[union-attr]
            tx.put(GOOGLE_ACCOUNTS, user_id, {**account, "delegationCheckedAt": stamp(now)})  # type: ignore[dict-item]

    store.transaction(stamp_it)
