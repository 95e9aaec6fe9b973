"""The sandbox's request pipeline: routing, authentication, faults, quotas, stats.

Every API module (``people``, ``calendar``, ``oauth``, ``control``) registers its
routes on the shared ``Router`` (``sandbox.routing``, with ``Call``, ``Reply`` and
``ApiError``: the API modules import that, never this module) with a discovery method
id such as
``people.people.connections.list``. ``Sandbox.dispatch`` runs one request through:

    route -> (API routes only) count -> latency -> auth -> fault -> quota -> handler

OAuth routes (``oauth2.token``, ``oauth2.revoke``, ...) take only faults that name
them, answered in the OAuth error shape (``{"error", "error_description"}``).

Handlers take a ``Call`` and return a ``Reply`` or raise ``ApiError``. They run
under one re-entrant lock, so the in-memory state needs no further locking. HTTP
batches (``sandbox.batch``) dispatch each part through the same pipeline.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import urllib.request
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs

from sandbox import batch, calendar, control, delegation, oauth, people, realism
from sandbox.routing import (
    CALENDAR,
    PEOPLE,
    PLAIN,
    ApiError,
    Call,
    Fault,
    Reply,
    Route,
    Router,
    Stats,
    auth_error,
    calendar_error,
    fault_error,
    people_error,
)
from sandbox.state import Account, SandboxClock, TokenRegistry


class Notifier:
    """Delivers push notifications from a background thread, loopback addresses only."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, dict[str, str]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.delivered: list[tuple[str, dict[str, str], int]] = []

    def post(self, url: str, headers: dict[str, str]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-push", daemon=True)
            self._thread.start()
        self._queue.put((url, headers))

    def _run(self) -> None:
        while True:
            url, headers = self._queue.get()
            request = urllib.request.Request(url, data=b"", method="POST", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status = response.status
            except Exception as exc:  # delivery is best effort, as Google's is
                status = getattr(exc, "code", 0)
            self.delivered.append((url, headers, status))
            self._queue.task_done()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until queued notifications are delivered (for tests)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


class Sandbox:
    """All sandbox state and the dispatcher. Thread-safe: handlers run under ``lock``.

    ``profile`` names the base ``realism`` profile (None: ``$CRMSYNC_SANDBOX_PROFILE``,
    else "default"); ``reset`` goes back to it.
    """

    def __init__(self, base_url: str = "http://127.0.0.1", profile: str | None = None) -> None:
        self.base_url = base_url
        self.base_profile = realism.base_profile(profile)
        self.lock = threading.RLock()
        self.router = Router()
        self.notifier = Notifier()
        self.reset()
        for module in (control, oauth, people, calendar, batch):
            module.register(self.router)
        delegation.register_routes(self.router)

    def reset(self) -> None:
        """Forget every account, token, fault and counter; the clock goes back to real time."""
        with self.lock:
            self.clock = SandboxClock()
            self.accounts: dict[str, Account] = {}
            self.tokens = TokenRegistry(self.clock)
            self.faults: list[Fault] = []
            self.quota_per_minute: int | None = None
            self.quota_used: dict[tuple[str, int], int] = defaultdict(int)
            self.latency_ms = 0
            self.stats = Stats()
            self.ext: dict[str, Any] = {}  # per-API global state (e.g. watch channels)
            self.set_behaviours(realism.profile(self.base_profile), self.base_profile)

    def set_behaviours(self, behaviours: realism.Behaviours, profile: str | None = None) -> None:
        """Switch to ``behaviours``; ``profile`` is the name they came from, if any."""
        with self.lock:
            self.behaviours = behaviours
            if profile is not None:
                self.profile_name = profile
            self.rng = random.Random(behaviours.seed)  # batch shuffles

    def account(self, email: str) -> Account | None:
        return self.accounts.get(email.lower())

    def add_account(self, email: str) -> Account:
        with self.lock:
            key = email.lower()
            if key not in self.accounts:
                self.accounts[key] = Account(email=key, numeric_id=str(10**20 + len(self.accounts)))
            return self.accounts[key]

    def dispatch(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        headers: dict[str, str],
        body: bytes,
        *,
        in_batch: bool = False,
    ) -> Reply:
        override = {k.lower(): v for k, v in headers.items()}.get("x-http-method-override")
        if method == "POST" and override:
            # google-api-python-client sends a GET whose URI is over 2000 characters as a
            # POST with this header and the query string as a form body
            method, query_string, body = override.upper(), body.decode(), b""
        try:
            found = self.router.match(method, raw_path)
            if found is None:
                raise ApiError(404, {"error": {"code": 404, "message": f"Not found: {raw_path}"}})
            route, params = found
            call = Call(
                self,
                method,
                raw_path,
                parse_qs(query_string, keep_blank_values=True),
                {k.lower(): v for k, v in headers.items()},
                body,
                params,
                method_id=route.method_id,
                api=route.api,
            )
            return self._run(route, call, in_batch)
        except ApiError as err:
            return err.reply()
        except Exception as exc:  # a sandbox bug: answer like Google's 500, keep serving
            logging.getLogger("sandbox").exception("sandbox handler failed")
            message = f"Internal error in the sandbox: {type(exc).__name__}: {exc}"
            return Reply.json({"error": {"code": 500, "message": message}}, 500)

    def _run(self, route: Route, call: Call, in_batch: bool) -> Reply:
        if route.api == PLAIN:
            with self.lock:
                self._apply_named_faults(route)
                return route.handler(call)
        with self.lock:
            self.stats.by_method[route.method_id] += 1
            if not in_batch:
                self.stats.http_requests += 1
            latency = self.latency_ms
        if latency:
            time.sleep(latency / 1000)
        with self.lock:
            self._authenticate(route, call)
            self._apply_faults(route, call)
            return route.handler(call)

    def _authenticate(self, route: Route, call: Call) -> None:
        header = call.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        grant = self.tokens.access_grant(token)
        if grant is None:
            raise auth_error()
        account = self.account(grant.email)
        if account is None:
            raise auth_error()
        call.account, call.scopes = account, grant.scopes
        if route.scopes and not (route.scopes & grant.scopes):
            if route.api == CALENDAR:
                raise calendar_error(
                    403, "insufficientPermissions", "Insufficient Permission", domain="global"
                )
            raise people_error(403, "Request had insufficient authentication scopes.")

    def _apply_named_faults(self, route: Route) -> None:
        """OAuth routes (``oauth2.token``, ``oauth2.revoke``, ...) fail only for a fault
        naming them: a ``*`` fault aims at the APIs, never at the token endpoint."""
        for fault in self.faults:
            if fault.remaining > 0 and fault.method == route.method_id:
                fault.remaining -= 1
                self.faults = [f for f in self.faults if f.remaining > 0]
                raise fault_error(route.api, fault.status, fault.reason, fault.retry_after)

    def _apply_faults(self, route: Route, call: Call) -> None:
        for fault in self.faults:
            if fault.remaining > 0 and fault.method in ("*", route.method_id):
                fault.remaining -= 1
                raise fault_error(route.api, fault.status, fault.reason, fault.retry_after)
        self.faults = [f for f in self.faults if f.remaining > 0]
        if self.quota_per_minute is not None:
            bucket = (call.me.email, int(self.clock.timestamp() // 60))
            self.quota_used[bucket] += 1
            if self.quota_used[bucket] > self.quota_per_minute:
                status = 429 if route.api == PEOPLE else 403
                retry_after = 60 - int(self.clock.timestamp() % 60)
                raise fault_error(route.api, status, None, retry_after)
