"""The sandbox's people.searchContacts, through the real client (sandbox/people_search.py)."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

MASK = "names,emailAddresses,memberships"


def create(account, given, email, **extra):
    body = {"names": [{"givenName": given}], "emailAddresses": [{"value": email}], **extra}
    return account.people.people().createContact(body=body).execute()["resourceName"]


def search(account, query, **params):
    return (
        account.people.people()
        .searchContacts(query=query, readMask=params.pop("readMask", MASK), **params)
        .execute()
    )


def names_found(answer):
    return [r["person"]["resourceName"] for r in answer.get("results", [])]


def test_a_warmup_answers_nothing_and_a_search_matches_email_and_name_prefixes(account):
    ada = create(account, "Ada Lovelace", "Ada@Analytical.example")
    create(account, "Grace", "grace@navy.example")
    assert search(account, "") == {}  # the warmup: proto3, no results key
    assert names_found(search(account, "ada@analytical.example")) == [ada]
    assert names_found(search(account, "ada@an")) == [ada]
    assert names_found(search(account, "lovel")) == [ada]  # a later word of the name
    assert names_found(search(account, "da love")) == []  # not from a word's start
    assert search(account, "nobody@example.com") == {}
    person = search(account, "ada")["results"][0]["person"]
    assert set(person) == {"resourceName", "etag", "names", "emailAddresses", "memberships"}


def test_results_come_from_the_cache_of_the_last_warmup(account):
    search(account, "")
    late = create(account, "Late", "late@example.com")
    assert search(account, "late@example.com") == {}  # eventually consistent
    search(account, "")
    assert names_found(search(account, "late@example.com")) == [late]
    account.people.people().deleteContact(resourceName=late).execute()
    assert search(account, "late@example.com") == {}  # a deleted person is never returned


def test_page_size_defaults_to_ten_and_is_capped_at_thirty(account):
    for n in range(35):
        create(account, f"Twin{n}", f"twin{n}@example.com")
    search(account, "")
    assert len(search(account, "twin")["results"]) == 10
    assert len(search(account, "twin", pageSize=0)["results"]) == 10
    assert len(search(account, "twin", pageSize=100)["results"]) == 30


def test_read_mask_is_required_and_sources_without_contacts_find_nothing(account, sandbox):
    create(account, "Ada", "ada@example.com")
    with pytest.raises(HttpError) as err:
        search(account, "ada", readMask=None)
    assert err.value.status_code == 400 and "readMask mask is required" in str(err.value)
    with pytest.raises(HttpError) as err:
        search(account, "ada", readMask="etag")
    assert err.value.status_code == 400
    assert search(account, "ada", sources=["READ_SOURCE_TYPE_PROFILE"]) == {}
    assert names_found(search(account, "ada", sources=["READ_SOURCE_TYPE_CONTACT"]))
    assert sandbox.stats()["byMethod"]["people.people.searchContacts"] == 4
