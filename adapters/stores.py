"""Opening the store that ``CRMSYNC_STORE`` names: a SQLite file or Firestore.

The factory sits above both adapters (each imports ``adapters.store_base``, the code
they share), so that no adapter module imports another.
"""

from __future__ import annotations

import os

from adapters.store_sqlite import SqliteStore
from core.errors import ConfigError
from core.ports import DocumentStore

SQLITE_PREFIX = "sqlite:///"


def open_store(url: str) -> DocumentStore:
    """The store named by ``url`` (the ``CRMSYNC_STORE`` setting).

    * ``sqlite:///PATH``: a SQLite file (relative ``PATH`` is against the working
      directory; ``sqlite:////abs/path`` is absolute); parent directories are created.
    * ``firestore``: Firestore in project ``GOOGLE_CLOUD_PROJECT``; the client honours
      ``FIRESTORE_EMULATOR_HOST``.
    """
    if not isinstance(url, str):
        raise ConfigError(f"CRMSYNC_STORE must be a string, got {url!r}")
    if url.startswith(SQLITE_PREFIX):
        return _open_sqlite(url[len(SQLITE_PREFIX) :])
    if url == "firestore":
        return _open_firestore()
    raise ConfigError(f"unsupported CRMSYNC_STORE {url!r}: use 'sqlite:///PATH' or 'firestore'")


def _open_sqlite(path: str) -> DocumentStore:
    if not path or path == ":memory:" or path.startswith("file:"):
        raise ConfigError(
            f"CRMSYNC_STORE sqlite:///{path}: give a file path, e.g. sqlite:///.crmsync/crmsync.db"
        )
    return SqliteStore(path)


def _open_firestore() -> DocumentStore:
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "").strip()
    if not project:
        raise ConfigError("CRMSYNC_STORE=firestore needs GOOGLE_CLOUD_PROJECT to name the project")
    from adapters.store_firestore import FirestoreStore  # the cloud client only when used

    return FirestoreStore(project)
