"""The sandbox's People API v1, driven through the real google-api-python-client.

Every test talks to the sandbox over HTTP with discovery-built services and google-auth
credentials (fixtures in ``conftest.py``); only the control API (``/_sandbox/...``,
``/revoke``) is called directly. Expected texts come from GOOGLE_API.md section 3.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from typing import Any

import pytest
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from adapters import google_api

ME = "people/me"
FIELDS = "names,emailAddresses,phoneNumbers,memberships,clientData,metadata"
PERSON_FIELDS_REQUIRED = (
    "personFields mask is required. Please specify one or more valid paths. Valid paths "
    "are documented at https://developers.google.com/people/api/rest/v1/people/get."
)
STALE_ETAG = (
    "Request person.etag is different than the current person.etag. "
    "Clear local cache and get the latest person."
)
MISSING_ETAG = (
    "Request must set person.etag or person.metadata.sources.etag "
    "for the source that is being updated."
)
EXPIRED = "Sync token is expired. Clear local cache and retry call without the sync token."
DEPRECATED = "Cannot add contacts to deprecated system contact group"
SEVEN_DAYS = 7 * 24 * 3600


# -- helpers --------------------------------------------------------------------------


def fails(request: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, error object) of a request that must fail."""
    with pytest.raises(HttpError) as info:
        request.execute()
    return info.value.resp.status, json.loads(info.value.content)["error"]


def create(people: Any, given: str, family: str = "", **extra: Any) -> dict[str, Any]:
    body = {"names": [{"givenName": given, "familyName": family}], **extra}
    return people.people().createContact(body=body, personFields=FIELDS).execute()


def get(people: Any, name: str, fields: str = FIELDS) -> dict[str, Any]:
    return people.people().get(resourceName=name, personFields=fields).execute()


def list_page(people: Any, **params: Any) -> dict[str, Any]:
    params.setdefault("personFields", "names,metadata,memberships")
    return people.people().connections().list(resourceName=ME, **params).execute()


def list_all(people: Any, **params: Any) -> tuple[list[dict], list[dict]]:
    """(all connections, every page's response) following nextPageToken."""
    pages, token = [], params.pop("pageToken", None)
    while True:
        page = list_page(people, **params, **({"pageToken": token} if token else {}))
        pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            return [c for p in pages for c in p.get("connections", [])], pages


def full_sync_token(people: Any) -> str:
    _, pages = list_all(people, requestSyncToken=True)
    return pages[-1]["nextSyncToken"]


def delta(people: Any, token: str, **params: Any) -> tuple[list[dict], str]:
    connections, pages = list_all(people, syncToken=token, requestSyncToken=True, **params)
    return connections, pages[-1]["nextSyncToken"]


def new_group(people: Any, name: str, **extra: Any) -> dict[str, Any]:
    body = {"contactGroup": {"name": name, **extra}}
    return people.contactGroups().create(body=body).execute()


def modify(people: Any, group: str, add=(), remove=()) -> dict[str, Any]:
    body = {"resourceNamesToAdd": list(add), "resourceNamesToRemove": list(remove)}
    return people.contactGroups().members().modify(resourceName=group, body=body).execute()


def group_names(person: dict[str, Any]) -> list[str]:
    return [
        m["contactGroupMembership"]["contactGroupResourceName"]
        for m in person.get("memberships", [])
    ]


def source(person: dict[str, Any]) -> dict[str, Any]:
    return person["metadata"]["sources"][0]


def settings(sandbox: Any, **values: bool) -> dict[str, Any]:
    return sandbox.control("POST", "/_sandbox/people/settings", values)


# -- field masks ----------------------------------------------------------------------


def test_person_fields_is_required_on_every_read(account):
    people = account.people.people()
    person = create(account.people, "Ada")
    requests = [
        people.connections().list(resourceName=ME),
        people.get(resourceName=person["resourceName"]),
        people.getBatchGet(resourceNames=[person["resourceName"]]),
    ]
    for request in requests:
        code, error = fails(request)
        assert (code, error["status"], error["message"]) == (
            400,
            "INVALID_ARGUMENT",
            PERSON_FIELDS_REQUIRED,
        )


def test_invalid_person_fields_paths_are_rejected(account):
    for bad in ("names,foo", "etag", "person.names"):
        code, error = fails(account.people.people().get(resourceName=ME, personFields=bad))
        wrong = bad.split(",")[-1]
        assert code == 400 and error["status"] == "INVALID_ARGUMENT"
        assert error["message"] == (
            f'Invalid personFields mask path: "{wrong}". Valid paths are documented at '
            "https://developers.google.com/people/api/rest/v1/people/get."
        )


def test_legacy_request_mask_is_accepted_for_reads(account):
    person = create(account.people, "Ada", "Lovelace")
    got = (
        account.people.people()
        .get(resourceName=person["resourceName"], **{"requestMask_includeField": "person.names"})
        .execute()
    )
    assert got["names"][0]["displayName"] == "Ada Lovelace"
    assert set(got) == {"resourceName", "etag", "names"}


def test_read_and_update_masks_are_required_on_batch_mutations(account):
    people = account.people.people()
    contact = {"contactPerson": {"names": [{"givenName": "X"}]}}
    code, error = fails(people.batchCreateContacts(body={"contacts": [contact]}))
    assert code == 400 and error["message"].startswith("readMask mask is required.")
    person = create(account.people, "Ada")
    update = {person["resourceName"]: {"etag": person["etag"], "names": [{"givenName": "B"}]}}
    code, error = fails(
        people.batchUpdateContacts(body={"contacts": update, "updateMask": "names"})
    )
    assert code == 400 and error["message"].startswith("readMask mask is required.")
    code, error = fails(people.batchUpdateContacts(body={"contacts": update, "readMask": "names"}))
    assert code == 400 and error["message"].startswith("updateMask mask is required.")
    assert get(account.people, person["resourceName"])["names"][0]["givenName"] == "Ada"


def test_responses_hold_only_the_requested_fields(account):
    person = create(
        account.people,
        "Ada",
        emailAddresses=[{"value": "ada@example.org"}],
        phoneNumbers=[{"value": "+44 20 7946 0000"}],
    )
    name = person["resourceName"]
    assert set(get(account.people, name, "names")) == {"resourceName", "etag", "names"}
    assert set(get(account.people, name, "emailAddresses,metadata")) == {
        "resourceName",
        "etag",
        "emailAddresses",
        "metadata",
    }
    listed = list_page(account.people, personFields="phoneNumbers")["connections"][0]
    assert set(listed) == {"resourceName", "etag", "phoneNumbers"}
    assert listed["phoneNumbers"][0]["canonicalForm"] == "+442079460000"
    # A requested field with no value is omitted (proto3), never sent empty.
    assert set(get(account.people, name, "addresses,birthdays")) == {"resourceName", "etag"}


# -- identifiers and etags ------------------------------------------------------------


def test_identifiers_have_googles_formats(account):
    person = create(account.people, "Ada")
    src = source(person)
    assert src["type"] == "CONTACT"
    assert re.fullmatch(r"[1-9a-f][0-9a-f]*", src["id"])
    assert person["resourceName"] == f"people/c{int(src['id'], 16)}"
    assert re.fullmatch(r"%[A-Za-z0-9+/]+=*", person["etag"])
    assert re.fullmatch(r"#[A-Za-z0-9+/]{11}=", src["etag"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3,6}Z", src["updateTime"])
    assert person["metadata"]["objectType"] == "PERSON"
    assert person["names"][0]["metadata"] == {
        "primary": True,
        "sourcePrimary": True,
        "source": {"type": "CONTACT", "id": src["id"]},
    }


def test_every_write_changes_the_etag_and_update_time(account):
    people = account.people
    group = new_group(people, "CRM")["resourceName"]
    other = new_group(people, "Other")["resourceName"]
    person = create(people, "Ada")
    name = person["resourceName"]
    seen = [(person["etag"], source(person)["updateTime"])]

    def record() -> None:
        now = get(people, name)
        seen.append((now["etag"], source(now)["updateTime"]))

    people.people().updateContact(
        resourceName=name,
        updatePersonFields="names",
        body={"etag": seen[-1][0], "names": [{"givenName": "Ada B"}]},
    ).execute()
    record()
    modify(people, group, add=[name])
    record()
    modify(people, other, add=[name])
    record()
    modify(people, group, remove=[name])
    record()
    people.contactGroups().delete(resourceName=other).execute()  # a group change on the person
    record()
    etags = [etag for etag, _ in seen]
    times = [time for _, time in seen]
    assert len(set(etags)) == len(etags) == 6
    assert times == sorted(times) and len(set(times)) == 6
    assert group_names(get(people, name)) == ["contactGroups/myContacts"]


# -- create, get, batchGet, delete ----------------------------------------------------


def test_create_contact_returns_all_fields_by_default_with_derived_values(account):
    body = {
        "names": [{"givenName": "Ada", "familyName": "Lovelace", "displayName": "ignored"}],
        "emailAddresses": [{"value": "ada@example.org", "type": "work"}],
        "photos": [{"url": "https://example.org/p.png"}],
    }
    person = account.people.people().createContact(body=body).execute()
    name = person["names"][0]
    assert name["displayName"] == "Ada Lovelace"
    assert name["displayNameLastFirst"] == "Lovelace, Ada"
    assert person["emailAddresses"][0]["formattedType"] == "Work"
    assert person["metadata"]["sources"][0]["type"] == "CONTACT"
    assert group_names(person) == ["contactGroups/myContacts"]
    assert person["photos"][0]["default"] is True  # photos are read-only here


def test_get_people_me_is_the_accounts_profile(account):
    me = get(account.people, ME, "names,emailAddresses,metadata")
    assert re.fullmatch(r"people/\d{21}", me["resourceName"])
    assert me["metadata"]["sources"][0]["type"] == "PROFILE"
    assert me["emailAddresses"][0]["value"] == account.email
    assert get(account.people, me["resourceName"], "emailAddresses") == {
        "resourceName": me["resourceName"],
        "etag": me["etag"],
        "emailAddresses": me["emailAddresses"],
    }


def test_get_unknown_contact_is_404_and_a_malformed_name_400(account):
    code, error = fails(account.people.people().get(resourceName="people/c1", personFields="names"))
    assert (code, error["status"], error["message"]) == (
        404,
        "NOT_FOUND",
        "Requested entity was not found.",
    )
    code, error = fails(account.people.people().get(resourceName="people/x1", personFields="names"))
    assert code == 400 and error["status"] == "INVALID_ARGUMENT"


def test_batch_get_reports_each_resource(account):
    person = create(account.people, "Ada")
    names = [person["resourceName"], "people/c12345", ME]
    got = account.people.people().getBatchGet(resourceNames=names, personFields="names").execute()
    found, missing, me = got["responses"]
    assert found["requestedResourceName"] == person["resourceName"]
    assert found["httpStatusCode"] == 200
    assert found["person"]["names"][0]["givenName"] == "Ada"
    assert missing == {
        "requestedResourceName": "people/c12345",
        "httpStatusCode": 404,
        "status": {"code": 5, "message": "Requested entity was not found."},
    }
    assert me["person"]["resourceName"].startswith("people/1")
    # 200 names make a URI over 2000 characters: the client sends it as a POST with
    # x-http-method-override: GET.
    many = [person["resourceName"]] * 199 + ["people/c7"]
    got = account.people.people().getBatchGet(resourceNames=many, personFields="names").execute()
    assert [r["httpStatusCode"] for r in got["responses"]] == [200] * 199 + [404]
    too_many = [person["resourceName"]] * 201
    code, _ = fails(
        account.people.people().getBatchGet(resourceNames=too_many, personFields="names")
    )
    assert code == 400


def test_delete_contact_returns_empty_object(account):
    name = create(account.people, "Ada")["resourceName"]
    assert account.people.people().deleteContact(resourceName=name).execute() == {}
    assert fails(account.people.people().get(resourceName=name, personFields="names"))[0] == 404
    assert fails(account.people.people().deleteContact(resourceName=name))[0] == 404
    group = account.people.contactGroups().get(resourceName="contactGroups/myContacts").execute()
    assert "memberCount" not in group


def test_batch_delete_contacts(account):
    people = account.people.people()
    names = [create(account.people, f"P{i}")["resourceName"] for i in range(3)]
    assert people.batchDeleteContacts(body={"resourceNames": names[:2]}).execute() == {}
    assert [c["resourceName"] for c in list_all(account.people)[0]] == names[2:]
    many = [f"people/c{i}" for i in range(1, 502)]
    code, error = fails(people.batchDeleteContacts(body={"resourceNames": many}))
    assert code == 400 and "500" in error["message"]
    code, _ = fails(people.batchDeleteContacts(body={"resourceNames": [names[2], "people/c9"]}))
    assert code == 404
    assert len(list_all(account.people)[0]) == 1  # all or nothing


# -- updateContact --------------------------------------------------------------------


def test_update_requires_update_person_fields(account):
    person = create(account.people, "Ada")
    body = {"etag": person["etag"], "names": [{"givenName": "B"}]}
    request = account.people.people().updateContact(resourceName=person["resourceName"], body=body)
    code, error = fails(request)
    assert code == 400 and error["message"].startswith("updatePersonFields mask is required.")
    request = account.people.people().updateContact(
        resourceName=person["resourceName"], body=body, updatePersonFields="names,photos"
    )
    code, error = fails(request)
    assert code == 400 and 'Invalid updatePersonFields mask path: "photos"' in error["message"]


def test_update_requires_an_etag(account):
    person = create(account.people, "Ada")
    request = account.people.people().updateContact(
        resourceName=person["resourceName"],
        updatePersonFields="names",
        body={"names": [{"givenName": "B"}]},
    )
    code, error = fails(request)
    assert (code, error["message"]) == (400, MISSING_ETAG)


def test_stale_etag_is_failed_precondition(account):
    person = create(account.people, "Ada")
    name = person["resourceName"]
    update = account.people.people().updateContact
    update(
        resourceName=name,
        updatePersonFields="names",
        body={"etag": person["etag"], "names": [{"givenName": "B"}]},
    ).execute()
    for body in (
        {"etag": person["etag"]},
        {"metadata": {"sources": [{"type": "CONTACT", "etag": source(person)["etag"]}]}},
    ):
        body["names"] = [{"givenName": "C"}]
        code, error = fails(update(resourceName=name, updatePersonFields="names", body=body))
        assert (code, error["status"], error["message"]) == (
            400,
            "FAILED_PRECONDITION",
            STALE_ETAG,
        )
    assert get(account.people, name)["names"][0]["givenName"] == "B"


def test_update_accepts_the_source_etag(account):
    person = create(account.people, "Ada")
    body = {
        "metadata": {"sources": [{"type": "CONTACT", "id": source(person)["id"]}]},
        "names": [{"givenName": "Grace"}],
    }
    body["metadata"]["sources"][0]["etag"] = source(person)["etag"]
    updated = (
        account.people.people()
        .updateContact(resourceName=person["resourceName"], updatePersonFields="names", body=body)
        .execute()
    )
    assert updated["names"][0]["givenName"] == "Grace"
    assert updated["etag"] != person["etag"]


def test_update_replaces_listed_fields_and_clears_absent_ones(account):
    person = create(
        account.people,
        "Ada",
        "Lovelace",
        emailAddresses=[{"value": "a@x.org"}, {"value": "b@x.org"}],
        phoneNumbers=[{"value": "123"}],
    )
    updated = (
        account.people.people()
        .updateContact(
            resourceName=person["resourceName"],
            updatePersonFields="emailAddresses,phoneNumbers",
            personFields="names,emailAddresses,phoneNumbers",
            body={
                "etag": person["etag"],
                "emailAddresses": [{"value": "c@x.org"}],
                "names": [{"givenName": "Ignored"}],
            },
        )
        .execute()
    )
    assert [e["value"] for e in updated["emailAddresses"]] == ["c@x.org"]
    assert "phoneNumbers" not in updated  # listed, absent from the body: cleared
    assert updated["names"][0]["displayName"] == "Ada Lovelace"  # not listed: kept
    assert set(updated) == {"resourceName", "etag", "names", "emailAddresses"}


def test_singleton_fields_take_one_value(account):
    two_names = {"names": [{"givenName": "A"}, {"givenName": "B"}]}
    code, error = fails(account.people.people().createContact(body=two_names))
    assert (code, error["message"]) == (400, "Cannot have more than one person.names per source.")
    person = create(account.people, "Ada")
    request = account.people.people().updateContact(
        resourceName=person["resourceName"],
        updatePersonFields="birthdays",
        body={"etag": person["etag"], "birthdays": [{"text": "1815"}, {"text": "1816"}]},
    )
    code, error = fails(request)
    assert (code, error["message"]) == (
        400,
        "Cannot have more than one person.birthdays per source.",
    )


def test_client_data_round_trips(account):
    people = account.people
    person = create(people, "Ada", clientData=[{"key": "crmsync.contactId", "value": "c-1"}])
    name = person["resourceName"]
    expected_meta = {"source": {"type": "CONTACT", "id": source(person)["id"]}}
    assert person["clientData"] == [
        {"metadata": expected_meta, "key": "crmsync.contactId", "value": "c-1"}
    ]
    listed = list_page(people, personFields="clientData")["connections"][0]
    assert listed["clientData"][0]["value"] == "c-1"
    updated = (
        people.people()
        .updateContact(
            resourceName=name,
            updatePersonFields="clientData",
            body={
                "etag": person["etag"],
                "clientData": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}],
            },
        )
        .execute()
    )
    assert [(c["key"], c["value"]) for c in updated["clientData"]] == [("a", "1"), ("a", "2")]
    got = get(people, name, "clientData")["clientData"]
    assert [c["value"] for c in got] == ["1", "2"] and got[0]["metadata"] == expected_meta


# -- connections.list -----------------------------------------------------------------


def test_connections_pages_and_totals(account):
    created = [create(account.people, f"P{i}")["resourceName"] for i in range(7)]
    connections, pages = list_all(account.people, pageSize=3, requestSyncToken=True)
    assert [len(p["connections"]) for p in pages] == [3, 3, 1]
    assert [c["resourceName"] for c in connections] == created  # LAST_MODIFIED_ASCENDING
    for page in pages[:-1]:
        assert "nextPageToken" in page and "nextSyncToken" not in page
    assert "nextPageToken" not in pages[-1] and "nextSyncToken" in pages[-1]
    assert all(p["totalItems"] == p["totalPeople"] == 7 for p in pages)


def test_page_size_default_and_limits(account):
    contacts = [{"contactPerson": {"names": [{"givenName": f"P{i}"}]}} for i in range(101)]
    account.people.people().batchCreateContacts(
        body={"contacts": contacts[:100], "readMask": ""}
    ).execute()
    account.people.people().batchCreateContacts(
        body={"contacts": contacts[100:], "readMask": ""}
    ).execute()
    first = list_page(account.people)
    assert len(first["connections"]) == 100 and "nextPageToken" in first
    assert len(list_page(account.people, pageSize=0)["connections"]) == 100
    assert len(list_page(account.people, pageSize=1000)["connections"]) == 101
    code, error = fails(
        account.people.people()
        .connections()
        .list(resourceName=ME, personFields="names", pageSize=1001)
    )
    assert code == 400 and error["status"] == "INVALID_ARGUMENT"


def test_no_sync_token_unless_requested(account):
    create(account.people, "Ada")
    page = list_page(account.people)
    assert "nextSyncToken" not in page and "nextPageToken" not in page
    token = full_sync_token(account.people)
    create(account.people, "Grace")
    changed, _ = list_all(account.people, syncToken=token)
    assert [c["names"][0]["givenName"] for c in changed] == ["Grace"]
    assert "nextSyncToken" not in list_page(account.people, syncToken=token)


def test_page_tokens_are_stable_while_writing(account):
    people = account.people
    created = [create(people, f"P{i}") for i in range(5)]
    token = full_sync_token(people)
    first = list_page(people, pageSize=2, requestSyncToken=True)
    late = create(people, "Late")
    moved = created[0]
    people.people().updateContact(
        resourceName=moved["resourceName"],
        updatePersonFields="names",
        body={"etag": moved["etag"], "names": [{"givenName": "Moved"}]},
    ).execute()
    rest, pages = list_all(
        people, pageSize=2, requestSyncToken=True, pageToken=first["nextPageToken"]
    )
    listed = [c["resourceName"] for c in first["connections"] + rest]
    assert listed == [p["resourceName"] for p in created]  # no duplicate, no newcomer
    assert pages[0] == list_page(
        people, pageSize=2, requestSyncToken=True, pageToken=first["nextPageToken"]
    )
    changed, _ = delta(people, pages[-1]["nextSyncToken"])
    assert {c["resourceName"] for c in changed} == {late["resourceName"], moved["resourceName"]}
    assert [c["resourceName"] for c in delta(people, token)[0]] == [
        c["resourceName"] for c in changed
    ]
    code, _ = fails(
        people.people()
        .connections()
        .list(resourceName=ME, personFields="names", pageToken=first["nextPageToken"])
    )
    assert code == 400  # other parameters must match the first call


def test_sort_orders(account):
    people = account.people
    for given, family in (("Cy", "Adams"), ("Al", "Cole"), ("Bo", "Beck")):
        create(people, given, family)

    def order(sort: str) -> list[str]:
        return [c["names"][0]["givenName"] for c in list_all(people, sortOrder=sort)[0]]

    assert order("LAST_MODIFIED_ASCENDING") == ["Cy", "Al", "Bo"]
    assert order("LAST_MODIFIED_DESCENDING") == ["Bo", "Al", "Cy"]
    assert order("FIRST_NAME_ASCENDING") == ["Al", "Bo", "Cy"]
    assert order("LAST_NAME_ASCENDING") == ["Cy", "Bo", "Al"]


# -- incremental sync -----------------------------------------------------------------


def test_delta_reports_each_change_once_with_tombstones(account):
    people = account.people
    kept, edited, doomed = (create(people, n) for n in ("Kept", "Edited", "Doomed"))
    token = full_sync_token(people)
    added = create(people, "Added")
    etag = edited["etag"]
    for given in ("Edited2", "Edited3"):
        etag = (
            people.people()
            .updateContact(
                resourceName=edited["resourceName"],
                updatePersonFields="names",
                body={"etag": etag, "names": [{"givenName": given}]},
            )
            .execute()["etag"]
        )
    people.people().deleteContact(resourceName=doomed["resourceName"]).execute()
    changed, _ = delta(people, token)
    by_name = {c["resourceName"]: c for c in changed}
    assert len(changed) == len(by_name) == 3
    assert kept["resourceName"] not in by_name
    assert by_name[added["resourceName"]]["names"][0]["givenName"] == "Added"
    assert by_name[edited["resourceName"]]["names"][0]["givenName"] == "Edited3"
    assert by_name[edited["resourceName"]]["etag"] == etag
    tomb = by_name[doomed["resourceName"]]
    assert tomb["metadata"]["deleted"] is True
    assert tomb["etag"].startswith("%") and tomb["etag"] != doomed["etag"]
    assert "names" not in tomb and "emailAddresses" not in tomb


def test_quiet_delta_is_exactly_a_sync_token(account):
    create(account.people, "Ada")
    token = full_sync_token(account.people)
    page = list_page(account.people, syncToken=token, requestSyncToken=True)
    assert list(page) == ["nextSyncToken"]
    again = list_page(account.people, syncToken=page["nextSyncToken"], requestSyncToken=True)
    assert list(again) == ["nextSyncToken"]


def test_membership_change_shows_up_in_the_delta(account):
    people = account.people
    group = new_group(people, "CRM")["resourceName"]
    person = create(people, "Ada")
    create(people, "Untouched")
    token = full_sync_token(people)
    assert modify(people, group, add=[person["resourceName"]]) == {}
    changed, _ = delta(people, token)
    assert [c["resourceName"] for c in changed] == [person["resourceName"]]
    assert group_names(changed[0]) == ["contactGroups/myContacts", group]
    assert changed[0]["etag"] != person["etag"]


def test_delta_pages(account):
    people = account.people
    token = full_sync_token(people)
    created = [create(people, f"P{i}")["resourceName"] for i in range(5)]
    changed, pages = list_all(people, syncToken=token, requestSyncToken=True, pageSize=2)
    assert [c["resourceName"] for c in changed] == created
    assert ["nextSyncToken" in p for p in pages] == [False, False, True]
    assert ["nextPageToken" in p for p in pages] == [True, True, False]


def test_sync_tokens_expire_seven_days_after_the_full_sync(sandbox, account):
    people = account.people
    create(people, "Ada")
    token = full_sync_token(people)
    sandbox.advance(3 * 24 * 3600)
    _, later = delta(people, token)  # an incremental call does not restart the 7 days
    sandbox.advance(4 * 24 * 3600 - 60)
    assert list(list_page(people, syncToken=later, requestSyncToken=True)) == ["nextSyncToken"]
    sandbox.advance(61)
    for expired in (token, later):
        code, error = fails(
            people.people()
            .connections()
            .list(resourceName=ME, personFields="names", syncToken=expired, requestSyncToken=True)
        )
        assert (code, error["status"], error["message"]) == (400, "FAILED_PRECONDITION", EXPIRED)
        assert error["details"][0]["reason"] == "EXPIRED_SYNC_TOKEN"
        assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert "nextSyncToken" in list_page(people, requestSyncToken=True)  # a new full sync


def test_sync_token_chain_can_be_extended_by_switch(sandbox, account):
    settings(sandbox, syncTokenExtends=True)
    token = full_sync_token(account.people)
    sandbox.advance(6 * 24 * 3600)
    _, later = delta(account.people, token)
    sandbox.advance(6 * 24 * 3600)
    assert list(list_page(account.people, syncToken=later, requestSyncToken=True)) == [
        "nextSyncToken"
    ]
    assert (
        fails(
            account.people.people()
            .connections()
            .list(resourceName=ME, personFields="names", syncToken=token)
        )[1]["status"]
        == "FAILED_PRECONDITION"
    )


def test_malformed_sync_token_is_invalid_argument(make_account):
    alice, bob = make_account("alice@example.com"), make_account("bob@example.com")
    alices = full_sync_token(alice.people)
    for token in ("garbage!", "CAEBAAAA", alices):
        code, error = fails(
            bob.people.people()
            .connections()
            .list(resourceName=ME, personFields="names", syncToken=token)
        )
        assert (code, error["status"]) == (400, "INVALID_ARGUMENT")
    groups_token = alice.people.contactGroups().list().execute()["nextSyncToken"]
    code, _ = fails(
        alice.people.people()
        .connections()
        .list(resourceName=ME, personFields="names", syncToken=groups_token)
    )
    assert code == 400


# -- memberships ----------------------------------------------------------------------


def test_new_contact_without_membership_lands_in_my_contacts(account):
    person = create(account.people, "Ada")
    assert group_names(person) == ["contactGroups/myContacts"]
    assert person["memberships"][0]["contactGroupMembership"]["contactGroupId"] == "myContacts"


def test_memberships_given_on_create_are_kept_as_given(sandbox, account):
    group = new_group(account.people, "CRM")["resourceName"]
    membership = [{"contactGroupMembership": {"contactGroupResourceName": group}}]
    person = create(account.people, "Ada", memberships=membership)
    assert group_names(person) == [group]
    settings(sandbox, autoAddMyContacts=True)
    person = create(account.people, "Grace", memberships=membership)
    assert group_names(person) == [group, "contactGroups/myContacts"]
    starred = [{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/starred"}}]
    assert "contactGroups/starred" in group_names(create(account.people, "S", memberships=starred))


def test_deprecated_system_groups_refuse_new_members(account):
    person = create(account.people, "Ada")
    friends = [{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/friends"}}]
    code, error = fails(account.people.people().createContact(body={"memberships": friends}))
    assert (code, error["message"]) == (400, DEPRECATED)
    request = (
        account.people.contactGroups()
        .members()
        .modify(
            resourceName="contactGroups/family",
            body={"resourceNamesToAdd": [person["resourceName"]]},
        )
    )
    code, error = fails(request)
    assert (code, error["message"]) == (400, DEPRECATED)


def test_update_must_keep_a_membership(account):
    person = create(account.people, "Ada")
    request = account.people.people().updateContact(
        resourceName=person["resourceName"],
        updatePersonFields="memberships",
        body={"etag": person["etag"], "memberships": []},
    )
    assert fails(request)[0] == 400
    group = new_group(account.people, "CRM")["resourceName"]
    moved = (
        account.people.people()
        .updateContact(
            resourceName=person["resourceName"],
            updatePersonFields="memberships",
            body={
                "etag": person["etag"],
                "memberships": [{"contactGroupMembership": {"contactGroupResourceName": group}}],
            },
        )
        .execute()
    )
    assert group_names(moved) == [group]
    groups = account.people.contactGroups()
    assert "memberCount" not in groups.get(resourceName="contactGroups/myContacts").execute()
    assert groups.get(resourceName=group).execute()["memberCount"] == 1


# -- contact groups -------------------------------------------------------------------


def test_contact_groups_list_defaults_and_pages(account):
    groups = account.people.contactGroups()
    new_group(account.people, "CRM", clientData=[{"key": "app", "value": "crmsync"}])
    first = groups.list().execute()
    names = {g["resourceName"]: g for g in first["contactGroups"]}
    for system in ("myContacts", "starred", "friends", "family", "coworkers", "all"):
        assert names[f"contactGroups/{system}"]["groupType"] == "SYSTEM_CONTACT_GROUP"
    assert names["contactGroups/myContacts"]["formattedName"] == "My Contacts"
    crm = next(g for g in first["contactGroups"] if g.get("name") == "CRM")
    assert set(crm) == {"resourceName", "etag", "metadata", "groupType", "name", "formattedName"}
    assert "nextSyncToken" in first and first["totalItems"] == len(names) == 9
    with_data = groups.list(groupFields="clientData,name").execute()["contactGroups"]
    assert next(g for g in with_data if g["name"] == "CRM")["clientData"] == [
        {"key": "app", "value": "crmsync"}
    ]
    page1 = groups.list(pageSize=5).execute()
    page2 = groups.list(pageSize=5, pageToken=page1["nextPageToken"]).execute()
    assert "nextSyncToken" not in page1 and "nextPageToken" not in page2
    both = [g["resourceName"] for g in page1["contactGroups"] + page2["contactGroups"]]
    assert sorted(both) == sorted(names)
    assert fails(groups.list(groupFields="members"))[0] == 400
    assert fails(groups.list(pageSize=1001))[0] == 400


def test_contact_groups_sync_token(account):
    groups = account.people.contactGroups()
    doomed = new_group(account.people, "Doomed")["resourceName"]
    token = groups.list().execute()["nextSyncToken"]
    assert list(groups.list(syncToken=token).execute()) == ["nextSyncToken"]
    created = new_group(account.people, "New")["resourceName"]
    groups.delete(resourceName=doomed).execute()
    changed = groups.list(syncToken=token).execute()["contactGroups"]
    by_name = {g["resourceName"]: g for g in changed}
    assert set(by_name) == {created, doomed}
    assert by_name[doomed]["metadata"]["deleted"] is True
    assert "metadata" in by_name[created] and "deleted" not in by_name[created]["metadata"]
    assert fails(groups.list(syncToken="nope"))[0] == 400


def test_contact_group_get_caps_members(account):
    people = account.people
    names = [create(people, f"P{i}")["resourceName"] for i in range(4)]
    got = people.contactGroups().get(resourceName="contactGroups/myContacts").execute()
    assert got["memberCount"] == 4 and "memberResourceNames" not in got
    capped = (
        people.contactGroups().get(resourceName="contactGroups/myContacts", maxMembers=2).execute()
    )
    assert capped["memberResourceNames"] == names[:2] and capped["memberCount"] == 4
    assert fails(people.contactGroups().get(resourceName="contactGroups/abc123"))[0] == 404


def test_create_contact_group(account):
    created = (
        account.people.contactGroups()
        .create(
            body={
                "contactGroup": {"name": "CRM", "clientData": [{"key": "k", "value": "v"}]},
                "readGroupFields": "name,clientData,groupType",
            }
        )
        .execute()
    )
    assert re.fullmatch(r"contactGroups/[0-9a-f]+", created["resourceName"])
    assert created["name"] == created["formattedName"] == "CRM"
    assert created["groupType"] == "USER_CONTACT_GROUP"
    assert created["clientData"] == [{"key": "k", "value": "v"}]
    assert "metadata" not in created
    code, error = fails(
        account.people.contactGroups().create(body={"contactGroup": {"name": "CRM"}})
    )
    assert (code, error["status"]) == (409, "ALREADY_EXISTS")
    assert (
        fails(account.people.contactGroups().create(body={"contactGroup": {"name": ""}}))[0] == 400
    )


def test_update_and_delete_contact_group(account):
    groups = account.people.contactGroups()
    crm = new_group(account.people, "CRM")
    new_group(account.people, "Taken")
    renamed = groups.update(
        resourceName=crm["resourceName"],
        body={"contactGroup": {"name": "CRM 2", "etag": crm["etag"]}},
    ).execute()
    assert renamed["name"] == "CRM 2" and renamed["etag"] != crm["etag"]
    clash = groups.update(
        resourceName=crm["resourceName"], body={"contactGroup": {"name": "Taken"}}
    )
    assert fails(clash)[0] == 409
    stale = groups.update(
        resourceName=crm["resourceName"], body={"contactGroup": {"name": "X", "etag": crm["etag"]}}
    )
    assert fails(stale)[1]["status"] == "FAILED_PRECONDITION"
    member = create(
        account.people,
        "Ada",
        memberships=[{"contactGroupMembership": {"contactGroupResourceName": crm["resourceName"]}}],
    )
    assert groups.delete(resourceName=crm["resourceName"]).execute() == {}
    assert fails(groups.get(resourceName=crm["resourceName"]))[0] == 404
    # The contact outlives its only group and keeps one membership (myContacts).
    assert group_names(get(account.people, member["resourceName"])) == ["contactGroups/myContacts"]
    assert fails(groups.delete(resourceName="contactGroups/myContacts"))[0] == 400


def test_members_modify(account):
    people = account.people
    crm = new_group(people, "CRM")["resourceName"]
    ada, bob = create(people, "Ada")["resourceName"], create(people, "Bob")["resourceName"]
    result = modify(people, crm, add=[ada, bob, "people/c404"])
    assert result == {"notFoundResourceNames": ["people/c404"]}
    assert people.contactGroups().get(resourceName=crm).execute()["memberCount"] == 2
    # Bob's only other group is myContacts: leaving it is fine, then CRM is his last one.
    assert modify(people, "contactGroups/myContacts", remove=[bob]) == {}
    result = modify(people, crm, remove=[ada, bob])
    assert result == {"canNotRemoveLastContactGroupResourceNames": [bob]}
    assert group_names(get(people, ada)) == ["contactGroups/myContacts"]
    assert group_names(get(people, bob)) == [crm]
    my_contacts = people.contactGroups().get(resourceName="contactGroups/myContacts").execute()
    assert my_contacts["memberCount"] == 1
    too_many = {"resourceNamesToAdd": [ada] * 600, "resourceNamesToRemove": [bob] * 401}
    request = people.contactGroups().members().modify(resourceName=crm, body=too_many)
    assert fails(request)[0] == 400
    request = (
        people.contactGroups()
        .members()
        .modify(resourceName="contactGroups/nope", body={"resourceNamesToAdd": [ada]})
    )
    assert fails(request)[0] == 404


# -- batch mutations and HTTP batches -------------------------------------------------


def test_batch_create_contacts(account):
    people = account.people.people()
    contacts = [
        {"contactPerson": {"names": [{"givenName": "Ada"}], "clientData": [{"key": "k"}]}},
        {"contactPerson": {"names": [{"givenName": "Bob"}]}},
    ]
    result = people.batchCreateContacts(
        body={"contacts": contacts, "readMask": "names,clientData"}
    ).execute()
    created = result["createdPeople"]
    assert [c["person"]["names"][0]["givenName"] for c in created] == ["Ada", "Bob"]
    assert all(c["httpStatusCode"] == 200 for c in created)
    assert created[0]["requestedResourceName"] == created[0]["person"]["resourceName"]
    bad = [contacts[0], {"contactPerson": {"names": [{"givenName": "A"}, {"givenName": "B"}]}}]
    code, error = fails(people.batchCreateContacts(body={"contacts": bad, "readMask": "names"}))
    assert code == 400
    assert error["details"][0]["contactErrors"] == {
        "1": {"code": 3, "message": "Cannot have more than one person.names per source."}
    }
    too_many = [contacts[1]] * 201
    assert (
        fails(people.batchCreateContacts(body={"contacts": too_many, "readMask": "names"}))[0]
        == 400
    )
    assert len(list_all(account.people)[0]) == 2  # failed batches wrote nothing


def test_batch_update_contacts(account):
    people = account.people.people()
    ada, bob = create(account.people, "Ada"), create(account.people, "Bob")
    body = {
        "contacts": {
            ada["resourceName"]: {"etag": ada["etag"], "names": [{"givenName": "Ada2"}]},
            bob["resourceName"]: {"etag": bob["etag"], "names": [{"givenName": "Bob2"}]},
        },
        "updateMask": "names",
        "readMask": "names",
    }
    result = people.batchUpdateContacts(body=body).execute()["updateResult"]
    assert result[ada["resourceName"]]["person"]["names"][0]["givenName"] == "Ada2"
    assert result[bob["resourceName"]]["httpStatusCode"] == 200
    # Stale etag for Bob: the whole request fails, naming Bob, and Ada is not written either.
    fresh = result[ada["resourceName"]]["person"]["etag"]
    body["contacts"] = {
        ada["resourceName"]: {"etag": fresh, "names": [{"givenName": "Ada3"}]},
        bob["resourceName"]: {"etag": bob["etag"], "names": [{"givenName": "Bob3"}]},
    }
    code, error = fails(people.batchUpdateContacts(body=body))
    assert (code, error["status"], error["message"]) == (400, "FAILED_PRECONDITION", STALE_ETAG)
    assert error["details"][0]["contactErrors"] == {
        bob["resourceName"]: {"code": 9, "message": STALE_ETAG}
    }
    assert get(account.people, ada["resourceName"])["names"][0]["givenName"] == "Ada2"
    body["readMask"] = ""
    body["contacts"] = {ada["resourceName"]: {"etag": fresh, "names": [{"givenName": "Ada3"}]}}
    assert people.batchUpdateContacts(body=body).execute() == {}
    body["contacts"] = {f"people/c{i}": {"etag": fresh} for i in range(1, 202)}
    assert fails(people.batchUpdateContacts(body=body))[0] == 400


def test_http_batch_runs_each_part(sandbox, account):
    people = account.people
    person = create(people, "Ada")
    results: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: Any) -> None:
        results[request_id] = exception or response

    batch = google_api.new_batch("people", sandbox.url, callback=collect)
    for given in ("Bob", "Cy"):
        body = {"names": [{"givenName": given}]}
        batch.add(people.people().createContact(body=body), request_id=given)
    update = people.people().updateContact
    batch.add(
        update(
            resourceName=person["resourceName"],
            updatePersonFields="names",
            body={"etag": person["etag"], "names": [{"givenName": "Ada2"}]},
        ),
        request_id="fresh",
    )
    batch.add(
        update(
            resourceName=person["resourceName"],
            updatePersonFields="names",
            body={"etag": person["etag"], "names": [{"givenName": "Ada3"}]},
        ),
        request_id="stale",
    )
    batch.execute()
    assert results["Bob"]["names"][0]["givenName"] == "Bob"
    assert results["fresh"]["names"][0]["givenName"] == "Ada2"
    assert isinstance(results["stale"], HttpError) and results["stale"].resp.status == 400
    assert json.loads(results["stale"].content)["error"]["message"] == STALE_ETAG
    by_method = sandbox.stats()["byMethod"]
    assert by_method["people.people.createContact"] == 3
    assert by_method["people.people.updateContact"] == 2
    given = sorted(c["names"][0]["givenName"] for c in list_all(people)[0])
    assert given == ["Ada2", "Bob", "Cy"]


# -- quota, faults, auth --------------------------------------------------------------


def test_injected_429_is_resource_exhausted(sandbox, account):
    create(account.people, "Ada")
    sandbox.fault("people.people.connections.list", 429, count=1)
    code, error = fails(
        account.people.people().connections().list(resourceName=ME, personFields="names")
    )
    assert (code, error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert len(list_page(account.people)["connections"]) == 1


def test_quota_per_minute(sandbox, account):
    sandbox.control("POST", "/_sandbox/faults", {"quotaPerMinute": 3})
    sandbox.advance(60 - sandbox.state.clock.timestamp() % 60 + 1)  # start of a minute
    for _ in range(3):
        list_page(account.people)
    code, error = fails(
        account.people.people().connections().list(resourceName=ME, personFields="names")
    )
    assert (code, error["status"]) == (429, "RESOURCE_EXHAUSTED")
    sandbox.advance(60)
    assert list_page(account.people) == {}


def test_expired_access_token_is_refreshed_transparently(sandbox, account):
    create(account.people, "Ada")
    first_token = account.credentials.token
    sandbox.advance(3601)
    assert len(list_page(account.people)["connections"]) == 1
    assert account.credentials.token != first_token


def test_revoked_refresh_token_fails_with_invalid_grant(sandbox, account):
    create(account.people, "Ada")
    request = urllib.request.Request(
        f"{sandbox.url}/revoke?token={account.refresh_token}",
        data=b"",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    with pytest.raises(RefreshError, match="invalid_grant"):
        list_page(account.people)


# -- isolation and concurrency --------------------------------------------------------


def test_accounts_are_isolated(make_account):
    alice, bob = make_account("alice@example.com"), make_account("bob@example.com")
    person = create(alice.people, "Ada")
    group = new_group(alice.people, "CRM")["resourceName"]
    name = person["resourceName"]
    requests = [
        bob.people.people().get(resourceName=name, personFields="names"),
        bob.people.people().updateContact(
            resourceName=name,
            updatePersonFields="names",
            body={"etag": person["etag"], "names": [{"givenName": "Evil"}]},
        ),
        bob.people.people().deleteContact(resourceName=name),
        bob.people.contactGroups().get(resourceName=group),
        bob.people.contactGroups()
        .members()
        .modify(resourceName=group, body={"resourceNamesToAdd": [name]}),
        bob.people.contactGroups().delete(resourceName=group),
    ]
    for request in requests:
        assert fails(request)[0] == 404
    assert modify(bob.people, "contactGroups/starred", add=[name]) == {
        "notFoundResourceNames": [name]
    }
    assert list_page(bob.people) == {}
    assert new_group(bob.people, "CRM")["name"] == "CRM"  # names are unique per account only
    assert get(alice.people, name)["names"][0]["givenName"] == "Ada"
    assert group_names(get(alice.people, name)) == ["contactGroups/myContacts"]


def test_concurrent_creates_are_all_listed_once(sandbox, account):
    threads, per_thread, errors = 4, 8, []

    def work(index: int) -> None:
        try:
            creds = google_api.credentials(account.refresh_token, sandbox.url)
            service = google_api.people_service(creds, sandbox.url)  # httplib2 is per thread
            for n in range(per_thread):
                create(service, f"T{index}", f"N{n}")
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    connections, _ = list_all(account.people, pageSize=7)
    names = [c["resourceName"] for c in connections]
    assert len(names) == len(set(names)) == threads * per_thread
    labels = {(c["names"][0]["givenName"], c["names"][0]["familyName"]) for c in connections}
    assert labels == {(f"T{i}", f"N{n}") for i in range(threads) for n in range(per_thread)}
