"""``python main.py demo``: the walkthrough on embedded defaults, no cloud account needed.

Starts the Google API sandbox in process, creates a fresh local SQLite store with the
sample CRM, connects Alice's Google account (refresh token stored encrypted), and runs
the contacts sync through every case users meet: first push, import from the group,
edits on each side, a merge, a conflict, deletions on each side and a no-op run.
Every step prints what happened and checks the outcome; the exit code is 0 only if
every check held.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters import google_api
from core import activity_mapping as am
from core import contact_mapping as cm
from core.model import ACTIVITIES, CONTACTS, GOOGLE_ACCOUNTS, SYNC_STATE, stamp
from core.runs import Options, Report
from functions import bootstrap, seed
from functions.accounts import connect
from functions.report import summary_line
from functions.sync import run_activities, run_contacts
from functions.undo import undo
from sandbox import SandboxServer

DEMO_DIR = Path(".crmsync/demo")


class Walkthrough:
    """Numbered steps, each printed with its outcome; remembers whether all held."""

    def __init__(self) -> None:
        self.number = 0
        self.failures: list[str] = []

    def step(self, title: str, action: Callable[[], Any], *checks: tuple[str, Callable[[], bool]]):
        self.number += 1
        print(f"\n[{self.number}] {title}", flush=True)
        started = time.perf_counter()
        result = action()
        elapsed = (time.perf_counter() - started) * 1000
        if isinstance(result, Report):
            print(f"    sync: {summary_line(result)}")
            for error in result.errors:
                print(f"    ! {error['id']}: {error['message']}")
        elif result:
            print(f"    {result}")
        for label, check in checks:
            ok = bool(check())
            print(f"    {'ok  ' if ok else 'FAIL'} {label}")
            if not ok:
                self.failures.append(f"{title}: {label}")
        print(f"    ({elapsed:.0f} ms)", flush=True)


class Demo:
    """The sample CRM, Alice's Google account, and the moves a user makes on each side."""

    def __init__(self, url: str, sandbox: Any) -> None:
        self.url = url
        self.clock = sandbox.clock  # the sandbox's: real time plus what `settle` adds
        self.sandbox = sandbox
        self.config = bootstrap.Config(
            store_url=f"sqlite:///{DEMO_DIR / 'crmsync.db'}",
            google_endpoint=url,
            state_dir=DEMO_DIR,
        )
        self.store = bootstrap.store(self.config)
        self.account = self.control("/_sandbox/accounts", {"email": "alice@example.com"})
        self.bob = self.control("/_sandbox/accounts", {"email": "bob@example.com"})
        creds = google_api.credentials(self.account["refreshToken"], url)
        self.people = google_api.people_service(creds, url)  # Alice's own hands on Google
        self.calendar = google_api.calendar_service(creds, url)
        bob_creds = google_api.credentials(self.bob["refreshToken"], url)
        self.bob_calendar = google_api.calendar_service(bob_creds, url)

    def control(self, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def now(self) -> datetime:
        return self.clock.now()

    def settle(self) -> None:
        """Minutes pass before a sync: Google's deltas show writes only after its
        propagation delay (the realistic profile), so let the sandbox's clock move on."""
        delay = self.sandbox.behaviours.people_propagation_seconds
        if delay:
            self.clock.advance(delay + 1)

    def sync(self) -> Report:
        self.settle()
        return run_contacts(self.config, self.store, seed.ALICE, Options(trigger="demo"))

    def sync_calendar(self, user: str = seed.ALICE) -> Report:
        self.settle()
        return run_activities(self.config, self.store, user, Options(trigger="demo"))

    def activity(self, activity_id: str) -> dict[str, Any]:
        return self.store.get(ACTIVITIES, activity_id) or {}

    def edit_activity(self, activity_id: str, **fields: Any) -> None:
        doc = {**self.activity(activity_id), **fields, "modifiedAt": stamp(self.now())}
        self.store.put(ACTIVITIES, activity_id, doc)

    def event(self, event_id: str, calendar: Any = None) -> dict[str, Any]:
        events = (calendar or self.calendar).events()
        return events.get(calendarId="primary", eventId=event_id).execute()

    # the CRM side
    def contact(self, crm_id: str) -> dict[str, Any]:
        return self.store.get(CONTACTS, crm_id) or {}

    def edit_contact(self, crm_id: str, **fields: Any) -> None:
        doc = {**self.contact(crm_id), **fields, "modifiedAt": stamp(self.now())}
        self.store.put(CONTACTS, crm_id, doc)

    # the Google side
    def group(self) -> str:
        return (self.store.get(SYNC_STATE, f"{seed.ALICE}:contacts") or {})["groupResourceName"]

    def persons(self) -> dict[str, dict[str, Any]]:
        """Every contact of Alice's, page by page (a page may be short, even empty)."""
        found: dict[str, dict[str, Any]] = {}
        page = None
        while True:
            answer = (
                self.people.people()
                .connections()
                .list(resourceName="people/me", personFields=cm.PERSON_FIELDS,
                      pageSize=1000, pageToken=page)
                .execute()
            )  # fmt: skip
            found |= {p["resourceName"]: p for p in answer.get("connections", [])}
            page = answer.get("nextPageToken")
            if not page:
                return found

    def members(self) -> dict[str, dict[str, Any]]:
        group = self.group()
        return {n: p for n, p in self.persons().items() if group in cm.group_names(p)}

    def person_of(self, crm_id: str) -> dict[str, Any]:
        return next(p for p in self.persons().values() if cm.client_data_id(p) == crm_id)

    def edit_person(self, name: str, **fields: Any) -> None:
        get = self.people.people().get(resourceName=name, personFields=cm.PERSON_FIELDS)
        person = get.execute()
        body = {**cm.to_person({**cm.from_person(person), **fields}), "etag": person["etag"]}
        self.people.people().updateContact(
            resourceName=name, updatePersonFields=cm.UPDATE_FIELDS, body=body
        ).execute()

    def calls(self) -> dict[str, int]:
        return self.control("/_sandbox/stats", method="GET")["byMethod"]


def run_demo(profile: str | None = None) -> int:
    """The walkthrough on a sandbox with the realism ``profile`` (None:
    ``$CRMSYNC_SANDBOX_PROFILE``, else ``default``)."""
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    with SandboxServer(profile=profile) as server:
        demo = Demo(server.url, server.sandbox)
        bootstrap.use_clock(demo.clock)
        try:
            return walk(demo)
        finally:
            bootstrap.use_clock(None)
            demo.store.close()


def walk(d: Demo) -> int:
    w = Walkthrough()
    print(f"crmsync demo: Google API sandbox at {d.url}, local store {d.config.store_url}")
    s: dict[str, Any] = {}

    def setup() -> str:
        counts = seed.seed(d.store, d.now())
        hedy = cm.to_person({"givenName": "Hedy", "familyName": "Lamarr",
                             "emails": [{"value": "hedy@lamarr.example"}]})  # fmt: skip
        s["hedy"] = d.people.people().createContact(body=hedy).execute()["resourceName"]
        info = connect(d.config, seed.ALICE, d.account["refreshToken"])
        connect(d.config, seed.BOB, d.bob["refreshToken"])
        return (f"CRM: {', '.join(f'{n} {c}' for c, n in counts.items())}\n    Google: "
                f"{info.account_email}, with one Gmail contact (Hedy) outside any group; "
                "refresh token stored encrypted")  # fmt: skip

    stored = lambda: d.store.get(GOOGLE_ACCOUNTS, seed.ALICE) or {}  # noqa: E731
    w.step("Seed the sample CRM, create Alice's Google account and connect it", setup,
           ("the refresh token is stored encrypted, never in plain text",
            lambda: d.account["refreshToken"] not in json.dumps(stored())
            and stored().get("status") == "connected"))  # fmt: skip

    private = {"c-ada", "c-grace", "c-alan", "c-katherine"}
    w.step("First sync: create the group and push Alice's privately tagged contacts", d.sync,
           ("the group 'CRM' exists in Google", lambda: bool(d.group())),
           ("its members are exactly the 4 contacts with Alice's private tag",
            lambda: {cm.client_data_id(p) for p in d.members().values()} == private),
           ("public, corporate and untagged contacts stay out of Google",
            lambda: not {"c-linus", "c-margaret", "c-dennis"}
            & {cm.client_data_id(p) for p in d.persons().values()}))  # fmt: skip

    def move_hedy() -> Report:
        d.people.contactGroups().members().modify(
            resourceName=d.group(), body={"resourceNamesToAdd": [s["hedy"]]}
        ).execute()
        return d.sync()

    def hedy_in_crm() -> dict[str, Any]:
        return next((c.data for c in d.store.scan(CONTACTS, order_by="modifiedAt")
                     if c.data.get("givenName") == "Hedy"), {})  # fmt: skip

    w.step("Alice moves her Gmail contact Hedy into the group; sync", move_hedy,
           ("Hedy is imported into the CRM with Alice's private tag",
            lambda: seed.ALICE_TAG in hedy_in_crm().get("tagIds", [])))  # fmt: skip

    def edit_each_side() -> Report:
        s["ada_title"] = d.contact("c-ada").get("jobTitle")
        d.edit_contact("c-ada", jobTitle="Countess of Lovelace")
        d.edit_person(d.person_of("c-grace")["resourceName"], notes="Found the first bug")
        s["edits"] = d.sync()
        return s["edits"]

    w.step("Edit Ada in the CRM and Grace in Google; sync", edit_each_side,
           ("Ada's new title reached Google",
            lambda: cm.from_person(d.person_of("c-ada"))["jobTitle"] == "Countess of Lovelace"),
           ("Grace's new note reached the CRM",
            lambda: d.contact("c-grace").get("notes") == "Found the first bug"))  # fmt: skip

    def undo_edits() -> Report:
        s["undo"] = undo(d.config, d.store, s["edits"].run_id, Options())
        return s["undo"]

    w.step("Undo that sync (python main.py undo RUN_ID)", undo_edits,
           ("Ada's title is back, in the CRM and in Google",
            lambda: d.contact("c-ada").get("jobTitle") == s["ada_title"]
            == cm.from_person(d.person_of("c-ada"))["jobTitle"]),
           ("Grace's note is gone again on both sides",
            lambda: not d.contact("c-grace").get("notes")
            and not cm.from_person(d.person_of("c-grace"))["notes"]))  # fmt: skip
    w.step("Undo the undo", lambda: undo(d.config, d.store, s["undo"].run_id, Options()),
           ("Ada's new title is back on both sides",
            lambda: d.contact("c-ada").get("jobTitle") == "Countess of Lovelace"
            == cm.from_person(d.person_of("c-ada"))["jobTitle"]),
           ("and Grace's note",
            lambda: d.contact("c-grace").get("notes") == "Found the first bug"))  # fmt: skip

    def edit_different_fields() -> Report:
        d.edit_contact("c-alan", jobTitle="Cryptanalyst")
        d.edit_person(d.person_of("c-alan")["resourceName"], notes="Broke Enigma")
        return d.sync()

    both_kept = lambda f: (f["jobTitle"], f["notes"]) == ("Cryptanalyst", "Broke Enigma")  # noqa: E731
    w.step("Alan: the CRM edits his title, Google edits his notes; sync", edit_different_fields,
           ("both edits are kept in the CRM", lambda: both_kept(cm.normalize(d.contact("c-alan")))),
           ("both edits are kept in Google",
            lambda: both_kept(cm.from_person(d.person_of("c-alan")))))  # fmt: skip

    def edit_same_field() -> Report:
        d.edit_contact("c-katherine", jobTitle="Mathematician (CRM, earlier)")
        time.sleep(0.01)
        d.edit_person(d.person_of("c-katherine")["resourceName"],
                      jobTitle="Space scientist (Google, later)")  # fmt: skip
        return d.sync()

    later = "Space scientist (Google, later)"
    w.step("Katherine: both sides edit her title, Google last; sync", edit_same_field,
           ("the most recent edit wins in the CRM",
            lambda: d.contact("c-katherine").get("jobTitle") == later),
           ("and in Google",
            lambda: cm.from_person(d.person_of("c-katherine"))["jobTitle"] == later))  # fmt: skip

    def delete_in_google() -> Report:
        s["grace"] = d.person_of("c-grace")["resourceName"]
        d.people.people().deleteContact(resourceName=s["grace"]).execute()
        return d.sync()

    grace_kept = lambda: seed.ALICE_TAG not in d.contact("c-grace").get("tagIds", ["?"])  # noqa: E731
    w.step("Alice deletes Grace in Google; sync", delete_in_google,
           ("Grace is still in the CRM, without the private tag", grace_kept))  # fmt: skip

    def delete_in_crm() -> Report:
        s["alan"] = d.person_of("c-alan")["resourceName"]
        d.edit_contact("c-alan", deletedAt=stamp(d.now()))
        return d.sync()

    w.step("Alan is deleted in the CRM; sync", delete_in_crm,
           ("Alan's Google contact left the group", lambda: s["alan"] not in d.members()),
           ("but is still in Google", lambda: s["alan"] in d.persons()))  # fmt: skip

    def no_op() -> Report:
        d.control("/_sandbox/stats", method="DELETE")
        return d.sync()

    one_list = {"people.people.connections.list": 1}
    w.step("Sync again with no changes", no_op,
           ("exactly one People call", lambda: d.calls() == one_list))  # fmt: skip

    walk_calendar(d, w)
    if w.failures:
        print(f"\ndemo FAILED: {len(w.failures)} check(s) did not hold:")
        print("\n".join(f"  - {f}" for f in w.failures))
        return 1
    print(f"\ndemo passed: all {w.number} steps held")
    return 0


def walk_calendar(d: Demo, w: Walkthrough) -> None:
    """The activities half: Alice's primary calendar, and a meeting shared with Bob."""
    s: dict[str, Any] = {}
    kickoff, offsite = am.event_id("a-kickoff"), am.event_id("a-offsite")

    def first() -> Report:
        return d.sync_calendar()

    def offsite_dates() -> bool:
        event, crm = d.event(offsite), d.activity("a-offsite")
        last = datetime.fromisoformat(event["end"]["date"]).date() - timedelta(days=1)
        return event["start"]["date"] == crm["start"] and last.isoformat() == crm["end"]

    w.step(
        "First calendar sync: Alice's activities marked 'display in calendar'",
        first,
        (
            "the kick-off is in Alice's calendar, Ada invited",
            lambda: (
                [a["email"] for a in d.event(kickoff)["attendees"]] == ["ada@analytical.example"]
            ),
        ),
        ("the all-day offsite keeps its exact dates", offsite_dates),
        ("the hidden note stays out", lambda: not _exists(d, am.event_id("a-internal-note"))),
        (
            "no invitation email was sent",
            lambda: d.control("/_sandbox/calendar/outbox", method="GET")["messages"] == [],
        ),
    )

    def import_lunch() -> Report:
        day = (d.now() + timedelta(days=4)).date()
        body = {
            "summary": "Lunch with Grace",
            "start": {"dateTime": f"{day}T12:00:00Z"},
            "end": {"dateTime": f"{day}T13:00:00Z"},
            "attendees": [{"email": "grace@navy.example"}, {"email": "chef@bistro.example"}],
        }
        s["lunch"] = (
            d.calendar.events()
            .insert(calendarId="primary", body=body, sendUpdates="none")
            .execute()["id"]
        )
        return d.sync_calendar()

    def lunch() -> dict[str, Any]:
        return d.activity(f"gcal-{seed.ALICE}-{s['lunch']}")

    w.step(
        "Alice creates a lunch in Google with Grace and the chef; sync",
        import_lunch,
        ("it is imported as Alice's activity", lambda: lunch().get("organizerId") == seed.ALICE),
        (
            "Grace, a CRM contact, is a participant; the chef, unknown, is not",
            lambda: [p.get("contactId") for p in lunch().get("participants", [])] == ["c-grace"],
        ),
    )

    def edit_both() -> Report:
        d.edit_activity("a-kickoff", title="Kick-off with Ada (agenda v2)")
        d.calendar.events().patch(
            calendarId="primary",
            eventId=s["lunch"],
            sendUpdates="none",
            body={"location": "Bistro, 2nd floor"},
        ).execute()
        return d.sync_calendar()

    w.step(
        "Edit the kick-off in the CRM and the lunch in Google; sync",
        edit_both,
        (
            "the new title reached Google",
            lambda: d.event(kickoff)["summary"] == "Kick-off with Ada (agenda v2)",
        ),
        (
            "the new location reached the CRM",
            lambda: lunch().get("location") == "Bistro, 2nd floor",
        ),
    )

    def shared() -> Report:
        day = (d.now() + timedelta(days=5)).date()
        d.store.put(
            ACTIVITIES,
            "a-planning",
            {
                "title": "Quarterly planning",
                "start": f"{day}T14:00:00Z",
                "end": f"{day}T15:00:00Z",
                "showInCalendar": True,
                "organizerId": seed.ALICE,
                "status": "planned",
                "participants": [{"userId": seed.BOB}, {"contactId": "c-katherine"}],
                "modifiedAt": stamp(d.now()),
            },
        )
        d.sync_calendar(seed.ALICE)
        s["before"] = len(list(d.store.scan(ACTIVITIES, order_by="modifiedAt")))
        return d.sync_calendar(seed.BOB)

    w.step(
        "Alice plans a meeting with Bob in the CRM; Alice syncs, then Bob",
        shared,
        (
            "Bob's calendar has the meeting",
            lambda: (
                d.event(am.event_id("a-planning"), d.bob_calendar)["summary"]
                == "Quarterly planning"
            ),
        ),
        (
            "Bob's sync linked it: still one activity",
            lambda: len(list(d.store.scan(ACTIVITIES, order_by="modifiedAt"))) == s["before"],
        ),
    )

    def bob_edits() -> Report:
        d.edit_activity("a-planning", location="Board room")  # Bob, in the CRM
        d.sync_calendar(seed.BOB)
        return d.sync_calendar(seed.ALICE)

    w.step(
        "Bob edits the meeting in the CRM; Bob syncs, then Alice",
        bob_edits,
        (
            "the organizer's sync carried Bob's edit to Google",
            lambda: d.event(am.event_id("a-planning"))["location"] == "Board room",
        ),
    )

    def cancel() -> Report:
        d.calendar.events().delete(
            calendarId="primary", eventId=s["lunch"], sendUpdates="none"
        ).execute()
        s["cancel"] = d.sync_calendar()
        return s["cancel"]

    w.step(
        "Alice cancels the lunch in Google; sync",
        cancel,
        ("the activity is canceled, not deleted", lambda: lunch().get("status") == "canceled"),
    )
    w.step(
        "That was the wrong lunch: undo that sync",
        lambda: undo(d.config, d.store, s["cancel"].run_id, Options()),
        ("the event is back in her calendar",
         lambda: d.event(s["lunch"])["status"] == "confirmed"),
        ("and the activity is planned again", lambda: lunch().get("status") == "planned"),
    )  # fmt: skip

    def delete() -> Report:
        d.edit_activity("a-offsite", deletedAt=stamp(d.now()))
        return d.sync_calendar()

    w.step(
        "The offsite is deleted in the CRM; sync",
        delete,
        (
            "its event is deleted from Alice's calendar",
            lambda: d.event(offsite)["status"] == "cancelled",
        ),
    )

    def no_op() -> Report:
        d.sync_calendar()  # reads the echoes of the last run's writes
        d.control("/_sandbox/stats", method="DELETE")
        return d.sync_calendar()

    w.step(
        "Sync the calendar again with no changes",
        no_op,
        ("exactly one Calendar call", lambda: d.calls() == {"calendar.events.list": 1}),
    )


def _exists(d: Demo, event_id: str) -> bool:
    try:
        d.event(event_id)
    except Exception:
        return False
    return True
