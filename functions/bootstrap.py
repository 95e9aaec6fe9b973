"""The composition root: reads configuration from the environment and builds adapters.

Every entry point (CLI, Cloud Functions) gets its store, token cipher, clock and
Google endpoint from here, so swapping SQLite for Firestore or the sandbox for real
Google is a configuration change only (DESIGN.md, "Configuration").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.clock import SystemClock
from adapters.stores import open_store
from adapters.tokens import KMS_KEY, EnvelopeCipher, FernetCipher, KmsCipher, cipher_for
from core.ports import Clock, DocumentStore

DEFAULT_STORE = "sqlite:///.crmsync/crmsync.db"
STATE_DIR = Path(".crmsync")


@dataclass(frozen=True)
class Config:
    store_url: str = DEFAULT_STORE
    google_endpoint: str | None = None
    queue: str = "inline"
    webhook_secret: str | None = None
    token_key: str | None = None
    group_name: str = "CRM"
    oauth_client_id: str = "crmsync-local"
    oauth_client_secret: str = "crmsync-local"
    # the deployed functions' public addresses (infra/main.tf sets them); None locally,
    # where they are derived from the request (functions.oauth.links)
    push_url: str | None = None
    oauth_redirect_uri: str | None = None
    oauth_start_url: str | None = None
    page_url: str | None = None
    state_dir: Path = STATE_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        return cls(
            store_url=env.get("CRMSYNC_STORE") or DEFAULT_STORE,
            google_endpoint=(env.get("CRMSYNC_GOOGLE_ENDPOINT") or "").rstrip("/") or None,
            queue=env.get("CRMSYNC_QUEUE") or "inline",
            webhook_secret=env.get("CRMSYNC_WEBHOOK_SECRET") or None,
            token_key=env.get("CRMSYNC_TOKEN_KEY") or None,
            group_name=env.get("CRMSYNC_GROUP_NAME") or "CRM",
            oauth_client_id=env.get("CRMSYNC_OAUTH_CLIENT_ID") or "crmsync-local",
            oauth_client_secret=env.get("CRMSYNC_OAUTH_CLIENT_SECRET") or "crmsync-local",
            push_url=env.get("CRMSYNC_PUSH_URL") or None,
            oauth_redirect_uri=env.get("CRMSYNC_OAUTH_REDIRECT_URI") or None,
            oauth_start_url=env.get("CRMSYNC_OAUTH_START_URL") or None,
            page_url=env.get("CRMSYNC_PAGE_URL") or None,
        )


def store(config: Config) -> DocumentStore:
    return open_store(config.store_url)


_SHARED: dict[str, DocumentStore] = {}


def shared_store(config: Config) -> DocumentStore:
    """One store per process for the Cloud Functions (a lazy global, reused across calls)."""
    key = "|".join((config.store_url, os.environ.get("GOOGLE_CLOUD_PROJECT", ""),
                    os.environ.get("FIRESTORE_EMULATOR_HOST", "")))  # fmt: skip
    if key not in _SHARED:
        _SHARED[key] = store(config)
    return _SHARED[key]


_CIPHERS: dict[str, EnvelopeCipher] = {}


def cipher(config: Config) -> FernetCipher | KmsCipher | EnvelopeCipher:
    """A Fernet key locally; for a KMS key, one envelope cipher per process and store,
    so the data keys it unwrapped are kept across runs (``adapters.tokens``)."""
    if not (config.token_key and KMS_KEY.match(config.token_key)):
        return cipher_for(config.token_key, config.state_dir)
    key = "|".join((config.token_key, config.store_url, os.environ.get("GOOGLE_CLOUD_PROJECT", "")))
    if key not in _CIPHERS:
        _CIPHERS[key] = EnvelopeCipher(KmsCipher(config.token_key), shared_store(config))
    return _CIPHERS[key]


_CLOCK: Clock | None = None


def clock() -> Clock:
    return _CLOCK or SystemClock()


def use_clock(replacement: Clock | None) -> None:
    """Run every sync of this process on ``replacement`` (None: the system clock). Only
    the demo does this, to share the in-process sandbox's clock when it lets time pass."""
    global _CLOCK
    _CLOCK = replacement
