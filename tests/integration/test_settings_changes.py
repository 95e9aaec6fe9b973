"""Settings changed between runs: a new private tag, a bad "sync activities from" date
(issue 9, 2.8 and 2.9)."""

from __future__ import annotations

from core.model import CONTACTS, SYNC_SETTINGS, TAGS
from core.runs import Options
from functions import bootstrap, cli, seed
from functions.sync import run_contacts

NEW_TAG = "t-alice-vip"


def group_emails(people) -> set[str]:
    groups = people.contactGroups().list().execute().get("contactGroups", [])
    (crm_group,) = [g["resourceName"] for g in groups if g.get("name") == "CRM"]
    answer = (
        people.people()
        .connections()
        .list(resourceName="people/me", personFields="memberships,emailAddresses", pageSize=1000)
        .execute()
    )
    return {
        e["value"]
        for p in answer.get("connections", [])
        if any(
            m.get("contactGroupMembership", {}).get("contactGroupResourceName") == crm_group
            for m in p.get("memberships", [])
        )
        for e in p.get("emailAddresses", [])
    }


def add_tag(store, contact_id: str, tag_id: str) -> None:
    doc = store.get(CONTACTS, contact_id)
    store.put(CONTACTS, contact_id, {**doc, "tagIds": [*doc["tagIds"], tag_id]})


def test_changing_the_private_tag_takes_effect_at_the_next_incremental_run(cloud_env, account):
    store = cloud_env
    store.put(TAGS, NEW_TAG, {"name": "Google (VIP)", "kind": "private", "ownerId": seed.ALICE})
    add_tag(store, "c-alan", NEW_TAG)
    add_tag(store, "c-linus", NEW_TAG)
    for doc in store.scan(CONTACTS, order_by="modifiedAt"):  # all tagged hours ago
        store.put(CONTACTS, doc.id, {**doc.data, "modifiedAt": "2026-01-01T09:00:00Z"})
    config = bootstrap.Config.from_env()
    run_contacts(config, store, seed.ALICE, Options())
    before = {d.id: d.data["tagIds"] for d in store.scan(CONTACTS, order_by="modifiedAt")}
    assert "linus@kernel.example" not in group_emails(account.people)

    settings = store.get(SYNC_SETTINGS, seed.ALICE)
    settings["contacts"]["tagId"] = NEW_TAG
    store.put(SYNC_SETTINGS, seed.ALICE, settings)
    report = run_contacts(config, store, seed.ALICE, Options())  # incremental, not --full

    assert group_emails(account.people) == {"alan@bletchley.example", "linus@kernel.example"}
    assert report.counts.get("pushed") == 1
    after = {d.id: d.data["tagIds"] for d in store.scan(CONTACTS, order_by="modifiedAt")}
    assert after == before  # the CRM's tags are the user's: none added or removed
    again = run_contacts(config, store, seed.ALICE, Options())
    assert not again.plan  # settled: the new tag is recorded


def test_a_stored_sync_from_date_in_year_one_is_reported_without_a_traceback(cloud_env, capsys):
    store = cloud_env
    for bad in ("0001-01-01", "9999-12-31"):
        settings = store.get(SYNC_SETTINGS, seed.ALICE)
        settings["activities"]["syncFrom"] = bad
        store.put(SYNC_SETTINGS, seed.ALICE, settings)
        code = cli.main(["sync", "--user", seed.ALICE, "--section", "activities"])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err
        assert f'"sync activities from" date {bad}' in err and "sync settings" in err
