"""Running one user's sync: builds the Google port from the stored connection and runs
the engine. Shared by the CLI and the Cloud Functions.

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
from collections.abc import Mapping
from typing import Any

from adapters import google_api
from adapters.calendar_api import CalendarApi
from adapters.people_api import PeopleApi
from core.activities_engine import ActivitiesEngine
from core.contacts_engine import ContactsEngine, crm_window
from core.errors import NotConnected, UnknownUser
from core.model import ACTIVITIES, CONTACTS, GOOGLE_ACCOUNTS, USERS, GoogleAccount, load
from core.ports import DocumentStore, Progress, no_progress
from core.runs import Options, Report
from core.schedule import Job
from functions import bootstrap

CACHE_SIZE = 256
_CACHE: OrderedDict[tuple[str, ...], Any] = OrderedDict()
_LOCK = threading.Lock()
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
    return _credentials(config, user_id, raw)


def _credentials(config: bootstrap.Config, user_id: str, raw: dict[str, Any] | None) -> Any:
    if raw is None:
        raise NotConnected(f"user {user_id} has not connected a Google account")
    account = load(GoogleAccount, GOOGLE_ACCOUNTS, user_id, raw)
    if account.status == "reauth_required":
        raise NotConnected(
            f"user {user_id}'s Google connection was revoked or expired; reconnect it"
        )
    key = (user_id, account.refreshTokenCiphertext, config.google_endpoint or "",
           config.oauth_client_id, str(config.token_key))  # fmt: skip
    with _LOCK:
        creds = _CACHE.get(key)
        if creds is not None:
            _CACHE.move_to_end(key)
            return creds
    token = bootstrap.cipher(config).decrypt(account.refreshTokenCiphertext)
    creds = google_api.credentials(
        token, config.google_endpoint, config.oauth_client_id, config.oauth_client_secret
    )
    with _LOCK:
        _CACHE[key] = creds
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return creds


def forget_credentials() -> None:
    """Empty the cache (tests that count decrypts and refreshes start cold)."""
    with _LOCK:
        _CACHE.clear()


def _preload(store: DocumentStore, user_id: str, preloaded: Preloaded | None) -> dict:
    pre = dict(preloaded or {})
    for collection in (USERS, GOOGLE_ACCOUNTS):
        if collection not in pre:
            pre[collection] = store.get(collection, user_id)
    return pre


def people_port(config: bootstrap.Config, creds: Any) -> PeopleApi:
    return PeopleApi(google_api.people_service(creds, config.google_endpoint))


def calendar_port(config: bootstrap.Config, creds: Any) -> CalendarApi:
    service = google_api.calendar_service(creds, config.google_endpoint)
    return CalendarApi(service, config.google_endpoint)


def run_contacts(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    options: Options,
    progress: Progress = no_progress,
    preloaded: Preloaded | None = None,
) -> Report:
    pre = _preload(store, user_id, preloaded)
    creds = google_credentials(config, store, user_id, pre)
    engine = ContactsEngine(
        store,
        people_port(config, creds),
        bootstrap.clock(),
        new_id=lambda: uuid.uuid4().hex,
        group_name=config.group_name,
        progress=progress,
        preloaded=pre,
    )
    return engine.run(user_id, options)


def run_activities(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    options: Options,
    progress: Progress = no_progress,
    preloaded: Preloaded | None = None,
) -> Report:
    pre = _preload(store, user_id, preloaded)
    creds = google_credentials(config, store, user_id, pre)
    engine = ActivitiesEngine(
        store,
        calendar_port(config, creds),
        bootstrap.clock(),
        new_id=lambda: uuid.uuid4().hex,
        progress=progress,
        preloaded=pre,
    )
    return engine.run(user_id, options)


RUNNERS = {"contacts": run_contacts, "activities": run_activities}


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
    names = list(RUNNERS) if section == "all" else [section]
    return [RUNNERS[name](config, store, user_id, options, progress, preloaded) for name in names]


def changed(config: bootstrap.Config, store: DocumentStore, job: Job) -> dict | None:
    """A scheduled job's look for changes, before any lease: one CRM query past the CRM
    cursor, then (only if the CRM has none) one Google call past the sync token.
    Returns None when neither side changed (the run is then skipped and writes
    nothing), else what it read, for the run to use. Any doubt (no connection, an
    error, an expired token) answers "changed": the full run then decides and records
    what happened."""
    probe = job.probe
    assert probe is not None
    account = store.get(GOOGLE_ACCOUNTS, job.user_id)
    pre: dict[str, Any] = {GOOGLE_ACCOUNTS: account}
    if account is None or account.get("status") != "connected":
        return pre
    collection = CONTACTS if job.section == "contacts" else ACTIVITIES
    window = crm_window(probe.crm_cursor, probe.crm_read_at)
    if store.query(collection, window, order_by="modifiedAt", limit=1):
        return pre
    try:
        creds = _credentials(config, job.user_id, account)
        if job.section == "contacts":
            moved = people_port(config, creds).has_changes(probe.google_cursor)
        else:
            moved = calendar_port(config, creds).has_changes(probe.google_cursor)
    except Exception:
        return pre
    return pre if moved else None
