"""Two CRM users (Alice, Bob), each with a sandbox Google account, for activities tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters import google_api
from adapters.calendar_api import CalendarApi
from adapters.google_calls import Retry
from adapters.stores import open_store
from core import email_index
from core.activities_engine import ActivitiesEngine
from core.model import ACTIVITIES, LINKS, stamp
from core.runs import Options, Report
from functions import bootstrap, seed
from functions.accounts import connect
from functions.sync import google_credentials
from tests.integration.contacts_world import SandboxTime

ALICE, BOB = seed.ALICE, seed.BOB


class CalendarWorld:
    def __init__(self, tmp: Path, sandbox: Any, make_account: Any) -> None:
        self.sandbox = sandbox
        self.clock = SandboxTime(sandbox)  # one clock for the CRM, the runs and Google
        self.config = bootstrap.Config(
            store_url=f"sqlite:///{tmp / 'crm.db'}",
            google_endpoint=sandbox.url,
            state_dir=tmp / ".crmsync",
        )
        self.store = open_store(self.config.store_url)
        seed.seed(self.store, self.clock.now())
        self.google = {
            ALICE: make_account("alice@example.com"),
            BOB: make_account("bob@example.com"),
        }
        for user, account in self.google.items():
            connect(self.config, user, account.refresh_token)
        email_index.catch_up(self.store, self.clock.now())  # as the dispatch tick does
        self.day = (self.clock.now() + timedelta(days=3)).date()

    def calendar_port(self, user: str = ALICE) -> CalendarApi:
        creds = google_credentials(self.config, self.store, user)
        service = google_api.calendar_service(creds, self.sandbox.url)
        return CalendarApi(service, self.sandbox.url, Retry(attempts=3, base_seconds=0.01))

    def engine(self, user: str, calendar: Any = None, store: Any = None,
               clock: Any = None) -> ActivitiesEngine:  # fmt: skip
        return ActivitiesEngine(
            store or self.store,
            calendar or self.calendar_port(user),
            clock or self.clock,
            new_id=lambda: uuid.uuid4().hex,
        )

    def sync(self, user: str = ALICE, **options: Any) -> Report:
        return self.engine(user).run(user, Options(**options))

    def undo(self, run_id: str, **options: Any) -> Report:
        """Run ``run_id`` taken back (``functions.undo``, as the CLI does), on the world's
        one clock: the undo's stamps must be comparable with the runs' and Google's."""
        from functions.undo import undo

        bootstrap.use_clock(self.clock)
        try:
            return undo(self.config, self.store, run_id, Options(**options))
        finally:
            bootstrap.use_clock(None)

    # --- CRM ----------------------------------------------------------------------------

    def now(self) -> str:
        return stamp(self.clock.now())

    def activity(self, activity_id: str) -> dict[str, Any]:
        return self.store.get(ACTIVITIES, activity_id)

    def activities(self) -> dict[str, dict[str, Any]]:
        return {d.id: d.data for d in self.store.scan(ACTIVITIES, order_by="modifiedAt")}

    def put_activity(self, activity_id: str, **fields: Any) -> None:
        self.store.put(
            ACTIVITIES,
            activity_id,
            {"status": "planned", "showInCalendar": True, **fields, "modifiedAt": self.now()},
        )

    def edit_activity(self, activity_id: str, **fields: Any) -> None:
        self.store.put(
            ACTIVITIES,
            activity_id,
            {**self.activity(activity_id), **fields, "modifiedAt": self.now()},
        )

    def links(self, user: str = ALICE) -> dict[str, dict[str, Any]]:
        docs = self.store.scan(LINKS, order_by="crmId")
        return {
            d.data["crmId"]: d.data
            for d in docs
            if d.data["userId"] == user and d.data["section"] == "activities"
        }

    # --- Google -------------------------------------------------------------------------

    def events(self, user: str = ALICE, **params: Any) -> dict[str, dict[str, Any]]:
        """Every event of the user's primary calendar, page by page (pages may be short,
        even empty, and still have a next one)."""
        found: dict[str, dict[str, Any]] = {}
        page = None
        while True:
            answer = (
                self.google[user]
                .calendar.events()
                .list(calendarId="primary", singleEvents=True, maxResults=2500,
                      pageToken=page, **params)
                .execute()
            )  # fmt: skip
            found |= {e["id"]: e for e in answer.get("items", [])}
            page = answer.get("nextPageToken")
            if not page:
                return found

    def event(self, event_id: str, user: str = ALICE) -> dict[str, Any]:
        return (
            self.google[user]
            .calendar.events()
            .get(calendarId="primary", eventId=event_id)
            .execute()
        )

    def insert_event(self, user: str = ALICE, **body: Any) -> dict[str, Any]:
        start = datetime.combine(self.day, datetime.min.time(), UTC) + timedelta(hours=14)
        base = {
            "summary": "From Google",
            "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
        }
        return (
            self.google[user]
            .calendar.events()
            .insert(calendarId="primary", body={**base, **body}, sendUpdates="none")
            .execute()
        )

    def patch_event(self, event_id: str, user: str = ALICE, **body: Any) -> dict[str, Any]:
        return (
            self.google[user]
            .calendar.events()
            .patch(calendarId="primary", eventId=event_id, body=body, sendUpdates="none")
            .execute()
        )

    def close(self) -> None:
        self.store.close()


def now() -> str:
    return stamp(datetime.now(UTC))
