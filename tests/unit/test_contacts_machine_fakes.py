"""The contacts state machine (``tests/contacts_machine.py``: the rules and invariants of
``tests/integration/test_contacts_machine.py``) over the real ``ContactsEngine``,
``tests.fakes.FakePeople`` and a SQLite store in tmp: no server, no HTTP, so it runs
many more examples in a fraction of the time (``make test-thorough``: ten times more).
The fake is held to the adapter's behaviour by ``tests/contract/test_people_port.py``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from adapters.google_auth import TokenInfo
from adapters.stores import open_store
from core import contact_mapping as cm
from core import email_index
from core.contacts_engine import ContactsEngine
from core.contacts_undo import ContactsUndo
from core.runs import Options, Report
from functions import bootstrap, seed
from functions.accounts import save_connection
from tests.contacts_machine import ContactsMachine
from tests.crm_side import CrmSide
from tests.fakes import MY_CONTACTS, FakeClock, FakePeople

ALICE, TAG = seed.ALICE, seed.ALICE_TAG


class FakeWorld(CrmSide):
    """``tests/integration/contacts_world.World`` with FakePeople for Google: the same
    CRM (the sample seed in SQLite), the same engine entry point, one FakeClock."""

    def __init__(self, tmp: Path) -> None:
        self.clock = FakeClock()
        self.google = FakePeople(self.clock)
        config = bootstrap.Config(store_url=f"sqlite:///{tmp / 'crm.db'}", google_endpoint=None,
                                  state_dir=tmp / ".crmsync")  # fmt: skip
        self.store = open_store(config.store_url)
        seed.seed(self.store, self.clock.now())
        save_connection(config, self.store, ALICE, "fake-refresh-token",
                        TokenInfo("alice@example.com", ()))  # fmt: skip
        email_index.catch_up(self.store, self.clock.now())  # as the dispatch tick does

    def run(self, **options: Any) -> Report:
        engine = ContactsEngine(self.store, self.google, self.clock,
                                new_id=lambda: uuid.uuid4().hex)  # fmt: skip
        return engine.run(ALICE, Options(**options))

    def undo(self, run_id: str) -> Report:
        engine = ContactsUndo(self.store, self.google, self.clock,
                              new_id=lambda: uuid.uuid4().hex, undo_of=run_id)  # fmt: skip
        return engine.run(ALICE, Options(trigger="undo"))

    # --- the Google side: what a user sees and does -------------------------------------

    def persons(self) -> dict[str, dict[str, Any]]:
        people = self.google
        return {n: people.render(p) for n, p in people.persons.items() if not p.deleted}

    def edit_person(self, name: str, **fields: Any) -> None:
        merged = {**cm.from_person(self.persons()[name]), **fields}
        self.google.edit(name, **cm.to_person(merged))

    def create_person(self, given: str, email: str, in_group: bool = False) -> str:
        body = cm.to_person({"givenName": given, "emails": [{"value": email}]})
        groups = [MY_CONTACTS, self.group()] if in_group else [MY_CONTACTS]
        return self.google.add_person(body, groups)

    def close(self) -> None:
        self.store.close()


class FakeContactsMachine(ContactsMachine):
    tmp_factory: Any

    def new_world(self) -> FakeWorld:
        return FakeWorld(self.tmp_factory.mktemp("machine"))

    def clock(self) -> float:
        return self.world.clock.moment.timestamp()

    def delete_person(self, name: str) -> None:
        self.world.google.delete(name)

    def move_person(self, name: str, into: bool) -> None:
        change = {"add": [name]} if into else {"remove": [name]}
        self.world.google.modify_members(self.world.group(), **change)

    def person_updated(self, name: str) -> str | None:
        person = self.world.google.get([name]).get(name) or {}
        return ((person.get("metadata") or {}).get("sources") or [{}])[0].get("updateTime")


def test_contacts_state_machine_over_the_fakes(tmp_path_factory):
    class Machine(FakeContactsMachine):
        tmp_factory = tmp_path_factory

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=settings().max_examples,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print(f"contacts state machine over the fakes: {Machine.examples} examples")
    assert Machine.examples >= settings().max_examples
