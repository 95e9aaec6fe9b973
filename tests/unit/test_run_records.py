"""Run records as the page sees them and as redeliveries meet them (pure parts of
core.runs and core.outcome): a run that died says so, a redelivered message neither
runs a finished run twice nor beside its live first delivery, and journals are cut
into pages that fit Firestore's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.lease import LEASE_SECONDS, holder_of, run_of
from core.outcome import GRACE, QUEUED_FOR, settled
from core.runs import (
    ENTRY_BYTES,
    JOURNAL_PAGE,
    PAGE_BYTES,
    claimable,
    journal_pages,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ago(**delta) -> str:
    return stamp(NOW - timedelta(**delta))


def lease(holder: str, expires_in: timedelta) -> dict:
    return {"holder": holder, "expiresAt": stamp(NOW + expires_in)}


RUNNING = {"outcome": "running", "reason": "running", "section": "contacts"}


# --- holders -------------------------------------------------------------------------


def test_a_holder_names_its_run_and_attempt_and_other_holders_name_no_run():
    assert run_of(holder_of("r1", "a1")) == "r1"
    assert run_of("switch:alice") is None
    assert run_of(None) is None and run_of("") is None


# --- settled: a run that died under way ---------------------------------------------


def test_a_running_record_whose_run_holds_the_lease_stays_running():
    record = {**RUNNING, "updatedAt": ago(minutes=10)}
    shown = settled("r1", record, lease(holder_of("r1", "x"), timedelta(minutes=5)), NOW)
    assert shown["outcome"] == "running"


def test_a_running_record_without_its_lease_past_the_grace_is_interrupted():
    record = {**RUNNING, "updatedAt": stamp(NOW - GRACE - timedelta(seconds=1))}
    for held in (None, lease(holder_of("other", "x"), timedelta(minutes=5)),
                 lease(holder_of("r1", "x"), -timedelta(seconds=1))):  # fmt: skip
        shown = settled("r1", record, held, NOW)
        assert (shown["outcome"], shown["reason"], shown["ok"]) == ("failed", "interrupted", False)
        assert "start it again" in shown["hint"]


def test_a_running_record_just_updated_is_given_the_grace_before_its_lease_counts():
    record = {**RUNNING, "updatedAt": stamp(NOW - GRACE + timedelta(seconds=1))}
    assert settled("r1", record, None, NOW)["outcome"] == "running"


def test_a_queued_run_never_started_within_the_hour_is_said_lost():
    fresh = {"outcome": "queued", "queuedAt": stamp(NOW - QUEUED_FOR + timedelta(minutes=1))}
    lost = {"outcome": "queued", "queuedAt": stamp(NOW - QUEUED_FOR)}
    assert settled("r1", fresh, None, NOW)["outcome"] == "queued"
    shown = settled("r1", lost, None, NOW)
    assert (shown["outcome"], shown["reason"]) == ("failed", "interrupted")
    assert "never started" in shown["hint"]


def test_finished_records_are_shown_as_stored():
    for state in ("done", "failed", "skipped"):
        record = {"outcome": state, "reason": "x", "finishedAt": ago(days=3)}
        assert settled("r1", record, None, NOW) == record


# --- claimable: a redelivered message of a run started by hand ------------------------


def test_a_new_or_queued_run_is_run():
    assert claimable(None, NOW) == "run"
    assert claimable({"outcome": "queued"}, NOW) == "run"


def test_a_finished_run_is_never_run_again():
    for state in ("done", "failed", "skipped"):
        assert claimable({"outcome": state}, NOW) == "done"


def test_a_live_first_delivery_makes_the_redelivery_wait_and_a_silent_one_is_taken_over():
    live = {**RUNNING, "updatedAt": stamp(NOW - timedelta(seconds=LEASE_SECONDS - 1))}
    dead = {**RUNNING, "updatedAt": stamp(NOW - timedelta(seconds=LEASE_SECONDS))}
    assert claimable(live, NOW) == "busy"
    assert claimable(dead, NOW) == "run"
    assert claimable(RUNNING, NOW) == "run"  # no time at all: nothing says it lives


# --- journal pages ----------------------------------------------------------------


def entry(n: int, value_bytes: int = 10) -> dict:
    return {"change": "updatedInGoogle", "side": "google", "crmId": f"c{n}",
            "fields": {"notes": ["", "x" * value_bytes]}}  # fmt: skip


def size(value) -> int:
    return len(json.dumps(value, default=str, ensure_ascii=False).encode())


@given(st.lists(st.integers(min_value=0, max_value=3 * ENTRY_BYTES), max_size=60))
def test_pages_keep_every_entry_in_order_within_both_limits(lengths):
    journal = [entry(n, length) for n, length in enumerate(lengths)]
    pages = journal_pages(journal)
    flat = [e for page in pages for e in page]
    assert [e["crmId"] for e in flat] == [e["crmId"] for e in journal]
    for page in pages:
        assert 1 <= len(page) <= JOURNAL_PAGE
        assert len(page) == 1 or size(page) <= PAGE_BYTES + len(page) * 2
    for original, kept in zip(journal, flat, strict=True):
        if size(original) > ENTRY_BYTES:  # too long to keep: its fields are named
            assert "fields" not in kept and kept["fieldsOmitted"] == ["notes"]
        else:
            assert kept == original


def test_a_long_journal_is_cut_at_the_item_count():
    pages = journal_pages([entry(n) for n in range(2 * JOURNAL_PAGE + 1)])
    assert [len(p) for p in pages] == [JOURNAL_PAGE, JOURNAL_PAGE, 1]
