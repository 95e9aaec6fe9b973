"""``python -m bench.cost``: what crmsync costs on Google Cloud, per run and per user-month.

Each scenario is prepared in one subprocess and measured in a fresh one, so that peak
RSS is the measured step's own (VmHWM; see ``peak_rss_mib``). The measured step counts:

* store operations, through ``CountingStore`` below, as Firestore *bills* them;
* Google API calls and HTTP requests, from the sandbox's ``/_sandbox/stats``, and
  OAuth token refreshes, counted in the client (the sandbox does not count them);
* KMS decrypts (``bootstrap.cipher(...).decrypt``: a Cloud KMS call in production);
* CPU seconds (``time.process_time``) and wall time; runs are timed with the real
  latencies put back (see ASSUMED_GOOGLE_HTTP_LATENCY_S), ticks are modelled.

Then it prices them with the list prices below (the ONE place they are written) into
$ per run, $ per dispatch tick, and $ per connected user-month at 15-minute intervals
for both sections.

Knobs (environment): ``BENCH_COST_TICK_USERS`` (default ``1000,10000,100000``),
``BENCH_COST_ECHO`` (contacts of the echo scenario; default 5000 to keep ``make bench``
short, 25000 for the 200 MiB target, 0 skips it), ``BENCH_COST_CRM`` (contacts of the
large CRM, default 5000), ``BENCH_COST_USERS`` (users of the large CRM, default 1000),
``BENCH_COST_ONLY`` (comma-separated scenario keys or prefixes: batch, noop, crm,
google, import, echo, tick-1000-, ...; a "1% due" tick needs its "0%" one before it).
``--out FILE`` also writes the report, ``--json FILE`` the raw measurements, and
``--reprice FILE`` prices saved measurements again without measuring. ``make bench``
runs it after the other benchmarks (``BENCH_COST=0`` skips it).

It runs against whatever tree it sits in, old or new: entry points are found by
feature detection (``dispatch(..., send=)`` or a patched ``open_queue``; ``job_for``
for a scheduled job's probe; slots in ``syncState`` when ``core.schedule`` has them).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import logging
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).absolute().parents[1]

# ======================================================================================
# PRICES: the one place. USD list prices, without free tiers or committed-use discounts.
# What infra/ deploys (infra/variables.tf): functions, topics and the key ring in
# var.region = "europe-west1" (a Tier 1 Cloud Run region), Firestore in
# var.firestore_location = "eur3" (the Europe multi-region). So we price eur3, not a
# regional location (regional ones, e.g. us-central1, are half these Firestore prices).
# Sources were read on 2026-12-02 (stored copies of the pages).
# ======================================================================================

# Firestore Standard edition, multi-region, per document operation.
# https://cloud.google.com/firestore/pricing (and firebase.google.com/docs/firestore/
# pricing): multi-region "Document reads $0.06 per 100,000 documents, Document writes
# $0.18 per 100,000, Document deletes $0.02 per 100,000". The stored copy shows these
# for the US multi-region (nam5); eur3, the other multi-region, is taken at the same
# prices (check the eur3 tab of the live page).
FIRESTORE_READ_USD = 0.06 / 100_000
FIRESTORE_WRITE_USD = 0.18 / 100_000
FIRESTORE_DELETE_USD = 0.02 / 100_000

# Cloud Run functions (gen2) are billed as Cloud Run, request-based billing, Tier 1.
# https://cloud.google.com/run/pricing: "$0.00002400 / vCPU-second", "$0.00000250 /
# GiB-second", "$0.40 / million requests"; usage is "rounded up to the nearest 100
# millisecond". (https://cloud.google.com/functions/pricing points there for gen2.)
RUN_VCPU_SECOND_USD = 0.000024
RUN_GIB_SECOND_USD = 0.0000025
RUN_REQUEST_USD = 0.40 / 1_000_000
RUN_BILLING_GRANULARITY_S = 0.1

# Cloud KMS, SOFTWARE protection level, symmetric key: "Key operations: cryptographic
# $0.03 per 10,000 operations", "Active key versions $0.06 per month".
# https://cloud.google.com/kms/pricing (prices effective March 17, 2025).
KMS_OPERATION_USD = 0.03 / 10_000
KMS_KEY_VERSION_MONTH_USD = 0.06

# Pub/Sub throughput (Message Delivery Basic): "$40 per TiB"; "A minimum of 1000 bytes
# per publish, push, or pull request is assessed regardless of message size".
# https://cloud.google.com/pubsub/pricing
PUBSUB_TIB_USD = 40.0
PUBSUB_MIN_REQUEST_BYTES = 1000

# Cloud Scheduler: "A job is billed $0.10/job/31 days" (3 free jobs per billing account
# not counted). https://cloud.google.com/scheduler/pricing
SCHEDULER_JOB_31_DAYS_USD = 0.10

# Function size: what infra/main.tf gives each function (``function_size()`` reads it);
# unset, Cloud Run functions default to 256 MiB ("By default, the memory allocated for a
# function is ... 256 MiB"), and the vCPU follows the memory: "128 MiB | .083 vCPU",
# "256 MiB | .167 vCPU", "512 MiB | .333 vCPU", "1 GiB | .583 vCPU", "2 GiB | 1 vCPU", ...
# https://cloud.google.com/functions/docs/configuring/memory
DEFAULT_MEMORY_MIB = 256
VCPU_BY_MEMORY_MIB = {128: 0.083, 256: 0.167, 512: 0.333, 1024: 0.583, 2048: 1.0,
                      4096: 2.0, 8192: 2.0, 16384: 4.0, 32768: 8.0}  # fmt: skip
RUN_FUNCTION, TICK_FUNCTION = "run_sync_job", "dispatch_due"  # infra/main.tf targets
# infra/main.tf: timeout_seconds = 540 for the Pub/Sub-triggered functions (300 for HTTP)
EVENT_FUNCTION_TIMEOUT_S = 540

# ======================================================================================
# ASSUMPTIONS (not list prices; change them here)
# ======================================================================================
# Billed instance time is wall time. Locally the Google side is a sandbox and the store
# is SQLite, so the real latencies are put back: while a run is measured, the sandbox
# waits this long on every API call (``latencyMs``; a part of an HTTP batch too) and the
# counting proxies wait on every store RPC, token refresh and KMS call, so that calls
# made at once (threads) overlap as they would; the CPU part is then stretched to the
# function's vCPU share. Ticks (up to 200,000 RPCs, in sequence) are modelled instead:
# CPU / vCPU share + round trips x latency.
ASSUMED_GOOGLE_HTTP_LATENCY_S = 0.15  # one People/Calendar API call
ASSUMED_OAUTH_REFRESH_LATENCY_S = 0.10  # one token refresh at oauth2.googleapis.com
ASSUMED_FIRESTORE_RPC_LATENCY_S = 0.015  # one Firestore RPC (get, query page, commit)
ASSUMED_KMS_LATENCY_S = 0.02  # one KMS decrypt
ASSUMED_PUBSUB_PUBLISH_LATENCY_S = 0.03  # the tick's publish round trip (all jobs)
ASSUMED_CPU_SPEED_RATIO = 1.0  # a Cloud Run vCPU-second does one local CPU-second
# Cold starts: a share of invocations starts an instance, which is billed for loading
# the code (measured: the CPU of ``import main``, at the function's vCPU share).
ASSUMED_COLD_START_SHARE = 0.05
# Eventarc adds no charge of its own to Pub/Sub-triggered functions (billed as Pub/Sub).
ASSUMED_EVENTARC_USD = 0.0
# One job per publish request (the client may batch several; this is the upper bound).
ASSUMED_JOBS_PER_PUBLISH_REQUEST = 1
ASSUMED_MESSAGE_BYTES_PER_JOB = 200  # a message's size grows with the pairs it carries
# Schedule: both sections every 15 minutes, ticks every minute, 730 hours a month.
HOURS_PER_MONTH = 730
INTERVAL_MINUTES = 15
RUNS_PER_USER_MONTH = 2 * (60 // INTERVAL_MINUTES) * HOURS_PER_MONTH  # 5,840
TICKS_PER_MONTH = 60 * HOURS_PER_MONTH  # 43,800
STEADY_DUE_SHARE = 1 / INTERVAL_MINUTES  # share of pairs due at a tick, steady state
KMS_KEYS = 2  # infra/main.tf: the tokens key and the Pub/Sub CMEK key (fixed cost)

# --------------------------------------------------------------------------------------
# Counting proxy for the DocumentStore port, as Firestore bills (firebase.google.com/
# docs/firestore/pricing, "Reads, writes, and deletes"):
# * "You are charged for each document write and delete"; "each set or update
#   operation counts as a single write": put/create = 1 write, delete = 1 delete, in a
#   batch or a transaction too (per document, counted when the commit succeeds).
# * "There is a minimum charge of one document read for each query that you perform,
#   even if the query returns no results": a query (one page of a scan) bills
#   max(1, documents returned). "Queries that have up to one range field are not
#   charged for index entries read": true of every query the port allows (one range
#   field, which is the order_by field), so index entries add nothing.
# * A get bills 1 read whether or not the document exists (lookups that find nothing
#   are billed: e.g. github.com/BasedHardware/omi/pull/12221, "NOT_FOUND document reads
#   ... reads that are billed and return nothing"); a batch get (get_many) bills one
#   read per requested id.
# * Transaction reads are ordinary reads, billed for every attempt; only the attempt
#   that commits bills its writes.
# RPCs (round trips) are counted too, for the wall-time model only.
# --------------------------------------------------------------------------------------


class Meter:
    """What one measured step paid for. Thread-safe (a batch may look at pairs in
    threads). With ``latency`` on, each round trip it counts also waits as long as the
    real one is assumed to take (ASSUMED_*_LATENCY_S), so that the measured wall time
    is the instance's billed time, concurrency included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency = False  # waiting now
        self.injected = False  # waited while measuring
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.reads: Counter[str] = Counter()
            self.writes: Counter[str] = Counter()
            self.deletes: Counter[str] = Counter()
            self.rpcs = 0
            self.uncounted: Counter[str] = Counter()
            self.kms_decrypts = 0
            self.kms_unwraps = 0  # envelope: a data key unwrapped (once per instance)
            self.kms_encrypts = 0
            self.token_refreshes = 0

    def count(self, kind: str, collection: str, n: int = 1) -> None:
        with self._lock:
            {"r": self.reads, "w": self.writes, "d": self.deletes}[kind][collection] += n

    def rpc(self, n: int = 1) -> None:
        with self._lock:
            self.rpcs += n
        self.wait(n * ASSUMED_FIRESTORE_RPC_LATENCY_S)

    def other(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def unknown(self, name: str) -> None:
        with self._lock:
            self.uncounted[name] += 1

    def wait(self, seconds: float) -> None:
        if self.latency and seconds > 0:
            time.sleep(seconds)

    def snapshot(self) -> dict[str, Any]:
        return {
            "reads": sum(self.reads.values()),
            "writes": sum(self.writes.values()),
            "deletes": sum(self.deletes.values()),
            "rpcs": self.rpcs,
            "reads_by": dict(self.reads.most_common()),
            "writes_by": dict(self.writes.most_common()),
            "deletes_by": dict(self.deletes.most_common()),
            "uncounted": dict(self.uncounted),
            "kms_decrypts": self.kms_decrypts,
            "kms_unwraps": self.kms_unwraps,
            "kms_encrypts": self.kms_encrypts,
            "token_refreshes": self.token_refreshes,
            "latency_injected": self.injected,
        }


class CountingBatch:
    def __init__(self, inner: Any, meter: Meter) -> None:
        self._inner, self._meter, self._pending = inner, meter, []

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self._inner.put(collection, doc_id, data)
        self._pending.append(("w", collection))

    def create(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self._inner.create(collection, doc_id, data)
        self._pending.append(("w", collection))

    def delete(self, collection: str, doc_id: str) -> None:
        self._inner.delete(collection, doc_id)
        self._pending.append(("d", collection))

    def add_to_array(self, collection: str, doc_id: str, *args: Any, **kwargs: Any) -> None:
        self._inner.add_to_array(collection, doc_id, *args, **kwargs)
        self._pending.append(("w", collection))  # an ArrayUnion: one write, no read

    def remove_from_array(self, collection: str, doc_id: str, *args: Any, **kwargs: Any) -> None:
        self._inner.remove_from_array(collection, doc_id, *args, **kwargs)
        self._pending.append(("w", collection))

    def commit(self) -> None:
        self._inner.commit()
        self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for kind, collection in pending:
            self._meter.count(kind, collection)
        if pending:
            self._meter.rpc()

    def __enter__(self) -> CountingBatch:
        self._inner.__enter__()
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self._inner.__exit__(exc_type, *rest)
        if exc_type is None:
            self._flush()
        else:
            self._pending = []

    def __getattr__(self, name: str) -> Any:
        self._meter.unknown(f"batch.{name}")
        return getattr(self._inner, name)


class CountingTransaction:
    def __init__(self, inner: Any, meter: Meter) -> None:
        self._inner, self._meter = inner, meter
        self.reads: Counter[str] = Counter()
        self.writes: list[tuple[str, str]] = []

    def get(self, collection: str, doc_id: str) -> Any:
        self.reads[collection] += 1
        self._meter.wait(ASSUMED_FIRESTORE_RPC_LATENCY_S)
        return self._inner.get(collection, doc_id)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> Any:
        self.reads[collection] += len(set(doc_ids))
        self._meter.wait(ASSUMED_FIRESTORE_RPC_LATENCY_S)
        return self._inner.get_many(collection, doc_ids)

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self.writes.append(("w", collection))
        self._inner.put(collection, doc_id, data)

    def create(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self.writes.append(("w", collection))
        self._inner.create(collection, doc_id, data)

    def delete(self, collection: str, doc_id: str) -> None:
        self.writes.append(("d", collection))
        self._inner.delete(collection, doc_id)

    def __getattr__(self, name: str) -> Any:
        self._meter.unknown(f"transaction.{name}")
        return getattr(self._inner, name)


class CountingStore:
    """A DocumentStore that counts what Firestore would bill, then delegates."""

    def __init__(self, inner: Any, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def get(self, collection: str, doc_id: str) -> Any:
        self._meter.count("r", collection)
        self._meter.rpc()
        return self._inner.get(collection, doc_id)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> Any:
        ids = list(dict.fromkeys(doc_ids))
        if ids:
            self._meter.count("r", collection, len(ids))
            self._meter.rpc()
        return self._inner.get_many(collection, ids)

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self._inner.put(collection, doc_id, data)
        self._meter.count("w", collection)
        self._meter.rpc()

    def delete(self, collection: str, doc_id: str) -> None:
        self._inner.delete(collection, doc_id)
        self._meter.count("d", collection)
        self._meter.rpc()

    def query(self, collection: str, where: Sequence[Any] = (), **options: Any) -> list[Any]:
        found = self._inner.query(collection, where, **options)
        self._meter.count("r", collection, max(1, len(found)))
        self._meter.rpc()
        return found

    def scan(
        self,
        collection: str,
        where: Sequence[Any] = (),
        *,
        order_by: str | None,
        page_size: int = 500,
    ) -> Iterator[Any]:
        # page by page through our own query, as BaseStore.scan does, so pages are billed
        cursor = None
        while True:
            page = self.query(
                collection, where, order_by=order_by, limit=page_size, start_after=cursor
            )
            yield from page
            if len(page) < page_size:
                return
            cursor = page[-1]

    def batch(self) -> CountingBatch:
        return CountingBatch(self._inner.batch(), self._meter)

    def transaction(self, fn: Callable[[Any], Any], *, max_attempts: int = 5, **kw: Any) -> Any:
        attempts: list[CountingTransaction] = []

        def counted(tx: Any) -> Any:
            attempt = CountingTransaction(tx, self._meter)
            attempts.append(attempt)
            self._meter.wait(ASSUMED_FIRESTORE_RPC_LATENCY_S)  # begin
            return fn(attempt)

        committed = False
        try:
            result = self._inner.transaction(counted, max_attempts=max_attempts, **kw)
            committed = True
            return result
        finally:
            for attempt in attempts:
                for collection, n in attempt.reads.items():
                    self._meter.count("r", collection, n)
            # begin + commit (or rollback) + one RPC per read; begins and reads waited
            with self._meter._lock:
                self._meter.rpcs += sum(2 + sum(a.reads.values()) for a in attempts)
            self._meter.wait(ASSUMED_FIRESTORE_RPC_LATENCY_S)  # the commit
            if committed and attempts:
                for kind, collection in attempts[-1].writes:
                    self._meter.count(kind, collection)

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            self._meter.unknown(f"store.{name}")
        return getattr(self._inner, name)


# --------------------------------------------------------------------------------------
# Counting what else a run pays for: KMS decrypts and OAuth token refreshes
# --------------------------------------------------------------------------------------


class CountingCipher:
    def __init__(self, inner: Any, meter: Meter, label: str = "kms_decrypts") -> None:
        self._inner, self._meter, self._label = inner, meter, label

    def decrypt(self, ciphertext: str) -> str:
        self._meter.other(self._label)
        self._meter.wait(ASSUMED_KMS_LATENCY_S)
        return self._inner.decrypt(ciphertext)

    def encrypt(self, plaintext: str) -> str:
        self._meter.other("kms_encrypts")
        self._meter.wait(ASSUMED_KMS_LATENCY_S)
        return self._inner.encrypt(plaintext)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def use_envelope(wrap: Callable[[Any], Any] = lambda kms: kms) -> bool:
    """Tokens stored as deployed (``adapters.tokens.EnvelopeCipher``, the bench's Fernet
    key playing the KMS key, passed through ``wrap``), in every step, so that a measured
    run decrypts as a deployed one does. False on a tree without envelopes."""
    from adapters import tokens
    from functions import bootstrap

    if not hasattr(tokens, "EnvelopeCipher"):
        return False
    original = getattr(bootstrap.cipher, "plain", bootstrap.cipher)
    made: dict[str, Any] = {}

    def envelope(config: Any) -> Any:
        if config.store_url not in made:
            made[config.store_url] = tokens.EnvelopeCipher(
                wrap(original(config)), bootstrap.shared_store(config)
            )
        return made[config.store_url]

    envelope.plain = original  # type: ignore[attr-defined]
    bootstrap.cipher = envelope
    return True


def install_meters(meter: Meter) -> None:
    """Bench-only patches: count decrypts (a KMS call in production) and token refreshes."""
    from google.oauth2 import credentials as oauth_credentials

    from functions import bootstrap

    # as deployed, the KMS key only wraps the data key: its unwrap, once per instance,
    # is priced as part of a cold start; without envelopes each decrypt is a KMS call
    counted = lambda kms: CountingCipher(kms, meter, "kms_unwraps")  # noqa: E731
    if not use_envelope(counted):
        original_cipher = bootstrap.cipher
        bootstrap.cipher = lambda config: CountingCipher(original_cipher(config), meter)
    original_refresh = oauth_credentials.Credentials.refresh

    def refresh(self: Any, request: Any) -> Any:
        meter.other("token_refreshes")
        meter.wait(ASSUMED_OAUTH_REFRESH_LATENCY_S)  # the sandbox adds none to /token
        return original_refresh(self, request)

    oauth_credentials.Credentials.refresh = refresh


# --------------------------------------------------------------------------------------
# Helpers shared by the scenarios (they run in subprocesses)
# --------------------------------------------------------------------------------------

ALICE = "u-alice"
TOKEN_KEY = "tqyLD9wX8m2q2SpcaRh8nmNRs4qR1hv0SMVpeL0s0gs="  # a fixed Fernet key, bench only
GROUP = "CRM"


def control(url: str, path: str, body: Any = None, method: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path, data=data, method=method or ("POST" if data is not None else "GET")
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


def now_stamp(moment: datetime | None = None) -> str:
    from core.model import stamp

    return stamp(moment or datetime.now(UTC))


def state_key(user_id: str, section: str) -> str:
    from core import model

    state_id = getattr(model, "state_id", None)
    return state_id(user_id, section) if state_id else f"{user_id}:{section}"


def make_config(work: Path, endpoint: str | None) -> Any:
    from functions import bootstrap

    wanted = {
        "store_url": f"sqlite:///{work / 'crm.db'}",
        "google_endpoint": endpoint,
        "queue": "inline",
        "token_key": TOKEN_KEY,
        "group_name": GROUP,
        "state_dir": work / ".crmsync",
    }
    names = {f.name for f in dataclasses.fields(bootstrap.Config)}
    return bootstrap.Config(**{k: v for k, v in wanted.items() if k in names})


def open_plain(config: Any) -> Any:
    from adapters.stores import open_store

    return open_store(config.store_url)


def people_service(url: str, refresh_token: str) -> Any:
    from adapters import google_api

    return google_api.people_service(google_api.credentials(refresh_token, url), url)


def calendar_service(url: str, refresh_token: str) -> Any:
    from adapters import google_api

    return google_api.calendar_service(google_api.credentials(refresh_token, url), url)


def contact_doc(i: int, at: str, tags: list[str]) -> dict[str, Any]:
    return {
        "givenName": f"Given{i}",
        "familyName": f"Family{i}",
        "company": f"Co {i % 97}",
        "emails": [{"value": f"person{i}@example.com", "type": "work"}],
        "phones": [{"value": f"+1 555 {i:07d}"}],
        "tagIds": tags,
        "modifiedAt": at,
    }


def put_many(store: Any, docs: Iterator[tuple[str, str, dict[str, Any]]], size: int = 400) -> int:
    count, chunk = 0, []
    for item in docs:
        chunk.append(item)
        if len(chunk) == size:
            count += _commit(store, chunk)
            chunk = []
    return count + (_commit(store, chunk) if chunk else 0)


def _commit(store: Any, chunk: list[tuple[str, str, dict[str, Any]]]) -> int:
    with store.batch() as batch:
        for collection, doc_id, data in chunk:
            batch.put(collection, doc_id, data)
    return len(chunk)


def save_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))


def scheduled_job(store: Any, user: str, section: str) -> Any:
    """The job a tick sends for the pair: with ``job_for``'s probe where there is one."""
    from core import schedule
    from core.model import SYNC_STATE
    from functions import bootstrap

    job_for = getattr(schedule, "job_for", None)
    if job_for is None:
        return schedule.Job(user, section)
    # the tick read this state (and its scenarios count it): not counted again here
    plain = getattr(store, "_inner", store)
    state = plain.get(SYNC_STATE, state_key(user, section)) or {}
    return job_for(user, section, state, bootstrap.clock().now())


def run_section(
    config: Any, store: Any, section: str, scheduled: bool = False, user: str = ALICE
) -> Any:
    """One run through ``functions.jobs.run_job`` (what a one-job message runs). A
    scheduled run carries what the dispatcher would give it (``job_for``'s probe)."""
    from core import schedule
    from functions import jobs

    job = scheduled_job(store, user, section) if scheduled else schedule.Job(user, section)
    return jobs.run_job(config, store, job)


def describe(report: Any) -> str:
    if isinstance(report, (list, tuple)):
        said = Counter(describe(r) for r in report)
        return "; ".join(f"{n} x {what}" for what, n in said.most_common())
    if report is None:
        return "no run (skipped, or recorded as hopeless)"
    if isinstance(report, str):
        return f"probe only: {report}"
    if isinstance(report, Exception):
        return f"failed: {type(report).__name__}"
    counts = getattr(report, "counts", {}) or {}
    done = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v)
    errors = len(getattr(report, "errors", []) or [])
    return (done or "nothing to do") + (f"; {errors} errors" if errors else "")


# --- worlds ---------------------------------------------------------------------------


def small_world(
    work: Path, url: str, *, crm_extra: int = 0, tagged: int = 0, users: int = 0
) -> Any:
    """The sample CRM (functions.seed) and a sandbox account for Alice; ``crm_extra``
    more (untagged) contacts, ``tagged`` more contacts with Alice's tag, ``users`` more
    CRM users, each with a connected Google account."""
    from core.model import CONTACTS, GOOGLE_ACCOUNTS, USERS
    from functions import bootstrap, seed
    from functions.accounts import connect

    control(url, "/_sandbox/reset", {})
    config = make_config(work, url)
    store = open_plain(config)
    past = datetime.now(UTC) - timedelta(hours=1)  # steady state: past the overlap window
    seed.seed(store, past)
    at = now_stamp(past)
    untagged = ((CONTACTS, f"c-crm{i:06d}", contact_doc(i, at, [])) for i in range(crm_extra))
    put_many(store, untagged)
    mine = ((CONTACTS, f"c-tag{i:06d}", contact_doc(10**6 + i, at, [seed.ALICE_TAG]))
            for i in range(tagged))  # fmt: skip
    put_many(store, mine)
    if users:
        secret = bootstrap.cipher(config).encrypt("1//bench-refresh-token")

        def colleagues() -> Iterator[tuple[str, str, dict[str, Any]]]:
            for i in range(users):
                user, email = f"u-colleague{i:06d}", f"colleague{i}@example.com"
                yield USERS, user, {"email": email, "displayName": user, "timeZone": "UTC"}
                yield GOOGLE_ACCOUNTS, user, {"accountEmail": email, "status": "connected",
                                              "scopes": [], "refreshTokenCiphertext": secret,
                                              "connectedAt": at}  # fmt: skip

        put_many(store, colleagues())
    account = control(url, "/_sandbox/accounts", {"email": "alice@example.com"})
    store.close()
    connect(config, ALICE, account["refreshToken"])
    store = open_plain(config)
    save_json(work / "world.json", {"refreshToken": account["refreshToken"]})
    return config, store, account["refreshToken"]


def settle(config: Any, store: Any, sections: Sequence[str]) -> None:
    for section in sections:
        run_section(config, store, section)  # first sync
        run_section(config, store, section)  # reads the echoes of the first push
    upkeep(Path(config.store_url.removeprefix("sqlite:///")).parent, store)


def person_named(url: str, token: str, crm_id: str) -> dict[str, Any]:
    people = people_service(url, token).people()
    page = None
    while True:
        answer = people.connections().list(
            resourceName="people/me", personFields="names,clientData,metadata",
            pageSize=1000, pageToken=page,
        ).execute()  # fmt: skip
        for person in answer.get("connections", []):
            if any(d.get("value") == crm_id for d in person.get("clientData", [])):
                return person
        page = answer.get("nextPageToken")
        if not page:
            raise LookupError(f"no person for {crm_id}")


def event_for(url: str, token: str, activity_id: str) -> dict[str, Any]:
    events = calendar_service(url, token).events()
    page = None
    while True:
        answer = events.list(calendarId="primary", pageToken=page, maxResults=2500).execute()
        for event in answer.get("items", []):
            private = (event.get("extendedProperties") or {}).get("private") or {}
            if activity_id in private.values():
                return event
        page = answer.get("nextPageToken")
        if not page:
            raise LookupError(f"no event for {activity_id}")


# --- scenarios: prepare(work, url, params) and measure(work, url, params) ---------------


def prep_noop(work: Path, url: str, params: dict[str, Any]) -> None:
    """A first sync of both sections, then one more run each (it reads the first push's
    echoes): the next run is a steady-state no-op."""
    config, store, _ = small_world(
        work, url, crm_extra=params.get("crm", 0), users=params.get("users", 0)
    )
    settle(config, store, ("contacts", "activities"))


def prep_crm_edit(work: Path, url: str, params: dict[str, Any]) -> None:
    from core.model import ACTIVITIES, CONTACTS

    config, store, _ = small_world(work, url)
    settle(config, store, ("contacts", "activities"))
    if params["section"] == "contacts":
        doc = store.get(CONTACTS, "c-grace")
        store.put(
            CONTACTS, "c-grace", {**doc, "jobTitle": "Rear Admiral", "modifiedAt": now_stamp()}
        )
    else:
        doc = store.get(ACTIVITIES, "a-kickoff")
        store.put(ACTIVITIES, "a-kickoff", {**doc, "title": "Kick-off (moved)",
                                            "modifiedAt": now_stamp()})  # fmt: skip


def prep_google_edit(work: Path, url: str, params: dict[str, Any]) -> None:
    config, store, token = small_world(work, url)
    settle(config, store, ("contacts", "activities"))
    if params["section"] == "contacts":
        person = person_named(url, token, "c-alan")
        person["names"][0]["middleName"] = "Mathison"
        people_service(url, token).people().updateContact(
            resourceName=person["resourceName"], updatePersonFields="names",
            body={"names": person["names"], "etag": person["etag"]},
        ).execute()  # fmt: skip
    else:
        event = event_for(url, token, "a-offsite")
        calendar_service(url, token).events().patch(
            calendarId="primary", eventId=event["id"], sendUpdates="none",
            body={"summary": "Team offsite (edited in Google)"},
        ).execute()  # fmt: skip


def prep_import(work: Path, url: str, params: dict[str, Any]) -> None:
    config, store, token = small_world(work, url, crm_extra=params["crm"])
    settle(config, store, ("contacts",))
    people = people_service(url, token)
    body = {"names": [{"givenName": "Newly", "familyName": "Imported"}],
            "emailAddresses": [{"value": "newly.imported@example.org"}]}  # fmt: skip
    person = people.people().createContact(body=body).execute()
    groups = people.contactGroups().list(pageSize=1000).execute().get("contactGroups", [])
    group = next(g["resourceName"] for g in groups if g.get("name") == GROUP)
    people.contactGroups().members().modify(
        resourceName=group, body={"resourceNamesToAdd": [person["resourceName"]]}
    ).execute()


def prep_echo(work: Path, url: str, params: dict[str, Any]) -> None:
    config, store, _ = small_world(work, url, tagged=params["contacts"])
    run_section(config, store, "contacts")  # the first push; measure() runs the next one
    upkeep(work, store)


@contextlib.contextmanager
def real_latency(url: str, meter: Meter) -> Iterator[None]:
    """Counters zeroed, then every round trip as slow as the real one (the sandbox's
    ``latencyMs`` for each API call, the meter's waits for the rest) while measuring."""
    control(url, "/_sandbox/stats", method="DELETE")
    meter.reset()
    meter.latency = meter.injected = True
    control(url, "/_sandbox/faults", {"latencyMs": round(ASSUMED_GOOGLE_HTTP_LATENCY_S * 1000)})
    try:
        yield
    finally:
        meter.latency = False
        control(url, "/_sandbox/faults", method="DELETE")


def load_functions() -> None:
    """What a deployed instance loads at cold start (priced apart, as cold starts)."""
    import main  # noqa: F401


def measure_run(work: Path, url: str, params: dict[str, Any]) -> dict[str, Any]:
    load_functions()
    config = make_config(work, url)
    meter = Meter()
    install_meters(meter)
    store = CountingStore(open_plain(config), meter)
    with real_latency(url, meter):
        wall, cpu = time.perf_counter(), time.process_time()
        report = run_section(config, store, params["section"], scheduled=True)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = control(url, "/_sandbox/stats")
    from functions import jobs

    return {
        **meter.snapshot(),
        "google_calls": stats.get("total", 0),
        "google_http": stats.get("httpRequests", stats.get("total", 0)),
        "google_by": stats.get("byMethod", {}),
        "cpu_s": cpu,
        "wall_s": wall,
        "outcome": describe(report),
        "jobs_per_message": getattr(jobs, "BATCH", 1),
    }


def batch_size() -> int:
    from functions import jobs

    return max(1, int(getattr(jobs, "BATCH", 1)))


def prep_batch(work: Path, url: str, params: dict[str, Any]) -> None:
    """As many CRM users as a sync-jobs message carries pairs (both sections each), each
    with a sandbox account, a private tag, 3 tagged contacts and an activity; first
    sync and echo run for every pair, so that the next message is all no-ops."""
    from core.model import ACTIVITIES, CONTACTS, SYNC_SETTINGS, TAGS, USERS
    from functions.accounts import connect

    control(url, "/_sandbox/reset", {})
    config = make_config(work, url)
    store = open_plain(config)
    past = datetime.now(UTC) - timedelta(hours=1)
    at, day = now_stamp(past), (past + timedelta(days=2)).date().isoformat()
    every = {"auto": True, "intervalMinutes": INTERVAL_MINUTES}
    users = [f"u-batch{i:03d}" for i in range(math.ceil(batch_size() / 2))]
    for n, user in enumerate(users):
        tag = f"t-{user}"
        docs = [
            (USERS, user, {"email": f"{user}@example.com", "displayName": user, "timeZone": "UTC"}),
            (TAGS, tag, {"name": f"{user}: Google", "kind": "private", "ownerId": user}),
            (SYNC_SETTINGS, user, {"contacts": {**every, "tagId": tag},
                                   "activities": {**every, "syncFrom": past.date().isoformat()}}),
            (ACTIVITIES, f"a-{user}", {"title": f"Meeting {n}", "start": f"{day}T09:00:00+00:00",
                                       "end": f"{day}T10:00:00+00:00", "showInCalendar": True,
                                       "organizerId": user, "status": "planned",
                                       "modifiedAt": at}),
        ]  # fmt: skip
        docs += [(CONTACTS, f"c-{user}-{i}", contact_doc(n * 10 + i, at, [tag])) for i in range(3)]
        put_many(store, iter(docs))
    store.close()
    for user in users:
        account = control(url, "/_sandbox/accounts", {"email": f"{user}@example.com"})
        connect(config, user, account["refreshToken"])
    store = open_plain(config)
    for user in users:
        for section in ("contacts", "activities"):
            for _ in range(2):  # first sync, then the run that reads its echoes
                run_section(config, store, section, user=user)
    upkeep(work, store)
    save_json(work / "batch.json", {"users": users})


def measure_batch(work: Path, url: str, params: dict[str, Any]) -> dict[str, Any]:
    """One sync-jobs message of scheduled no-op pairs, as ``run_sync_job`` runs it
    (``run_batch`` where messages carry several pairs, ``run_job`` otherwise)."""
    from functions import jobs

    load_functions()
    config = make_config(work, url)
    meter = Meter()
    install_meters(meter)
    store = CountingStore(open_plain(config), meter)
    users = json.loads((work / "batch.json").read_text())["users"]
    size = batch_size()
    pairs = [(u, s) for u in users for s in ("contacts", "activities")][:size]
    if hasattr(jobs, "run_batch") and size > 1:  # a warm instance: caches and pools filled
        jobs.run_batch(config, open_plain(config), [scheduled_job(store, u, s) for u, s in pairs])
        meter.reset()
        control(url, "/_sandbox/stats", method="DELETE")
    with real_latency(url, meter):
        wall, cpu = time.perf_counter(), time.process_time()
        todo = [scheduled_job(store, u, s) for u, s in pairs]
        if hasattr(jobs, "run_batch") and size > 1:
            result: Any = jobs.run_batch(config, store, todo)
        else:
            result = [jobs.run_job(config, store, job) for job in todo]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = control(url, "/_sandbox/stats")
    return {
        **meter.snapshot(),
        "google_calls": stats.get("total", 0),
        "google_http": stats.get("httpRequests", stats.get("total", 0)),
        "google_by": stats.get("byMethod", {}),
        "cpu_s": cpu,
        "wall_s": wall,
        "outcome": describe(result),
        "pairs": len(todo),
    }


# --- the dispatch tick ------------------------------------------------------------------


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


DUE_SHARE = 0.01  # the "1% due" tick: 1% of the users, both sections (1% of the pairs)


def _tick_users(n: int, start: datetime) -> tuple[list[str], list[str]]:
    """``n`` user ids: the first 1% due at the "1% due" tick (one minute after ``start``),
    none of them due at the warm-up tick, the "0% due" tick or otherwise.

    Where ``core.schedule`` gives each pair a slot (a phase that hashes the pair), the
    ids are picked by their phases, so that the seeded state is exactly what the code
    itself would schedule; the old dispatcher goes by ``lastRunAt`` instead."""
    from core import schedule

    due_count = math.ceil(n * DUE_SHARE)
    phase, minute_of = getattr(schedule, "phase", None), getattr(schedule, "minute_of", None)
    if not (phase and minute_of):
        ids = [f"u{i:06d}" for i in range(n)]
        return ids[:due_count], ids[due_count:]
    m0 = minute_of(start) % INTERVAL_MINUTES  # the "0% due" tick's minute
    busy = {(m0 - 1) % INTERVAL_MINUTES, m0, (m0 + 1) % INTERVAL_MINUTES}
    due_at = (m0 + 1) % INTERVAL_MINUTES
    due, idle, i = [], [], 0
    while len(due) < due_count or len(idle) < n - due_count:
        user = f"u{i:07d}"
        phases = {phase(user, section, INTERVAL_MINUTES) for section in ("contacts", "activities")}
        if phases == {due_at} and len(due) < due_count:
            due.append(user)
        elif not phases & busy and len(idle) < n - due_count:
            idle.append(user)
        i += 1
    return due, idle


def _state(user_id: str, section: str, due: bool, start: datetime) -> dict[str, Any]:
    """A steady-state ``syncState`` of a pair for either design: ``lastRunAt`` for the
    old dispatcher (due at ``start`` + 1 minute, or not before ``start`` + 14 minutes),
    and the pair's own slot where ``core.schedule`` has slots."""
    from core import schedule

    due_at = start + timedelta(minutes=1)
    last = (
        due_at - timedelta(minutes=INTERVAL_MINUTES, seconds=10)
        if due
        else start - timedelta(minutes=1)
    )
    fields: dict[str, Any] = {
        "userId": user_id,
        "section": section,
        "lastRunAt": now_stamp(last),
        "lastSuccessAt": now_stamp(last),
        "nextDueAt": now_stamp(last + timedelta(minutes=INTERVAL_MINUTES)),
        "googleCursor": "bench-sync-token",
        "crmCursor": now_stamp(last),
        "crmReadAt": now_stamp(last),
        "groupResourceName": "contactGroups/bench",
        "lastResult": {"counts": {}, "errors": []},
    }
    phase, slot_key = getattr(schedule, "phase", None), getattr(schedule, "slot_key", None)
    if phase and slot_key:
        fields["slot"] = slot_key(INTERVAL_MINUTES, phase(user_id, section, INTERVAL_MINUTES))
        fields["nextDueAt"] = None  # nothing forces a run: due by its slot only
        if section == "activities":
            fields["renewAt"] = now_stamp(start + timedelta(days=5))
    if section == "activities":
        fields["channel"] = {"id": f"ch-{user_id}", "resourceId": "r-bench",
                             "expiresAt": now_stamp(start + timedelta(days=6))}  # fmt: skip
    return fields


def prep_tick_seed(work: Path, url: str, params: dict[str, Any]) -> None:
    """N connected users, both sections auto every 15 minutes, in steady state: written
    straight into SQLite through the store's batch API (no ``users`` documents: the
    tick does not read them); then the tick of the minute before the measured ones."""
    from core import schedule
    from core.model import GOOGLE_ACCOUNTS, SYNC_SETTINGS, SYNC_STATE
    from functions import bootstrap

    config = make_config(work, None)
    store = open_plain(config)
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(seconds=20)
    ciphertext = bootstrap.cipher(config).encrypt("1//bench-refresh-token")
    today = start.date().isoformat()
    due, idle = _tick_users(params["users"], start)
    every = {"auto": True, "intervalMinutes": INTERVAL_MINUTES}

    def docs() -> Iterator[tuple[str, str, dict[str, Any]]]:
        for user in due + idle:
            yield SYNC_SETTINGS, user, {"contacts": {**every, "tagId": f"t-{user}"},
                                        "activities": {**every, "syncFrom": today}}  # fmt: skip
            yield GOOGLE_ACCOUNTS, user, {
                "accountEmail": f"{user}@example.com", "scopes": ["contacts", "calendar.events"],
                "refreshTokenCiphertext": ciphertext, "status": "connected",
                "connectedAt": now_stamp(start - timedelta(days=30)),
            }  # fmt: skip
            for section in ("contacts", "activities"):
                state = _state(user, section, user in wanted, start)
                yield SYNC_STATE, state_key(user, section), state
        if hasattr(schedule, "SCHEDULE") and hasattr(schedule, "INTERVALS"):
            yield schedule.SCHEDULE, schedule.INTERVALS, {"minutes": [INTERVAL_MINUTES]}
        if hasattr(schedule, "SCHEDULE") and hasattr(schedule, "SWEEP"):
            # today's pass over the settings is done: a tick pays for it only while a
            # pass runs (a page of users a tick, once a day)
            yield schedule.SCHEDULE, schedule.SWEEP, {
                "after": None, "roundStartedAt": now_stamp(start - timedelta(hours=1))
            }  # fmt: skip

    wanted = set(due)
    put_many(store, docs())
    save_json(work / "tick.json", {"at": start.isoformat(), "users": params["users"],
                                   "due": len(due)})  # fmt: skip
    # the tick of the minute before: one-off work (an index's first pass) is done, as in
    # a deployment that has been ticking every minute
    tick(work, store, start - timedelta(seconds=55))


class Capture:
    """Stands in for the queue: keeps the jobs a tick sends, runs none of them."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []
        self.messages = 0

    def __call__(self, jobs: Any, *rest: Any, **kw: Any) -> list[str]:
        batch = list(jobs) if isinstance(jobs, (list, tuple)) else [jobs]
        self.jobs.extend(batch)
        self.messages += 1
        return [f"m{len(self.jobs)}"]

    def send(self, jobs: Sequence[Any]) -> list[str]:
        self.jobs.extend(jobs)
        self.messages += len(jobs)
        return [f"m{i}" for i in range(len(jobs))]

    def send_batched(self, jobs: Sequence[Any], size: int, *rest: Any, **kw: Any) -> list[str]:
        self.jobs.extend(jobs)
        self.messages += math.ceil(len(jobs) / max(1, size))
        return []


def tick(
    work: Path, store: Any, at: datetime | None, push: bool = True
) -> tuple[Capture, list[Any]]:
    """One ``functions.jobs.dispatch`` at ``at`` (None: now), its jobs captured instead
    of run. ``push``: with ``CRMSYNC_PUSH_URL`` set, as deployed (the tick keeps push
    channels: the tick worlds have theirs; the run worlds have none, and no push)."""
    from functions import bootstrap, jobs

    if push:
        os.environ["CRMSYNC_PUSH_URL"] = "https://bench.invalid/calendar_push"
    else:
        os.environ.pop("CRMSYNC_PUSH_URL", None)
    # no Google here: a call that escapes fails fast instead of reaching anything
    config = dataclasses.replace(make_config(work, "http://127.0.0.1:9"), queue="bench:capture")
    bootstrap.use_clock(FixedClock(at) if at else None)
    capture = Capture()
    if hasattr(jobs, "open_queue"):  # the old dispatch has no send=: patch its queue
        jobs.open_queue = lambda spec, runner=None, *a, **kw: capture
    kwargs = {"send": capture} if "send" in inspect.signature(jobs.dispatch).parameters else {}
    try:
        return capture, jobs.dispatch(config, store, **kwargs) or []
    finally:
        bootstrap.use_clock(None)


def upkeep(work: Path, store: Any) -> None:
    """A few dispatch ticks (jobs captured, not run), so that a run world is kept up as
    in a deployment that ticks every minute: whatever the tick maintains (an email
    index's catch-up of what the CRM wrote itself, say) is done before the measure."""
    for _ in range(3):
        tick(work, store, None, push=False)


def measure_tick(work: Path, url: str, params: dict[str, Any]) -> dict[str, Any]:
    from functions import jobs

    load_functions()
    info = json.loads((work / "tick.json").read_text())
    meter = Meter()
    install_meters(meter)
    store = CountingStore(open_plain(make_config(work, None)), meter)
    minutes = 1 if params.get("due") else 0  # the "1% due" tick is a minute later
    at = datetime.fromisoformat(info["at"]) + timedelta(minutes=minutes, seconds=5)
    meter.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    capture, returned = tick(work, store, at)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sent = len(capture.jobs)
    per_message = max(1, int(getattr(jobs, "BATCH", 1)))
    expected = 2 * info["due"] if params.get("due") else 0
    return {
        **meter.snapshot(),
        "google_calls": 0,
        "google_http": 0,
        "google_by": {},
        "cpu_s": cpu,
        "wall_s": wall,
        "jobs_sent": sent,
        "messages": math.ceil(sent / per_message),
        "outcome": f"{sent} jobs sent, {per_message} per message (expected {expected} jobs)"
        + ("" if sent == expected and len(returned) == sent else " MISMATCH"),
    }


def measure_idle(work: Path, url: str, params: dict[str, Any]) -> dict[str, Any]:
    """An instance that loaded the functions (``import main``) and opened the store."""
    cpu = time.process_time()
    import main  # noqa: F401

    cpu = time.process_time() - cpu
    config = make_config(work, url)
    open_plain(config).close()
    return {"cpu_s": cpu, "outcome": "import main + open the store"}


# --------------------------------------------------------------------------------------
# Subprocess plumbing
# --------------------------------------------------------------------------------------

STEPS: dict[str, Callable[[Path, str, dict[str, Any]], Any]] = {
    "prep_noop": prep_noop,
    "prep_crm_edit": prep_crm_edit,
    "prep_google_edit": prep_google_edit,
    "prep_import": prep_import,
    "prep_echo": prep_echo,
    "prep_tick_seed": prep_tick_seed,
    "measure_run": measure_run,
    "measure_tick": measure_tick,
    "measure_idle": measure_idle,
    "prep_batch": prep_batch,
    "measure_batch": measure_batch,
}


def peak_rss_mib() -> float:
    """This process's peak RSS. ``ru_maxrss`` is the first choice, but on Linux it keeps
    the high-water mark of the image before ``exec`` (the forked parent's), so a child
    of a big parent would report the parent's size: VmHWM, the peak of the process's
    own memory since ``exec``, is read instead where /proc has it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(step: str, work: str, url: str, params: str, out: str) -> None:
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    os.chdir(work)  # anything relative (.crmsync/) lands in the scenario's folder
    use_envelope()
    result = STEPS[step](Path(work), url, json.loads(params)) or {}
    result["rss_mib"] = peak_rss_mib()
    result["ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps(result, default=str))


def spawn(step: str, work: Path, url: str, params: dict[str, Any]) -> dict[str, Any]:
    out = work / f"{step}.out.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from bench import cost; "
        "cost.child(*sys.argv[2:])"
    )
    args = [
        sys.executable,
        "-c",
        code,
        str(ROOT),
        step,
        str(work),
        url,
        json.dumps(params),
        str(out),
    ]
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{step} {params} failed:\n{tail}")
    return json.loads(out.read_text())


@dataclasses.dataclass
class Scenario:
    key: str
    title: str
    kind: str  # "run" or "tick"
    prepare: list[tuple[str, dict[str, Any]]]
    measure: tuple[str, dict[str, Any]]
    folder: str  # scenarios sharing a folder share its prepared world (ticks)


def scenarios() -> list[Scenario]:
    crm = int(os.environ.get("BENCH_COST_CRM", "5000"))
    colleagues = int(os.environ.get("BENCH_COST_USERS", "1000"))
    echo = int(os.environ.get("BENCH_COST_ECHO", "5000"))
    ticks = [
        int(n) for n in os.environ.get("BENCH_COST_TICK_USERS", "1000,10000,100000").split(",") if n
    ]
    out: list[Scenario] = [
        Scenario("batch", "sync-jobs message of no-op pairs", "message",
                 [("prep_batch", {})], ("measure_batch", {}), "batch"),
    ]  # fmt: skip
    for section in ("contacts", "activities"):
        run = ("measure_run", {"section": section})
        out += [
            Scenario(f"noop-{section}", f"{section}: no-op scheduled run", "run",
                     [("prep_noop", {})], run, f"noop-{section}"),
            Scenario(f"crm-{section}", f"{section}: one CRM edit", "run",
                     [("prep_crm_edit", {"section": section})], run, f"crm-{section}"),
            Scenario(f"google-{section}", f"{section}: one Google edit", "run",
                     [("prep_google_edit", {"section": section})], run, f"google-{section}"),
        ]  # fmt: skip
    contacts = ("measure_run", {"section": "contacts"})
    out += [
        Scenario("noop-bigcrm", f"contacts: no-op, CRM of {crm:,} contacts", "run",
                 [("prep_noop", {"crm": crm})], contacts, "noop-bigcrm"),
        Scenario("import", f"contacts: import 1 person, CRM of {crm:,}", "run",
                 [("prep_import", {"crm": crm})], contacts, "import"),
        Scenario("noop-bigusers", f"activities: no-op, CRM of {colleagues:,} users", "run",
                 [("prep_noop", {"users": colleagues})], ("measure_run", {"section": "activities"}),
                 "noop-bigusers"),
    ]  # fmt: skip
    if echo:
        out.append(Scenario("echo", f"contacts: run after a first push of {echo:,}", "run",
                            [("prep_echo", {"contacts": echo})], contacts, "echo"))  # fmt: skip
    for n in ticks:
        folder = f"tick-{n}"
        out += [
            Scenario(f"tick-{n}-0", f"dispatch tick, {n:,} users, 0% due", "tick",
                     [("prep_tick_seed", {"users": n})], ("measure_tick", {"due": 0.0}), folder),
            Scenario(f"tick-{n}-1", f"dispatch tick, {n:,} users, 1% due", "tick",
                     [], ("measure_tick", {"due": DUE_SHARE}), folder),
        ]  # fmt: skip
    only = {k for k in os.environ.get("BENCH_COST_ONLY", "").split(",") if k}
    return [s for s in out if not only or s.key in only or s.key.startswith(tuple(only))]


# --------------------------------------------------------------------------------------
# Pricing
# --------------------------------------------------------------------------------------


def _mib(number: str, unit: str) -> float:
    return float(number) * (1024 if unit.startswith("G") else 1)


def function_size(name: str) -> tuple[float, float, str]:
    """(GiB, vCPU, where from) of function ``name``, from infra/main.tf: an entry
    ``name = "512Mi"`` (a per-function map), else a literal ``available_memory``, else
    the default; the vCPU is a literal ``available_cpu``, else the memory's tier."""
    path = ROOT / "infra" / "main.tf"
    text = path.read_text() if path.exists() else ""
    size = r'"(\d+(?:\.\d+)?)\s*(Mi|M|Gi|G)"'
    mine = re.search(rf"\b{name}\s*=\s*{size}", text)
    literal = re.search(rf"available_memory\s*=\s*{size}", text)
    cpu = re.search(r'available_cpu\s*=\s*"?(\d+(?:\.\d+)?)"?', text)
    found = mine or literal
    mib = _mib(*found.groups()) if found else DEFAULT_MEMORY_MIB
    tier = min((m for m in VCPU_BY_MEMORY_MIB if m >= mib), default=max(VCPU_BY_MEMORY_MIB))
    vcpu = float(cpu.group(1)) if cpu else VCPU_BY_MEMORY_MIB[tier]
    where = "infra/main.tf" if found else "default"
    return mib / 1024, vcpu, where


def billed_seconds(m: dict[str, Any], vcpu: float, tick: bool, whole: bool = True) -> float:
    """Instance time of one invocation: measured with real latencies where they were
    injected (the CPU part slowed to the function's vCPU share), else modelled as the
    sum of CPU / vCPU and round trips x latency (see the ASSUMED_ constants)."""
    if m.get("latency_injected"):
        cpu = m.get("cpu_s", 0.0)
        seconds = m.get("wall_s", 0.0) + cpu * (1 / (ASSUMED_CPU_SPEED_RATIO * vcpu) - 1)
        if not whole:
            return seconds
        return math.ceil(seconds / RUN_BILLING_GRANULARITY_S - 1e-9) * RUN_BILLING_GRANULARITY_S
    seconds = (
        m.get("cpu_s", 0.0) / ASSUMED_CPU_SPEED_RATIO / vcpu
        + m.get("google_http", 0) * ASSUMED_GOOGLE_HTTP_LATENCY_S
        + m.get("token_refreshes", 0) * ASSUMED_OAUTH_REFRESH_LATENCY_S
        + m.get("rpcs", 0) * ASSUMED_FIRESTORE_RPC_LATENCY_S
        + (m.get("kms_decrypts", 0) + m.get("kms_unwraps", 0)) * ASSUMED_KMS_LATENCY_S
        + (ASSUMED_PUBSUB_PUBLISH_LATENCY_S if tick and m.get("jobs_sent") else 0.0)
    )
    if not whole:  # a share of an invocation: rounded with the others it runs with
        return seconds
    return math.ceil(seconds / RUN_BILLING_GRANULARITY_S - 1e-9) * RUN_BILLING_GRANULARITY_S


def pubsub_usd(messages: float, jobs: float) -> float:
    """Publish + push delivery of ``messages`` carrying ``jobs`` pairs in all."""
    if not messages:
        return 0.0
    size = max(PUBSUB_MIN_REQUEST_BYTES, ASSUMED_MESSAGE_BYTES_PER_JOB * jobs / messages)
    requests = messages / ASSUMED_JOBS_PER_PUBLISH_REQUEST + messages  # publish + push
    return requests * size / 2**40 * PUBSUB_TIB_USD


def price(m: dict[str, Any], kind: str, gib: float, vcpu: float, cold_s: float) -> dict[str, float]:
    """$ of one measured step, by component. ``kind``: "run" (one pair: its share of a
    message of ``jobs_per_message`` pairs), "message" (one invocation for ``pairs``
    pairs) or "tick" (one dispatch invocation)."""
    per_message = max(1, int(m.get("jobs_per_message", 1))) if kind == "run" else 1
    share = 1 / per_message  # of an invocation
    seconds = billed_seconds(m, vcpu, kind == "tick", whole=per_message == 1)
    seconds += share * ASSUMED_COLD_START_SHARE * cold_s
    store = (
        m.get("reads", 0) * FIRESTORE_READ_USD
        + m.get("writes", 0) * FIRESTORE_WRITE_USD
        + m.get("deletes", 0) * FIRESTORE_DELETE_USD
    )
    compute = seconds * (vcpu * RUN_VCPU_SECOND_USD + gib * RUN_GIB_SECOND_USD)
    # a run / a message: its sync-jobs message (published by a tick, pushed to the run);
    # a tick: its sync-ticks message from Cloud Scheduler (the jobs' count with the runs)
    if kind == "tick":
        messaging = pubsub_usd(1, 0)
    else:
        messaging = pubsub_usd(share, 1 if kind == "run" else m.get("pairs", 1))
    parts = {
        "store": store,
        "compute": compute,
        "invocation": share * RUN_REQUEST_USD + ASSUMED_EVENTARC_USD,
        "kms": (m.get("kms_decrypts", 0) + ASSUMED_COLD_START_SHARE * m.get("kms_unwraps", 0))
        * KMS_OPERATION_USD,
        "pubsub": messaging,
        "billed_s": seconds,
    }
    parts["total"] = sum(v for k, v in parts.items() if k != "billed_s")
    return parts


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def fmt_usd(value: float) -> str:
    if value == 0:
        return "0"
    if value < 0.001:
        return f"{value * 1e6:,.2f}u"  # micro-dollars
    return f"{value:,.4f}"


def top(counts: dict[str, int], n: int = 6) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in list(counts.items())[:n]) or "-"


def report(results: list[tuple[Scenario, dict[str, Any]]], idle: dict[str, Any]) -> str:
    sizes = {name: function_size(name) for name in (RUN_FUNCTION, TICK_FUNCTION)}
    said = ", ".join(f"{n} {g * 1024:.0f} MiB / {v} vCPU ({w})" for n, (g, v, w) in sizes.items())
    lines = [
        "crmsync cost per scenario (bench/cost.py; Firestore ops as billed, sandbox for Google)",
        f"tree: {ROOT}",
        f"functions: {said}",
        f"idle instance (import main + store): {idle.get('rss_mib', 0):.0f} MiB RSS, "
        f"{idle.get('cpu_s', 0):.2f} CPU-s to import (a cold start, at the function's vCPU)",
        "",
    ]
    head = (
        f"{'scenario':<44} {'reads':>8} {'writes':>6} {'dels':>5} {'rpcs':>6} "
        f"{'google':>7} {'http':>5} {'tok':>3} {'kms':>3} {'inv':>3} {'CPU-s':>7} "
        f"{'wall-s':>7} {'billed-s':>8} {'RSS MiB':>8} {'$/invocation':>12}"
    )
    lines += [head, "-" * len(head)]
    priced: dict[str, dict[str, float]] = {}
    for scenario, m in results:
        if m.get("failed"):
            lines.append(f"{scenario.title:<44} FAILED (see below)")
            continue
        gib, vcpu, _ = sizes[TICK_FUNCTION if scenario.kind == "tick" else RUN_FUNCTION]
        p = price(m, scenario.kind, gib, vcpu, idle.get("cpu_s", 0.0) / vcpu)
        priced[scenario.key] = p
        over = " OOM" if m.get("rss_mib", 0) > gib * 1024 else ""
        over += " TIMEOUT" if p["billed_s"] > EVENT_FUNCTION_TIMEOUT_S else ""
        if scenario.kind == "tick" and 60 < p["billed_s"] <= EVENT_FUNCTION_TIMEOUT_S:
            over += " >1min"  # longer than the tick interval (dispatch_due: 1 instance)
        inv = f"1/{m.get('jobs_per_message', 1)}" if scenario.kind == "run" else 1
        kms = m.get("kms_decrypts", 0) + m.get("kms_unwraps", 0)
        lines.append(
            f"{scenario.title:<44} {m.get('reads', 0):>8,} {m.get('writes', 0):>6,} "
            f"{m.get('deletes', 0):>5,} {m.get('rpcs', 0):>6,} {m.get('google_calls', 0):>7,} "
            f"{m.get('google_http', 0):>5,} {m.get('token_refreshes', 0):>3} "
            f"{kms:>3} {inv!s:>3} {m.get('cpu_s', 0):>7.3f} "
            f"{m.get('wall_s', 0):>7.3f} {p['billed_s']:>8.1f} "
            f"{m.get('rss_mib', 0):>8.0f} {fmt_usd(p['total']):>12}{over}"
        )
    lines += ["", "$ columns: 'u' = micro-dollars. Per scenario, what it did and where it paid:"]
    for scenario, m in results:
        lines.append(f"* {scenario.title}: {m.get('outcome', '')}")
        if m.get("failed"):
            continue
        p = priced[scenario.key]
        lines.append(f"    reads: {top(m.get('reads_by', {}))}")
        if m.get("writes") or m.get("deletes"):
            writes, deletes = top(m.get("writes_by", {})), top(m.get("deletes_by", {}))
            lines.append(f"    writes: {writes}; deletes: {deletes}")
        if m.get("google_by"):
            calls = ", ".join(f"{k.split('.', 1)[-1]} {v}" for k, v in m["google_by"].items())
            lines.append(f"    google: {calls}")
        if m.get("uncounted"):
            lines.append(f"    NOT COUNTED (unknown store methods): {m['uncounted']}")
        parts = ", ".join(
            f"{k} {fmt_usd(p[k])}" for k in ("store", "compute", "invocation", "kms", "pubsub")
        )
        if scenario.kind == "message":
            parts += f"; per pair {fmt_usd(p['total'] / max(1, int(m.get('pairs', 1))))}"
        lines.append(f"    $: {parts}")
    lines += ["", *per_user_month(results, priced)]
    return "\n".join(lines) + "\n"


def per_user_month(
    results: list[tuple[Scenario, dict[str, Any]]], priced: dict[str, dict[str, float]]
) -> list[str]:
    noop = [priced[k] for k in ("noop-contacts", "noop-activities") if k in priced]
    ticks = sorted({int(s.key.split("-")[1]) for s, _ in results if s.kind == "tick"})
    measured = dict((s.key, m) for s, m in results)
    pairs = int(measured.get("batch", {}).get("pairs", 0))
    if "batch" in priced and (pairs > 1 or len(noop) < 2):  # a message as deployed, per pair
        run = {k: v / max(1, pairs) for k, v in priced["batch"].items()}
        how = f"from one sync-jobs message of {pairs} no-op pairs"
    elif len(noop) == 2:
        run = {k: sum(p[k] for p in noop) / len(noop) for k in noop[0]}
        how = "one pair per message: the no-op runs' average"
    else:
        return ["($ per user-month needs the batch or both no-op scenarios)"]
    if not ticks:
        return ["($ per user-month needs a tick size)"]
    fixed = (
        SCHEDULER_JOB_31_DAYS_USD * (HOURS_PER_MONTH / 24) / 31
        + KMS_KEYS * KMS_KEY_VERSION_MONTH_USD
    )
    lines = [
        f"$ per connected user-month: both sections every {INTERVAL_MINUTES} min "
        f"({RUNS_PER_USER_MONTH:,} runs, all no-ops), {TICKS_PER_MONTH:,} ticks a "
        f"month shared by all users (cost at {STEADY_DUE_SHARE:.1%} of pairs due per tick, "
        f"extrapolated from 0% and 1%), fixed ${fixed:.2f}/month (scheduler job, KMS keys).",
        f"  per run ({how}): {fmt_usd(run['total'])} = store {fmt_usd(run['store'])}"
        f" + compute {fmt_usd(run['compute'])} + invocation {fmt_usd(run['invocation'])}"
        f" + KMS {fmt_usd(run['kms'])} + Pub/Sub {fmt_usd(run['pubsub'])}",
        f"  {'users':>8} {'tick $':>10} {'tick $/user-mo':>15} {'runs $/user-mo':>15}"
        f" {'total $/user-mo':>16}",
    ]
    for n in ticks:
        zero, one = priced.get(f"tick-{n}-0"), priced.get(f"tick-{n}-1")
        if not zero:
            continue
        slope = max(0.0, (one["total"] - zero["total"]) / DUE_SHARE) if one else 0.0
        tick = zero["total"] + slope * STEADY_DUE_SHARE
        tick_user = (tick * TICKS_PER_MONTH + fixed) / n
        runs_user = run["total"] * RUNS_PER_USER_MONTH
        total = tick_user + runs_user
        lines.append(
            f"  {n:>8,} {fmt_usd(tick):>10} {tick_user:>15.4f} {runs_user:>15.4f} {total:>16.4f}"
        )
    big = priced.get("noop-bigusers")
    if big:
        other = priced.get("noop-contacts", big)
        runs = (big["total"] + other["total"]) / 2 * RUNS_PER_USER_MONTH
        users = next(s.title for s, _ in results if s.key == "noop-bigusers").rsplit("of ", 1)[-1]
        lines.append(
            f"  runs $/user-month if the activities no-op costs what it does in a CRM of "
            f"{users}: {runs:.4f}"
        )
    return lines


def measure_all() -> tuple[list[tuple[Scenario, dict[str, Any]]], dict[str, Any], float]:
    from bench.sandbox_proc import ExternalSandbox

    results: list[tuple[Scenario, dict[str, Any]]] = []
    started = time.perf_counter()
    with ExternalSandbox() as sandbox, tempfile.TemporaryDirectory(prefix="crmsync-cost-") as tmp:
        idle_dir = Path(tmp) / "idle"
        idle_dir.mkdir()
        idle = spawn("measure_idle", idle_dir, sandbox.url, {})
        for scenario in scenarios():
            work = Path(tmp) / scenario.folder
            work.mkdir(exist_ok=True)
            t0 = time.perf_counter()
            try:
                for step, params in scenario.prepare:
                    spawn(step, work, sandbox.url, params)
                step, params = scenario.measure
                measured = spawn(step, work, sandbox.url, params)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:  # report it, go on
                measured = {"failed": True, "outcome": f"FAILED: {exc}"}
            results.append((scenario, measured))
            print(f"  cost: {scenario.title} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return results, idle, time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--json", help="also write the raw measurements to this file")
    parser.add_argument(
        "--reprice", metavar="JSON", help="no measuring: price the measurements of a --json file"
    )
    args = parser.parse_args(argv)
    if args.reprice:
        saved = json.loads(Path(args.reprice).read_text())
        results = [(Scenario(**s), m) for s, m in saved["results"]]
        idle, took = saved["idle"], saved["seconds"]
    else:
        results, idle, took = measure_all()
    if args.json:
        raw = {"root": str(ROOT), "idle": idle, "seconds": took,
               "results": [(dataclasses.asdict(s), m) for s, m in results]}  # fmt: skip
        Path(args.json).write_text(json.dumps(raw, indent=1, default=str))
    text = report(results, idle) + f"(measuring took {took:.0f} s)\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return text


if __name__ == "__main__":
    main()
