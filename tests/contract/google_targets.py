"""The implementations a Google port contract runs against, each with what a test needs
beside the port: the user's own hand in Google (edit, delete, insert: not port
methods), time passing, and a way to wait for Google's eventual consistency.

    fake                tests.fakes over a FakeClock: instant, in process
    sandbox             the real adapter and google-api-python-client over the sandbox,
                        default profile (writes visible at once, full pages)
    sandbox-realistic   the same with the ``realistic`` profile: People deltas lag two
                        minutes, pages come short or empty, batch parts run shuffled,
                        recent event ids collide undetected
    live                the real adapter over real Google (opt-in, see test_live_google)

``eventually(probe)`` is how a test states what Google guarantees only in time: the fake
runs the probe at once; the sandbox first lets its clock pass the propagation delay;
live Google is polled until the probe passes or a minute is up.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from googleapiclient.errors import HttpError

from adapters import google_api
from adapters.calendar_api import CalendarApi
from adapters.google_calls import Retry
from adapters.people_api import PeopleApi
from core import contact_mapping as cm
from tests.fakes import FakeCalendar, FakeClock, FakePeople

T = TypeVar("T")
DAY = 86400
LIVE_ENV = ("CRMSYNC_LIVE_REFRESH_TOKEN", "CRMSYNC_OAUTH_CLIENT_ID", "CRMSYNC_OAUTH_CLIENT_SECRET")
KINDS = ["fake", "sandbox", "sandbox-realistic", pytest.param("live", marks=pytest.mark.live)]


def new_event_id() -> str:
    """A client event id nobody has used ([a-v0-9]: hex digits are in it)."""
    return "ct" + uuid.uuid4().hex


class Target:
    kind = ""
    port: Any

    def eventually(self, probe: Callable[[], T]) -> T:
        return probe()

    def age(self, seconds: float) -> None:
        """Let ``seconds`` pass (tokens grow old); skips where time cannot be moved."""
        pytest.skip(f"time cannot be moved on {self.kind}")

    def close(self) -> None:
        pass


# --- the fake ----------------------------------------------------------------------------


class FakePeopleTarget(Target):
    kind = "fake"

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.port = FakePeople(self.clock)

    def age(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def delete_person(self, name: str) -> None:
        self.port.delete(name)

    def rename_person(self, name: str, given: str) -> None:
        self.port.edit(name, names=[{"givenName": given}])


class FakeCalendarTarget(Target):
    kind = "fake"

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.port = FakeCalendar("alice@example.com", self.clock)
        self.email = "alice@example.com"

    def age(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def expire_tokens(self) -> None:
        self.port.expire_tokens()

    def user_insert(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.port.insert(body)

    def user_patch(self, event_id: str, **body: Any) -> None:
        self.port.patch(event_id, **body)

    def user_delete(self, event_id: str) -> None:
        self.port.delete(event_id)


# --- the real adapters: the sandbox and live Google --------------------------------------


class GooglePeopleTarget(Target):
    """The adapter over a People service; the user's hand is the same service."""

    def __init__(self, kind: str, service: Any, retry: Retry) -> None:
        self.kind, self.service = kind, service
        self.port = PeopleApi(service, retry)

    def delete_person(self, name: str) -> None:
        self.service.people().deleteContact(resourceName=name).execute()

    def rename_person(self, name: str, given: str) -> None:
        people = self.service.people()
        person = people.get(resourceName=name, personFields="names").execute()
        body = {"etag": person["etag"], "names": [{"givenName": given}]}
        people.updateContact(resourceName=name, updatePersonFields="names", body=body).execute()


class GoogleCalendarTarget(Target):
    def __init__(self, kind: str, service: Any, endpoint: str | None, retry: Retry) -> None:
        self.kind, self.service = kind, service
        self.port = CalendarApi(service, endpoint, retry)
        self.email = ""

    def user_insert(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.events().insert(calendarId="primary", body=body).execute()

    def user_patch(self, event_id: str, **body: Any) -> None:
        self.service.events().patch(calendarId="primary", eventId=event_id, body=body).execute()

    def user_delete(self, event_id: str) -> None:
        self.service.events().delete(calendarId="primary", eventId=event_id).execute()


class Sandboxed:
    """Time and consistency on the sandbox (``tests.integration.conftest.SandboxHandle``)."""

    sandbox: Any

    def eventually(self, probe: Callable[[], T]) -> T:
        self.sandbox.settle()
        return probe()

    def age(self, seconds: float) -> None:
        self.sandbox.advance(seconds)


class SandboxPeopleTarget(Sandboxed, GooglePeopleTarget):
    pass


class SandboxCalendarTarget(Sandboxed, GoogleCalendarTarget):
    def expire_tokens(self) -> None:
        self.sandbox.control("POST", "/_sandbox/calendar/invalidateSyncTokens", {})


def sandbox_targets(sandbox: Any, kind: str) -> tuple[Any, Any]:
    """(People target, Calendar target) for a fresh sandbox account."""
    sandbox.control("POST", "/_sandbox/reset")
    sandbox.profile("realistic" if kind == "sandbox-realistic" else "default")
    info = sandbox.control("POST", "/_sandbox/accounts", {"email": "alice@example.com"})
    creds = google_api.credentials(info["refreshToken"], sandbox.url)
    retry = Retry(attempts=3, base_seconds=0.01, sleep=sandbox.advance)  # waits: sandbox time
    people = SandboxPeopleTarget(kind, google_api.people_service(creds, sandbox.url), retry)
    calendar = SandboxCalendarTarget(
        kind, google_api.calendar_service(creds, sandbox.url), sandbox.url, retry
    )
    calendar.email = info["email"]
    for target in (people, calendar):
        target.sandbox = sandbox
    return people, calendar


class Polled:
    """Live Google: poll a probe until it passes (a minute at most)."""

    def eventually(self, probe: Callable[[], T]) -> T:
        deadline = time.monotonic() + 60
        while True:
            try:
                return probe()
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(3)


class LivePeopleTarget(Polled, GooglePeopleTarget):
    """Deletes, at the end, every person and group the test made through the port."""

    def __init__(self, service: Any) -> None:
        super().__init__("live", service, Retry())
        create, make_group = self.port.create, self.port.find_or_create_group
        self.made: list[str] = []
        self.groups: list[str] = []

        def recorded_create(items: Any) -> Any:
            results = create(items)
            self.made += [r.person["resourceName"] for r in results if r.person]
            return results

        def recorded_group(name: str) -> str:
            group = make_group(name)
            self.groups.append(group)
            return group

        self.port.create, self.port.find_or_create_group = recorded_create, recorded_group

    def close(self) -> None:
        for name in self.made:
            with contextlib.suppress(HttpError):  # deleted by the test already
                self.delete_person(name)
        for group in dict.fromkeys(self.groups):
            self.service.contactGroups().delete(resourceName=group).execute()


class LiveCalendarTarget(Polled, GoogleCalendarTarget):
    """Deletes, at the end, every event the test wrote with a ``ct...`` id."""

    def __init__(self, service: Any) -> None:
        super().__init__("live", service, None, Retry())
        self.email = self.port.account_email()

    def close(self) -> None:
        events = self.service.events()
        listed = events.list(calendarId="primary", q="crmsync contract", showDeleted=False,
                             maxResults=2500).execute()  # fmt: skip
        for event in listed.get("items", []):
            if event["id"].startswith("ct"):
                events.delete(calendarId="primary", eventId=event["id"]).execute()


def live_credentials() -> Any:
    values = [os.environ.get(k) for k in LIVE_ENV]
    if not all(values):
        pytest.skip("live Google checks need CRMSYNC_LIVE_REFRESH_TOKEN and the OAuth client")
    token, client_id, secret = values
    return google_api.credentials(token, None, client_id, secret)


def person_body(given: str, email: str, group: str | None = None, crm_id: str = "") -> dict:
    """A person as the engine creates one: synced fields, group membership, clientData."""
    body = cm.to_person({"givenName": given, "familyName": "Contract",
                         "emails": [{"value": email}]})  # fmt: skip
    if group:
        body["memberships"] = [{"contactGroupMembership": {"contactGroupResourceName": group}}]
    if crm_id:
        body["clientData"] = [{"key": cm.CLIENT_DATA_KEY, "value": crm_id}]
    return body
