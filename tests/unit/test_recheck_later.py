"""Items put off until a side changes, or a day on (``core.runs.recheck``): a contact
whose email several Google contacts hold is the user's to resolve, and is not searched
for at every run meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core import schedule
from core.model import stamp
from core.runs import RECHECK_AFTER, RunLog, later_state, recheck, sound_state

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_only_the_due_ones_are_read_when_nothing_changed():
    state = {
        "retryCrmLater": {"a": stamp(NOW - timedelta(seconds=1)), "b": stamp(NOW + RECHECK_AFTER)}
    }
    assert recheck(state, NOW, changed=False) == (["a"], {"b": stamp(NOW + RECHECK_AFTER)})


def test_every_one_is_read_when_google_changed():
    state = {"retryCrmLater": {"a": stamp(NOW + RECHECK_AFTER), "b": stamp(NOW + RECHECK_AFTER)}}
    assert recheck(state, NOW, changed=True) == (["a", "b"], {})


def test_after_a_run_the_ones_put_off_again_wait_a_day_and_the_resolved_ones_go():
    log = RunLog()
    log.later_crm.add("a")
    kept = {"b": stamp(NOW + timedelta(hours=3)), "c": stamp(NOW + timedelta(hours=1))}
    log.retry_crm.add("c")  # read again next run anyway
    assert later_state(kept, log, NOW) == {"a": stamp(NOW + RECHECK_AFTER),
                                          "b": stamp(NOW + timedelta(hours=3))}  # fmt: skip


def test_a_due_item_makes_the_pair_run_and_one_not_due_does_not():
    base = {"googleCursor": "g", "lastSuccessAt": stamp(NOW)}
    later = {**base, "retryCrmLater": {"a": stamp(NOW + timedelta(hours=1))}}
    due = {**base, "retryCrmLater": {"a": stamp(NOW - timedelta(hours=1))}}
    assert not schedule.must_run(later, NOW)
    assert schedule.must_run(due, NOW)
    assert schedule.must_run({**base, "retryCrmLater": {"a": "not a time"}}, NOW)


def test_a_corrupt_list_of_items_put_off_is_set_aside_and_reported():
    log = RunLog()
    state = sound_state({"retryCrmLater": ["a"], "tagId": "t"}, log)
    assert state == {"tagId": "t"}
    assert [e["kind"] for e in log.errors] == ["CorruptState"]
