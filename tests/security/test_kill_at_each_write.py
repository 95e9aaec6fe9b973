"""A first contacts push killed (SIGKILL) right after each of its writes, then run again.

Issue 14: "A fault test kills the process at each write of a 2,000-contact push and reruns
it: 0 duplicates, and a rerun succeeds at once."

Each case is a fresh world (the CRM's SQLite store with N privately tagged contacts, a
Google account in the sandbox, the user connected) and a ``main.py sync`` run in a child
process that kills itself with SIGKILL right after its k-th write: a Google write request
(``adapters.people_api`` sends each batchCreateContacts chunk, members:modify, group
create... as one request; whatever is not a GET is a write) or a store commit (a SQLite
put, batch or transaction that wrote). The child talks to the sandbox over HTTP; nothing
in it gets to clean up. Then a fresh process runs the sync again, at once:

* it must succeed then and there, not wait for the dead run's lease to expire (the CLI
  records its host and pid with the lease: ``adapters.process``);
* once a rerun has succeeded (at once, or after the lease expired), Google holds no
  duplicate person (by clientData CRM id or by email), the store no duplicate link,
  every tagged contact is linked exactly once, every group member is linked, and a
  further run plans nothing.

The write points are those of the same push without a kill, listed by that run itself.
``make test`` kills at a sample of them on a 200-contact push (a few seconds a point);
``make test-thorough`` (``CRMSYNC_HYPOTHESIS_PROFILE=thorough``) at every one of a
2,000-contact push, under each sandbox realism profile (minutes).

Run as a script (``python -m tests.security.test_kill_at_each_write KILL_AT OFFSET LOG``)
this module is the child: one CLI sync, killed after write ``KILL_AT`` (0: never), on a
clock ``OFFSET`` seconds ahead of real time, each write point appended to ``LOG``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters import google_api, people_api
from adapters.store_sqlite import SqliteStore
from adapters.stores import open_store
from bench.cost import contact_doc
from core import contact_mapping as cm
from core import email_index
from core.lease import LEASE_SECONDS
from core.model import CONTACTS, stamp
from core.ports import Filter
from functions import bootstrap, cli
from functions.accounts import connect
from tests.integration.conftest import SandboxHandle
from tests.integration.crash import Fuse, LaterClock

ROOT = Path(__file__).resolve().parents[2]
USER, TAG, EMAIL = "u-kill", "t-kill", "kill@example.com"
UNTAGGED = 20  # CRM contacts without the tag: never pushed
THOROUGH = os.environ.get("CRMSYNC_HYPOTHESIS_PROFILE") == "thorough"


# --- the child: one sync that SIGKILLs itself right after its k-th write ----------------


def child(kill_at: int, offset: float, log_path: str) -> int:
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    class Kill(Fuse):
        """``crash.Fuse``, but a real kill: no exception, no finally, no atexit."""

        def write(self, what: str) -> None:
            os.write(log, f"{what}\n".encode())  # in the kernel's hands before the kill
            self.count += 1
            if self.count == self.at:
                os.kill(os.getpid(), signal.SIGKILL)

    fuse = Kill(kill_at)
    execute, write, commit = (people_api.execute, SqliteStore._write,
                              SqliteStore._commit_transaction)  # fmt: skip

    def google(request: Any, *args: Any) -> Any:
        answer = execute(request, *args)
        if request.method != "GET":
            fuse.write(f"google {request.method} {request.methodId}")
        return answer

    def store_write(self: SqliteStore, writes: Any) -> None:
        write(self, writes)
        fuse.write(f"store batch {_written(writes)}")

    def store_transaction(self: SqliteStore, tx: Any) -> None:
        commit(self, tx)
        if tx.writes:
            fuse.write(f"store transaction {_written(tx.writes)}")

    people_api.execute = google
    SqliteStore._write = store_write  # type: ignore[method-assign]
    SqliteStore._commit_transaction = store_transaction  # type: ignore[method-assign]
    if offset:
        bootstrap.use_clock(LaterClock(timedelta(seconds=offset)))
    return cli.main(["sync", "--user", USER, "--section", "contacts", "--json"])


def _written(writes: Any) -> str:
    counts = Counter(w.collection for w in writes)
    return ",".join(f"{c}x{n}" for c, n in sorted(counts.items()))


# --- the parent: worlds, runs, and what must hold after them ----------------------------


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    writes: list[str]
    seconds: float

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL

    def report(self) -> dict[str, Any]:
        (report,) = json.loads(self.stdout)
        return report


class KillWorld:
    """A CRM store with ``n`` tagged contacts (and a few untagged), a fresh sandbox
    account, the user connected; ``sync`` runs ``main.py sync`` in a child process."""

    def __init__(self, folder: Path, sandbox: SandboxHandle, n: int, profile: str) -> None:
        sandbox.control("POST", "/_sandbox/reset")
        sandbox.profile(profile)
        self.sandbox, self.folder, self.n = sandbox, folder, n
        info = sandbox.control("POST", "/_sandbox/accounts", {"email": EMAIL})
        self.url = f"sqlite:///{folder / 'crm.db'}"
        self.store = open_store(self.url)
        now = stamp(datetime.now(UTC) - timedelta(hours=1))  # past the CRM overlap window
        self.store.put("users", USER, {"email": EMAIL})
        self.store.put("tags", TAG, {"name": "Mine", "kind": "private", "ownerId": USER})
        self.store.put("syncSettings", USER, {"contacts": {"tagId": TAG}})
        total = n + UNTAGGED
        for start in range(0, total, 500):
            with self.store.batch() as batch:
                for i in range(start, min(start + 500, total)):
                    batch.put(CONTACTS, crm_id(i), contact_doc(i, now, [TAG] if i < n else []))
        email_index.catch_up(self.store, datetime.now(UTC))  # as the dispatch tick does
        config = bootstrap.Config(store_url=self.url, google_endpoint=sandbox.url,
                                  state_dir=folder / ".crmsync")  # fmt: skip
        connect(config, USER, info["refreshToken"])
        creds = google_api.credentials(info["refreshToken"], sandbox.url)
        self.people = google_api.people_service(creds, sandbox.url)
        self.runs = 0

    def sync(self, kill_at: int = 0, later: bool = False) -> Run:
        """One sync in a fresh process; ``later``: on a clock past the lease a dead run
        left (the sandbox's clock is moved as far)."""
        if later:
            self.sandbox.advance(LEASE_SECONDS + 1)
        offset = self.sandbox.state.clock.offset  # the child's clock is the sandbox's
        self.runs += 1
        log = self.folder / f"writes-{self.runs}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        env |= {"PYTHONPATH": str(ROOT), "CRMSYNC_STORE": self.url,
                "CRMSYNC_GOOGLE_ENDPOINT": self.sandbox.url}  # fmt: skip
        command = [sys.executable, "-m", "tests.security.test_kill_at_each_write",
                   str(kill_at), repr(offset), str(log)]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder,
                              env=env, timeout=600)  # fmt: skip
        writes = log.read_text().splitlines() if log.exists() else []
        return Run(done.returncode, done.stdout, done.stderr, writes,
                   time.monotonic() - started)  # fmt: skip

    # --- what the two sides hold --------------------------------------------------------

    def persons(self) -> list[dict[str, Any]]:
        out, page = [], None
        while True:
            answer = self.people.people().connections().list(
                resourceName="people/me", pageSize=1000, pageToken=page,
                personFields="emailAddresses,clientData,memberships",
            ).execute()  # fmt: skip
            out += answer.get("connections", [])
            page = answer.get("nextPageToken")
            if not page:
                return out

    def links(self) -> list[dict[str, Any]]:
        where = [Filter("userId", "==", USER), Filter("section", "==", "contacts")]
        return [d.data for d in self.store.query("links", where)]

    def problems(self) -> list[str]:
        """What breaks "0 duplicates, every contact linked once" (empty: all holds)."""
        persons = self.persons()
        links = self.links()
        tagged = {crm_id(i) for i in range(self.n)}
        out = []
        by_id = Counter(cm.client_data_id(p) for p in persons)
        by_email = Counter(e["value"].lower() for p in persons
                           for e in p.get("emailAddresses", []))  # fmt: skip
        twice = sorted(i for i, k in by_id.items() if k > 1)
        if twice:
            out.append(f"{len(twice)} CRM ids carried by 2+ persons, e.g. {twice[:3]}")
        twice = sorted(e for e, k in by_email.items() if k > 1)
        if twice:
            out.append(f"{len(twice)} emails on 2+ persons, e.g. {twice[:3]}")
        if len(persons) != self.n:
            out.append(f"{len(persons)} persons in Google, expected {self.n}")
        strays = set(by_id) - tagged
        if strays:
            out.append(f"persons of no tagged contact: {sorted(map(str, strays))[:3]}")
        link_ids = Counter(link["crmId"] for link in links)
        google_ids = Counter(link["googleId"] for link in links)
        if any(k > 1 for k in link_ids.values()) or any(k > 1 for k in google_ids.values()):
            out.append("duplicate links (a CRM id or a person linked twice)")
        if set(link_ids) != tagged:
            missing, extra = tagged - set(link_ids), set(link_ids) - tagged
            out.append(f"{len(missing)} tagged contacts unlinked, e.g. {sorted(missing)[:3]}; "
                       f"{len(extra)} other links")  # fmt: skip
        named = {p["resourceName"]: cm.client_data_id(p) for p in persons}
        wrong = [x["crmId"] for x in links if named.get(x["googleId"]) != x["crmId"]]
        if wrong:
            out.append(f"{len(wrong)} links to a missing or another contact's person")
        group = (self.store.get("syncState", f"{USER}:contacts") or {}).get("groupResourceName")
        members = {p["resourceName"] for p in persons if group in cm.group_names(p)}
        if members != set(google_ids):
            out.append(f"group members {len(members)} != linked persons {len(google_ids)} "
                       f"(unlinked members: {len(members - set(google_ids))})")  # fmt: skip
        return out

    def close(self) -> None:
        self.store.close()


def crm_id(i: int) -> str:
    return f"c{i:05d}"


# --- the sweep: one kill per world, at each chosen write point --------------------------


@dataclass
class Case:
    at: int
    point: str  # the write the child died right after
    killed: bool
    at_once: Run  # the rerun started right after the kill
    later: Run | None  # the rerun after the lease expired (only if the first was refused)
    settled: Run | None  # one more run: must plan nothing
    problems: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.at_once.code != 0

    def describe(self) -> str:
        return f"kill after write #{self.at} ({self.point})"


@dataclass
class Sweep:
    n: int
    profile: str
    points: list[str]  # every write of a run without a kill, in order
    cases: list[Case]
    seconds: float


def sweep(folder: Path, sandbox: SandboxHandle, n: int, profile: str, every: bool) -> Sweep:
    """A run without a kill lists the write points; then one world per chosen point."""
    started = time.monotonic()
    clean = KillWorld(folder / "clean", sandbox, n, profile)
    try:
        whole = clean.sync()
        assert whole.code == 0, whole.stderr
        assert clean.problems() == []
        points = whole.writes
    finally:
        clean.close()
    cases = [kill_and_rerun(folder / f"at-{at}", sandbox, n, profile, at, points[at - 1])
             for at in chosen(points, every)]  # fmt: skip
    return Sweep(n, profile, points, cases, time.monotonic() - started)


def chosen(points: list[str], every: bool) -> list[int]:
    """Every write point, or a sample: each Google write (Google has it, the store does
    not know of it yet), the store commit after the last one (links saved, the run not
    finished), and the run's record (written, its lease not given back)."""
    if every:
        return list(range(1, len(points) + 1))
    google = [at for at, point in enumerate(points, 1) if point.startswith("google")]
    return sorted({*google, google[-1] + 1, len(points) - 1})


def kill_and_rerun(folder: Path, sandbox: SandboxHandle, n: int, profile: str, at: int,
                   point: str) -> Case:  # fmt: skip
    w = KillWorld(folder, sandbox, n, profile)
    try:
        first = w.sync(kill_at=at)
        case = Case(at, point, first.killed, w.sync(), None, None)
        if not case.killed:
            case.problems.append(f"the child was not killed: exit {first.code} {first.stderr}")
            return case
        done = case.at_once
        if case.refused:
            case.later = done = w.sync(later=True)
        if done.code != 0:
            case.problems.append(f"no rerun succeeded: exit {done.code}: {done.stderr[-500:]}")
            return case
        case.problems += w.problems()
        case.settled = w.sync()
        if case.settled.code != 0:
            case.problems.append(f"a further run failed: {case.settled.stderr[-500:]}")
        elif plan := case.settled.report()["plan"]:
            case.problems.append(f"not settled: a further run planned {len(plan)} actions, "
                                 f"e.g. {json.dumps(plan[0])[:300]}")  # fmt: skip
        return case
    finally:
        w.close()


def summary(result: Sweep) -> str:
    lines = [f"{result.n} contacts, profile {result.profile}: {len(result.points)} write "
             f"points, {len(result.cases)} killed, {result.seconds:.0f} s"]  # fmt: skip
    for case in result.cases:
        rerun = "refused" if case.refused else "ok"
        lines.append(f"  #{case.at:3d} {case.point:60s} rerun at once: {rerun:7s} "
                     f"{'; '.join(case.problems) or 'no duplicates, all linked'}")  # fmt: skip
    return "\n".join(lines)


# --- the tests --------------------------------------------------------------------------

QUICK = pytest.param((200, "realistic", False), id="200-sampled-realistic")
EVERY = [pytest.param((2000, profile, True), id=f"2000-every-write-{profile}",
                      marks=pytest.mark.skipif(not THOROUGH, reason="make test-thorough"))
         for profile in ("realistic", "default")]  # fmt: skip
pytestmark = pytest.mark.timeout(1800)  # the 2,000-contact sweeps: a few minutes each


@pytest.fixture(scope="module", params=[QUICK, *EVERY])
def swept(request, sandbox_server, tmp_path_factory) -> Sweep:
    n, profile, every = request.param
    folder = tmp_path_factory.mktemp("kill")
    result = sweep(folder, SandboxHandle(sandbox_server), n, profile, every)
    print("\n" + summary(result))
    return result


def test_the_child_died_at_each_chosen_write(swept):
    assert swept.cases, "no write point"
    kinds = {p.split()[0] for p in swept.points}
    assert kinds == {"google", "store"}, swept.points
    creates = [p for p in swept.points if "batchCreateContacts" in p]
    assert len(creates) == -(-swept.n // 200)  # one request per chunk of 200
    assert [c for c in swept.cases if not c.killed] == []


def test_after_a_kill_at_any_write_a_rerun_leaves_no_duplicate_and_links_every_contact(swept):
    broken = {c.describe(): c.problems for c in swept.cases if c.problems}
    assert broken == {}, summary(swept)


def test_after_a_kill_at_any_write_a_rerun_succeeds_at_once(swept):
    refused = [f"{c.describe()}: {c.at_once.stderr.strip()[-300:]}"
               for c in swept.cases if c.refused]  # fmt: skip
    assert refused == [], "\n".join(refused)


if __name__ == "__main__":
    sys.exit(child(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]))
