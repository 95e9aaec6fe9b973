"""What the sandbox's API modules share: the parsed request (``Call``), the answer
(``Reply``), errors in each API's shape (``ApiError`` and its envelopes), the ``Router``
they register their routes on, and the fault and stats records of the pipeline.

``sandbox.app`` (the ``Sandbox`` and its dispatcher) imports the API modules to register
them; they import this module, never ``sandbox.app``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.state import Account

if TYPE_CHECKING:  # annotations only: the sandbox a call runs in
    from sandbox.app import Sandbox

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


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"
