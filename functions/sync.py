"""Running one user's sync: the Google port for the stored connection (built by
``bootstrap``) and the engine. Shared by the CLI and the Cloud Functions.

The user's ``users`` and ``googleAccounts`` documents are read once per run and handed
to the engine. A warm instance keeps each connection's decrypted refresh token and its
credentials (with their access token) in a small LRU cache keyed by the ciphertext, so
that a run costs no KMS decrypt and no token refresh while the access token lives: a
new ciphertext (a reconnection) is a new key, and a revoked token fails at Google as
it would uncached (401, then ``invalid_grant`` on refresh).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from core import probe as probe_rules
from core.activities_engine import ActivitiesEngine
from core.contacts_engine import ContactsEngine
from core.errors import (
    DelegationSuspended,
    GoogleError,
    NotConnected,
    ReauthRequired,
    UnknownUser,
)
from core.gather import crm_window
from core.model import (
    ACTIVITIES,
    CONTACTS,
    GOOGLE_ACCOUNTS,
    LINKS,
    SECTIONS,
    SYNC_SETTINGS,
    SYNC_STATE,
    USERS,
    GoogleAccount,
    link_id,
    load,
    parse_timestamp,
    stamp,
    state_id,
)
from core.ports import DocumentStore, Filter, Progress, Transaction, no_progress
from core.runs import Options, Report
from core.schedule import Job
from functions import bootstrap, delegation

DELEGATED = "delegated:"  # a probe's connection key for a delegated account
CACHE_SIZE = 2048  # connections; a few KiB each (the refresh and access tokens)
_CACHE: OrderedDict[tuple[str, ...], Any] = OrderedDict()
_LOCK = threading.Lock()
_MAKING: dict[tuple[str, ...], threading.Lock] = {}
Preloaded = Mapping[str, dict[str, Any] | None]


def google_credentials(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    preloaded: Preloaded | None = None,
) -> Any:
    pre = preloaded or {}
    user = pre["users"] if "users" in pre else store.get(USERS, user_id)
    if user is None:
        raise UnknownUser(user_id)
    raw = pre["googleAccounts"] if "googleAccounts" in pre else store.get(GOOGLE_ACCOUNTS, user_id)
    return _credentials(config, user_id, raw, user.get("email"))


def _credentials(config: bootstrap.Config, user_id: str, raw: dict[str, Any] | None,
                 email: str | None = None) -> Any:  # fmt: skip
    if raw is None or raw.get("status") == "not_connected":  # never, or disconnected
        raise NotConnected(f"user {user_id} has not connected a Google account")
    if delegation.is_delegated(raw):
        _still_covered(config, user_id, raw, email)
        return _delegated(config, user_id, raw)
    account = load(GoogleAccount, GOOGLE_ACCOUNTS, user_id, raw)
    if account.status == "reauth_required":
        raise ReauthRequired(
            f"user {user_id}'s Google connection was revoked or expired; reconnect it"
        )
    return _credentials_for(config, user_id, account.refreshTokenCiphertext)


def _still_covered(config: bootstrap.Config, user_id: str, raw: dict[str, Any],
                   email: str | None) -> None:  # fmt: skip
    """A delegated connection acts as the mailbox it was made for, only while the
    delegation still covers the user's CRM email and that email is still the mailbox's
    (a domain taken out of the configuration, or a CRM email changed, ends it)."""
    mailbox = raw.get("accountEmail") or ""
    if not delegation.covers(config, email) or (email or "").lower() != mailbox.lower():
        raise NotConnected(
            f"user {user_id}'s connection by the administrator's delegation no longer "
            "applies (its domains, or the user's CRM email, changed); connect a Google account"
        )


def _delegated(config: bootstrap.Config, user_id: str, raw: dict[str, Any]) -> Any:
    """The credentials of a connection the administrator made (``functions.delegation``)."""
    if raw.get("status") == "reauth_required":
        raise DelegationSuspended(
            f"user {user_id}'s connection by the administrator's domain-wide delegation "
            "was refused by Google; the administrator must restore the delegation"
        )
    email = raw.get("accountEmail") or ""
    key = ("delegated", user_id, email, config.google_endpoint or "", str(config.delegation_key))
    return _cached(key, lambda: bootstrap.delegated_credentials(config, email))


def _credentials_for(config: bootstrap.Config, user_id: str, ciphertext: str) -> Any:
    if ciphertext.startswith(DELEGATED):  # a probe's key for a delegated connection
        mailbox = ciphertext.removeprefix(DELEGATED)
        if not delegation.covers(config, mailbox):  # its domain taken out since
            raise NotConnected(f"user {user_id}'s delegated connection no longer applies")
        return _delegated(config, user_id, {"accountEmail": mailbox})
    key = (user_id, ciphertext, config.google_endpoint or "", config.oauth_client_id,
           str(config.token_key))  # fmt: skip
    return _cached(key, lambda: bootstrap.credentials(config, bootstrap.cipher(config).decrypt(
        ciphertext)))  # fmt: skip


def _cached(key: tuple[str, ...], make: Callable[[], Any]) -> Any:
    with _LOCK:
        creds = _CACHE.get(key)
        if creds is not None:
            _CACHE.move_to_end(key)
            return creds
        making = _MAKING.setdefault(key, threading.Lock())
    with making:  # the two sections of one user, looked at together, decrypt once
        with _LOCK:
            creds = _CACHE.get(key)
        if creds is None:
            creds = make()
        with _LOCK:
            _CACHE[key] = creds
            _MAKING.pop(key, None)
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
    return creds


def forget_credentials() -> None:
    """Empty the cache (tests that count decrypts and refreshes start cold)."""
    with _LOCK:
        _CACHE.clear()


def _preload(store: DocumentStore, user_id: str, preloaded: Preloaded | None) -> dict:
    pre = dict(preloaded or {})
    for collection in (USERS, GOOGLE_ACCOUNTS, SYNC_SETTINGS):
        if collection not in pre:
            pre[collection] = store.get(collection, user_id)
    return pre


def run_section(
    section: str,
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    options: Options,
    progress: Progress = no_progress,
    preloaded: Preloaded | None = None,
) -> Report:
    """One run of ``section`` (contacts or activities) for the user."""
    pre = _preload(store, user_id, preloaded)
    # a user of a delegated domain with no connection of their own: the administrator's
    pre[GOOGLE_ACCOUNTS] = delegation.ensure(config, store, user_id, pre[USERS],
                                             pre[GOOGLE_ACCOUNTS], read=False)  # fmt: skip
    creds = google_credentials(config, store, user_id, pre)
    shared: dict[str, Any] = {"new_id": lambda: uuid.uuid4().hex, "progress": progress,
                              "preloaded": pre}  # fmt: skip
    if section == "contacts":
        people = bootstrap.people_port(config, creds)
        engine: Any = ContactsEngine(store, people, bootstrap.clock(), group_name=config.group_name,
                                     **shared)  # fmt: skip
    else:
        engine = ActivitiesEngine(store, bootstrap.calendar_port(config, creds), bootstrap.clock(),
                                  **shared)  # fmt: skip
    return engine.run(user_id, options)


run_contacts = partial(run_section, "contacts")
run_activities = partial(run_section, "activities")


def run_sections(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    section: str,
    options: Options,
    progress: Progress = no_progress,
    preloaded: Preloaded | None = None,
) -> list[Report]:
    """``section`` is contacts, activities or all."""
    names = list(SECTIONS) if section == "all" else [section]
    return [run_section(name, config, store, user_id, options, progress, preloaded)
            for name in names]  # fmt: skip


def changed(config: bootstrap.Config, store: DocumentStore, job: Job,
            crm: tuple[str, list[tuple[str, dict]]] | None = None) -> tuple[str, dict]:  # fmt: skip
    """A scheduled job's look for changes, before any lease (``core.probe``): the
    CRM records past the cursor that concern the user, then, only if none does, one
    Google call past the sync token, with the connection the pair's state carries (its
    token's ciphertext, kept there while the pair is scheduled): one read, the CRM
    query, when nothing changed.

    Settings are not read: they change through the settings API, which reschedules
    the pair and makes it due at once (a full run), and the tick's daily sweep catches
    settings the CRM wrote itself. Only the default "sync from" date (today, which
    moves) is checked here, from what the last run stored.

    ``crm``: (read time, records) from ``crm_page``, a query the looks of one message
    share, in place of this look's own.

    Returns ("run", read) when the run must go on, with the documents it read for the
    run to use; ("unchanged", read) when nothing changed (nothing is written, except
    the CRM cursor moved past records of other users). Any doubt (no connection, a
    Google error, an expired token) is "run": the full run then decides and records
    what happened."""
    probe, user_id, section = job.probe, job.user_id, job.section
    assert probe is not None
    now = bootstrap.clock().now()
    read: dict[str, Any] = {}
    ciphertext = _probe_ciphertext(store, job, read)
    if ciphertext is None or _window_moved(job, now):
        return "run", read
    read_at, docs = _crm_docs(store, job, crm, now)
    if _crm_changed(store, job, docs) or _google_changed(config, job, ciphertext):
        return "run", read
    if docs:  # only other users' records: the cursor moves past them, no run
        newest = max((d.get("modifiedAt") or "" for _, d in docs), default="")
        _advance_crm(store, state_id(user_id, section), probe.crm_cursor, newest, read_at)
    return "unchanged", read


def _probe_ciphertext(store: DocumentStore, job: Job, read: dict[str, Any]) -> str | None:
    """The connection's token ciphertext (a scheduled pair's state carries it), else the
    account's, read into ``read``; None when the account is not connected."""
    assert job.probe is not None
    if job.probe.token_ciphertext:
        return job.probe.token_ciphertext
    account = read[GOOGLE_ACCOUNTS] = store.get(GOOGLE_ACCOUNTS, job.user_id)
    if account is None or account.get("status") != "connected":
        return None
    if delegation.is_delegated(account):  # no token: the key names the delegated account
        return DELEGATED + (account.get("accountEmail") or "")
    return account.get("refreshTokenCiphertext")


def _window_moved(job: Job, now: Any) -> bool:
    """Activities whose default "sync from" date (today) moved since the last run."""
    probe = job.probe
    assert probe is not None
    moved = probe_rules.default_date_moved(
        probe.sync_from_setting, probe.sync_from, probe.time_zone, now
    )
    return job.section == "activities" and bool(moved)


def _crm_docs(store: DocumentStore, job: Job, crm: Any,
              now: Any) -> tuple[str, list[tuple[str, dict]]]:  # fmt: skip
    """(read time, the CRM records past the pair's cursor): from the message's shared
    query (``crm_page``) when there is one, else from this look's own."""
    assert job.probe is not None
    window = crm_window(job.probe.crm_cursor, job.probe.crm_read_at)
    if crm is not None:
        docs = [(i, d) for i, d in crm[1] if in_window(window, d)][: probe_rules.PAGE]
        return crm[0], docs
    collection = CONTACTS if job.section == "contacts" else ACTIVITIES
    found = store.query(collection, window, order_by="modifiedAt", limit=probe_rules.PAGE)
    return stamp(now), [(d.id, d.data) for d in found]


def _crm_changed(store: DocumentStore, job: Job, docs: list[tuple[str, dict]]) -> bool:
    """Whether a CRM record past the cursor concerns the user (their links decide
    for the records that do not say so themselves)."""
    user_id, section, tag = job.user_id, job.section, job.probe.tag_id  # type: ignore[union-attr]
    verdict = probe_rules.crm_verdict(section, user_id, tag, docs, None)
    if verdict == "unknown":
        others = [i for i, d in docs if not probe_rules.relevant(section, user_id, tag, d)]
        links = store.get_many(LINKS, [link_id(user_id, section, i) for i in others])
        verdict = probe_rules.crm_verdict(section, user_id, tag, docs, set(links))
    return verdict == "changed"


def _google_changed(config: bootstrap.Config, job: Job, ciphertext: str) -> bool:
    """One Google call past the sync token; any trouble counts as a change (the full run
    meets the same trouble and records it)."""
    assert job.probe is not None
    try:
        creds = _credentials_for(config, job.user_id, ciphertext)
        api = "people" if job.section == "contacts" else "calendar"
        with bootstrap.pooled_port(config, api, creds) as port:
            return bool(port.has_changes(job.probe.google_cursor))
    except GoogleError:
        return True


SHARED_PAGE = 200  # CRM records one query reads for all the looks of a message


def crm_page(store: DocumentStore, jobs: Sequence[Job], section: str,
             now: Any) -> tuple[str, list[tuple[str, dict]]] | None:  # fmt: skip
    """One CRM query for the looks of ``section`` in a message: every record past the
    earliest of their windows, when they are few (else None: each look asks itself).
    A quiet CRM costs a message one read per section instead of one per look."""
    windows = [crm_window(j.probe.crm_cursor, j.probe.crm_read_at)
               for j in jobs if j.probe is not None and j.section == section]  # fmt: skip
    if len(windows) < 2 or any(len(w) != 1 for w in windows):
        return None
    # the loosest window: the lowest bound, and ">=" before ">" at the same bound
    lowest = min((w[0] for w in windows), key=lambda f: (f.value, f.op != ">="))
    read_at = stamp(now)
    collection = CONTACTS if section == "contacts" else ACTIVITIES
    where = [Filter("modifiedAt", lowest.op, lowest.value)]
    found = store.query(collection, where, order_by="modifiedAt", limit=SHARED_PAGE)
    if len(found) >= SHARED_PAGE:
        return None
    return read_at, [(d.id, d.data) for d in found]


def in_window(window: Sequence[Filter], doc: Mapping[str, Any]) -> bool:
    """``doc`` passes the window's filter, compared as the store compares (strings)."""
    value = doc.get("modifiedAt")
    if not isinstance(value, str):
        return False
    for flt in window:
        if flt.op == ">" and not value > flt.value:
            return False
        if flt.op == ">=" and not value >= flt.value:
            return False
    return True


def _advance_crm(store: DocumentStore, sid: str, cursor: str, newest: str, read_at: str) -> None:
    """Move the CRM cursor as a run would, unless a run holds the lease or has moved it."""

    def advance(tx: Transaction) -> None:
        state = tx.get(SYNC_STATE, sid) or {}
        lease = state.get("lease") or {}
        if lease.get("holder") or state.get("crmCursor") != cursor:
            return
        newer = newest if newest and parse_timestamp(newest) > parse_timestamp(cursor) else cursor
        tx.put(SYNC_STATE, sid, {**state, "crmCursor": newer, "crmReadAt": read_at})

    store.transaction(advance)
