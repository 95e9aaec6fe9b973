"""Fixtures of the contract suites (the store, and the Google ports).

``store`` is each adapter in turn, opened through ``open_store`` as the functions do:
SQLite in a fresh file under ``tmp_path``; Firestore on the emulator that one session
fixture starts, with a project of its own for every test (deleted afterwards). Without
the emulator the Firestore half is skipped, or fails under ``CI=true``.

``people`` and ``calendar`` are each Google port in turn (``google_targets``): the fake,
the real adapter over the sandbox (default and realistic profiles), and live Google
when its credentials are given (``tests/integration/test_live_google.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters import google_api
from adapters.store_sqlite import SqliteStore
from adapters.stores import open_store
from core.ports import DocumentStore
from tests import emulators
from tests.contract import google_targets as gt


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[emulators.Emulator]:
    yield from emulators.session("firestore")


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'dir' / 'crmsync.db'}"


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DocumentStore]:
    if request.param == "sqlite":
        sqlite = open_store(sqlite_url(tmp_path))
        yield sqlite
        sqlite.close()
        return
    emulator: emulators.Emulator = request.getfixturevalue("firestore_emulator")
    project = f"contract-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
    firestore = open_store("firestore")
    yield firestore
    firestore.close()
    emulators.clear_firestore(emulator, project)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = open_store(sqlite_url(tmp_path))
    assert isinstance(store, SqliteStore)
    yield store
    store.close()


# --- Google ports: the fake, the sandbox (two profiles), opt-in live Google -------------


@pytest.fixture(scope="session")
def google_sandbox() -> Iterator[Any]:
    from sandbox import SandboxServer
    from tests.integration.conftest import SandboxHandle

    with SandboxServer() as server:
        yield SandboxHandle(server)


def _google_target(request: pytest.FixtureRequest, api: str) -> Iterator[Any]:
    kind = request.param
    if kind == "fake":
        target = gt.FakePeopleTarget() if api == "people" else gt.FakeCalendarTarget()
    elif kind == "live":
        creds = gt.live_credentials()
        if api == "people":
            target = gt.LivePeopleTarget(google_api.people_service(creds))
        else:
            target = gt.LiveCalendarTarget(google_api.calendar_service(creds))
    else:
        people, calendar = gt.sandbox_targets(request.getfixturevalue("google_sandbox"), kind)
        target = people if api == "people" else calendar
    yield target
    target.close()


@pytest.fixture(params=gt.KINDS)
def people(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A ``PeoplePort`` implementation with its test hands (``google_targets``)."""
    yield from _google_target(request, "people")


@pytest.fixture(params=gt.KINDS)
def calendar(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A ``CalendarPort`` implementation with its test hands (``google_targets``)."""
    yield from _google_target(request, "calendar")
