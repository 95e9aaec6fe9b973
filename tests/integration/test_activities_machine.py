"""A hypothesis state machine over the activities sync: two connected users (Alice, Bob)
sharing meetings, the real client, the sandbox and SQLite.

Rules create, edit, hide and delete activities in the CRM, and create, edit and cancel
events in either user's Google calendar, and sync either user. After both users have
synced (twice each, so that each sees the other's writes), one more sync of each plans
nothing, and:

* one shared meeting is one activity: all links to events of one iCalUID name one
  activity, and no activity is linked to two meetings;
* no resurrection: an event cancelled in Google stays cancelled, and an activity
  deleted in the CRM never has a live event again;
* every live activity a user organizes (in their window) has its event, and every live
  event a user organizes is linked to an activity;
* the organizer's pairs hold equal synced fields on both sides.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from core import activity_mapping as am
from core.model import ACTIVITIES, Activity, load
from tests.integration.activities_world import ALICE, BOB, CalendarWorld
from tests.integration.conftest import SandboxHandle

USERS = st.sampled_from([ALICE, BOB])
PICK = st.integers(min_value=0, max_value=10_000)
TEXT = st.sampled_from(["alpha", "beta", "gamma"])
COUNTER = itertools.count()
EMAIL = {ALICE: "alice@example.com", BOB: "bob@example.com"}


class Accounts:
    """make_account for CalendarWorld, outside a pytest fixture."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self.sandbox = sandbox

    def __call__(self, email: str) -> Any:
        from adapters import google_api

        info = self.sandbox.control("POST", "/_sandbox/accounts", {"email": email})
        creds = google_api.credentials(info["refreshToken"], self.sandbox.url)

        class Account:
            refresh_token = info["refreshToken"]
            calendar = google_api.calendar_service(creds, self.sandbox.url)

        return Account


class ActivitiesMachine(RuleBasedStateMachine):
    sandbox: SandboxHandle
    tmp_factory: Any
    profile = "default"  # the sandbox's realism profile (sandbox.realism)
    examples = 0

    @initialize()
    def start(self) -> None:
        type(self).examples += 1
        self.sandbox.control("POST", "/_sandbox/reset")
        self.sandbox.profile(self.profile)
        self.world = CalendarWorld(
            self.tmp_factory.mktemp("acts"), self.sandbox, Accounts(self.sandbox)
        )
        self.cancelled: set[tuple[str, str]] = set()  # (user, event id) cancelled in Google
        self.deleted: set[str] = set()  # activities deleted in the CRM

    def teardown(self) -> None:
        if hasattr(self, "world"):
            self.world.close()

    def live_activities(self) -> list[str]:
        return sorted(
            a
            for a, d in self.world.activities().items()
            if not d.get("deletedAt") and d.get("status") != "canceled"
        )

    def own_events(self, user: str) -> list[str]:
        return sorted(
            e
            for e, ev in self.world.events(user).items()
            if (ev.get("organizer") or {}).get("self")
        )

    # --- CRM --------------------------------------------------------------------------

    @rule(organizer=USERS, other=st.booleans(), contact=st.booleans(), all_day=st.booleans())
    def crm_create(self, organizer: str, other: bool, contact: bool, all_day: bool) -> None:
        n = next(COUNTER)
        day = self.world.day + timedelta(days=n % 5)
        people = ([{"userId": BOB if organizer == ALICE else ALICE}] if other else []) + (
            [{"contactId": "c-grace"}] if contact else []
        )
        times = (
            {"allDay": True, "start": day.isoformat(), "end": day.isoformat()}
            if all_day
            else {"start": f"{day}T{9 + n % 8:02d}:00:00Z", "end": f"{day}T{10 + n % 8:02d}:00:00Z"}
        )
        self.world.put_activity(
            f"a-m{n}", title=f"M{n}", organizerId=organizer, participants=people, **times
        )

    @rule(i=PICK, field=st.sampled_from(["title", "location", "description"]), value=TEXT)
    def crm_edit(self, i: int, field: str, value: str) -> None:
        live = self.live_activities()
        if live:
            self.world.edit_activity(live[i % len(live)], **{field: value})

    @rule(i=PICK, hide=st.booleans())
    def crm_delete_or_hide(self, i: int, hide: bool) -> None:
        live = self.live_activities()
        if live:
            target = live[i % len(live)]
            if hide:
                self.world.edit_activity(target, showInCalendar=False)
            else:
                self.world.edit_activity(target, deletedAt="2030-01-01T00:00:00Z")
            self.deleted.add(target)

    # --- Google -----------------------------------------------------------------------

    @rule(user=USERS, other=st.booleans(), contact=st.booleans())
    def google_create(self, user: str, other: bool, contact: bool) -> None:
        guests = ([{"email": EMAIL[BOB if user == ALICE else ALICE]}] if other else []) + (
            [{"email": "ada@analytical.example"}] if contact else []
        )
        self.world.insert_event(user, summary=f"G{next(COUNTER)}", attendees=guests)

    @rule(user=USERS, i=PICK, value=TEXT)
    def google_edit(self, user: str, i: int, value: str) -> None:
        own = [e for e in self.own_events(user) if (user, e) not in self.cancelled]
        if own:
            self.world.patch_event(own[i % len(own)], user, location=value)

    @rule(user=USERS, i=PICK)
    def google_cancel(self, user: str, i: int) -> None:
        own = [e for e in self.own_events(user) if (user, e) not in self.cancelled]
        if own:
            target = own[i % len(own)]
            self.world.google[user].calendar.events().delete(
                calendarId="primary", eventId=target, sendUpdates="none"
            ).execute()
            self.cancelled.add((user, target))

    # --- sync and invariants ----------------------------------------------------------

    @rule(user=USERS)
    def sync_one(self, user: str) -> None:
        self.world.sync(user)

    @rule()
    def sync_everyone(self) -> None:
        self.sandbox.settle()  # minutes pass before the scheduled runs
        for user in (ALICE, BOB, ALICE, BOB):
            self.world.sync(user)
        for user in (ALICE, BOB):
            again = self.world.sync(user)
            assert again.plan == [], f"{user}'s sync did not settle: {again.plan}"
        self.check()

    def check(self) -> None:
        w = self.world
        links = {u: w.links(u) for u in (ALICE, BOB)}
        events = {u: w.events(u, showDeleted=True) for u in (ALICE, BOB)}
        by_ical: dict[str, set[str]] = {}
        for user in (ALICE, BOB):
            for activity_id, link in links[user].items():
                event = events[user].get(link["googleId"])
                if event is not None:
                    by_ical.setdefault(event["iCalUID"], set()).add(activity_id)
        assert all(len(ids) == 1 for ids in by_ical.values()), f"one meeting, many: {by_ical}"
        for user, event_id in self.cancelled:
            assert events[user][event_id]["status"] == "cancelled", "a cancelled event is back"
        for activity_id in self.deleted:
            for user in (ALICE, BOB):
                live = events[user].get(am.event_id(activity_id), {}).get("status")
                assert live in (None, "cancelled"), f"{activity_id} resurrected for {user}"
        for user in (ALICE, BOB):
            for event_id, event in events[user].items():
                mine = (event.get("organizer") or {}).get("self")
                if mine and event["status"] != "cancelled":
                    linked = {link["googleId"] for link in links[user].values()}
                    assert event_id in linked, f"{user}'s event {event_id} is not linked"
            for activity_id, doc in w.activities().items():
                if (
                    doc.get("organizerId") != user
                    or doc.get("deletedAt")
                    or not doc.get("showInCalendar")
                    or doc.get("status") == "canceled"
                ):
                    continue
                link = links[user].get(activity_id)
                assert link is not None, f"{user}'s activity {activity_id} has no event"
                event = events[user][link["googleId"]]
                if (event.get("organizer") or {}).get("self"):
                    known = {
                        e.lower()
                        for e in ("ada@analytical.example", "grace@navy.example", *EMAIL.values())
                    }
                    crm = am.from_activity(load(Activity, ACTIVITIES, activity_id, doc), {}, "UTC")
                    google = am.from_event(event, known)
                    for key in ("title", "location", "description", "start", "end", "allDay"):
                        assert crm[key] == google[key], (activity_id, key, crm[key], google[key])


@pytest.mark.parametrize("profile", ["default", "realistic"])
def test_activities_state_machine(sandbox_server, tmp_path_factory, profile):
    class Machine(ActivitiesMachine):
        sandbox = SandboxHandle(sandbox_server)
        tmp_factory = tmp_path_factory

    Machine.profile = profile

    wanted = max(50, settings().max_examples)
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=wanted,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    print(f"activities state machine ({profile}): {Machine.examples} examples")
    assert Machine.examples >= 50
