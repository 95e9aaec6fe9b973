"""Disconnecting a Google account (issue 11): the token is revoked at Google, the sync
state and links are cleared, the CRM and Google keep every record, the schedule lets
the user go; a reconnection, to the same account or another, syncs cleanly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request

from adapters import google_api
from adapters.google_auth import revoke_token
from core import email_index, lease
from core.account_switch import LINK_ARCHIVE
from core.errors import LeaseHeld, NotConnected, Unavailable, UnknownUser
from core.model import ACTIVITIES, CONTACTS, GOOGLE_ACCOUNTS, LINKS, SYNC_RUNS, SYNC_STATE
from core.runs import Options
from functions import bootstrap, seed
from functions.accounts import connect, disconnect
from functions.channels import CHANNELS, maintain_channel
from functions.jobs import dispatch
from functions.manual_logic import status
from functions.sync import run_activities, run_contacts
from tests.integration.crash import LaterClock
from tests.integration.test_account_switch import group_members, tagged
from tests.integration.test_push import receiver  # noqa: F401  (a fixture)

STATE_KEYS = ("googleCursor", "crmCursor", "crmReadAt", "groupResourceName", "retryGoogle",
              "retryCrm", "channel", "slot", "nextDueAt", "renewAt", "tokenCiphertext")  # fmt: skip
HISTORY = ("lastRunAt", "lastSuccessAt", "lastResult")
WATCHED = (SYNC_STATE, LINKS, LINK_ARCHIVE, GOOGLE_ACCOUNTS, email_index.EMAIL_INDEX, CHANNELS,
           CONTACTS, ACTIVITIES, SYNC_RUNS)  # fmt: skip


def config():
    return bootstrap.Config.from_env()


def sync(store, section="contacts", user=seed.ALICE):
    run = run_contacts if section == "contacts" else run_activities
    return run(config(), store, user, Options())


def sync_all(store):
    return {s: sync(store, s).counts for s in ("contacts", "activities")}


def documents(store, *collections):
    return {c: {d.id: d.data for d in store.query(c)} for c in collections}


def alice_links(store):
    return [d.id for d in store.query(LINKS) if d.data.get("userId") == seed.ALICE]


def refresh_fails(sandbox, token) -> str:
    creds = google_api.credentials(token, sandbox.url)
    with pytest.raises(auth_exceptions.RefreshError) as refused:
        creds.refresh(Request())
    return str(refused.value)


def google_events(sandbox, email):
    """Alice's live events, read in the sandbox itself (her tokens are revoked)."""
    token = sandbox.control("POST", "/_sandbox/accounts", {"email": email})["refreshToken"]
    service = google_api.calendar_service(google_api.credentials(token, sandbox.url), sandbox.url)
    items = service.events().list(calendarId="primary", singleEvents=True).execute()["items"]
    return sorted((e["id"], e.get("summary")) for e in items if e.get("status") != "cancelled")


def google_group(make_account, email):
    return sorted(group_members(make_account(email).people).get("CRM", []))


def add_google_event(account, summary="Made in Google"):
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    account.calendar.events().insert(
        calendarId="primary",
        sendUpdates="none",
        body={
            "summary": summary,
            "start": {"dateTime": f"{day}T09:00:00Z"},
            "end": {"dateTime": f"{day}T10:00:00Z"},
        },
    ).execute()


def add_google_person(account, group_name="CRM"):
    groups = account.people.contactGroups().list().execute()["contactGroups"]
    (group,) = [g["resourceName"] for g in groups if g.get("name") == group_name]
    account.people.people().createContact(
        body={
            "names": [{"givenName": "Hedy", "familyName": "Lamarr"}],
            "emailAddresses": [{"value": "hedy@films.example"}],
            "memberships": [{"contactGroupMembership": {"contactGroupResourceName": group}}],
        }
    ).execute()


@pytest.fixture
def synced(cloud_env, account):
    """Alice synced both ways, with a person and an event made in Google imported."""
    store = cloud_env
    sync(store)
    add_google_person(account)
    add_google_event(account)
    counts = sync_all(store)
    assert counts["contacts"].get("imported") == 1 and counts["activities"].get("imported") == 1
    return store


def test_disconnect_revokes_the_token_clears_the_sync_and_keeps_every_record(
    synced, sandbox, account, make_account
):
    store = synced
    crm_before = documents(store, CONTACTS, ACTIVITIES)
    tagged_before = tagged(store)
    states = documents(store, SYNC_STATE)[SYNC_STATE]
    runs_before = documents(store, SYNC_RUNS)[SYNC_RUNS]
    links = alice_links(store)
    assert links and all(states[f"{seed.ALICE}:{s}"].get("googleCursor") for s in ("contacts",))
    group_before = google_group(make_account, account.email)
    events_before = google_events(sandbox, account.email)

    result = disconnect(config(), store, seed.ALICE)

    assert result["outcome"] == "done" and result["reason"] == "disconnected"
    assert result["revoked"] is True and result["hint"]
    assert result["previousAccountEmail"] == account.email
    assert sum(result["unlinked"].values()) == len(links)
    assert "invalid_grant" in refresh_fails(sandbox, account.refresh_token)
    stored = store.get(GOOGLE_ACCOUNTS, seed.ALICE)
    assert stored["status"] == "not_connected" and stored["disconnectedAt"]
    assert stored["previousAccountEmail"] == account.email
    assert "refreshTokenCiphertext" not in stored and "accountEmail" not in stored
    for section in ("contacts", "activities"):
        sid = f"{seed.ALICE}:{section}"
        state = store.get(SYNC_STATE, sid)
        assert not any(state.get(k) for k in STATE_KEYS), state
        assert {k: state.get(k) for k in HISTORY} == {k: states[sid].get(k) for k in HISTORY}
        assert not state.get("lease")
    assert alice_links(store) == []
    # the CRM keeps every record and tag; Google keeps its group, persons and events
    assert documents(store, CONTACTS, ACTIVITIES) == crm_before
    assert tagged(store) == tagged_before
    assert documents(store, SYNC_RUNS)[SYNC_RUNS] == runs_before
    assert google_group(make_account, account.email) == group_before
    assert google_events(sandbox, account.email) == events_before
    shown = status(store, seed.ALICE)
    assert shown["account"]["status"] == "not_connected"
    assert (
        shown["sections"]["contacts"]["lastSuccessAt"]
        == states[f"{seed.ALICE}:contacts"]["lastSuccessAt"]
    )


def test_after_a_disconnect_no_tick_runs_the_user_and_a_sync_is_refused(synced):
    store = synced
    disconnect(config(), store, seed.ALICE)
    runs_before = len(documents(store, SYNC_RUNS)[SYNC_RUNS])
    clock = LaterClock(timedelta(0))
    bootstrap.use_clock(clock)
    try:
        for minutes in range(0, 61, 5):  # every slot of both intervals (30 and 15 minutes)
            clock.offset = timedelta(minutes=minutes)
            assert [j for j in dispatch(config(), store) if j.user_id == seed.ALICE] == []
    finally:
        bootstrap.use_clock(None)
    assert len(documents(store, SYNC_RUNS)[SYNC_RUNS]) == runs_before
    with pytest.raises(NotConnected):
        sync(store)


def test_reconnecting_to_the_same_account_rejoins_its_pairs_without_duplicates(
    synced, sandbox, account, make_account
):
    store = synced
    crm_before = documents(store, CONTACTS, ACTIVITIES)
    group_before = google_group(make_account, account.email)
    events_before = google_events(sandbox, account.email)
    links_before = sorted(alice_links(store))
    disconnect(config(), store, seed.ALICE)

    again = make_account(account.email)  # a new consent: a new refresh token
    connect(config(), seed.ALICE, again.refresh_token)
    assert sorted(alice_links(store)) == links_before
    counts = sync_all(store)

    for section in ("contacts", "activities"):
        done = counts[section]
        assert not done.get("pushed") and not done.get("imported"), (section, done)
        assert not done.get("untagged") and not done.get("canceled"), (section, done)
    assert documents(store, CONTACTS, ACTIVITIES) == crm_before
    group = google_group(make_account, account.email)
    assert group == group_before and len(group) == len(set(group))
    assert google_events(sandbox, account.email) == events_before
    for section in ("contacts", "activities"):
        state = store.get(SYNC_STATE, f"{seed.ALICE}:{section}")
        assert state["googleCursor"] and not state.get("disconnectedAt")
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "connected"


def test_reconnecting_to_another_account_starts_it_clean(synced, account, make_account):
    store = synced
    before = tagged(store)
    crm_activities = documents(store, ACTIVITIES)
    group_before = google_group(make_account, account.email)
    disconnect(config(), store, seed.ALICE)

    work = make_account("alice.work@example.com")
    connect(config(), seed.ALICE, work.refresh_token)
    report = sync(store)
    assert report.counts.get("pushed") == len(before) and not report.counts.get("untagged")
    assert not report.counts.get("imported")
    assert tagged(store) == before
    assert sorted(group_members(work.people)["CRM"]) == group_before
    assert google_group(make_account, account.email) == group_before  # left as it was
    assert not sync(store, "activities").counts.get("canceled")
    assert documents(store, ACTIVITIES).keys() == crm_activities.keys()
    switched = status(store, seed.ALICE)["account"]["switched"]
    assert switched["from"] == account.email and switched["to"] == work.email
    assert not sync(store).counts.get("pushed")  # settled

    # the work address joined the email index on connect, and leaves it on disconnect
    key = email_index.key(work.email)
    assert seed.ALICE in store.get(email_index.EMAIL_INDEX, key)["users"]
    disconnect(config(), store, seed.ALICE)
    assert seed.ALICE not in (store.get(email_index.EMAIL_INDEX, key) or {}).get("users", [])
    crm_key = email_index.key("alice@example.com")  # her CRM email stays indexed
    assert seed.ALICE in store.get(email_index.EMAIL_INDEX, crm_key)["users"]


def test_google_failing_to_revoke_changes_nothing_and_a_retry_succeeds(synced, sandbox, account):
    store = synced
    before = documents(store, *WATCHED)
    sandbox.fault("oauth2.revoke", 503, count=3)  # every quick try
    with pytest.raises(Unavailable):
        disconnect(config(), store, seed.ALICE)
    assert documents(store, *WATCHED) == before
    assert sync(store).counts is not None  # the connection still works

    sandbox.control("DELETE", "/_sandbox/faults")
    assert disconnect(config(), store, seed.ALICE)["revoked"] is True
    assert "invalid_grant" in refresh_fails(sandbox, account.refresh_token)


def test_a_token_google_revoked_already_still_disconnects(synced, sandbox, account):
    store = synced
    assert revoke_token(account.refresh_token, sandbox.url) is True
    assert revoke_token(account.refresh_token, sandbox.url) is False  # gone already
    result = disconnect(config(), store, seed.ALICE)
    assert result["revoked"] is False and result["outcome"] == "done"
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "not_connected"
    assert alice_links(store) == []


def test_not_connected_or_unknown_users_are_refused_and_nothing_is_written(cloud_env):
    store = cloud_env
    before = documents(store, *WATCHED)
    with pytest.raises(NotConnected):
        disconnect(config(), store, seed.BOB)  # never connected
    with pytest.raises(UnknownUser):
        disconnect(config(), store, "nobody")
    assert documents(store, *WATCHED) == before
    disconnect(config(), store, seed.ALICE)
    after = documents(store, *WATCHED)
    with pytest.raises(NotConnected):
        disconnect(config(), store, seed.ALICE)  # disconnected already
    assert documents(store, *WATCHED) == after


def test_a_run_under_way_is_left_alone(synced):
    store = synced
    sid = f"{seed.ALICE}:activities"
    lease.acquire(store, sid, "a-run", datetime.now(UTC))
    before = documents(store, *WATCHED)
    with pytest.raises(LeaseHeld):
        disconnect(config(), store, seed.ALICE)
    assert documents(store, *WATCHED) == before
    lease.release(store, sid, "a-run", {})
    assert disconnect(config(), store, seed.ALICE)["outcome"] == "done"


def test_the_push_channel_is_stopped(receiver, sandbox):  # noqa: F811
    store = receiver
    assert maintain_channel(config(), store, seed.ALICE, datetime.now(UTC)) == "opened"
    channel = store.get(SYNC_STATE, f"{seed.ALICE}:activities")["channel"]
    live = sandbox.state.ext["calendar"].channels
    assert channel["id"] in live

    disconnect(config(), store, seed.ALICE)
    assert channel["id"] not in live
    assert store.get(CHANNELS, channel["id"]) is None
    state = store.get(SYNC_STATE, f"{seed.ALICE}:activities")
    assert not state.get("channel") and not state.get("renewAt")
    bootstrap.use_clock(LaterClock(timedelta(days=8)))
    try:
        dispatch(config(), store)  # the tick's channel upkeep opens none
    finally:
        bootstrap.use_clock(None)
    assert not store.get(SYNC_STATE, f"{seed.ALICE}:activities").get("channel")


def test_a_user_who_never_synced_is_disconnected_without_leaving_a_state(
    cloud_env, sandbox, make_account
):
    store = cloud_env
    bob = make_account("bob@example.com")
    connect(config(), seed.BOB, bob.refresh_token)
    states = {k for k in documents(store, SYNC_STATE)[SYNC_STATE] if k.startswith(seed.BOB)}
    assert disconnect(config(), store, seed.BOB)["revoked"] is True
    after = {k for k in documents(store, SYNC_STATE)[SYNC_STATE] if k.startswith(seed.BOB)}
    assert after <= states  # no state made to hold nothing
    assert "invalid_grant" in refresh_fails(sandbox, bob.refresh_token)
    assert seed.BOB in store.get(email_index.EMAIL_INDEX, email_index.key(bob.email))["users"]


def test_another_account_connected_while_disconnecting_stays_and_starts_clean(
    synced, account, make_account, monkeypatch
):
    """The user connects a work account in another tab while the disconnect is at
    Google: that connection stays, and its first sync pushes the tagged contacts into
    the new account instead of taking the old account's pairs for its own."""
    from functions import accounts

    store = synced
    before = tagged(store)
    work = make_account("alice.work@example.com")
    real = accounts.revoke_token

    def revoke_while_the_user_reconnects(token, endpoint):
        connect(config(), seed.ALICE, work.refresh_token)
        return real(token, endpoint)

    monkeypatch.setattr(accounts, "revoke_token", revoke_while_the_user_reconnects)
    disconnect(config(), store, seed.ALICE)
    stored = store.get(GOOGLE_ACCOUNTS, seed.ALICE)
    assert (stored["status"], stored["accountEmail"]) == ("connected", work.email)
    report = sync(store)
    assert report.counts.get("pushed") == len(before), report.counts
    assert not report.counts.get("untagged") and not report.counts.get("imported")
    assert tagged(store) == before
    old_group = google_group(make_account, account.email)
    assert sorted(group_members(work.people)["CRM"]) == sorted(old_group)
    assert not sync(store).counts.get("pushed")  # settled, no duplicates


def test_a_disconnect_failing_after_the_revocation_says_reconnect_and_a_retry_finishes(
    synced, sandbox, account, monkeypatch
):
    """Found by review: the store failing after Google revoked the token left the
    account "connected" with a dead token and the leases held, so the retry was
    refused as "another sync is under way"."""
    from core import account_switch

    store = synced
    real = account_switch.archive

    def store_down(*args, **kwargs):
        raise RuntimeError("store down")

    monkeypatch.setattr(account_switch, "archive", store_down)
    with pytest.raises(RuntimeError):
        disconnect(config(), store, seed.ALICE)
    assert "invalid_grant" in refresh_fails(sandbox, account.refresh_token)
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "reauth_required"
    for section in ("contacts", "activities"):
        assert not store.get(SYNC_STATE, f"{seed.ALICE}:{section}").get("lease")
    monkeypatch.setattr(account_switch, "archive", real)
    result = disconnect(config(), store, seed.ALICE)  # the retry: Google says revoked already
    assert result["outcome"] == "done" and result["revoked"] is False
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "not_connected"
    assert alice_links(store) == []
