"""Running one user's sync: builds the Google port from the stored connection and runs
the engine. Shared by the CLI and the Cloud Functions."""

from __future__ import annotations

import uuid
from typing import Any

from adapters import google_api
from adapters.calendar_api import CalendarApi
from adapters.people_api import PeopleApi
from core.activities_engine import ActivitiesEngine
from core.contacts_engine import ContactsEngine
from core.errors import NotConnected, UnknownUser
from core.model import GOOGLE_ACCOUNTS, USERS, GoogleAccount, load
from core.ports import DocumentStore, Progress, no_progress
from core.runs import Options, Report
from functions import bootstrap


def google_credentials(config: bootstrap.Config, store: DocumentStore, user_id: str) -> Any:
    if store.get(USERS, user_id) is None:
        raise UnknownUser(user_id)
    raw = store.get(GOOGLE_ACCOUNTS, user_id)
    if raw is None:
        raise NotConnected(f"user {user_id} has not connected a Google account")
    account = load(GoogleAccount, GOOGLE_ACCOUNTS, user_id, raw)
    if account.status == "reauth_required":
        raise NotConnected(
            f"user {user_id}'s Google connection was revoked or expired; reconnect it"
        )
    token = bootstrap.cipher(config).decrypt(account.refreshTokenCiphertext)
    return google_api.credentials(
        token, config.google_endpoint, config.oauth_client_id, config.oauth_client_secret
    )


def run_contacts(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    options: Options,
    progress: Progress = no_progress,
) -> Report:
    creds = google_credentials(config, store, user_id)
    people = PeopleApi(google_api.people_service(creds, config.google_endpoint))
    engine = ContactsEngine(
        store,
        people,
        bootstrap.clock(),
        new_id=lambda: uuid.uuid4().hex,
        group_name=config.group_name,
        progress=progress,
    )
    return engine.run(user_id, options)


def run_activities(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    options: Options,
    progress: Progress = no_progress,
) -> Report:
    creds = google_credentials(config, store, user_id)
    service = google_api.calendar_service(creds, config.google_endpoint)
    engine = ActivitiesEngine(
        store,
        CalendarApi(service, config.google_endpoint),
        bootstrap.clock(),
        new_id=lambda: uuid.uuid4().hex,
        progress=progress,
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
) -> list[Report]:
    """``section`` is contacts, activities or all."""
    names = list(RUNNERS) if section == "all" else [section]
    return [RUNNERS[name](config, store, user_id, options, progress) for name in names]
