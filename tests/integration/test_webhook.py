"""``crm_webhook``: signed CRM change events queue prompt syncs; every bad input is
refused with a JSON error and changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
from functions_framework import create_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.model import SYNC_RUNS
from functions import seed
from tests.integration.test_scheduler import ROOT

SECRET = "s3cret-for-tests"


@pytest.fixture
def hook(cloud_env, sandbox, monkeypatch):
    monkeypatch.setenv("CRMSYNC_WEBHOOK_SECRET", SECRET)
    store = cloud_env
    client = create_app("crm_webhook", str(ROOT / "main.py"), "http").test_client()

    def post(body, *, secret=SECRET, timestamp=None, signature=None, raw=None, skew=0):
        data = raw if raw is not None else json.dumps(body).encode()
        stamp = str(int(time.time()) + skew if timestamp is None else timestamp)
        mac = hmac.new(secret.encode(), stamp.encode() + b"." + data, hashlib.sha256).hexdigest()
        headers = {
            "X-Crmsync-Timestamp": stamp,
            "Content-Type": "application/json",
            "X-Crmsync-Signature": signature if signature is not None else f"sha256={mac}",
        }
        return client.post("/", data=data, headers=headers)

    post.store = store
    yield post


def event(event_id="e1", entity="contact", record="c-ada", change="updated", **extra):
    return {"eventId": event_id, "entity": entity, "recordId": record, "change": change, **extra}


def writes(store):
    return {c: len(list(store.query(c))) for c in ("syncRuns", "webhookEvents", "syncState")}


def test_a_signed_event_queues_a_sync_of_the_users_it_affects(hook):
    answer = hook({"events": [event()]})  # Ada carries Alice's private tag
    assert answer.status_code == 202
    assert answer.get_json()["queued"] == [{"userId": seed.ALICE, "section": "contacts"}]
    (run,) = [d.data for d in hook.store.query(SYNC_RUNS)]
    assert run["trigger"] == "webhook" and run["counts"]["pushed"] == 4


def test_activity_events_reach_organizer_and_participants(hook):
    answer = hook({"events": [event(entity="activity", record="a-kickoff")]})
    assert answer.get_json()["queued"] == [{"userId": seed.ALICE, "section": "activities"}]


def test_a_replayed_event_is_ignored_and_a_burst_coalesces(hook):
    assert hook({"events": [event("e1")]}).status_code == 202
    again = hook({"events": [event("e1")]}).get_json()
    assert again["replayed"] == ["e1"] and again["queued"] == []
    # two new events for the same pair: the first run already happened (inline), so the
    # next one queues; a third within the window while that one is pending coalesces
    burst = hook({"events": [event("e2"), event("e3", record="c-grace")]}).get_json()
    assert burst["queued"] == [{"userId": seed.ALICE, "section": "contacts"}]


BAD = {
    "missing signature": dict(signature=""),
    "wrong signature": dict(signature="sha256=" + "0" * 64),
    "wrong secret": dict(secret="not-the-secret"),
    "stale timestamp": dict(skew=-301),
    "future timestamp": dict(skew=301),
    "malformed timestamp": dict(timestamp="yesterday"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_signatures_and_timestamps_are_401_and_change_nothing(hook, case):
    before = writes(hook.store)
    answer = hook({"events": [event()]}, **BAD[case])
    assert answer.status_code == 401 and answer.get_json()["error"]
    assert writes(hook.store) == before


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{not json", 400),
        (json.dumps({"events": []}).encode(), 400),
        (json.dumps({"events": [event(entity="invoice")]}).encode(), 400),
        (json.dumps({"events": [event(change="merged")]}).encode(), 400),
        (json.dumps({"events": [event(userIds=["nobody"])]}).encode(), 400),
        (json.dumps({"events": [event()], "extra": 1}).encode(), 400),
        (b"x" * (256 * 1024 + 1), 413),
    ],
)
def test_malformed_oversized_and_unknown_user_bodies_change_nothing(hook, raw, status):
    before = writes(hook.store)
    answer = hook(None, raw=raw)
    assert answer.status_code == status and answer.get_json()["error"]
    assert writes(hook.store) == before


def test_without_a_secret_webhooks_are_refused(hook, monkeypatch):
    monkeypatch.delenv("CRMSYNC_WEBHOOK_SECRET")
    assert hook({"events": [event()]}).status_code == 503


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "events": st.lists(
                st.dictionaries(
                    st.sampled_from(["eventId", "entity", "recordId", "change", "userIds", "x"]),
                    json_values,
                    max_size=6,
                ),
                max_size=3,
            )
        }
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(raw=bodies)
def test_fuzzed_signed_bodies_never_cause_a_5xx(hook, raw):
    assert hook(None, raw=raw).status_code < 500


def test_claims_coalesce_while_a_queued_run_is_pending(hook):
    from datetime import timedelta

    from core.schedule import Job
    from functions.webhook_logic import claim

    store, job, t0 = hook.store, Job(seed.BOB, "contacts", "webhook"), datetime.now(UTC)
    assert claim(store, job, t0) is True
    assert claim(store, job, t0 + timedelta(seconds=10)) is False  # still pending: coalesced
    assert claim(store, job, t0 + timedelta(seconds=31)) is True  # pending too long: again
    state = store.get("syncState", f"{seed.BOB}:contacts")
    store.put(
        "syncState",
        f"{seed.BOB}:contacts",
        {**state, "lastRunAt": (t0 + timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
    )
    assert claim(store, job, t0 + timedelta(seconds=41)) is True  # it ran: a new change queues


def test_a_hard_delete_reported_by_the_webhook_reaches_google(hook, account):
    from core import activity_mapping as am

    assert hook({"events": [event("first")]}).status_code == 202  # contacts pushed
    hook({"events": [event("acts", entity="activity", record="a-kickoff")]})  # events pushed
    hook.store.delete("contacts", "c-grace")  # gone for good: no modifiedAt to notice
    hook.store.delete("activities", "a-kickoff")
    answer = hook(
        {
            "events": [
                event("del1", record="c-grace", change="deleted"),
                event("del2", entity="activity", record="a-kickoff", change="deleted"),
            ]
        }
    )
    assert answer.status_code == 202
    assert {q["section"] for q in answer.get_json()["queued"]} == {"contacts", "activities"}
    links = {d.id for d in hook.store.query("links")}
    assert f"{seed.ALICE}:contacts:c-grace" not in links
    assert f"{seed.ALICE}:activities:a-kickoff" not in links
    kickoff = (
        account.calendar.events()
        .get(calendarId="primary", eventId=am.event_id("a-kickoff"))
        .execute()
    )
    assert kickoff["status"] == "cancelled"
    persons = (
        account.people.people()
        .connections()
        .list(resourceName="people/me", personFields="names,memberships")
        .execute()["connections"]
    )
    grace = [p for p in persons if p["names"][0]["givenName"] == "Grace"]
    assert len(grace) == 1  # still in Google, out of the group
    assert all(
        m["contactGroupMembership"]["contactGroupResourceName"] == "contactGroups/myContacts"
        for m in grace[0]["memberships"]
    )
