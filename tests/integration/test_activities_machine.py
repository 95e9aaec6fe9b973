"""A hypothesis state machine over the activities sync: two connected users (Alice, Bob)
sharing meetings, the real client, the sandbox and SQLite.

Rules create, edit, hide and delete activities in the CRM, and create, edit and cancel
events in either user's Google calendar, sync either user, and take the last run back
(``functions.undo``). After both users have synced (twice each, so that each sees the
other's writes), one more sync of each plans nothing, and:

* one shared meeting is one activity: all links to events of one iCalUID name one
  activity, and no activity is linked to two meetings;
* no resurrection: an event cancelled in Google stays cancelled (unless an undo restored
  it), an activity deleted in the CRM never has a live event again, and an import an
  undo removed is not imported again;
* every live activity a user organizes (in their window) has its event, and every live
  event a user organizes is linked to an activity (unless an undo removed its import);
* the organizer's pairs hold equal synced fields on both sides.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from core import activity_mapping as am
from core.activities_plan import DeleteEvent, ImportEvent, ReconcileEvent
from core.event_undo import RemoveImport
from core.model import ACTIVITIES, SYNC_RUNS, Activity, load
from core.outcome import CONFLICT
from core.runs import Report, journal
from tests.integration.activities_world import ALICE, BOB, CalendarWorld
from tests.integration.conftest import SandboxHandle

USERS = st.sampled_from([ALICE, BOB])
PICK = st.integers(min_value=0, max_value=10_000)
TEXT = st.sampled_from(["alpha", "beta", "gamma"])
COUNTER = itertools.count()
EMAIL = {ALICE: "alice@example.com", BOB: "bob@example.com"}
# the synced fields compared on both sides (participants need the CRM's directory)
COMPARED = ("title", "location", "description", "start", "end", "allDay")
KNOWN = {e.lower() for e in ("ada@analytical.example", "grace@navy.example", *EMAIL.values())}


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
        self.unimported: set[tuple[str, str]] = set()  # (user, event id): import undone
        self.last_run: str | None = None  # the run an undo_last takes back: the last one
        # that planned something (one that planned nothing has nothing to take back)
        self.steps: list[str] = []  # our own log: hypothesis cannot print a flaky failure's

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

    def log(self, step: str, picked: str | None = None) -> None:
        """The step, and what its index fell on (event ids are drawn at random, so the
        same indexes hit other events on a replay)."""
        self.steps.append(step + (f"  # {picked}" if picked else ""))

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
        self.log(f"crm_create({organizer=}, {other=}, {contact=}, {all_day=})", f"a-m{n}")

    @rule(i=PICK, field=st.sampled_from(["title", "location", "description"]), value=TEXT)
    def crm_edit(self, i: int, field: str, value: str) -> None:
        live = self.live_activities()
        self.log(f"crm_edit({i=}, {field=}, {value=})", live[i % len(live)] if live else None)
        if live:
            self.world.edit_activity(live[i % len(live)], **{field: value})

    @rule(i=PICK, hide=st.booleans())
    def crm_delete_or_hide(self, i: int, hide: bool) -> None:
        live = self.live_activities()
        self.log(f"crm_delete_or_hide({i=}, {hide=})", live[i % len(live)] if live else None)
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
        created = self.world.insert_event(user, summary=f"G{next(COUNTER)}", attendees=guests)
        self.log(f"google_create({user=}, {other=}, {contact=})", created["id"])

    @rule(user=USERS, i=PICK, value=TEXT)
    def google_edit(self, user: str, i: int, value: str) -> None:
        own = [e for e in self.own_events(user) if (user, e) not in self.cancelled]
        self.log(f"google_edit({user=}, {i=}, {value=})", own[i % len(own)] if own else None)
        if own:
            self.world.patch_event(own[i % len(own)], user, location=value)

    @rule(user=USERS, i=PICK)
    def google_cancel(self, user: str, i: int) -> None:
        own = [e for e in self.own_events(user) if (user, e) not in self.cancelled]
        self.log(f"google_cancel({user=}, {i=})", own[i % len(own)] if own else None)
        if own:
            target = own[i % len(own)]
            self.world.google[user].calendar.events().delete(
                calendarId="primary", eventId=target, sendUpdates="none"
            ).execute()
            self.cancelled.add((user, target))

    # --- sync and invariants ----------------------------------------------------------

    @rule(user=USERS)
    def sync_one(self, user: str) -> None:
        self.log(f"sync_one({user=})")
        report = self.world.sync(user)
        if report.plan:
            self.last_run = report.run_id

    @rule()
    def sync_everyone(self) -> None:
        self.log("sync_everyone()")
        self.sandbox.settle()  # minutes pass before the scheduled runs
        for user in (ALICE, BOB, ALICE, BOB):
            report = self.world.sync(user)
            if report.plan:
                self.last_run = report.run_id
        for user in (ALICE, BOB):
            again = self.world.sync(user)
            assert again.plan == [], (f"{user}'s sync did not settle: {again.plan}", self.steps)
        self.check()

    @precondition(lambda self: self.last_run is not None)
    @rule()
    def undo_last(self) -> None:
        """The last run taken back (an undo's undo, when the last run was an undo), for
        its own user: items changed since, or with edits not synced yet, are left alone
        as conflicts; the next syncs redo what the activities and events still ask for
        (a push of an activity still in the calendar), never an undone import."""
        self.log("undo_last()", self.last_run)
        undone = self.last_run
        assert undone is not None
        report = self.world.undo(undone)
        others = [e for e in report.errors if e.get("kind") != CONFLICT]
        assert not others, (others, self.steps)
        if report.plan:
            self.last_run = report.run_id
        self.check_restored(undone, report)

    def check_restored(self, undone: str, report: Report) -> None:
        """What the undo did holds: each pair whose fields it took back holds, on each
        side it keeps, the values the undone run's journal says they had before it; an
        unpushed event is deleted and unlinked, an undone import deleted in the CRM and
        unlinked, a removed import back and linked. Notes what the invariants must
        allow from now on (a cancelled event restored, an import removed)."""
        if not report.plan:
            return
        w = self.world
        record = w.store.get(SYNC_RUNS, undone) or {}
        user = record["userId"]
        before: dict[str, dict[str, Any]] = {}
        changes: dict[str, set[str]] = {}
        for entry in journal(w.store, undone, int(record.get("itemPages") or 0)):
            changes.setdefault(entry["crmId"], set()).add(entry["change"])
            for name, values in (entry.get("fields") or {}).items():
                if name in (*COMPARED, "canceled"):
                    before.setdefault(entry["crmId"], {}).setdefault(name, values["before"])
        failed = {e.get("id") for e in report.errors}  # left alone: nothing to check
        events = w.events(user, showDeleted=True)
        links = w.links(user)
        activities = w.activities()
        for action in report.plan:
            crm_id = getattr(action, "activity_id", None) or am.import_id(user, action.event_id)
            where = (crm_id, type(action).__name__, self.steps)
            if crm_id in failed:
                continue
            event = events.get(action.event_id)
            if isinstance(action, DeleteEvent):
                assert event is None or event["status"] == "cancelled", where
                assert crm_id not in links, where
            elif isinstance(action, RemoveImport):
                assert activities[crm_id].get("deletedAt") and crm_id not in links, where
                self.unimported.add((user, action.event_id))
            elif isinstance(action, ImportEvent):
                assert not activities[crm_id].get("deletedAt"), where
                assert links[crm_id]["googleId"] == action.event_id, where
                self.unimported.discard((user, action.event_id))
            elif isinstance(action, ReconcileEvent) and (action.write_crm or action.write_google):
                assert event is not None, where
                # the CRM's side, unless the run deleted the event because the activity
                # had left the calendar: the undo restores the event alone
                crm_side = changes.get(crm_id) != {"deletedInGoogle"}
                # Google's side on an event the user organizes, unless the run imported
                # over an earlier activity (the CRM's values alone go back)
                mine = (event.get("organizer") or {}).get("self")
                google_side = mine and "imported" not in changes.get(crm_id, set())
                doc = activities[crm_id]
                crm = am.from_activity(load(Activity, ACTIVITIES, crm_id, doc), {}, "UTC")
                google = am.from_event(event, KNOWN)
                for name, value in before.get(crm_id, {}).items():
                    if crm_side:
                        assert crm[name] == value, (*where, name, crm[name], value)
                    if google_side:
                        assert google[name] == value, (*where, name, google[name], value)
                if event["status"] != "cancelled":  # a cancelled event restored: no
                    self.cancelled.discard((user, action.event_id))  # longer cancelled

    def check(self) -> None:
        w = self.world
        links = {u: w.links(u) for u in (ALICE, BOB)}
        events = {u: w.events(u, showDeleted=True) for u in (ALICE, BOB)}
        activities = w.activities()
        by_ical: dict[str, set[str]] = {}
        for user in (ALICE, BOB):
            for activity_id, link in links[user].items():
                event = events[user].get(link["googleId"])
                if event is not None:
                    by_ical.setdefault(event["iCalUID"], set()).add(activity_id)
        assert all(len(ids) == 1 for ids in by_ical.values()), (by_ical, self.steps)
        for user, event_id in self.cancelled:
            assert events[user][event_id]["status"] == "cancelled", (event_id, self.steps)
        for activity_id in self.deleted:
            for user in (ALICE, BOB):
                live = events[user].get(am.event_id(activity_id), {}).get("status")
                assert live in (None, "cancelled"), (activity_id, user, self.steps)
        for user, event_id in self.unimported:  # an undone import is not imported again
            removed = am.import_id(user, event_id)
            assert activities[removed].get("deletedAt"), (removed, "imported again", self.steps)
            assert removed not in links[user], (removed, "linked again", self.steps)
        for user in (ALICE, BOB):
            for event_id, event in events[user].items():
                mine = (event.get("organizer") or {}).get("self")
                if mine and event["status"] != "cancelled":
                    linked = {link["googleId"] for link in links[user].values()}
                    # an undone import: the activity is deleted in the CRM and the event
                    # is left unlinked on purpose (linking it would delete it)
                    removed = activities.get(am.import_id(user, event_id), {})
                    if (user, event_id) in self.unimported and removed.get("deletedAt"):
                        continue
                    assert event_id in linked, (f"{user}'s event {event_id} is not linked",
                                                self.steps)  # fmt: skip
            for activity_id, doc in activities.items():
                if (
                    doc.get("organizerId") != user
                    or doc.get("deletedAt")
                    or not doc.get("showInCalendar")
                    or doc.get("status") == "canceled"
                ):
                    continue
                link = links[user].get(activity_id)
                assert link is not None, (f"{user}'s {activity_id} has no event", self.steps)
                event = events[user][link["googleId"]]
                if (event.get("organizer") or {}).get("self"):
                    crm = am.from_activity(load(Activity, ACTIVITIES, activity_id, doc), {}, "UTC")
                    google = am.from_event(event, KNOWN)
                    for key in COMPARED:
                        assert crm[key] == google[key], (activity_id, key, crm[key],
                                                         google[key], self.steps)  # fmt: skip


@pytest.mark.parametrize("profile", ["default", "realistic"])
def test_activities_state_machine(sandbox_server, tmp_path_factory, profile):
    class Machine(ActivitiesMachine):
        sandbox = SandboxHandle(sandbox_server)
        tmp_factory = tmp_path_factory

    Machine.profile = profile

    wanted = max(50, settings().max_examples)
    thorough = settings().max_examples > 100  # make test-thorough: longer histories
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=wanted,
            stateful_step_count=25 if thorough else 10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    print(f"activities state machine ({profile}): {Machine.examples} examples")
    assert Machine.examples >= 50
