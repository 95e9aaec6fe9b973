"""Which syncs are due: auto on, connected, not leased, interval passed."""

from datetime import UTC, datetime, timedelta

from core.schedule import Job, due_jobs

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def settings(contacts=True, activities=True, minutes=30):
    return {"contacts": {"auto": contacts, "intervalMinutes": minutes, "tagId": "t"},
            "activities": {"auto": activities, "intervalMinutes": minutes}}  # fmt: skip


CONNECTED = {"status": "connected"}


def test_never_run_pairs_are_due_at_once():
    jobs, _ = due_jobs({"u1": settings()}, {"u1": CONNECTED}, {}, NOW)
    assert jobs == [Job("u1", "contacts"), Job("u1", "activities")]


def test_interval_from_last_run():
    states = {"u1:contacts": {"lastRunAt": stamp(NOW - timedelta(minutes=29))},
              "u1:activities": {"lastRunAt": stamp(NOW - timedelta(minutes=30))}}  # fmt: skip
    jobs, _ = due_jobs({"u1": settings()}, {"u1": CONNECTED}, states, NOW)
    assert jobs == [Job("u1", "activities")]


def test_a_changed_interval_takes_effect_at_the_next_dispatch():
    states = {"u1:contacts": {"lastRunAt": stamp(NOW - timedelta(minutes=10))}}
    assert due_jobs({"u1": settings(activities=False, minutes=30)}, {"u1": CONNECTED}, states,
                    NOW)[0] == []  # fmt: skip
    assert due_jobs({"u1": settings(activities=False, minutes=5)}, {"u1": CONNECTED}, states,
                    NOW)[0] == [Job("u1", "contacts")]  # fmt: skip


def test_auto_off_disconnected_reauth_and_leased_pairs_are_not_due():
    lease = {"lease": {"holder": "r", "expiresAt": stamp(NOW + timedelta(minutes=1))}}
    expired = {"lease": {"holder": "r", "expiresAt": stamp(NOW - timedelta(minutes=1))}}
    all_settings = {"u1": settings(activities=False), "u2": settings(), "u3": settings(),
                    "u4": settings(activities=False), "u5": settings(activities=False)}  # fmt: skip
    accounts = {"u1": CONNECTED, "u3": {"status": "reauth_required"}, "u4": CONNECTED,
                "u5": CONNECTED}  # fmt: skip
    states = {"u4:contacts": lease, "u5:contacts": expired}
    jobs, _ = due_jobs(all_settings, accounts, states, NOW)
    assert jobs == [Job("u1", "contacts"), Job("u5", "contacts")]


def test_malformed_settings_are_reported_not_fatal():
    jobs, problems = due_jobs({"u1": {"contacts": {"intervalMinutes": 0}}, "u2": settings()},
                              {"u1": CONNECTED, "u2": CONNECTED}, {}, NOW)  # fmt: skip
    assert [j.user_id for j in jobs] == ["u2", "u2"]
    assert problems[0].doc_id == "u1" and problems[0].field == "contacts.intervalMinutes"
