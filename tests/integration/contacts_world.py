"""A CRM (SQLite store) and a Google account (the sandbox) wired together for sync tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters import google_api
from adapters.google_calls import Retry
from adapters.people_api import PeopleApi
from adapters.stores import open_store
from core import contact_mapping as cm
from core import email_index
from core.contacts_engine import ContactsEngine
from core.model import stamp
from core.runs import Options, Report
from functions import bootstrap, seed
from functions.accounts import connect
from functions.sync import google_credentials, run_contacts
from tests.crm_side import CrmSide

ALICE = seed.ALICE
TAG = seed.ALICE_TAG


class SandboxTime:
    """The one clock of a test world: the sandbox's (real time plus the offset tests
    advance), so that CRM ``modifiedAt``, the engine's runs and Google's ``updateTime``
    stay comparable when a test lets Google catch up (``SandboxHandle.settle``)."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    def now(self) -> datetime:
        return self.sandbox.state.clock.now()


class World(CrmSide):
    def __init__(self, tmp: Path, sandbox: Any, google: Any) -> None:
        self.sandbox = sandbox
        self.clock = SandboxTime(sandbox)
        self.google = google  # tests/integration/conftest.py Account (real People service)
        self.config = bootstrap.Config(
            store_url=f"sqlite:///{tmp / 'crm.db'}",
            google_endpoint=sandbox.url,
            state_dir=tmp / ".crmsync",
        )
        self.store = open_store(self.config.store_url)
        seed.seed(self.store, self.clock.now())
        connect(self.config, ALICE, google.refresh_token)
        email_index.catch_up(self.store, self.clock.now())  # as the dispatch tick does

    def sync(self, **options: Any) -> Report:
        return run_contacts(self.config, self.store, ALICE, Options(**options))

    def people_port(self, retry: Retry | None = None) -> PeopleApi:
        creds = google_credentials(self.config, self.store, ALICE)
        service = google_api.people_service(creds, self.sandbox.url)
        # waits (Retry-After of a quota) pass in sandbox time, not the test's
        wait = Retry(attempts=3, base_seconds=0.01, sleep=self.sandbox.advance)
        return PeopleApi(service, retry or wait)

    def engine(self, people: Any = None, clock: Any = None, store: Any = None) -> ContactsEngine:
        return ContactsEngine(
            store or self.store,
            people or self.people_port(),
            clock or self.clock,
            new_id=lambda: uuid.uuid4().hex,
        )

    def run(self, **options: Any) -> Report:
        """One run through a directly built engine (fast retries)."""
        return self.engine().run(ALICE, Options(**options))

    def undo(self, run_id: str, **options: Any) -> Report:
        """Run ``run_id`` taken back (``functions.undo``, as the CLI does)."""
        from functions.undo import undo

        return undo(self.config, self.store, run_id, Options(**options))

    # --- the Google side ----------------------------------------------------------------

    @property
    def people(self) -> Any:
        return self.google.people.people()

    def persons(self) -> dict[str, dict[str, Any]]:
        out, page = {}, None
        while True:
            answer = self.people.connections().list(
                resourceName="people/me", personFields=cm.PERSON_FIELDS, pageSize=1000,
                pageToken=page,
            ).execute()  # fmt: skip
            out |= {p["resourceName"]: p for p in answer.get("connections", [])}
            page = answer.get("nextPageToken")
            if not page:
                return out

    def members(self) -> set[str]:
        return {n for n, p in self.persons().items() if self.group() in cm.group_names(p)}

    def person_of(self, crm_id: str) -> dict[str, Any]:
        return self.people.get(resourceName=self.links()[crm_id],
                               personFields=cm.PERSON_FIELDS).execute()  # fmt: skip

    def edit_person(self, name: str, **fields: Any) -> dict[str, Any]:
        person = self.people.get(resourceName=name, personFields=cm.PERSON_FIELDS).execute()
        merged = {**cm.from_person(person), **fields}
        body = {**cm.to_person(merged), "etag": person["etag"]}
        return self.people.updateContact(resourceName=name, updatePersonFields=cm.UPDATE_FIELDS,
                                         body=body).execute()  # fmt: skip

    def create_person(self, given: str, email: str, in_group: bool = False) -> str:
        body = cm.to_person({"givenName": given, "emails": [{"value": email}]})
        person = self.people.createContact(body=body).execute()
        if in_group:
            self.move_into_group(person["resourceName"])
        return person["resourceName"]

    def move_into_group(self, name: str) -> None:
        self.google.people.contactGroups().members().modify(
            resourceName=self.group(), body={"resourceNamesToAdd": [name]}
        ).execute()

    def calls(self) -> dict[str, Any]:
        return self.sandbox.stats()

    def close(self) -> None:
        self.store.close()


def now() -> str:
    return stamp(datetime.now(UTC))
