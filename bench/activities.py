"""Activities sync benchmarks: HTTP requests and API calls (from the sandbox's counter)
for a first push of N activities, the no-op run after it, and CPU."""

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
from adapters.store_base import open_store
from bench.sandbox_proc import ExternalSandbox
from core.activities_engine import ActivitiesEngine
from core.model import ACTIVITIES, stamp

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
        labels = ("first push", "no-op run (reads the push's echoes)", "no-op run, steady state")
        for label in labels:
            _control(server.url, "/_sandbox/stats", method="DELETE")
            cpu = time.process_time()
            engine.run(USER)
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
