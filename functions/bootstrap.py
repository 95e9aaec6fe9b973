"""The composition root: reads configuration from the environment and builds adapters.

Every entry point (CLI, Cloud Functions) gets its store, token cipher, clock, queue,
Google credentials and People/Calendar ports from here, and nowhere else builds them:
swapping SQLite for Firestore, Pub/Sub for inline runs, or the sandbox for real Google
is a configuration change only (DESIGN.md, "Configuration"). What is costly to build
(the store, a KMS envelope cipher, API clients) is a lazy per-process global.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters import delegation, google_api
from adapters.calendar_api import CalendarApi
from adapters.clock import SystemClock
from adapters.google_calls import Retry
from adapters.people_api import PeopleApi
from adapters.queue import InlineQueue, PubSubQueue, open_queue
from adapters.stores import open_store
from adapters.tokens import KMS_KEY, EnvelopeCipher, FernetCipher, KmsCipher, cipher_for
from core.errors import ConfigError
from core.ports import Clock, DocumentStore
from core.schedule import Job

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
    # Workspace domain-wide delegation (functions.delegation): the service account's
    # JSON key (or a path to it) and the domains whose users it acts for
    delegation_key: str | None = field(default=None, repr=False)  # a secret: never printed
    delegation_domains: tuple[str, ...] = ()
    # seals the page's session cookie and the sign-in and connect states (Secret
    # Manager in the cloud; locally generated in the state folder)
    session_key: str | None = field(default=None, repr=False)

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
            delegation_key=env.get("CRMSYNC_DELEGATION_KEY") or None,
            delegation_domains=domains(env.get("CRMSYNC_DELEGATION_DOMAINS") or ""),
            session_key=env.get("CRMSYNC_SESSION_KEY") or None,
        )


def domains(text: str) -> tuple[str, ...]:
    """``example.com, example.org`` (commas or spaces) as lower-case domain names."""
    return tuple(sorted({d.strip().lstrip("@").lower() for d in text.replace(",", " ").split()}))


SESSION_KEY_FILE = "session.key"


def in_cloud() -> bool:
    """Running as a deployed function (Cloud Run sets ``K_SERVICE``)."""
    return bool(os.environ.get("K_SERVICE"))


def session_secret(config: Config) -> str:
    """The key that seals sessions and OAuth states: ``CRMSYNC_SESSION_KEY``; locally,
    one generated in the state folder (0600). Never the OAuth client secret, which
    defaults to a public value: a cookie sealed under it could be forged. A deployed
    function without the key refuses to serve (``ConfigError``)."""
    if config.session_key:
        return config.session_key
    if in_cloud():
        raise ConfigError("CRMSYNC_SESSION_KEY is not set: the page cannot sign anyone "
                          "in (Terraform keeps it in Secret Manager)")  # fmt: skip
    from adapters.tokens import local_key

    return local_key(None, config.state_dir, SESSION_KEY_FILE).decode()


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


def queue(config: Config, runner: Callable[[Job], Any]) -> InlineQueue | PubSubQueue:
    """Where jobs go (``CRMSYNC_QUEUE``); ``runner`` runs one job in process (inline)."""
    return open_queue(config.queue, runner)


def credentials(config: Config, refresh_token: str) -> Any:
    """A connection's Google credentials, refreshed at the configured endpoint."""
    return google_api.credentials(
        refresh_token, config.google_endpoint, config.oauth_client_id, config.oauth_client_secret
    )


_DELEGATION_KEYS: dict[str, dict[str, Any]] = {}


def delegation_key(config: Config) -> dict[str, Any] | None:
    """The delegation's service account key, read once per process; None when no
    delegation is configured (``CRMSYNC_DELEGATION_KEY`` and its domains)."""
    if not (config.delegation_key and config.delegation_domains):
        return None
    if config.delegation_key not in _DELEGATION_KEYS:
        _DELEGATION_KEYS[config.delegation_key] = delegation.key_info(config.delegation_key)
    return _DELEGATION_KEYS[config.delegation_key]


def delegated_credentials(config: Config, email: str) -> Any:
    """Credentials acting as ``email`` through the administrator's delegation."""
    info = delegation_key(config)
    if info is None:
        raise ConfigError("no domain-wide delegation is configured (CRMSYNC_DELEGATION_KEY)")
    return delegation.credentials(info, email, config.google_endpoint)


def people_port(config: Config, creds: Any) -> PeopleApi:
    return PeopleApi(google_api.people_service(creds, config.google_endpoint))


def calendar_port(config: Config, creds: Any, retry: Retry | None = None) -> CalendarApi:
    service = google_api.calendar_service(creds, config.google_endpoint)
    if retry is None:  # the adapter's own retry policy
        return CalendarApi(service, config.google_endpoint)
    return CalendarApi(service, config.google_endpoint, retry)


POOL_SIZE = 32  # built ports kept per API: as many as the looks of a message, and some
_POOLS: dict[tuple[str, str], list[tuple[Any, Any]]] = {}
_POOL_LOCK = threading.Lock()


@contextmanager
def pooled_port(config: Config, api: str, creds: Any) -> Iterator[Any]:
    """A People or Calendar port for one look, taken from a per-process pool and lent to
    ``creds`` while the look lasts: building a google-api-python-client service and its
    resources costs ~16 ms CPU, more than the rest of a look. A port serves one user
    at a time; its HTTP client is handed back without credentials."""
    key = (api, config.google_endpoint or "")
    with _POOL_LOCK:
        pool = _POOLS.setdefault(key, [])
        taken = pool.pop() if pool else None
    if taken is None:
        http = google_api.authorized_http(creds)
        if api == "people":
            port: Any = PeopleApi(google_api.people_service(creds, config.google_endpoint, http))
        else:
            service = google_api.calendar_service(creds, config.google_endpoint, http)
            port = CalendarApi(service, config.google_endpoint)
        taken = (port, http)
    taken[1].credentials = creds
    try:
        yield taken[0]
    finally:
        taken[1].credentials = None
        with _POOL_LOCK:
            if len(pool) < POOL_SIZE:
                pool.append(taken)
