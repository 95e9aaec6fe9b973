"""The contacts state machine (``tests/contacts_machine.py``: its rules and invariants)
over the real client, the sandbox and SQLite, in the sandbox's default and realistic
profiles. ``tests/unit/test_contacts_machine_fakes.py`` runs the same machine over the
fakes, in a fraction of the time.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.contacts_machine import ContactsMachine
from tests.integration.conftest import SandboxHandle
from tests.integration.contacts_world import World


class GoogleAccount:
    """Just what World needs from tests/integration/conftest.py's Account."""

    def __init__(self, sandbox: SandboxHandle, email: str) -> None:
        from adapters import google_api

        info = sandbox.control("POST", "/_sandbox/accounts", {"email": email})
        self.refresh_token = info["refreshToken"]
        creds = google_api.credentials(self.refresh_token, sandbox.url)
        self.people = google_api.people_service(creds, sandbox.url)


class SandboxContactsMachine(ContactsMachine):
    sandbox: SandboxHandle
    tmp_factory: Any
    profile = "default"  # the sandbox's realism profile (sandbox.realism)

    def new_world(self) -> World:
        self.sandbox.control("POST", "/_sandbox/reset")
        self.sandbox.profile(self.profile)
        tmp = self.tmp_factory.mktemp("machine")
        return World(tmp, self.sandbox, GoogleAccount(self.sandbox, "alice@example.com"))

    def clock(self) -> float:
        """Sandbox time, the world's one clock (see contacts_world.SandboxTime)."""
        return self.sandbox.state.clock.timestamp()

    def settle(self) -> None:
        self.sandbox.settle()

    def delete_person(self, name: str) -> None:
        self.world.people.deleteContact(resourceName=name).execute()

    def move_person(self, name: str, into: bool) -> None:
        change = "resourceNamesToAdd" if into else "resourceNamesToRemove"
        self.world.google.people.contactGroups().members().modify(
            resourceName=self.world.group(), body={change: [name]}
        ).execute()

    def person_updated(self, name: str) -> str | None:
        person = self.world.people.get(resourceName=name, personFields="metadata").execute()
        return ((person.get("metadata") or {}).get("sources") or [{}])[0].get("updateTime")


@pytest.mark.parametrize("profile", ["default", "realistic"])
def test_contacts_state_machine(sandbox_server, tmp_path_factory, profile):
    class Machine(SandboxContactsMachine):
        sandbox = SandboxHandle(sandbox_server)
        tmp_factory = tmp_path_factory

    Machine.profile = profile

    wanted = max(50, settings().max_examples)
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=wanted,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print(f"contacts state machine ({profile}): {Machine.examples} examples")
    assert Machine.examples >= 50
