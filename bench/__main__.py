"""``python -m bench``: store throughput and Google API calls per operation on the sandbox.

Figures are measured, not asserted: wall and CPU time per record, and the sandbox's
request counter for API calls. Sizes are modest so the run takes well under a minute
on a 2-core machine; set ``BENCH_SCALE`` (default 1) to multiply them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from adapters import google_api
from adapters.stores import open_store
from bench.sandbox_proc import ExternalSandbox
from core import contact_mapping as cm
from core.ports import Filter

SCALE = int(os.environ.get("BENCH_SCALE", "1"))
ROWS: list[tuple[str, str, str]] = []


def measure(
    name: str, records: int, fn: Callable[[], object], calls: Callable[[], int] | None = None
):
    before = calls() if calls else 0
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    used = (calls() - before) if calls else None
    per = f"{cpu / records * 1e6:,.0f} us CPU/record, {wall:,.2f} s wall"
    ROWS.append((name, f"{records:,}", per + (f", {used} API calls" if used is not None else "")))


def bench_sqlite(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'bench.db'}")

        def write():
            for start in range(0, n, 500):
                with store.batch() as batch:
                    for i in range(start, min(start + 500, n)):
                        stamp = f"2024-01-01T00:{i // 1000 % 60:02d}:{i % 60:02d}.000000Z"
                        batch.put(
                            "contacts",
                            f"c{i:06d}",
                            {
                                "givenName": f"N{i}",
                                "tagIds": ["t1" if i % 2 else "t2"],
                                "modifiedAt": stamp,
                            },
                        )

        def page_all():
            assert sum(1 for _ in store.scan("contacts", order_by="modifiedAt")) == n

        def tagged():
            assert (
                len(store.query("contacts", [Filter("tagIds", "array_contains", "t1")])) == n // 2
            )

        def lease():
            for i in range(200):
                store.transaction(lambda tx, i=i: tx.put("syncState", "u:contacts", {"n": i}))

        measure("sqlite: batched put (500/batch)", n, write)
        measure("sqlite: scan ordered by modifiedAt", n, page_all)
        measure("sqlite: array_contains query", n // 2, tagged)
        measure("sqlite: transaction (lease write)", 200, lease)
        store.close()


def bench_people(n: int) -> None:
    with ExternalSandbox() as server:

        def control(path, body=None):
            req = urllib.request.Request(
                server.url + path,
                method="POST" if body else "GET",
                data=json.dumps(body).encode() if body else None,
            )
            return json.loads(urllib.request.urlopen(req).read())

        info = control("/_sandbox/accounts", {"email": "bench@example.com"})
        people = google_api.people_service(
            google_api.credentials(info["refreshToken"], server.url), server.url
        )
        calls = lambda: control("/_sandbox/stats")["total"]  # noqa: E731

        def push():
            for start in range(0, n, 200):
                entries = [{"contactPerson": {**cm.to_person({"givenName": f"G{i}",
                            "emails": [{"value": f"p{i}@example.com"}]}),
                            "clientData": [{"key": cm.CLIENT_DATA_KEY, "value": f"c{i}"}]}}
                           for i in range(start, min(start + 200, n))]  # fmt: skip
                people.people().batchCreateContacts(
                    body={"contacts": entries, "readMask": "metadata"}
                ).execute()

        def full_read():
            page, seen = None, 0
            while True:
                answer = people.people().connections().list(
                    resourceName="people/me", personFields=cm.PERSON_FIELDS, pageSize=1000,
                    requestSyncToken=True, pageToken=page).execute()  # fmt: skip
                seen += len(answer.get("connections", []))
                page = answer.get("nextPageToken")
                if not page:
                    return answer["nextSyncToken"]

        measure("people: first push via batchCreateContacts", n, push, calls)
        measure("people: full read, pageSize 1000, sync token", n, full_read, calls)


def main() -> None:
    from bench.activities import bench_planner as bench_activities_planner
    from bench.contacts import bench_ambiguous, bench_engine, bench_link_puts, bench_planner

    bench_sqlite(10_000 * SCALE)
    bench_link_puts(ROWS, 10_000 * SCALE)
    bench_people(1_000 * SCALE)
    bench_planner(ROWS, 25_000 * SCALE)
    bench_activities_planner(ROWS, 25_000 * SCALE)
    sizes = tuple(int(s) for s in os.environ.get("BENCH_CONTACTS", "1000,25000").split(","))
    bench_engine(ROWS, sizes)
    bench_ambiguous(ROWS)
    from bench.activities import bench_activities

    bench_activities(ROWS, 1_000 * SCALE)
    width = max(len(r[0]) for r in ROWS)
    print(f"{'benchmark':<{width}}  {'records':>8}  figures")
    for name, records, figures in ROWS:
        print(f"{name:<{width}}  {records:>8}  {figures}")
    if os.environ.get("BENCH_COST", "1") != "0":  # BENCH_COST=0 skips the cost scenarios
        from bench.cost import main as cost

        print()
        cost([])


if __name__ == "__main__":
    main()
