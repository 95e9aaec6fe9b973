"""Executing Google API requests: bounded retries, and errors mapped to domain errors.

``execute(request)`` runs one google-api-python-client request. 429, 5xx and the
rate-limit 403s are retried with tenacity: the wait is the server's ``Retry-After``
when it sends one (capped), else exponential backoff with jitter, for at most
``Retry.attempts`` tries. What is left is translated once, here:

    429 / 403 rate limit      -> QuotaExceeded      5xx            -> Unavailable
    People EXPIRED_SYNC_TOKEN -> SyncTokenExpired   Calendar 410 fullSyncRequired -> same
    People stale etag (400 FAILED_PRECONDITION) / Calendar 412 -> EtagMismatch
    404, or 410 deleted       -> NotFound           refresh invalid_grant -> AuthRevoked
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.auth import exceptions as auth_exceptions
from googleapiclient.errors import HttpError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from adapters.google_auth import auth_error
from core.errors import (
    EtagMismatch,
    GoogleError,
    NotFound,
    QuotaExceeded,
    SyncTokenExpired,
    Unavailable,
)

RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    base_seconds: float = 1.0
    max_seconds: float = 32.0
    sleep: Callable[[float], None] | None = None  # tests pass a recorder; None = time.sleep


DEFAULT_RETRY = Retry()


def error_info(err: HttpError) -> tuple[str | None, str | None, str]:
    """(google.rpc status, reason, message) of an API error body, whichever API sent it."""
    try:
        body = json.loads(err.content or b"{}").get("error", {})
    except (ValueError, AttributeError):
        return None, None, str(err)
    if not isinstance(body, dict):
        return None, str(body), str(err)
    reason = None
    for detail in body.get("details") or []:
        reason = reason or detail.get("reason")
    for item in body.get("errors") or []:
        reason = reason or item.get("reason")
    return body.get("status"), reason, body.get("message") or str(err)


def retryable(exc: BaseException) -> bool:
    if not isinstance(exc, HttpError):
        return False
    status = exc.resp.status
    if status == 429 or status >= 500:
        return True
    return status == 403 and error_info(exc)[1] in RATE_LIMIT_REASONS


def _wait(policy: Retry) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        header = getattr(getattr(exc, "resp", None), "get", lambda *_: None)("retry-after")
        if header and str(header).isdigit():
            return min(float(header), policy.max_seconds)
        return jittered(policy, state.attempt_number - 1)

    return wait


def jittered(policy: Retry, attempt: int) -> float:
    """The wait before retry number ``attempt + 1``: exponential, with jitter (half to
    all of the step), so that clients that failed together do not all come back
    together."""
    backoff = policy.base_seconds * 2**attempt
    return min(backoff * random.uniform(0.5, 1.0), policy.max_seconds)


def translate(exc: HttpError) -> GoogleError:
    status = exc.resp.status
    rpc_status, reason, message = error_info(exc)
    text = f"Google API {exc.resp.status} {reason or rpc_status or ''}: {message}".strip()
    if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS | {"quotaExceeded"}):
        return QuotaExceeded(text, status=status, reason=reason)
    if status >= 500:
        return Unavailable(text, status=status, reason=reason)
    if reason in ("EXPIRED_SYNC_TOKEN", "fullSyncRequired"):
        return SyncTokenExpired(text, status=status, reason=reason)
    if status == 412 or (status == 400 and rpc_status == "FAILED_PRECONDITION"):
        return EtagMismatch(text, status=status, reason=reason)
    if status == 404 or (status == 410 and reason == "deleted"):
        return NotFound(text, status=status, reason=reason)
    return GoogleError(text, status=status, reason=reason)


def execute(request: Any, policy: Retry = DEFAULT_RETRY) -> Any:
    """Run ``request.execute()`` with bounded retries; raise only domain errors."""
    retrying = Retrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        reraise=True,
        **({"sleep": policy.sleep} if policy.sleep else {}),
    )
    try:
        return retrying(request.execute)
    except HttpError as exc:
        raise translate(exc) from None
    except auth_exceptions.RefreshError as exc:
        raise auth_error(exc) from None


def sync_pages(
    fetch: Callable[[str | None], dict[str, Any]], key: str
) -> Iterator[tuple[list[Any], str | None]]:
    """The pages of a sync listing (``fetch(page_token)`` gets one), as (the page's
    items under ``key``, the next sync token: None but on the last page). Each page is
    let go before the next is fetched, so a caller that keeps less holds less."""
    page: str | None = None
    while True:
        answer = fetch(page)
        items = answer.pop(key, None) or []
        page = answer.get("nextPageToken")
        token = None if page else answer["nextSyncToken"]
        del answer
        yield items, token
        if not page:
            return
