"""Switching the connected Google account: the new account starts clean, the CRM loses
nothing, the old account's pairs come back if the user returns to it (issue 9, 2.1)."""

from __future__ import annotations

import pytest

from core.errors import SideEmpty
from core.model import CONTACTS, LINKS, SYNC_STATE
from core.runs import Options
from functions import bootstrap, seed
from functions.accounts import connect
from functions.manual_logic import status
from functions.sync import run_activities, run_contacts


def tagged(store) -> set[str]:
    return {
        d.id
        for d in store.scan(CONTACTS, order_by="modifiedAt")
        if seed.ALICE_TAG in d.data.get("tagIds", []) and not d.data.get("deletedAt")
    }


def group_members(people) -> dict[str, list[str]]:
    """Group name -> emails of its members, in one Google account."""
    groups = people.contactGroups().list().execute().get("contactGroups", [])
    names = {g["resourceName"]: g.get("name") for g in groups}
    found: dict[str, list[str]] = {}
    answer = (
        people.people()
        .connections()
        .list(resourceName="people/me", personFields="memberships,emailAddresses", pageSize=1000)
        .execute()
    )
    for person in answer.get("connections", []):
        emails = [e["value"] for e in person.get("emailAddresses", [])]
        for m in person.get("memberships", []):
            group = m.get("contactGroupMembership", {}).get("contactGroupResourceName")
            if names.get(group) == "CRM":
                found.setdefault("CRM", []).extend(emails)
    return found


def sync(store, section="contacts", **options):
    run = run_contacts if section == "contacts" else run_activities
    return run(bootstrap.Config.from_env(), store, seed.ALICE, Options(**options))


@pytest.fixture
def work(make_account):
    return make_account("alice.work@example.com")


def test_connecting_another_google_account_starts_it_clean_and_keeps_every_crm_tag(
    cloud_env, account, work
):
    store = cloud_env
    before = tagged(store)
    assert sync(store).counts.get("pushed") == len(before)
    old_group = sorted(group_members(account.people)["CRM"])

    connect(bootstrap.Config.from_env(), seed.ALICE, work.refresh_token)
    report = sync(store)  # incremental: no 400 on the old token, no untagging

    assert tagged(store) == before
    assert report.counts.get("pushed") == len(before) and not report.counts.get("untagged")
    assert sorted(group_members(work.people)["CRM"]) == old_group
    assert sorted(group_members(account.people)["CRM"]) == old_group  # left as it was
    state = store.get(SYNC_STATE, f"{seed.ALICE}:contacts")
    assert state["accountEmail"] == "alice.work@example.com"
    switched = status(store, seed.ALICE)["account"]["switched"]
    assert switched["from"] == "alice@example.com" and switched["to"] == work.email
    assert switched["archived"] == len(before)
    assert not sync(store).counts.get("pushed")  # settled


def test_returning_to_the_first_google_account_rejoins_its_pairs_without_duplicates(
    cloud_env, account, work
):
    store = cloud_env
    sync(store)
    config = bootstrap.Config.from_env()
    connect(config, seed.ALICE, work.refresh_token)
    sync(store)
    connect(config, seed.ALICE, account.refresh_token)
    report = sync(store)

    assert not report.counts.get("pushed") and not report.counts.get("untagged")
    members = group_members(account.people)["CRM"]
    assert len(members) == len(set(members)) == len(tagged(store))
    assert status(store, seed.ALICE)["account"]["switched"]["restored"] == len(tagged(store))


def test_a_full_run_after_the_account_changed_behind_our_back_switches_instead_of_untagging(
    cloud_env, work
):
    """The connection document rewritten by other means: the run's safety net switches."""
    store = cloud_env
    sync(store)
    before = tagged(store)
    doc = store.get("googleAccounts", seed.ALICE)
    cipher = bootstrap.cipher(bootstrap.Config.from_env())
    store.put(
        "googleAccounts",
        seed.ALICE,
        {
            **doc,
            "accountEmail": work.email,
            "refreshTokenCiphertext": cipher.encrypt(work.refresh_token),
        },
    )
    report = sync(store, full=True)
    assert tagged(store) == before and report.counts.get("pushed") == len(before)


def test_an_unnoticed_account_switch_stops_the_run_even_with_a_single_link(
    cloud_env, account, work
):
    """No account on record anywhere: the guard holds for one link as for many."""
    store = cloud_env
    for doc in store.scan(CONTACTS, order_by="modifiedAt"):
        if doc.id != "c-ada" and seed.ALICE_TAG in doc.data.get("tagIds", []):
            tags = [t for t in doc.data["tagIds"] if t != seed.ALICE_TAG]
            store.put(CONTACTS, doc.id, {**doc.data, "tagIds": tags})
    sync(store)
    assert len(list(store.scan(LINKS, order_by="crmId"))) == 1
    for key in ("googleAccounts", SYNC_STATE):
        for doc in list(store.scan(key, order_by="userId")):
            data = {k: v for k, v in doc.data.items() if k != "accountEmail"}
            store.put(key, doc.id, data)
    doc = store.get("googleAccounts", seed.ALICE)
    cipher = bootstrap.cipher(bootstrap.Config.from_env())
    store.put(
        "googleAccounts",
        seed.ALICE,
        {**doc, "refreshTokenCiphertext": cipher.encrypt(work.refresh_token)},
    )
    with pytest.raises(SideEmpty, match="any of the 1 linked contacts"):
        sync(store)
    assert "c-ada" in tagged(store)


def test_activities_follow_the_new_account_into_its_calendar(cloud_env, account, work):
    store = cloud_env
    first = sync(store, "activities")
    pushed = first.counts.get("pushed", 0)
    assert pushed > 0
    connect(bootstrap.Config.from_env(), seed.ALICE, work.refresh_token)
    again = sync(store, "activities")
    assert again.counts.get("pushed") == pushed and not again.counts.get("canceled")
    events = work.calendar.events().list(calendarId="primary").execute().get("items", [])
    assert len([e for e in events if e.get("status") != "cancelled"]) >= pushed


def test_reconnecting_while_a_run_is_under_way_switches_after_it_and_loses_no_tag(
    cloud_env, account, work, monkeypatch
):
    """The switch waits for the run's lease: links of two accounts never mix."""
    from core import contacts_exec

    store = cloud_env
    config = bootstrap.Config.from_env()
    sync(store)
    connect(config, seed.ALICE, work.refresh_token)
    sync(store)
    before = tagged(store)
    doc = store.get(CONTACTS, "c-ada")
    store.put(
        CONTACTS, "c-ada", {**doc, "jobTitle": "Edited on W", "modifiedAt": "2099-01-01T00:00:00Z"}
    )
    original = contacts_exec.ContactsExecutor.run

    def run_and_reconnect(self, actions, snap):
        monkeypatch.setattr(contacts_exec.ContactsExecutor, "run", original)
        connect(config, seed.ALICE, account.refresh_token)  # back to the first, mid-run
        return original(self, actions, snap)

    monkeypatch.setattr(contacts_exec.ContactsExecutor, "run", run_and_reconnect)
    sync(store)  # finishes on W, its state still W's
    assert store.get(SYNC_STATE, f"{seed.ALICE}:contacts")["accountEmail"] == work.email
    on_first = sync(store)  # the safety net switches now
    assert store.get(SYNC_STATE, f"{seed.ALICE}:contacts")["accountSwitch"]["restored"] == 4
    assert not on_first.counts.get("untagged") and not on_first.counts.get("imported")
    connect(config, seed.ALICE, work.refresh_token)
    back = sync(store)
    assert not back.counts.get("untagged") and not back.counts.get("imported")
    assert tagged(store) == before


def test_events_organized_by_a_users_other_google_address_belong_to_that_users_sync(
    cloud_env, work, make_account
):
    """Alice's Google account is not her CRM address: Bob's copy of a meeting she
    organizes there is hers to sync, not an import of Bob's."""
    store = cloud_env
    config = bootstrap.Config.from_env()
    bob = make_account("bob@example.com")
    connect(config, seed.BOB, bob.refresh_token)
    connect(config, seed.ALICE, work.refresh_token)
    start = "2026-12-20T10:00:00Z"
    work.calendar.events().insert(
        calendarId="primary",
        sendUpdates="none",
        body={
            "summary": "Planning, from Alice's work account",
            "start": {"dateTime": start},
            "end": {"dateTime": "2026-12-20T11:00:00Z"},
            "attendees": [{"email": "bob@example.com"}],
        },
    ).execute()
    report = run_activities(config, store, seed.BOB, Options())
    assert not report.counts.get("imported")
