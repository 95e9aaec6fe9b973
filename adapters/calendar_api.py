"""``CalendarPort`` on the Calendar API v3, through google-api-python-client.

Reads go through ``google_calls.execute``. Writes go in HTTP batches of at most 50
(``new_batch`` passes the sandbox's ``batch_uri``), every one with ``sendUpdates=none``
so the sync never sends invitation email, and patches with ``If-Match``. Parts that
fail with 429, 5xx or a rate-limit 403 are sent again in a later batch, after a
backoff, a bounded number of times; other failures become that write's domain error.
The ``events()`` resource is built once per adapter (the client builds it anew from
the discovery document on every call, a millisecond or more each).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from functools import cached_property
from typing import Any

from googleapiclient.errors import HttpError

from adapters import google_api
from adapters.google_calls import (
    DEFAULT_RETRY,
    Retry,
    execute,
    jittered,
    retryable,
    sync_pages,
    translate,
)
from core.errors import NotFound, QuotaExceeded, Unavailable
from core.ports import EventChanges, EventWrite, WriteResult

BATCH_SIZE = 50
PAGE_SIZE = 2500


class CalendarApi:
    def __init__(self, service: Any, endpoint: str | None, retry: Retry = DEFAULT_RETRY) -> None:
        self.service = service
        self.endpoint = endpoint
        self.retry = retry

    @cached_property
    def _events(self) -> Any:
        return self.service.events()

    def account_email(self) -> str:
        return execute(self.service.calendars().get(calendarId="primary"), self.retry)["id"]

    def _listing(self, sync_token: str | None, page: str | None, window: dict[str, str]) -> Any:
        """One ``events.list`` page of a sync: the same parameters on every call of a
        token, the page aside. ``showDeleted`` on full passes too: an event cancelled
        while the token was lost (410) must still reach its activity."""
        return self._events.list(
            calendarId="primary", singleEvents=True, showDeleted=True,
            maxResults=PAGE_SIZE, syncToken=sync_token, pageToken=page, **window,
        )  # fmt: skip

    def changes(
        self,
        sync_token: str | None,
        time_min: str,
        time_max: str,
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> EventChanges:
        events: list[Any] = []
        token = None
        window = {} if sync_token else {"timeMin": time_min, "timeMax": time_max}
        for items, last in self._pages(sync_token, window):
            events += items if transform is None else [transform(e) for e in items]
            token = last or token
        return EventChanges(events, token, sync_token is None)

    def has_changes(self, sync_token: str) -> bool:
        """Whether the incremental listing since ``sync_token`` holds any event: the
        first page of the request ``changes`` makes with that token, and the next ones
        only while they come empty with a next page. Raises what ``changes`` raises."""
        return any(items for items, _ in self._pages(sync_token, {}))

    def _pages(self, sync_token: str | None,
               window: dict[str, str]) -> Iterator[tuple[list[Any], str | None]]:  # fmt: skip
        fetch = lambda page: execute(self._listing(sync_token, page, window), self.retry)  # noqa: E731
        return sync_pages(fetch, "items")

    def watch(self, channel_id: str, token: str, address: str, ttl_seconds: int) -> dict[str, Any]:
        body = {"id": channel_id, "type": "web_hook", "address": address, "token": token,
                "params": {"ttl": str(ttl_seconds)}}  # fmt: skip
        return execute(self._events.watch(calendarId="primary", body=body), self.retry)

    def stop(self, channel_id: str, resource_id: str) -> None:
        body = {"id": channel_id, "resourceId": resource_id}
        with suppress(NotFound):  # already gone: stopping it is done
            execute(self.service.channels().stop(body=body), self.retry)

    def get(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The events that exist, by id. Only a 404 (or 410) leaves an event out, as
        gone; any other failure raises, so a refused read is never taken for a deletion
        (the run fails and is retried, cancelling nothing)."""
        writes = [EventWrite("get", event_id) for event_id in event_ids]
        results = self._batched(writes)
        for r in results:
            if r.error is not None and not isinstance(r.error, NotFound):
                raise r.error
        return {r.key: r.person for r in results if r.person is not None}

    def write(self, writes: Sequence[EventWrite]) -> list[WriteResult]:
        return self._batched(writes)

    # --- batches -----------------------------------------------------------------------

    def _request(self, write: EventWrite) -> Any:
        events = self._events
        if write.kind == "get":
            return events.get(calendarId="primary", eventId=write.event_id)
        if write.kind == "insert":
            body = {**(write.body or {}), "id": write.event_id}
            return events.insert(calendarId="primary", body=body, sendUpdates="none")
        if write.kind == "delete":
            request = events.delete(calendarId="primary", eventId=write.event_id,
                                    sendUpdates="none")  # fmt: skip
        else:
            request = events.patch(calendarId="primary", eventId=write.event_id,
                                   body=write.body, sendUpdates="none")  # fmt: skip
        if write.etag:
            request.headers["If-Match"] = write.etag
        return request

    def _batched(self, writes: Sequence[EventWrite]) -> list[WriteResult]:
        results: dict[int, WriteResult] = {}
        pending = list(enumerate(writes))
        for attempt in range(self.retry.attempts):
            retry_later: list[tuple[int, EventWrite]] = []
            for start in range(0, len(pending), BATCH_SIZE):
                part = pending[start : start + BATCH_SIZE]
                for index, write, error, body in self._send(part):
                    if error is not None and retryable(error):
                        retry_later.append((index, write))
                        results[index] = WriteResult(write.event_id, None, translate(error))
                    elif error is not None:
                        results[index] = WriteResult(write.event_id, None, translate(error))
                    else:
                        results[index] = WriteResult(write.event_id, body or {})
            pending = retry_later
            if not pending:
                break
            if attempt + 1 < self.retry.attempts:
                (self.retry.sleep or time.sleep)(jittered(self.retry, attempt))
        for _, write in pending:  # still failing after every attempt: the run's problem
            error = next(r.error for i, r in results.items() if writes[i] is write)
            if isinstance(error, QuotaExceeded | Unavailable):
                raise error
        return [results[i] for i in range(len(writes))]

    def _send(self, part: list[tuple[int, EventWrite]]) -> list[tuple[int, EventWrite, Any, Any]]:
        answers: dict[str, tuple[Any, Any]] = {}

        def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
            answers[request_id] = (exception, response)

        batch = google_api.new_batch("calendar", self.endpoint, callback=collect)
        for index, write in part:
            batch.add(self._request(write), request_id=str(index))
        execute(batch, self.retry)
        out = []
        for index, write in part:
            error, body = answers[str(index)]
            if write.kind == "delete" and error is None:
                body = {}
            out.append((index, write, error, body))
        return out
