"""Fixtures of the store contract suite.

``store`` is each adapter in turn, opened through ``open_store`` as the functions do:
SQLite in a fresh file under ``tmp_path``; Firestore on the emulator that one session
fixture starts, with a project of its own for every test (deleted afterwards). Without
the emulator the Firestore half is skipped, or fails under ``CI=true``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.store_sqlite import SqliteStore
from adapters.stores import open_store
from core.ports import DocumentStore
from tests import emulators


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
