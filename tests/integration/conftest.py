"""Fixtures for driving the sandbox through the real google-api-python-client.

``sandbox`` is one server for the whole session, reset before each test. ``account``
makes a Google account in it and returns an ``Account`` whose ``people`` and
``calendar`` are real discovery-built services with google-auth credentials.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest

from adapters import google_api
from sandbox import SandboxServer, realism


class SandboxHandle:
    """A running sandbox plus helpers for its control API."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.state = server.sandbox  # in-process access, for assertions only

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "/_sandbox/stats")

    def fault(self, method: str, status: int, count: int = 1, **extra: Any) -> None:
        self.control(
            "POST",
            "/_sandbox/faults",
            {"method": method, "status": status, "count": count, **extra},
        )

    def advance(self, seconds: float) -> None:
        self.control("POST", "/_sandbox/clock", {"advanceSeconds": seconds})

    def behaviours(self, **changes: Any) -> dict[str, Any]:
        """Set realism switches (``sandbox.realism``), by snake_case or camelCase name;
        with none, just read them. Returns the current values."""
        if not changes:
            return self.control("GET", "/_sandbox/behaviours")
        body = {realism.camel(key): value for key, value in changes.items()}
        return self.control("POST", "/_sandbox/behaviours", body)

    def profile(self, name: str) -> dict[str, Any]:
        """Switch to the named realism profile ("default", "realistic")."""
        return self.control("POST", "/_sandbox/behaviours", {"profile": name})

    def settle(self) -> None:
        """Let Google catch up: advance the clock past the People propagation delay."""
        delay = self.behaviours()["peoplePropagationSeconds"]
        if delay:
            self.advance(delay + 1)


@dataclass
class Account:
    email: str
    access_token: str
    refresh_token: str
    people: Any
    calendar: Any
    credentials: Any


@pytest.fixture(scope="session")
def sandbox_server():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server) -> SandboxHandle:
    handle = SandboxHandle(sandbox_server)
    handle.control("POST", "/_sandbox/reset")
    return handle


@pytest.fixture
def make_account(sandbox):
    def make(email: str, time_zone: str | None = None) -> Account:
        body = {"email": email, **({"timeZone": time_zone} if time_zone else {})}
        info = sandbox.control("POST", "/_sandbox/accounts", body)
        creds = google_api.credentials(info["refreshToken"], sandbox.url)
        return Account(
            email=info["email"],
            access_token=info["accessToken"],
            refresh_token=info["refreshToken"],
            people=google_api.people_service(creds, sandbox.url),
            calendar=google_api.calendar_service(creds, sandbox.url),
            credentials=creds,
        )

    return make


@pytest.fixture
def account(make_account) -> Account:
    return make_account("alice@example.com")


@pytest.fixture
def cloud_env(tmp_path, sandbox, account, monkeypatch):
    """The functions' environment: a SQLite store with the sample CRM, the sandbox as
    Google, Alice connected, the working folder in tmp; yields the store."""
    import os
    from datetime import UTC, datetime

    from adapters.stores import open_store
    from functions import bootstrap, seed
    from functions.accounts import connect

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    for key in list(os.environ):
        if key.startswith("CRMSYNC_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRMSYNC_STORE", url)
    monkeypatch.setenv("CRMSYNC_GOOGLE_ENDPOINT", sandbox.url)
    monkeypatch.chdir(tmp_path)
    store = open_store(url)
    seed.seed(store, datetime.now(UTC))
    connect(bootstrap.Config.from_env(), seed.ALICE, account.refresh_token)
    yield store
    store.close()


@pytest.fixture
def quick_retries(monkeypatch):
    """Google's passing trouble is retried with backoff (``adapters.google_calls``):
    the same attempts here, without the waiting."""
    from adapters import google_calls
    from adapters.calendar_api import CalendarApi
    from adapters.people_api import PeopleApi

    fast = google_calls.Retry(sleep=lambda seconds: None)
    monkeypatch.setattr(google_calls.execute, "__defaults__", (fast,))
    monkeypatch.setattr(PeopleApi.__init__, "__defaults__", (fast, 1000))
    monkeypatch.setattr(CalendarApi.__init__, "__defaults__", (fast,))
