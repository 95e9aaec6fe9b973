"""The sandbox's request pipeline: routing, authentication, faults, quotas, stats.

Every API module (``people``, ``calendar``, ``oauth``, ``control``) registers its
routes on the shared ``Router`` with a discovery method id such as
``people.people.connections.list``. ``Sandbox.dispatch`` runs one request through:

    route -> (API routes only) count -> latency -> auth -> fault -> quota -> handler

OAuth routes (``oauth2.token``, ``oauth2.revoke``, ...) take only faults that name
them, answered in the OAuth error shape (``{"error", "error_description"}``).

Handlers take a ``Call`` and return a ``Reply`` or raise ``ApiError``. They run
under one re-entrant lock, so the in-memory state needs no further locking. HTTP
batches (``sandbox.batch``) dispatch each part through the same pipeline.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import re
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox import realism
from sandbox.state import Account, SandboxClock, TokenRegistry

PEOPLE = "people"
CALENDAR = "calendar"
PLAIN = "plain"  # OAuth and control routes: not counted, no bearer auth

JSON_TYPE = "application/json; charset=UTF-8"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        data = json.dumps(obj, separators=(",", ":")).encode()
        return cls(status, data, {"Content-Type": JSON_TYPE, **(headers or {})})

    @classmethod
    def empty(cls, status: int = 204) -> Reply:
        return cls(status, b"", {"Content-Length": "0"})


class ApiError(Exception):
    """An error response in the shape of the API that raised it."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        error = body.get("error")
        super().__init__(error.get("message") if isinstance(error, dict) else str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}

    def reply(self) -> Reply:
        return Reply.json(self.body, self.status, self.headers)


_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def people_error(
    code: int,
    message: str,
    status: str | None = None,
    reason: str | None = None,
    headers: dict[str, str] | None = None,
) -> ApiError:
    """google.rpc.Status envelope, as the People API answers."""
    err: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status or _RPC_STATUS.get(code, "UNKNOWN"),
    }
    if reason:
        err["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "people.googleapis.com",
            }
        ]
    return ApiError(code, {"error": err}, headers)


def calendar_error(
    code: int,
    reason: str,
    message: str,
    domain: str = "global",
    location: str | None = None,
    location_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> ApiError:
    """Legacy ``errors[]`` envelope, as the Calendar API answers."""
    item: dict[str, Any] = {"domain": domain, "reason": reason, "message": message}
    if location:
        item["locationType"] = location_type or "parameter"
        item["location"] = location
    return ApiError(code, {"error": {"errors": [item], "code": code, "message": message}}, headers)


def auth_error() -> ApiError:
    """401 as Google's front end sends it for a bad or expired access token."""
    return ApiError(
        401,
        {
            "error": {
                "code": 401,
                "message": "Request had invalid authentication credentials. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "errors": [
                    {
                        "message": "Invalid Credentials",
                        "domain": "global",
                        "reason": "authError",
                        "location": "Authorization",
                        "locationType": "header",
                    }
                ],
                "status": "UNAUTHENTICATED",
            }
        },
        {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'},
    )


def fault_error(api: str, status: int, reason: str | None, retry_after: int | None) -> ApiError:
    """The error an injected fault or exhausted quota answers with."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if api == PLAIN:  # an OAuth endpoint: its error body shape
        code = "internal_failure" if status >= 500 else reason or "invalid_request"
        return ApiError(status, {"error": code, "error_description": "Injected fault."}, headers)
    if api == PEOPLE:
        messages = {
            429: "Quota exceeded for quota metric 'Critical read requests (Contact and "
            "Profile Reads)' and limit 'Critical read requests (Contact and Profile "
            "Reads) per minute per user' of service 'people.googleapis.com' for "
            "consumer 'project_number:0'.",
            500: "Internal error encountered.",
            503: "The service is currently unavailable.",
        }
        return people_error(
            status,
            messages.get(status, "Injected fault."),
            reason=reason or ("RATE_LIMIT_EXCEEDED" if status == 429 else None),
            headers=headers,
        )
    if status in (403, 429):
        reason = reason or "rateLimitExceeded"
        text = {
            "rateLimitExceeded": "Rate Limit Exceeded",
            "userRateLimitExceeded": "User Rate Limit Exceeded",
            "quotaExceeded": "Calendar usage limits exceeded.",
        }.get(reason, "Rate Limit Exceeded")
        return calendar_error(status, reason, text, domain="usageLimits", headers=headers)
    if status >= 500:
        return calendar_error(status, reason or "backendError", "Backend Error", headers=headers)
    return calendar_error(status, reason or "invalid", "Injected fault.", headers=headers)


@dataclass
class Call:
    """One parsed request, as a handler sees it."""

    sandbox: Sandbox
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the path, URL-decoded
    account: Account | None = None
    scopes: frozenset[str] = frozenset()
    method_id: str = ""
    api: str = PLAIN

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def bool_arg(self, name: str, default: bool = False) -> bool:
        value = self.arg(name)
        return default if value is None else value.lower() == "true"

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise self.invalid(f"Invalid value for {name}: {value}") from None

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError:
            raise self.invalid("Invalid JSON payload received.") from None
        if not isinstance(data, dict):
            raise self.invalid("Invalid JSON payload received. Expected an object.")
        return data

    def form(self) -> dict[str, str]:
        pairs = parse_qs(self.body.decode(), keep_blank_values=True)
        return {k: v[0] for k, v in pairs.items()} | {k: v[0] for k, v in self.query.items()}

    def invalid(self, message: str) -> ApiError:
        if self.api == CALENDAR:
            return calendar_error(400, "invalid", message)
        return people_error(400, message)

    @property
    def me(self) -> Account:
        assert self.account is not None, "route requires auth"
        return self.account


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    regex: re.Pattern[str]
    method_id: str
    api: str
    handler: Handler
    scopes: frozenset[str]


class Router:
    """Matches (HTTP method, raw path) against regexes with named groups."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        pattern: str,
        method_id: str,
        api: str,
        handler: Handler,
        scopes: tuple[str, ...] = (),
    ) -> None:
        regex = re.compile("^" + pattern + "$")
        self.routes.append(Route(method, regex, method_id, api, handler, frozenset(scopes)))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        allowed = False
        for route in self.routes:
            found = route.regex.match(path)
            if found:
                allowed = True
                if route.method == method:
                    return route, {k: unquote(v) for k, v in found.groupdict().items()}
        if allowed:
            raise ApiError(405, {"error": {"code": 405, "message": "Method not allowed"}})
        return None


@dataclass
class Fault:
    method: str
    status: int
    remaining: int
    reason: str | None = None
    retry_after: int | None = None


class Stats:
    """API call counters, by discovery method id."""

    def __init__(self) -> None:
        self.by_method: dict[str, int] = defaultdict(int)
        self.http_requests = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": sum(self.by_method.values()),
            "httpRequests": self.http_requests,
            "byMethod": dict(sorted(self.by_method.items())),
        }


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


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


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
        from sandbox import batch, calendar, control, oauth, people

        for module in (control, oauth, people, calendar, batch):
            module.register(self.router)

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
