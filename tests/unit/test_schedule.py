"""When pairs are due (core.schedule): slots from the clock, due-at-once marks, catch-up
after missed ticks, what forces a full run instead of a look, the displayed next time."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.model import SyncSettings
from core.schedule import (
    CATCH_UP,
    Job,
    Probe,
    due_keys,
    job_for,
    leased,
    minute_of,
    next_due,
    phase,
    slot_key,
    wanted_slot,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CONNECTED = {"status": "connected"}


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def settings(contacts=True, activities=True, minutes=30):
    return SyncSettings.model_validate(
        {"contacts": {"auto": contacts, "intervalMinutes": minutes, "tagId": "t"},
         "activities": {"auto": activities, "intervalMinutes": minutes}})  # fmt: skip


def test_a_pair_is_scheduled_only_with_auto_on_and_a_connected_account():
    slot, every = wanted_slot(settings(), CONNECTED, "u1", "contacts")
    assert every == 30 and slot == slot_key(30, phase("u1", "contacts", 30))
    assert wanted_slot(settings(contacts=False), CONNECTED, "u1", "contacts") == (None, None)
    assert wanted_slot(settings(), {"status": "reauth_required"}, "u1", "contacts") == (None, None)
    assert wanted_slot(settings(), None, "u1", "contacts") == (None, None)
    assert wanted_slot(None, CONNECTED, "u1", "contacts") == (None, None)


@given(st.integers(5, 1440), st.text(min_size=1, max_size=20))
def test_each_slot_comes_due_once_per_interval(every, user):
    at = phase(user, "contacts", every)
    assert 0 <= at < every
    start = minute_of(NOW)
    key = slot_key(every, at)
    ticks = (NOW + timedelta(minutes=m - start) for m in range(start, start + 2 * every))
    hits = [minute_of(t) for t in ticks if key in due_keys([every], None, t)]
    assert len(hits) == 2 and hits[1] - hits[0] == every


def test_phases_spread_the_pairs_of_one_interval():
    phases = {phase(f"u{i}", "contacts", 15) for i in range(300)}
    assert len(phases) == 15


def test_a_tick_makes_up_for_missed_minutes_but_not_for_ever():
    keys = due_keys([60], NOW - timedelta(minutes=3), NOW)
    assert keys == [slot_key(60, (minute_of(NOW) - k) % 60) for k in (2, 1, 0)]
    assert len(due_keys([1440], NOW - timedelta(days=2), NOW)) == CATCH_UP
    assert due_keys([15, 15], None, NOW) == [slot_key(15, minute_of(NOW) % 15)]
    assert due_keys([15], NOW, NOW + timedelta(seconds=30)) == []  # that minute was served


def test_leased_pairs():
    assert leased({"lease": {"holder": "r", "expiresAt": stamp(NOW + timedelta(minutes=1))}}, NOW)
    assert not leased({"lease": {"holder": "r", "expiresAt": stamp(NOW)}}, NOW)
    assert not leased({"lease": None}, NOW)


SYNCED = {"googleCursor": "g1", "crmCursor": stamp(NOW - timedelta(hours=1)),
          "crmReadAt": stamp(NOW - timedelta(minutes=50)), "lastSuccessAt": stamp(NOW)}  # fmt: skip


def test_a_synced_pair_is_looked_at_first_and_anything_pending_forces_a_run():
    job = job_for("u1", "contacts", SYNCED, NOW)
    assert job.probe == Probe("g1", SYNCED["crmCursor"], SYNCED["crmReadAt"])
    forcing = [{"nextDueAt": stamp(NOW)}, {"googleCursor": None}, {"crmCursor": None},
               {"lastSuccessAt": None}, {"retryCrm": ["c1"]}, {"retryGoogle": ["people/1"]},
               {"pendingCreates": True}]  # fmt: skip
    for change in forcing:
        assert job_for("u1", "contacts", {**SYNCED, **change}, NOW) == Job("u1", "contacts")
        assert job_for("u1", "contacts", {**SYNCED, **change}, NOW).probe is None
    later = {**SYNCED, "nextDueAt": stamp(NOW + timedelta(minutes=5))}
    assert job_for("u1", "contacts", later, NOW).probe is not None


def test_the_next_due_time_shown_is_the_earlier_of_the_mark_and_the_slot():
    every = 15
    at = (minute_of(NOW) + 4) % every
    state = {"slot": slot_key(every, at)}
    assert next_due(state, NOW) == stamp(NOW + timedelta(minutes=4))
    soon = stamp(NOW + timedelta(minutes=1))
    assert next_due({**state, "nextDueAt": soon}, NOW) == soon
    now_slot = {"slot": slot_key(every, minute_of(NOW) % every)}
    assert next_due(now_slot, NOW) == stamp(NOW + timedelta(minutes=every))
    assert next_due({}, NOW) is None


def test_a_full_run_waiting_in_the_queue_is_not_sent_again_until_it_ran_or_grace_passed():
    from core.schedule import DISPATCH_GRACE, recently_dispatched

    sent = {"dispatchedAt": stamp(NOW - timedelta(minutes=1))}
    assert recently_dispatched(sent, NOW)
    assert not recently_dispatched(sent, NOW + DISPATCH_GRACE)
    assert not recently_dispatched({**sent, "lastRunAt": stamp(NOW)}, NOW)
    assert not recently_dispatched({}, NOW)
