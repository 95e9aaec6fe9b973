"""The sandbox's control API (``/_sandbox/...``): accounts, reset, stats, faults, clock,
behaviours.

Tests and the demo drive the sandbox through it; the contract is in DESIGN.md. The
realism switches behind ``/_sandbox/behaviours`` are described in ``sandbox.realism``.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox import realism
from sandbox.routing import PLAIN, ApiError, Call, Fault, Reply, Router, Stats
from sandbox.state import ALL_SCOPES, rfc3339


def _bad(message: str) -> ApiError:
    return ApiError(400, {"error": {"code": 400, "message": message}})


def _int(body: dict[str, Any], key: str, minimum: int = 0) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _bad(f"'{key}' must be an integer >= {minimum}")
    return value


def create_account(call: Call) -> Reply:
    body = call.json()
    email, time_zone = body.get("email"), body.get("timeZone")
    if not isinstance(email, str) or "@" not in email:
        raise _bad("'email' must be an email address")
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise _bad(f"'timeZone' must be an IANA time zone name, not {time_zone!r}") from None
    sandbox = call.sandbox
    account = sandbox.add_account(email)
    if time_zone is not None:
        account.time_zone = time_zone
    refresh = sandbox.tokens.issue_refresh(account.email, ALL_SCOPES, "sandbox-control")
    access = sandbox.tokens.issue_access(account.email, ALL_SCOPES, refresh)
    return Reply.json(
        {
            "email": account.email,
            "id": account.numeric_id,
            "accessToken": access,
            "refreshToken": refresh,
        }
    )


def reset(call: Call) -> Reply:
    call.sandbox.reset()
    return Reply.json({})


def stats(call: Call) -> Reply:
    return Reply.json(call.sandbox.stats.snapshot())


def reset_stats(call: Call) -> Reply:
    call.sandbox.stats = Stats()
    return Reply.json({})


def add_faults(call: Call) -> Reply:
    body = call.json()
    sandbox = call.sandbox
    if "quotaPerMinute" in body:
        sandbox.quota_per_minute = _int(body, "quotaPerMinute", 1)
    if "latencyMs" in body:
        sandbox.latency_ms = _int(body, "latencyMs")
    if "status" in body or "method" in body:
        method = body.get("method", "*")
        if not isinstance(method, str) or not method:
            raise _bad("'method' must be a discovery method id or '*'")
        status = _int(body, "status", 400)
        count = _int(body, "count", 1) if "count" in body else 1
        retry_after = _int(body, "retryAfter") if "retryAfter" in body else None
        reason = body.get("reason")
        sandbox.faults.append(Fault(method, status, count, reason, retry_after))
    if not {"quotaPerMinute", "latencyMs", "status", "method"} & body.keys():
        raise _bad("expected 'method'/'status'/'count', 'quotaPerMinute' or 'latencyMs'")
    return Reply.json({"faults": len(sandbox.faults)})


def clear_faults(call: Call) -> Reply:
    sandbox = call.sandbox
    sandbox.faults.clear()
    sandbox.quota_per_minute = None
    sandbox.latency_ms = 0
    return Reply.json({})


def advance_clock(call: Call) -> Reply:
    body = call.json()
    seconds = body.get("advanceSeconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise _bad("'advanceSeconds' must be a number >= 0")
    call.sandbox.clock.advance(seconds)
    return Reply.json({"now": rfc3339(call.sandbox.clock.now())})


def behaviours(call: Call) -> Reply:
    """GET: the current switches and ``profile``, the last profile applied (keys may have
    been changed since); POST ``{"profile"?, key: value...}``: apply the profile, if
    named, then the keys. A GET's answer POSTed back restores that state."""
    sandbox = call.sandbox
    if call.method == "POST":
        body = dict(call.json())
        name = body.pop("profile", None)
        try:
            base = realism.profile(name) if name is not None else sandbox.behaviours
            updated = realism.changed(base, body)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        sandbox.set_behaviours(updated, name)
    return Reply.json({"profile": sandbox.profile_name, **realism.as_json(sandbox.behaviours)})


def register(router: Router) -> None:
    routes = [
        ("POST", "/_sandbox/accounts", create_account),
        ("POST", "/_sandbox/reset", reset),
        ("GET", "/_sandbox/stats", stats),
        ("DELETE", "/_sandbox/stats", reset_stats),
        ("POST", "/_sandbox/faults", add_faults),
        ("DELETE", "/_sandbox/faults", clear_faults),
        ("POST", "/_sandbox/clock", advance_clock),
        ("GET", "/_sandbox/behaviours", behaviours),
        ("POST", "/_sandbox/behaviours", behaviours),
    ]
    for method, path, handler in routes:
        router.add(method, path, "sandbox.control", PLAIN, handler)
