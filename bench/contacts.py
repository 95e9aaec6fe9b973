"""Contacts sync benchmarks: API calls per run from the sandbox's counter, and CPU.

* first push of N tagged contacts (N = 1,000 and 25,000);
* a no-op run right after;
* a run where 1% of the contacts changed (half in the CRM, half in Google);
* the undo of that run (its edits back on both sides);
* the pure planner alone on 25,000 linked pairs with 1% changed.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters import google_api
from adapters.clock import SystemClock
from adapters.google_calls import Retry
from adapters.people_api import PeopleApi
from adapters.stores import open_store
from bench.cost import contact_doc
from bench.sandbox_proc import ExternalSandbox
from core import contact_mapping as cm
from core.contacts_engine import ContactsEngine
from core.contacts_plan import CrmContact, LinkRecord, Person, Snapshot, plan
from core.contacts_undo import ContactsUndo
from core.model import CONTACTS, stamp
from core.runs import Options

USER, TAG = "u-bench", "t-bench"


def _control(url: str, path: str, body: dict | None = None, method: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path, data=data, method=method or ("POST" if data else "GET")
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"{}")


def _contact(i: int, at: str) -> dict[str, Any]:
    return contact_doc(i, at, [TAG])


class Bench:
    def __init__(self, server: ExternalSandbox, folder: Path, n: int) -> None:
        self.url = server.url
        self.store = open_store(f"sqlite:///{folder / f'bench{n}.db'}")
        info = _control(self.url, "/_sandbox/accounts", {"email": f"bench{n}@example.com"})
        creds = google_api.credentials(info["refreshToken"], self.url)
        self.service = google_api.people_service(creds, self.url)
        self.people = PeopleApi(self.service, Retry(attempts=3, base_seconds=0.01))
        now = stamp(datetime.now(UTC) - timedelta(hours=1))  # steady state: past the overlap
        self.store.put("users", USER, {"email": f"bench{n}@example.com"})
        self.store.put("tags", TAG, {"name": "Mine", "kind": "private", "ownerId": USER})
        self.store.put("syncSettings", USER, {"contacts": {"tagId": TAG}})
        for start in range(0, n, 500):
            with self.store.batch() as batch:
                for i in range(start, min(start + 500, n)):
                    batch.put(CONTACTS, f"c{i:06d}", _contact(i, now))
        self.n = n

    def run(self, undo_of: str | None = None) -> tuple[int, float, dict[str, int]]:
        """One run (the undo of run ``undo_of`` if given); the run's id is ``last``."""
        _control(self.url, "/_sandbox/stats", method="DELETE")
        new_id = lambda: uuid.uuid4().hex  # noqa: E731
        engine: ContactsEngine = ContactsEngine(self.store, self.people, SystemClock(),
                                                new_id=new_id)  # fmt: skip
        if undo_of:
            engine = ContactsUndo(self.store, self.people, SystemClock(), new_id=new_id,
                                  undo_of=undo_of)  # fmt: skip
        cpu = time.process_time()
        self.last = engine.run(USER, Options(trigger="undo") if undo_of else Options()).run_id
        cpu = time.process_time() - cpu
        stats = _control(self.url, "/_sandbox/stats")
        return stats["total"], cpu, stats["byMethod"]

    def change_one_percent(self) -> None:
        k = max(2, self.n // 100)
        now = stamp(datetime.now(UTC))
        with self.store.batch() as batch:
            for i in range(0, k // 2):
                doc = self.store.get(CONTACTS, f"c{i:06d}")
                batch.put(CONTACTS, f"c{i:06d}", {**doc, "jobTitle": "changed", "modifiedAt": now})
        links = {
            d.data["crmId"]: d.data["googleId"] for d in self.store.scan("links", order_by="crmId")
        }
        for i in range(k // 2, k):
            name = links[f"c{i:06d}"]
            person = self.service.people().get(resourceName=name, personFields="names").execute()
            person["names"][0]["middleName"] = "M"
            self.service.people().updateContact(resourceName=name, updatePersonFields="names",
                                                body=person).execute()  # fmt: skip


def _describe(calls: dict[str, int]) -> str:
    return ", ".join(f"{k.split('.')[-1]} {v}" for k, v in sorted(calls.items()))


def bench_engine(rows: list[tuple[str, str, str]], sizes: tuple[int, ...]) -> None:
    with ExternalSandbox() as server, tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            bench = Bench(server, Path(folder), n)
            total, cpu, calls = bench.run()
            rows.append(("contacts: first push", f"{n:,}",
                         f"{total} People calls ({_describe(calls)}); {cpu:.1f} s CPU, "
                         f"{cpu / n * 1e6:,.0f} us/contact"))  # fmt: skip
            for label in ("no-op run (reads the first push's echoes)", "no-op run, steady state"):
                total, cpu, calls = bench.run()
                figures = f"{total} People calls ({_describe(calls)}); {cpu * 1e3:.0f} ms CPU"
                rows.append((f"contacts: {label}", f"{n:,}", figures))
            bench.change_one_percent()
            _control(server.url, "/_sandbox/stats", method="DELETE")
            total, cpu, calls = bench.run()
            figures = f"{total} People calls ({_describe(calls)}); {cpu:.2f} s CPU"
            rows.append(("contacts: run with 1% changed", f"{n:,}", figures))
            total, cpu, calls = bench.run(undo_of=bench.last)
            figures = f"{total} People calls ({_describe(calls)}); {cpu:.2f} s CPU"
            rows.append(("contacts: undo of that run", f"{n:,}", figures))
            bench.store.close()


def bench_planner(rows: list[tuple[str, str, str]], n: int = 25_000) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    crm, google, links = {}, {}, {}
    for i in range(n):
        # each side's fields read on their own, as the engine reads them (equal, not the
        # same objects)
        fields, crm_fields, google_fields = (cm.normalize(_contact(i, "")) for _ in range(3))
        cid, name = f"c{i}", f"people/c{i}"
        links[cid] = LinkRecord(cid, name, "e1", cm.fingerprint(fields), fields)
        changed = {**crm_fields, "jobTitle": "x"} if i % 100 == 0 else crm_fields
        crm[cid] = CrmContact(cid, changed, True, t0, frozenset())
        google[name] = Person(name, "e1", google_fields, True, False, t0 + timedelta(1), cid,
                              frozenset({"contactGroups/g"}), frozenset())  # fmt: skip
    snap = Snapshot(crm, google, links, "contactGroups/g", True, True)
    cpu = time.process_time()
    actions = plan(snap)
    cpu = time.process_time() - cpu
    figures = f"{len(actions)} actions; {cpu * 1e3:.0f} ms CPU, {cpu / n * 1e6:.1f} us/pair"
    rows.append(("contacts: planner alone (1% changed)", f"{n:,}", figures))


def bench_link_puts(rows: list[tuple[str, str, str]], n: int = 10_000) -> None:
    """The store's share of saving N links: ``check_document`` alone (the validation and
    copy every put makes), and SQLite batch puts with their commits (500 a batch)."""
    from adapters.store_base import check_document

    docs = []
    for i in range(n):
        fields = cm.normalize(_contact(i, ""))
        docs.append((f"{USER}:contacts:c{i:06d}", {
            "userId": USER, "section": "contacts", "crmId": f"c{i:06d}",
            "googleId": f"people/c{i}", "googleEtag": "%EgUBAj0FBy4aBAECBQciDGV0YWc=",
            "fingerprint": cm.fingerprint(fields), "fields": fields,
            "syncedAt": "2024-01-01T00:00:00.000000Z", "tombstone": False, "parked": False,
        }))  # fmt: skip
    cpu = time.process_time()
    for key, doc in docs:
        check_document("links", key, doc)
    cpu = time.process_time() - cpu
    rows.append(("store: check_document of a link", f"{n:,}", f"{cpu / n * 1e6:.1f} us CPU/doc"))
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'links.db'}")
        cpu = time.process_time()
        for start in range(0, n, 500):
            with store.batch() as batch:
                for key, doc in docs[start : start + 500]:
                    batch.put("links", key, doc)
        cpu = time.process_time() - cpu
        store.close()
    rows.append(("store: SQLite link puts (batches of 500)", f"{n:,}",
                 f"{cpu / n * 1e6:.1f} us CPU/doc"))  # fmt: skip


def bench_ambiguous(rows: list[tuple[str, str, str]]) -> None:
    """A tagged contact whose email two Google contacts hold (the user's to resolve):
    what it costs at the run that finds it, and at each later run while nothing
    changes (it waits in ``retryCrmLater``; before, every run searched for it again and
    the scheduler ran the pair in full at every slot)."""
    from core import schedule
    from core.model import SYNC_STATE

    with ExternalSandbox() as server, tempfile.TemporaryDirectory() as folder:
        bench = Bench(server, Path(folder), 10)
        bench.run()
        for given in ("Dennis", "D. Ritchie"):
            body = cm.to_person({"givenName": given, "emails": [{"value": "dmr@bell.example"}]})
            bench.service.people().createContact(body=body).execute()
        bench.run()  # the two persons' own changes, read once
        at = stamp(datetime.now(UTC) - timedelta(minutes=30))  # past the CRM overlap
        bench.store.put(CONTACTS, "c-dmr", {**_contact(10, at), "givenName": "Dennis",
                                            "emails": [{"value": "dmr@bell.example"}]})  # fmt: skip
        total, _, calls = bench.run()
        rows.append(("contacts: a contact two persons share, found", "1",
                     f"{total} People calls ({_describe(calls)})"))  # fmt: skip
        later = [bench.run() for _ in range(3)]
        state = bench.store.get(SYNC_STATE, f"{USER}:contacts") or {}
        forced = schedule.must_run(state, datetime.now(UTC))
        searches = sum(c.get("people.people.searchContacts", 0) for _, _, c in later)
        rows.append(("contacts: ... 3 later runs, nothing changed", "1",
                     f"{sum(t for t, _, _ in later)} People calls, {searches} searches; "
                     f"a full run forced at each slot: {'yes' if forced else 'no'}"))  # fmt: skip
        bench.store.close()
