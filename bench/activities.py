"""Activities sync benchmarks: HTTP requests and API calls (from the sandbox's counter)
for a first push of N activities, the no-op run after it, the undo of the push, and CPU."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters import google_api
from adapters.calendar_api import CalendarApi
from adapters.clock import SystemClock
from adapters.google_calls import Retry
from adapters.stores import open_store
from bench.sandbox_proc import ExternalSandbox
from core.activities_engine import ActivitiesEngine
from core.activities_undo import ActivitiesUndo
from core.model import ACTIVITIES, stamp
from core.runs import Options

USER = "u-bench"


def _control(url: str, path: str, body: dict | None = None, method: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path, data=data, method=method or ("POST" if data else "GET")
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"{}")


def bench_activities(rows: list[tuple[str, str, str]], n: int = 1000) -> None:
    with ExternalSandbox() as server, tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'acts.db'}")
        info = _control(server.url, "/_sandbox/accounts", {"email": "bench@example.com"})
        store.put("users", USER, {"email": "bench@example.com", "timeZone": "Europe/Berlin"})
        store.put(
            "googleAccounts",
            USER,
            {
                "status": "connected",
                "refreshTokenCiphertext": "x",
                "connectedAt": stamp(datetime.now(UTC)),
            },
        )
        now = datetime.now(UTC)
        old = stamp(now - timedelta(hours=1))
        for start in range(0, n, 500):
            with store.batch() as batch:
                for i in range(start, min(start + 500, n)):
                    begin = now + timedelta(days=1 + i % 90, hours=i % 8)
                    batch.put(
                        ACTIVITIES,
                        f"a{i:05d}",
                        {
                            "title": f"Meeting {i}",
                            "start": begin.isoformat(),
                            "end": (begin + timedelta(minutes=30)).isoformat(),
                            "showInCalendar": True,
                            "organizerId": USER,
                            "status": "planned",
                            "participants": [{"email": f"guest{i % 50}@example.com"}],
                            "modifiedAt": old,
                        },
                    )
        creds = google_api.credentials(info["refreshToken"], server.url)
        calendar = CalendarApi(
            google_api.calendar_service(creds, server.url),
            server.url,
            Retry(attempts=3, base_seconds=0.01),
        )
        engine = ActivitiesEngine(store, calendar, SystemClock(), new_id=lambda: uuid.uuid4().hex)
        labels = ("first push", "no-op run (reads the push's echoes)", "no-op run, steady state",
                  "undo of the first push (every event deleted)")  # fmt: skip
        pushed = ""
        for label in labels:
            _control(server.url, "/_sandbox/stats", method="DELETE")
            cpu = time.process_time()
            if label.startswith("undo"):
                ActivitiesUndo(store, calendar, SystemClock(), new_id=lambda: uuid.uuid4().hex,
                               undo_of=pushed).run(USER, Options(trigger="undo"))  # fmt: skip
            else:
                ran = engine.run(USER).run_id
                pushed = pushed or ran
            cpu = time.process_time() - cpu
            stats = _control(server.url, "/_sandbox/stats")
            calls = ", ".join(
                f"{k.split('.')[-1]} {v}" for k, v in sorted(stats["byMethod"].items())
            )
            rows.append(
                (
                    f"activities: {label}",
                    f"{n:,}",
                    f"{stats['httpRequests']} HTTP requests, {stats['total']} API calls "
                    f"({calls}); {cpu:.2f} s CPU",
                )
            )
        store.close()


def bench_planner(rows: list[tuple[str, str, str]], n: int = 25_000) -> None:
    """The pure planner alone on N linked pairs with 1% changed (half in the CRM, half in
    Google), each side's fields read on their own (equal, not the same objects)."""
    from core import activity_mapping as am
    from core.activities_plan import ActivitySnapshot, CalEvent, CrmActivity, EventLink, plan

    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def fields(i: int) -> dict:
        begin = t0 + timedelta(days=1 + i % 90, hours=i % 8)
        return am.normalize({
            "title": f"Meeting {i}", "start": begin.isoformat(),
            "end": (begin + timedelta(minutes=30)).isoformat(), "timeZone": "Europe/Berlin",
            "attendees": [{"email": f"guest{i % 50}@example.com", "response": "accepted"}],
        })  # fmt: skip

    crm, google, links = {}, {}, {}
    for i in range(n):
        aid, eid = f"a{i:05d}", f"e{i:05d}"
        synced, ours, theirs = fields(i), fields(i), fields(i)
        if i % 200 == 0:
            ours["title"] = "changed"
        elif i % 200 == 100:
            theirs["location"] = "Room 1"
        links[aid] = EventLink(aid, eid, "1", am.fingerprint(synced), synced)
        crm[aid] = CrmActivity(aid, ours, True, False, True, t0)
        google[eid] = CalEvent(eid, "1", theirs, f"{eid}@google.com", True, "me@example.com",
                               False, True, t0 + timedelta(1), aid)  # fmt: skip
    snap = ActivitySnapshot(crm, google, links, True, True)
    cpu = time.process_time()
    actions = plan(snap)
    cpu = time.process_time() - cpu
    figures = f"{len(actions)} actions; {cpu * 1e3:.0f} ms CPU, {cpu / n * 1e6:.1f} us/pair"
    rows.append(("activities: planner alone (1% changed)", f"{n:,}", figures))
