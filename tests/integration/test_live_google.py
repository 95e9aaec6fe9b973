"""Opt-in: a few wire facts checked against real Google, so the sandbox stays honest.

Skipped unless CRMSYNC_LIVE_REFRESH_TOKEN, CRMSYNC_OAUTH_CLIENT_ID and
CRMSYNC_OAUTH_CLIENT_SECRET are set (a test account's token with the contacts and
calendar.events scopes). Each check runs against the sandbox too, with the same code.
Live runs create and then delete a contact and an event in the test account.
"""

from __future__ import annotations

import os
import uuid

import pytest
from googleapiclient.errors import HttpError

from adapters import google_api
from core import contact_mapping as cm

LIVE = {k: os.environ.get(k) for k in ("CRMSYNC_LIVE_REFRESH_TOKEN", "CRMSYNC_OAUTH_CLIENT_ID",
                                       "CRMSYNC_OAUTH_CLIENT_SECRET")}  # fmt: skip


@pytest.fixture(params=["sandbox", pytest.param("live", marks=pytest.mark.live)])
def google(request, make_account):
    if request.param == "sandbox":
        return make_account("live-twin@example.com"), None
    if not all(LIVE.values()):
        pytest.skip("live Google checks need CRMSYNC_LIVE_REFRESH_TOKEN and the OAuth client")
    creds = google_api.credentials(LIVE["CRMSYNC_LIVE_REFRESH_TOKEN"], None,
                                   LIVE["CRMSYNC_OAUTH_CLIENT_ID"],
                                   LIVE["CRMSYNC_OAUTH_CLIENT_SECRET"])  # fmt: skip

    class Live:
        people = google_api.people_service(creds)
        calendar = google_api.calendar_service(creds)

    return Live, None


def test_person_fields_is_required(google):
    account, _ = google
    with pytest.raises(HttpError) as caught:
        account.people.people().connections().list(resourceName="people/me").execute()
    assert caught.value.resp.status == 400


def test_client_data_round_trips_and_delete_answers_empty(google):
    account, _ = google
    ident = uuid.uuid4().hex
    body = {**cm.to_person({"givenName": "crmsync live check"}),
            "clientData": [{"key": cm.CLIENT_DATA_KEY, "value": ident}]}  # fmt: skip
    person = account.people.people().createContact(body=body, personFields="clientData").execute()
    try:
        assert cm.client_data_id(person) == ident
    finally:
        done = account.people.people().deleteContact(resourceName=person["resourceName"])
        assert done.execute() == {}


def test_sync_token_comes_with_the_last_page_only(google):
    account, _ = google
    page = account.people.people().connections().list(
        resourceName="people/me", personFields="names", pageSize=1, requestSyncToken=True
    ).execute()  # fmt: skip
    assert not ("nextPageToken" in page and "nextSyncToken" in page)


def test_event_insert_with_a_client_id_twice_is_409(google):
    account, _ = google
    event_id = "live" + uuid.uuid4().hex  # base32hex: [a-v0-9]
    body = {"id": event_id, "summary": "crmsync live check",
            "start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}}  # fmt: skip
    events = account.calendar.events()
    events.insert(calendarId="primary", body=body, sendUpdates="none").execute()
    try:
        with pytest.raises(HttpError) as caught:
            events.insert(calendarId="primary", body=body, sendUpdates="none").execute()
        assert caught.value.resp.status == 409
    finally:
        events.delete(calendarId="primary", eventId=event_id, sendUpdates="none").execute()
