"""The ``PeoplePort`` contract: what the contacts engine relies on, one behaviour a test.

Each test runs against ``tests.fakes.FakePeople``, the real adapter over the sandbox
(default and realistic profiles) and, opt-in, over live Google (``conftest.people``).
Where Google is only eventually consistent (sync deltas lag writes by minutes; search
sees an older cache), the test states what is guaranteed in time: ``eventually``.
"""

from __future__ import annotations

import uuid

import pytest

from core import contact_mapping as cm
from core.errors import EtagMismatch, GoogleError, NotFound, SyncTokenExpired
from tests.contract.google_targets import DAY, person_body


def unique(prefix: str = "c") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def make(people, group: str | None = None, crm_id: str = "", given: str = "") -> dict:
    """One person created through the port; returns it as ``create`` answered."""
    given = given or unique("Given")
    email = f"{given.lower()}@example.com"
    [result] = people.port.create([(crm_id or given, person_body(given, email, group, crm_id))])
    assert result.error is None and result.person, result
    return result.person


def names_of(persons: list[dict]) -> set[str]:
    return {p["resourceName"] for p in persons}


def settled_token(people) -> str:
    """A token that has read past every write so far (our echoes included)."""
    token = people.port.changes(None).next_sync_token
    return people.eventually(lambda: _quiet_after(people, token))


def _quiet_after(people, token: str) -> str:
    changes = people.port.changes(token)
    assert not changes.persons, "writes still arriving"
    return changes.next_sync_token


# --- the group ---------------------------------------------------------------------------


def test_find_or_create_group_makes_the_group_once_and_find_group_finds_it(people):
    name = unique("crmsync contract ")
    assert people.port.find_group(name) is None
    group = people.port.find_or_create_group(name)
    assert group.startswith("contactGroups/")
    assert people.port.find_or_create_group(name) == group
    assert people.port.find_group(name) == group


# --- create and get ----------------------------------------------------------------------


def test_create_answers_per_item_keyed_by_crm_id_in_order(people):
    group = people.port.find_or_create_group(unique("crmsync contract "))
    items = [(f"crm-{i}", person_body(unique("Given"), f"{unique()}@example.com", group))
             for i in range(3)]  # fmt: skip
    results = people.port.create(items)
    assert [r.key for r in results] == ["crm-0", "crm-1", "crm-2"]
    assert all(r.error is None and r.person["resourceName"].startswith("people/c") for r in results)
    assert len(names_of([r.person for r in results])) == 3


def test_a_created_person_reads_back_with_fields_group_and_client_data(people):
    group = people.port.find_or_create_group(unique("crmsync contract "))
    created = make(people, group, crm_id="crm-42", given="Ada")
    name = created["resourceName"]
    got = people.port.get([name])[name]
    assert got["etag"]
    assert cm.from_person(got)["givenName"] == "Ada"
    assert cm.from_person(got)["emails"] == [{"value": "ada@example.com"}]
    assert group in cm.group_names(got)
    assert cm.client_data_id(got) == "crm-42"
    assert got["metadata"]["sources"][0]["updateTime"]


def test_get_leaves_out_persons_that_do_not_exist(people):
    person = make(people)
    name = person["resourceName"]
    people.delete_person(name)
    assert people.port.get([name]) == {}


# --- updates -----------------------------------------------------------------------------


def test_update_replaces_only_the_masked_fields_and_moves_the_etag(people):
    person = make(people, given="Grace")
    name = person["resourceName"]
    current = people.port.get([name])[name]
    body = {"etag": current["etag"], "names": [{"givenName": "Grace", "familyName": "Hopper"}]}
    [result] = people.port.update([(name, body)], "names")
    assert result.key == name and result.error is None
    assert result.person["etag"] != current["etag"]
    got = people.port.get([name])[name]
    assert cm.from_person(got)["familyName"] == "Hopper"
    assert cm.from_person(got)["emails"] == [{"value": "grace@example.com"}]  # not in the mask


def test_update_clears_a_masked_field_left_out_of_the_body(people):
    person = make(people)
    name = person["resourceName"]
    current = people.port.get([name])[name]
    [result] = people.port.update([(name, {"etag": current["etag"]})], "emailAddresses")
    assert result.error is None
    assert cm.from_person(people.port.get([name])[name])["emails"] == []


def test_a_stale_etag_is_that_items_etag_mismatch_and_the_others_are_written(people):
    stale, fresh = make(people), make(people)
    read = people.port.get([stale["resourceName"], fresh["resourceName"]])
    people.rename_person(stale["resourceName"], "EditedInGoogle")  # its etag moves on
    items = [(n, {"etag": read[n]["etag"], "names": [{"givenName": "FromCrm"}]}) for n in read]
    results = {r.key: r for r in people.port.update(items, "names")}
    assert isinstance(results[stale["resourceName"]].error, EtagMismatch)
    assert results[fresh["resourceName"]].error is None
    after = people.port.get(list(read))
    assert cm.from_person(after[stale["resourceName"]])["givenName"] == "EditedInGoogle"
    assert cm.from_person(after[fresh["resourceName"]])["givenName"] == "FromCrm"


def test_a_person_deleted_since_it_was_read_fails_its_item_only(people):
    gone, kept = make(people)["resourceName"], make(people)["resourceName"]
    read = people.port.get([gone, kept])
    people.delete_person(gone)
    results = {r.key: r for r in people.port.update(
        [(n, {"etag": read[n]["etag"], "names": [{"givenName": "FromCrm"}]}) for n in (gone, kept)],
        "names")}  # fmt: skip
    assert isinstance(results[gone].error, NotFound) and results[gone].person is None
    assert results[kept].error is None
    assert cm.from_person(people.port.get([kept])[kept])["givenName"] == "FromCrm"


# --- group membership --------------------------------------------------------------------


def test_modify_members_adds_and_removes(people):
    group = people.port.find_or_create_group(unique("crmsync contract "))
    name = make(people)["resourceName"]  # in myContacts only
    assert people.port.modify_members(group, add=[name]).not_found == ()
    assert group in cm.group_names(people.port.get([name])[name])
    result = people.port.modify_members(group, remove=[name])
    assert result.not_found == () and result.last_group == ()
    assert group not in cm.group_names(people.port.get([name])[name])


def test_a_persons_last_group_is_never_removed(people):
    group = people.port.find_or_create_group(unique("crmsync contract "))
    name = make(people, group)["resourceName"]
    if cm.group_names(people.port.get([name])[name]) != {group}:
        pytest.skip("this account adds myContacts to every created contact")
    result = people.port.modify_members(group, remove=[name])
    assert result.last_group == (name,)
    assert cm.group_names(people.port.get([name])[name]) == {group}


def test_modify_members_reports_persons_that_do_not_exist(people):
    group = people.port.find_or_create_group(unique("crmsync contract "))
    gone = make(people)["resourceName"]
    people.delete_person(gone)
    result = people.port.modify_members(group, add=[gone])
    assert result.not_found == (gone,)


# --- listings and sync tokens ------------------------------------------------------------


def test_a_full_listing_is_complete_and_holds_every_live_person(people):
    kept, deleted = make(people), make(people)
    people.delete_person(deleted["resourceName"])
    changes = people.eventually(lambda: _full_without(people, deleted["resourceName"]))
    assert changes.complete
    assert kept["resourceName"] in names_of(changes.persons)
    assert changes.next_sync_token


def _full_without(people, name: str):
    changes = people.port.changes(None)
    assert name not in names_of(changes.persons)
    return changes


def test_changes_since_a_token_hold_what_changed_and_not_the_rest(people):
    group = people.port.find_or_create_group(unique("crmsync contract "))
    untouched, edited, deleted = make(people), make(people), make(people)
    token = settled_token(people)
    people.rename_person(edited["resourceName"], "Renamed")
    people.delete_person(deleted["resourceName"])
    added = make(people, group)
    wanted = {edited["resourceName"], deleted["resourceName"], added["resourceName"]}

    def delta():
        changes = people.port.changes(token)
        assert wanted <= names_of(changes.persons)
        return changes

    changes = people.eventually(delta)
    assert not changes.complete
    assert untouched["resourceName"] not in names_of(changes.persons)
    by_name = {p["resourceName"]: p for p in changes.persons}
    assert by_name[deleted["resourceName"]]["metadata"]["deleted"] is True
    assert cm.from_person(by_name[edited["resourceName"]])["givenName"] == "Renamed"
    assert group in cm.group_names(by_name[added["resourceName"]])


def test_a_membership_change_shows_in_the_changes(people):
    group = people.port.find_or_create_group(unique("crmsync contract "))
    name = make(people)["resourceName"]
    token = settled_token(people)
    people.port.modify_members(group, add=[name])

    def delta():
        changes = people.port.changes(token)
        assert name in names_of(changes.persons)
        return changes

    [person] = [p for p in people.eventually(delta).persons if p["resourceName"] == name]
    assert group in cm.group_names(person)


def test_the_token_of_a_delta_reads_on_from_there(people):
    token = settled_token(people)
    first = make(people)["resourceName"]
    middle = people.eventually(lambda: _holding(people, token, first))
    second = make(people)["resourceName"]
    later = people.eventually(lambda: _holding(people, middle.next_sync_token, second))
    assert first not in names_of(later.persons)


def _holding(people, token: str, name: str):
    changes = people.port.changes(token)
    assert name in names_of(changes.persons)
    return changes


def test_transform_sees_each_person_and_only_its_result_is_kept(people):
    name = make(people)["resourceName"]
    changes = people.eventually(lambda: _full_holding(people, name))
    assert all(isinstance(n, str) for n in changes.persons)


def _full_holding(people, name: str):
    changes = people.port.changes(None, lambda p: p["resourceName"])
    assert name in changes.persons
    return changes


def test_has_changes_is_false_when_quiet_and_true_after_a_write_and_reads_only(people):
    token = settled_token(people)
    assert people.port.has_changes(token) is False
    make(people)
    people.eventually(lambda: _has(people, token))
    assert people.port.has_changes(token) is True  # asking moved nothing


def _has(people, token: str) -> None:
    assert people.port.has_changes(token) is True


def test_our_own_writes_come_back_as_changes(people):
    name = make(people)["resourceName"]
    token = settled_token(people)
    current = people.port.get([name])[name]
    people.port.update([(name, {"etag": current["etag"], "names": [{"givenName": "E"}]})],
                       "names")  # fmt: skip
    people.eventually(lambda: _holding(people, token, name))


def test_a_token_older_than_seven_days_raises_sync_token_expired(people):
    token = people.port.changes(None).next_sync_token
    people.age(7 * DAY + 60)
    with pytest.raises(SyncTokenExpired):
        people.port.changes(token)
    with pytest.raises(SyncTokenExpired):
        people.port.has_changes(token)


def test_a_malformed_token_is_an_error_but_not_an_expired_token(people):
    with pytest.raises(GoogleError) as caught:
        people.port.changes("bm90IGEgdG9rZW4=")
    assert not isinstance(caught.value, SyncTokenExpired)


# --- search ------------------------------------------------------------------------------


def test_search_finds_a_contact_by_its_email_in_time(people):
    given = unique("Searched")
    name = make(people, given=given)["resourceName"]
    email = f"{given.lower()}@example.com"

    def found():
        hits = people.port.search([email])
        assert name in names_of(hits[email])
        return hits

    people.eventually(found)
