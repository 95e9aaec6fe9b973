"""The sandbox's realism switches (``sandbox.realism``), driven through the real
google-api-python-client; raw HTTP only for the control API.

Each switch is off in the ``default`` profile (the other sandbox tests run there) and
is tested here on its own, plus the ``realistic`` profile as a whole.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from adapters import google_api
from sandbox import Sandbox, SandboxServer, realism
from tests.integration import test_sandbox_calendar as calendar_tests
from tests.integration import test_sandbox_people as people_tests

DAY = 86400
NY = "America/New_York"
INSTANCE_TOMBSTONE = {"kind", "etag", "id", "status", "recurringEventId", "originalStartTime"}


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


# -- control API and profiles ---------------------------------------------------------


def test_default_profile_is_the_kind_sandbox(sandbox):
    values = sandbox.behaviours()
    assert values == {"profile": "default", **realism.as_json(realism.Behaviours())}
    assert values["peoplePropagationSeconds"] == 0 and values["shortPages"] is False
    assert values["defaultTimeZone"] == "UTC"


def test_realistic_profile_values(sandbox):
    values = sandbox.profile("realistic")
    assert values == {
        "profile": "realistic",
        "peoplePropagationSeconds": 120,
        "shortPages": True,
        "shuffleBatches": True,
        "seed": 0,
        "undetectedIdCollisions": True,
        "cancelledEventTtlSeconds": 30 * DAY,
        "seriesDeletionInstances": True,
        "defaultTimeZone": "America/New_York",
        "testingModeRefreshExpiry": False,
        "peopleFullSyncQuotaPerMinute": 10,
    }


def test_behaviours_set_by_key_and_reset_restores_the_base_profile(sandbox):
    values = sandbox.behaviours(people_propagation_seconds=30, shortPages=True, seed=7)
    assert (values["peoplePropagationSeconds"], values["shortPages"], values["seed"]) == (
        30,
        True,
        7,
    )
    assert values["profile"] == "default" and values["shuffleBatches"] is False
    both = sandbox.control(
        "POST", "/_sandbox/behaviours", {"profile": "realistic", "defaultTimeZone": "Asia/Tokyo"}
    )
    assert both["profile"] == "realistic" and both["defaultTimeZone"] == "Asia/Tokyo"
    assert both["peoplePropagationSeconds"] == 120
    again = sandbox.control("POST", "/_sandbox/behaviours", dict(both))
    assert again == both  # a GET's answer posted back is the same state
    sandbox.control("POST", "/_sandbox/reset")
    assert sandbox.behaviours()["profile"] == "default"
    assert sandbox.behaviours()["peoplePropagationSeconds"] == 0


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"profile": "kind"}, "unknown profile 'kind'"),
        ({"propagation": 1}, "unknown behaviour(s) ['propagation']"),
        ({"shortPages": "yes"}, "'shortPages' must be true or false"),
        ({"peoplePropagationSeconds": -1}, "'peoplePropagationSeconds' must be a number >= 0"),
        ({"peopleFullSyncQuotaPerMinute": 1.5}, "must be an integer >= 0 or null"),
        ({"seed": None}, "'seed' must be an integer >= 0"),
        ({"defaultTimeZone": "Mars/Olympus"}, "must be an IANA time zone name"),
    ],
)
def test_bad_behaviours_are_400_with_a_clear_message(sandbox, body, text):
    status, answer = post(sandbox.url + "/_sandbox/behaviours", body)
    assert status == 400 and text in answer["error"]["message"]
    assert sandbox.behaviours()["profile"] == "default"  # nothing changed


def test_profile_comes_from_the_argument_or_the_environment(monkeypatch):
    monkeypatch.setenv(realism.ENV_PROFILE, "realistic")
    assert Sandbox().behaviours == realism.PROFILES["realistic"]
    assert Sandbox(profile="default").behaviours == realism.Behaviours()
    with SandboxServer() as server:
        assert server.sandbox.base_profile == "realistic"
        server.sandbox.reset()
        assert server.sandbox.behaviours.short_pages
    monkeypatch.setenv(realism.ENV_PROFILE, "nonsense")
    with pytest.raises(ValueError, match="unknown profile 'nonsense'"):
        Sandbox()


def test_settle_advances_past_the_propagation_delay(sandbox):
    before = sandbox.state.clock.timestamp()
    sandbox.settle()  # no delay: no-op
    assert sandbox.state.clock.timestamp() - before < 5
    sandbox.behaviours(people_propagation_seconds=120)
    sandbox.settle()
    assert sandbox.state.clock.timestamp() - before >= 121


# -- 1. People propagation delay ------------------------------------------------------


def names_in(connections: list[dict[str, Any]]) -> set[str]:
    return {c["resourceName"] for c in connections}


def test_people_writes_reach_deltas_only_after_the_propagation_delay(sandbox, account):
    sandbox.behaviours(people_propagation_seconds=120)
    people = account.people
    kept = people_tests.create(people, "Kept")
    gone = people_tests.create(people, "Gone")
    token = people_tests.full_sync_token(people)  # full listings are current at once
    group = people_tests.new_group(people, "Team")["resourceName"]
    ada = people_tests.create(people, "Ada")
    people.people().updateContact(
        resourceName=kept["resourceName"],
        updatePersonFields="names",
        body={"etag": kept["etag"], "names": [{"givenName": "Kept2"}]},
    ).execute()
    people.people().deleteContact(resourceName=gone["resourceName"]).execute()
    people_tests.modify(people, group, add=[ada["resourceName"]])
    contacts = [{"contactPerson": {"names": [{"givenName": "Bo"}]}}]
    created = (
        people.people()
        .batchCreateContacts(body={"contacts": contacts, "readMask": "names"})
        .execute()["createdPeople"][0]["person"]
    )
    changed = {kept["resourceName"], gone["resourceName"], ada["resourceName"]}
    changed.add(created["resourceName"])
    assert len(people_tests.list_all(people)[0]) == 3  # Kept, Ada, Bo: full lists are current

    seen, token = people_tests.delta(people, token)
    assert seen == []  # nothing is two minutes old yet
    sandbox.advance(60)
    early = people_tests.create(people, "Early")  # written 60 s before the others land
    seen, token = people_tests.delta(people, token)
    assert seen == []
    sandbox.advance(61)
    seen, token = people_tests.delta(people, token)
    assert names_in(seen) == changed  # Early is only 61 s old
    by_name = {c["resourceName"]: c for c in seen}
    assert by_name[gone["resourceName"]]["metadata"]["deleted"] is True
    assert group in people_tests.group_names(by_name[ada["resourceName"]])
    sandbox.settle()
    seen, token = people_tests.delta(people, token)
    assert names_in(seen) == {early["resourceName"]}  # never lost, reported once
    sandbox.settle()
    assert people_tests.delta(people, token)[0] == []


def test_a_person_rewritten_before_propagating_shows_once_in_its_latest_state(sandbox, account):
    sandbox.behaviours(people_propagation_seconds=120)
    people = account.people
    token = people_tests.full_sync_token(people)
    ada = people_tests.create(people, "Ada")
    sandbox.advance(100)
    people.people().updateContact(
        resourceName=ada["resourceName"],
        updatePersonFields="names",
        body={"etag": ada["etag"], "names": [{"givenName": "Ada2"}]},
    ).execute()
    sandbox.advance(30)  # the create is old enough, the update is not
    seen, token = people_tests.delta(people, token)
    assert seen == []
    sandbox.advance(100)
    seen, _ = people_tests.delta(people, token)
    assert [c["names"][0]["givenName"] for c in seen] == ["Ada2"]


# -- 2. short and empty pages ---------------------------------------------------------


def pages_of(fetch: Any) -> list[dict[str, Any]]:
    """Every page of a listing; ``fetch(page_token)`` returns one page."""
    pages, token = [], None
    while True:
        pages.append(fetch(token))
        token = pages[-1].get("nextPageToken")
        if not token:
            return pages
        assert len(pages) < 200, "paging does not end"


def check_pages(pages: list[dict[str, Any]], key: str, size: int, expected: list[str]) -> list[int]:
    """The union of the pages is ``expected`` exactly; returns the page lengths."""
    lengths = [len(page.get(key, [])) for page in pages]
    found = [item.get("resourceName") or item["id"] for page in pages for item in page.get(key, [])]
    assert sorted(found) == sorted(expected) and len(found) == len(set(found))
    assert all(length <= size for length in lengths)
    assert all("nextPageToken" in page for page in pages[:-1])
    return lengths


def test_people_pages_may_be_short_or_empty_but_add_up(sandbox, account):
    people = account.people
    contacts = [{"contactPerson": {"names": [{"givenName": f"P{i}"}]}} for i in range(40)]
    people.people().batchCreateContacts(body={"contacts": contacts, "readMask": "names"}).execute()
    expected = [c["resourceName"] for c in people_tests.list_all(people)[0]]
    assert len(expected) == 40
    all_lengths = []
    for seed in range(4):
        sandbox.behaviours(short_pages=True, seed=seed)

        def fetch(token: str | None) -> dict[str, Any]:
            extra = {"pageToken": token} if token else {}
            return people_tests.list_page(people, pageSize=7, requestSyncToken=True, **extra)

        pages = pages_of(fetch)
        all_lengths.append(check_pages(pages, "connections", 7, expected))
        assert "nextSyncToken" in pages[-1]
        again = check_pages(pages_of(fetch), "connections", 7, expected)
        assert again == all_lengths[-1]  # reproducible: the same seed cuts the same way
    assert any(0 < n < 7 for lengths in all_lengths for n in lengths[:-1])  # short pages
    assert any(n == 0 for lengths in all_lengths for n in lengths)  # and empty ones
    sandbox.behaviours(short_pages=False)
    lengths = check_pages(pages_of(fetch), "connections", 7, expected)
    assert lengths == [7] * 5 + [5]


def test_calendar_pages_may_be_short_or_empty_but_add_up(sandbox, account):
    for day in range(1, 31):
        calendar_tests.insert(account, calendar_tests.body(f"E{day}", day=f"2026-06-{day:02d}"))
    series = calendar_tests.body("Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=20"])
    series["start"]["timeZone"] = series["end"]["timeZone"] = "UTC"
    master = calendar_tests.insert(account, series)
    expected = [e["id"] for e in calendar_tests.list_all(account, singleEvents=True)[0]]
    assert len(expected) == 50
    events = calendar_tests.events(account)
    all_lengths = []
    for seed in range(4):
        sandbox.behaviours(short_pages=True, seed=seed)

        def fetch(token: str | None) -> dict[str, Any]:
            return events.list(
                calendarId="primary", maxResults=6, singleEvents=True, pageToken=token
            ).execute()

        pages = pages_of(fetch)
        all_lengths.append(check_pages(pages, "items", 6, expected))
        token = pages[-1]["nextSyncToken"]
        assert all("nextSyncToken" not in page for page in pages[:-1])
        instances = pages_of(
            lambda t: events.instances(
                calendarId="primary", eventId=master["id"], maxResults=4, pageToken=t
            ).execute()
        )
        assert len(check_pages(instances, "items", 4, [i for i in expected if "_" in i])) > 5
        calendar_tests.insert(account, calendar_tests.body(f"New{seed}", day="2026-07-01"))
        delta = pages_of(
            lambda t, since=token: events.list(
                calendarId="primary", syncToken=since, maxResults=1, pageToken=t
            ).execute()
        )
        assert [e["summary"] for p in delta for e in p["items"]] == [f"New{seed}"]
        expected = [e["id"] for e in calendar_tests.list_all(account, singleEvents=True)[0]]
    assert any(0 < n < 6 for lengths in all_lengths for n in lengths[:-1])
    assert any(n == 0 for lengths in all_lengths for n in lengths)


# -- 3. shuffled batches --------------------------------------------------------------


def run_batch(sandbox: Any, api: str, requests: list[tuple[str, Any]]) -> dict[str, Any]:
    results: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: Any) -> None:
        results[request_id] = exception or response

    batch = google_api.new_batch(api, sandbox.url, callback=collect)
    for request_id, request in requests:
        batch.add(request, request_id=request_id)
    batch.execute()
    return results


@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_parts_run_in_any_order_and_answer_by_content_id(sandbox, account, shuffle):
    sandbox.behaviours(shuffle_batches=shuffle, seed=3)
    ids = [f"evt{n:05d}" for n in range(12)]
    requests = [
        (
            event_id,
            calendar_tests.events(account).insert(
                calendarId="primary", body={**calendar_tests.body(event_id), "id": event_id}
            ),
        )
        for event_id in ids
    ]
    results = run_batch(sandbox, "calendar", requests)
    assert {k: v["summary"] for k, v in results.items()} == {i: i for i in ids}
    ran = sorted(ids, key=lambda i: calendar_tests.etag_number(results[i]))  # write order
    assert (ran == ids) is not shuffle
    people = account.people
    requests = [
        (name, people.people().createContact(body={"names": [{"givenName": name}]})) for name in ids
    ]
    results = run_batch(sandbox, "people", requests)
    assert {k: v["names"][0]["givenName"] for k, v in results.items()} == {i: i for i in ids}
    listed = people_tests.list_all(people, sortOrder="LAST_MODIFIED_ASCENDING")[0]
    ran = [c["names"][0]["givenName"] for c in listed]
    assert sorted(ran) == ids and (ran == ids) is not shuffle


# -- 4. undetected event id collisions ------------------------------------------------


def test_id_collision_is_409_by_default(account):
    event = {**calendar_tests.body("First"), "id": "taken0001"}
    calendar_tests.insert(account, event)
    with pytest.raises(HttpError) as caught:
        calendar_tests.insert(account, {**event, "summary": "Second"})
    status, detail = calendar_tests.error(caught)
    assert (status, detail["reason"]) == (409, "duplicate")


def test_undetected_id_collision_acknowledges_the_insert_and_keeps_the_stored_event(
    sandbox, account
):
    sandbox.behaviours(undetected_id_collisions=True)
    events = calendar_tests.events(account)
    first = calendar_tests.insert(account, {**calendar_tests.body("First"), "id": "taken0001"})
    token = calendar_tests.list_all(account)[1]["nextSyncToken"]
    second = calendar_tests.insert(
        account, {**calendar_tests.body("Second", hour=14), "id": "taken0001"}
    )
    assert second["id"] == "taken0001" and second["summary"] == "Second"  # "created"
    assert second["start"]["dateTime"] == "2026-06-01T14:00:00Z"
    assert calendar_tests.etag_number(second) > calendar_tests.etag_number(first)
    stored = events.get(calendarId="primary", eventId="taken0001").execute()
    assert stored == first  # the first writer won; nothing changed
    delta = events.list(calendarId="primary", syncToken=token).execute()
    assert delta["items"] == []  # and no sync reports anything
    with pytest.raises(HttpError) as caught:  # its etag never existed
        calendar_tests.with_header(
            events.patch(calendarId="primary", eventId="taken0001", body={"summary": "x"}),
            "If-Match",
            second["etag"],
        ).execute()
    assert caught.value.resp.status == 412
    sandbox.advance(61)  # past the consistency window: the collision is seen again
    with pytest.raises(HttpError) as caught:
        calendar_tests.insert(account, {**calendar_tests.body("Late"), "id": "taken0001"})
    assert calendar_tests.error(caught)[0] == 409


def test_a_deleted_events_id_collides_with_409_even_when_collisions_go_undetected(sandbox, account):
    sandbox.behaviours(undetected_id_collisions=True)
    events = calendar_tests.events(account)
    calendar_tests.insert(account, {**calendar_tests.body("First"), "id": "taken0002"})
    events.delete(calendarId="primary", eventId="taken0002").execute()
    with pytest.raises(HttpError) as caught:
        calendar_tests.insert(account, {**calendar_tests.body("Back"), "id": "taken0002"})
    assert calendar_tests.error(caught)[0] == 409


# -- 5. cancelled events expire -------------------------------------------------------


def test_cancelled_events_disappear_after_their_ttl(sandbox, account):
    sandbox.behaviours(cancelled_event_ttl_seconds=3600)
    events = calendar_tests.events(account)
    token = calendar_tests.list_all(account)[1]["nextSyncToken"]
    gone = calendar_tests.insert(account, {**calendar_tests.body("Gone"), "id": "gone00001"})
    kept = calendar_tests.insert(account, calendar_tests.body("Kept", hour=11))
    series = calendar_tests.body("Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=5"])
    series["start"]["timeZone"] = series["end"]["timeZone"] = "UTC"
    master = calendar_tests.insert(account, series)
    skipped = f"{master['id']}_20260608T090000Z"
    events.delete(calendarId="primary", eventId=skipped).execute()  # a cancelled exception
    events.delete(calendarId="primary", eventId=gone["id"]).execute()
    sandbox.advance(3000)
    assert events.get(calendarId="primary", eventId="gone00001").execute()["status"] == "cancelled"
    listed = calendar_tests.list_all(account, showDeleted=True)[0]
    assert "gone00001" in {e["id"] for e in listed}
    sandbox.advance(601)
    with pytest.raises(HttpError) as caught:
        events.get(calendarId="primary", eventId="gone00001").execute()
    assert caught.value.resp.status == 404
    listed = calendar_tests.list_all(account, showDeleted=True)[0]
    assert {e["id"] for e in listed} == {kept["id"], master["id"], skipped}  # exception kept
    delta = calendar_tests.list_all(account, syncToken=token)[0]
    assert {e["id"] for e in delta} == {kept["id"], master["id"], skipped}  # no longer reported
    assert events.get(calendarId="primary", eventId=skipped).execute()["status"] == "cancelled"
    again = calendar_tests.insert(account, {**calendar_tests.body("Again"), "id": "gone00001"})
    assert again["status"] == "confirmed"  # the id is free again
    events.delete(calendarId="primary", eventId=master["id"]).execute()
    sandbox.advance(3601)  # a deleted series takes its cancelled exceptions along
    for event_id in (master["id"], skipped, f"{master['id']}_20260615T090000Z"):
        with pytest.raises(HttpError) as caught:
            events.get(calendarId="primary", eventId=event_id).execute()
        assert caught.value.resp.status == 404


def test_cancelled_events_stay_by_default(sandbox, account):
    events = calendar_tests.events(account)
    gone = calendar_tests.insert(account, calendar_tests.body("Gone"))
    events.delete(calendarId="primary", eventId=gone["id"]).execute()
    sandbox.advance(27 * DAY)
    assert events.get(calendarId="primary", eventId=gone["id"]).execute()["status"] == "cancelled"


# -- 6. deleting a series reports its instances ---------------------------------------


def weekly_series(account: Any, count: int = 10) -> tuple[dict[str, Any], str]:
    """A weekly series with one moved instance; (master, id of the moved instance)."""
    series = calendar_tests.body("Weekly", recurrence=[f"RRULE:FREQ=WEEKLY;COUNT={count}"])
    series["start"]["timeZone"] = series["end"]["timeZone"] = "UTC"
    master = calendar_tests.insert(account, series)
    moved = f"{master['id']}_20260615T090000Z"
    calendar_tests.events(account).patch(
        calendarId="primary", eventId=moved, body={"summary": "Moved one"}
    ).execute()
    return master, moved


@pytest.mark.parametrize("instances", [False, True])
def test_deleting_a_series_with_single_events(sandbox, account, instances):
    sandbox.behaviours(series_deletion_instances=instances)
    master, moved = weekly_series(account)
    token = calendar_tests.list_all(account, singleEvents=True)[1]["nextSyncToken"]
    calendar_tests.events(account).delete(calendarId="primary", eventId=master["id"]).execute()
    delta = calendar_tests.list_all(account, syncToken=token, singleEvents=True)[0]
    full = calendar_tests.list_all(account, singleEvents=True, showDeleted=True)[0]
    assert all(e["status"] == "cancelled" for e in delta + full)
    if not instances:  # the kind sandbox: the master (and the exception it cancelled)
        assert {e["id"] for e in delta} == {master["id"], moved}
        assert {e["id"] for e in full} == {moved}
        return
    expected = {f"{master['id']}_202606{d:02d}T090000Z" for d in (1, 8, 15, 22, 29)}
    expected |= {f"{master['id']}_202607{d:02d}T090000Z" for d in (6, 13, 20, 27)}
    expected.add(f"{master['id']}_20260803T090000Z")
    for listed in (delta, full):
        assert {e["id"] for e in listed} == expected  # only instances, never the master
        assert len(listed) == 10
        for event in listed:
            assert event["recurringEventId"] == master["id"]
            assert set(event) == INSTANCE_TOMBSTONE
    assert calendar_tests.list_all(account, singleEvents=True)[0] == []  # showDeleted=false


def test_deleted_unbounded_series_reports_the_expansion_horizon(sandbox, account):
    sandbox.behaviours(series_deletion_instances=True)
    series = calendar_tests.body("Daily", recurrence=["RRULE:FREQ=DAILY"])
    series["start"]["timeZone"] = series["end"]["timeZone"] = "UTC"
    master = calendar_tests.insert(account, series)
    token = calendar_tests.list_all(account, singleEvents=True, maxResults=2500)[1]
    calendar_tests.events(account).delete(calendarId="primary", eventId=master["id"]).execute()
    delta = calendar_tests.list_all(
        account, syncToken=token["nextSyncToken"], singleEvents=True, maxResults=2500
    )[0]
    assert 0 < len(delta) <= 730 and {e["status"] for e in delta} == {"cancelled"}
    window = calendar_tests.list_all(
        account,
        singleEvents=True,
        showDeleted=True,
        timeMin="2026-06-01T00:00:00Z",
        timeMax="2026-06-08T00:00:00Z",
    )[0]
    assert len(window) == 7  # full lists keep to their window


# -- 7. calendar time zones -----------------------------------------------------------


def test_calendar_time_zone_is_per_account_and_used_in_responses(sandbox, make_account):
    berlin = make_account("berlin@example.com", time_zone="Europe/Berlin")
    utc = make_account("utc@example.com")
    calendar = berlin.calendar
    assert calendar.calendars().get(calendarId="primary").execute()["timeZone"] == "Europe/Berlin"
    assert utc.calendar.calendars().get(calendarId="primary").execute()["timeZone"] == "UTC"
    event = calendar_tests.insert(berlin, calendar_tests.body("Local", hour=9))
    assert event["start"] == {"dateTime": "2026-06-01T11:00:00+02:00"}  # rendered with offset
    winter = calendar_tests.insert(berlin, calendar_tests.body("Winter", day="2026-12-01"))
    assert winter["end"] == {"dateTime": "2026-12-01T11:00:00+01:00"}
    page = calendar.events().list(calendarId="primary").execute()
    assert page["timeZone"] == "Europe/Berlin"
    assert page["items"][0]["start"]["dateTime"] == "2026-06-01T11:00:00+02:00"
    asked = calendar.events().list(calendarId="primary", timeZone="UTC").execute()
    assert asked["items"][0]["start"]["dateTime"] == "2026-06-01T09:00:00Z"
    assert calendar_tests.insert(utc, calendar_tests.body("Plain"))["start"] == {
        "dateTime": "2026-06-01T09:00:00Z"
    }
    day = calendar_tests.insert(
        berlin, {"summary": "Day", "start": {"date": "2026-06-02"}, "end": {"date": "2026-06-03"}}
    )
    assert day["start"] == {"date": "2026-06-02"}  # all-day dates never shift
    series = calendar_tests.body("Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=2"])
    series["start"]["timeZone"] = series["end"]["timeZone"] = NY
    master = calendar_tests.insert(berlin, series)
    found = calendar.events().instances(calendarId="primary", eventId=master["id"]).execute()
    first = found["items"][0]
    assert first["id"] == f"{master['id']}_20260601T090000Z"  # instance ids stay UTC
    assert first["start"] == {
        "dateTime": "2026-06-01T11:00:00+02:00",
        "timeZone": "America/New_York",
    }
    assert first["originalStartTime"]["dateTime"] == "2026-06-01T11:00:00+02:00"


def test_default_time_zone_applies_to_accounts_without_one(sandbox, make_account):
    sandbox.behaviours(default_time_zone="America/New_York")
    alice = make_account("alice@example.com")
    tokyo = make_account("tokyo@example.com", time_zone="Asia/Tokyo")
    assert alice.calendar.calendars().get(calendarId="primary").execute()["timeZone"] == (
        "America/New_York"
    )
    event = calendar_tests.insert(alice, calendar_tests.body("Local"))
    assert event["start"]["dateTime"] == "2026-06-01T05:00:00-04:00"
    listed = calendar_tests.list_all(tokyo)[1]
    assert listed["timeZone"] == "Asia/Tokyo"
    status, answer = post(
        sandbox.url + "/_sandbox/accounts", {"email": "x@y.z", "timeZone": "Nope"}
    )
    assert status == 400 and "IANA time zone" in answer["error"]["message"]


# -- 8. testing-mode refresh tokens expire after 7 days -------------------------------


def test_testing_mode_refresh_tokens_expire_after_seven_days(sandbox, make_account):
    sandbox.behaviours(testing_mode_refresh_expiry=True)
    account = make_account("alice@example.com")
    sandbox.advance(7 * DAY - 120)  # the access token expired long ago: refresh works
    assert calendar_tests.list_all(account)[0] == []
    sandbox.advance(3600)  # past 7 days: the next refresh is refused
    with pytest.raises(RefreshError) as caught:
        account.calendar.events().list(calendarId="primary").execute()
    assert "invalid_grant: Token has been expired or revoked." in str(caught.value)
    status, answer = post_form(sandbox.url + "/token", refresh_form(account.refresh_token))
    assert (status, answer) == (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )


def test_refresh_tokens_do_not_expire_for_published_apps_or_sign_in_scopes(sandbox, account):
    sandbox.advance(30 * DAY)  # off by default (and in realistic): published apps
    assert people_tests.list_page(account.people) == {}
    sandbox.behaviours(testing_mode_refresh_expiry=True)
    sign_in = sandbox.state.tokens.issue_refresh(
        account.email, frozenset({"openid", "email"}), "sandbox-client"
    )
    sandbox.advance(8 * DAY)
    status, answer = post_form(sandbox.url + "/token", refresh_form(sign_in))
    assert status == 200 and "access_token" in answer


def refresh_form(token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": "c"}


def post_form(url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


# -- 9. quota on the first page of a full People sync ---------------------------------


def start_of_minute(sandbox: Any) -> None:
    """Move the sandbox clock to the start of a minute, so a test stays in one."""
    sandbox.advance(60 - sandbox.state.clock.timestamp() % 60 + 0.01)


def test_first_pages_of_full_people_syncs_have_a_quota(sandbox, make_account):
    sandbox.behaviours(people_full_sync_quota_per_minute=2)
    start_of_minute(sandbox)
    alice, bob = make_account("alice@example.com"), make_account("bob@example.com")
    for given in ("Ada", "Bo", "Cy"):
        people_tests.create(alice.people, given)
    first = people_tests.list_page(alice.people, pageSize=1, requestSyncToken=True)
    people_tests.list_page(
        alice.people, pageSize=1, requestSyncToken=True, pageToken=first["nextPageToken"]
    )
    token = people_tests.full_sync_token(alice.people)  # second first page: still fine
    people_tests.delta(alice.people, token)  # neither later pages nor deltas count
    people_tests.list_page(alice.people)  # a plain listing is no sync: not charged
    with pytest.raises(HttpError) as caught:
        people_tests.list_page(alice.people, requestSyncToken=True)
    error = json.loads(caught.value.content)["error"]
    assert (caught.value.resp.status, error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert error["message"].startswith("Quota exceeded for quota metric")
    assert 0 < int(caught.value.resp["retry-after"]) <= 60
    people_tests.list_page(bob.people, requestSyncToken=True)  # per account
    sandbox.advance(int(caught.value.resp["retry-after"]))
    answer = people_tests.list_page(alice.people, requestSyncToken=True)
    assert len(answer["connections"]) == 3


def test_realistic_quota_lets_a_normal_sync_through(sandbox, account):
    sandbox.profile("realistic")
    start_of_minute(sandbox)
    for _ in range(10):
        people_tests.list_all(account.people, requestSyncToken=True)
    with pytest.raises(HttpError) as caught:
        people_tests.list_page(account.people, requestSyncToken=True)
    assert caught.value.resp.status == 429


# -- the realistic profile as a whole -------------------------------------------------


def test_realistic_profile_end_to_end(sandbox, make_account):
    sandbox.profile("realistic")
    account = make_account("alice@example.com")
    people = account.people
    calendar = account.calendar
    assert calendar.calendars().get(calendarId="primary").execute()["timeZone"] == NY
    token = people_tests.full_sync_token(people)
    ada = people_tests.create(people, "Ada")
    assert people_tests.delta(people, token)[0] == []  # Google has not caught up yet
    sandbox.settle()
    seen, token = people_tests.delta(people, token)
    assert names_in(seen) == {ada["resourceName"]}
    event = calendar_tests.insert(account, {**calendar_tests.body("Meet"), "id": "meet00001"})
    assert event["start"]["dateTime"] == "2026-06-01T05:00:00-04:00"
    again = calendar_tests.insert(account, {**calendar_tests.body("Other"), "id": "meet00001"})
    assert again["summary"] == "Other"  # an undetected collision
    calendar.events().delete(calendarId="primary", eventId="meet00001").execute()
    sandbox.advance(6 * 3600)  # hours of simulated syncing: the TTL is far away
    stored = calendar.events().get(calendarId="primary", eventId="meet00001").execute()
    assert (stored["status"], stored["summary"]) == ("cancelled", "Meet")
    sandbox.control("POST", "/_sandbox/reset")
    assert sandbox.behaviours()["profile"] == "default"  # this server's base profile
