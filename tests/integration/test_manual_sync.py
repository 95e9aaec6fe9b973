"""``manual_sync``: signed in with a Google ID token (the sandbox issues them), a user
reads their status, saves their settings and starts their own syncs, and nobody else's."""

from __future__ import annotations

import json

import pytest
from functions_framework import create_app

from core.model import SYNC_RUNS, SYNC_SETTINGS
from functions import seed
from tests.integration.test_scheduler import ROOT


@pytest.fixture
def api(cloud_env, sandbox, make_account, monkeypatch):
    store = cloud_env
    make_account("bob@example.com")
    make_account("mallory@example.com")  # a Google user who is nobody in the CRM
    client = create_app("manual_sync", str(ROOT / "main.py"), "http").test_client()

    def token(email, **extra):
        body = {"email": email, "audience": "crmsync-local", **extra}
        return sandbox.control("POST", "/_sandbox/idtoken", body)["idToken"]

    def call(method, path, email="alice@example.com", body=None, bearer=None, **kw):
        auth = bearer if bearer is not None else f"Bearer {token(email)}"
        return client.open(
            path,
            method=method,
            headers={"Authorization": auth},
            data=json.dumps(body) if body is not None else None,
            **kw,
        )

    call.store, call.token = store, token
    yield call


def test_status_shows_the_callers_settings_account_and_sections(api):
    answer = api("GET", "/status")
    assert answer.status_code == 200
    data = answer.get_json()
    assert data["userId"] == seed.ALICE and data["account"]["status"] == "connected"
    assert data["settings"]["contacts"]["tagId"] == seed.ALICE_TAG
    assert set(data["sections"]) == {"contacts", "activities"}


def test_start_a_sync_by_hand(api):
    answer = api("POST", "/sync", body={"section": "contacts"})
    assert answer.status_code == 200
    data = answer.get_json()
    assert (data["outcome"], data["reason"]) == ("done", "changes")
    (ran,) = data["runs"]
    assert ran["counts"]["pushed"] == 4 and ran["outcome"] == "done"
    (run,) = [d for d in api.store.query(SYNC_RUNS)]  # one record per run, under its id
    assert run.id == ran["runId"]
    assert run.data["trigger"] == "manual" and run.data["userId"] == seed.ALICE
    assert (run.data["outcome"], run.data["reason"]) == ("done", "changes")
    after = api("GET", "/status").get_json()["sections"]["contacts"]
    assert after["lastSuccessAt"] and after["lastResult"]["ok"]


def test_a_sync_from_date_outside_the_sane_window_is_refused_with_a_field_error(api):
    answer = api("PUT", "/settings", body={"activities": {"syncFrom": "0001-01-01"}})
    assert answer.status_code == 400
    problem = answer.get_json()["fields"]["activities.syncFrom"]
    assert "years back" in problem
    assert api.store.get(SYNC_SETTINGS, seed.ALICE)["activities"].get("syncFrom") != "0001-01-01"


def test_settings_are_validated_and_saved(api):
    good = {
        "contacts": {"auto": True, "intervalMinutes": 15, "tagId": seed.ALICE_TAG},
        "activities": {"auto": False, "intervalMinutes": 60, "syncFrom": "2026-01-01"},
    }
    assert api("PUT", "/settings", body=good).status_code == 200
    assert api.store.get(SYNC_SETTINGS, seed.ALICE)["contacts"]["intervalMinutes"] == 15
    for bad, field in [
        ({"contacts": {"intervalMinutes": 1}}, "contacts.intervalMinutes"),
        ({"contacts": {"intervalMinutes": 100000}}, "contacts.intervalMinutes"),
        ({"activities": {"syncFrom": "next week"}}, "activities.syncFrom"),
        ({"contacts": {"tagId": seed.BOB_TAG}}, "contacts.tagId"),  # Bob's private tag
        ({"contacts": {"tagId": seed.PUBLIC_TAG}}, "contacts.tagId"),  # not private
        ({"contacts": {"colour": "red"}}, "contacts.colour"),
        ({"activities": {"syncFrom": "0001-01-01"}}, "activities.syncFrom"),
        ({"activities": {"syncFrom": "9999-12-31"}}, "activities.syncFrom"),
        ({"activities": {"syncFrom": "2999-01-01"}}, "activities.syncFrom"),
    ]:
        answer = api("PUT", "/settings", body=bad)
        assert answer.status_code == 400 and field in answer.get_json()["error"], bad
    assert api.store.get(SYNC_SETTINGS, seed.ALICE)["contacts"]["intervalMinutes"] == 15


def test_nobody_reads_or_starts_another_users_sync(api):
    assert api("GET", "/status?userId=u-alice", email="bob@example.com").status_code == 403
    body = {"section": "contacts", "userId": seed.ALICE}
    assert api("POST", "/sync", email="bob@example.com", body=body).status_code == 403
    assert api("GET", "/status", email="mallory@example.com").status_code == 403
    assert list(api.store.query(SYNC_RUNS)) == []


@pytest.mark.parametrize(
    "bearer",
    ["", "Bearer ", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz"],
)
def test_missing_or_malformed_tokens_are_401(api, bearer):
    assert api("GET", "/status", bearer=bearer).status_code == 401


def test_expired_or_wrong_audience_tokens_are_401(api, sandbox):
    expired = api.token("alice@example.com", ttlSeconds=-600)
    assert api("GET", "/status", bearer=f"Bearer {expired}").status_code == 401
    other = sandbox.control(
        "POST", "/_sandbox/idtoken", {"email": "alice@example.com", "audience": "someone-else"}
    )
    assert api("GET", "/status", bearer=f"Bearer {other['idToken']}").status_code == 401


def test_sandbox_tokens_are_refused_when_not_pointed_at_the_sandbox(api, monkeypatch):
    token = api.token("alice@example.com")
    monkeypatch.delenv("CRMSYNC_GOOGLE_ENDPOINT")
    answer = api("GET", "/status", bearer=f"Bearer {token}")
    assert answer.status_code == 401 and "not accepted" in answer.get_json()["error"]


def test_unknown_routes_are_404(api):
    assert api("DELETE", "/sync").status_code == 404


def test_page_sign_in_is_bound_to_the_browser_that_started_it(api):
    from urllib.parse import parse_qs, urlsplit

    from google.auth.transport.requests import Request

    browser = create_app("manual_sync", str(ROOT / "main.py"), "http").test_client()
    start = browser.get("/signin", query_string={"email": "alice@example.com"})
    assert start.status_code == 302 and browser.get_cookie("crmsync_signin").http_only
    consent = Request().session.get(start.headers["Location"], allow_redirects=False)
    args = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["Location"]).query).items()}
    stranger = create_app("manual_sync", str(ROOT / "main.py"), "http").test_client()
    refused = stranger.get("/signin/callback", query_string=args)
    # the browser is sent back to the page, which says why; never raw JSON, no session
    assert refused.status_code == 302
    said = parse_qs(urlsplit(refused.headers["Location"]).query)
    assert said == {"signin_error": ["other_browser"]}
    assert stranger.get_cookie("crmsync_session") is None
    done = browser.get("/signin/callback", query_string=args)
    assert done.status_code == 302 and browser.get_cookie("crmsync_session").http_only
    assert browser.get("/status").get_json()["userId"] == seed.ALICE


def test_unexpected_errors_answer_json_with_a_hint_never_an_html_page(api, sandbox, quick_retries):
    """A Google 503 that outlasts the retries, met by a sync started by hand: a JSON
    answer that says what failed and what to do, with Retry-After, not Flask's 500."""
    sandbox.fault("people.people.connections.list", 503, count=50)
    answer = api("POST", "/sync", body={"section": "contacts"})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    data = answer.get_json()
    assert data["outcome"] == "failed" and data["reason"] == "google_unavailable"
    assert "try again" in data["hint"]
    (record,) = [d.data for d in api.store.query(SYNC_RUNS)]  # one record, failed
    assert (record["outcome"], record["reason"]) == ("failed", "google_unavailable")
    missing = api("GET", "/no/such/route")
    assert missing.status_code == 404 and missing.is_json


def _records(api):
    return [d.data for d in api.store.query(SYNC_RUNS)]


def test_a_contacts_sync_without_a_tag_is_skipped_with_a_hint_and_one_record(api):
    settings = api.store.get(SYNC_SETTINGS, seed.ALICE)
    api.store.put(SYNC_SETTINGS, seed.ALICE, {**settings, "contacts": {"tagId": None}})
    data = api("POST", "/sync", body={"section": "contacts"}).get_json()
    assert (data["outcome"], data["reason"]) == ("skipped", "no_tag")
    assert "tag" in data["hint"]
    (record,) = _records(api)
    assert (record["outcome"], record["reason"]) == ("skipped", "no_tag")
    status = api("GET", "/status").get_json()["sections"]["contacts"]["ready"]
    assert status == {"ok": False, "reason": "no_tag", "hint": data["hint"]}


def test_a_sync_while_not_connected_is_skipped_and_says_connect(api):
    from core.model import GOOGLE_ACCOUNTS

    api.store.delete(GOOGLE_ACCOUNTS, seed.ALICE)
    data = api("POST", "/sync", body={"section": "activities"}).get_json()
    assert (data["outcome"], data["reason"]) == ("skipped", "not_connected")
    assert "Connect" in data["hint"]
    preview = api("POST", "/preview", body={"section": "contacts"})
    assert preview.status_code == 409  # never an empty "plan"
    assert (preview.get_json()["outcome"], preview.get_json()["reason"]) == (
        "skipped",
        "not_connected",
    )
    assert len(_records(api)) == 1  # the run; the preview writes nothing


def test_a_run_that_meets_a_revoked_token_fails_with_one_record(api, sandbox, account):
    sandbox.state.tokens.revoke(account.refresh_token)
    data = api("POST", "/sync", body={"section": "contacts"}).get_json()
    assert (data["outcome"], data["reason"]) == ("failed", "reauth_required")
    (record,) = _records(api)
    assert record["outcome"] == "failed" and "reconnect" in record["hint"]
    again = api("POST", "/sync", body={"section": "contacts"}).get_json()
    assert (again["outcome"], again["reason"]) == ("skipped", "reauth_required")
    assert len(_records(api)) == 2


def test_the_run_record_holds_labelled_counts_and_the_named_journal(api):
    ran = api("POST", "/sync", body={"section": "contacts"}).get_json()["runs"][0]
    history = api("GET", "/runs").get_json()["runs"]
    assert history[0]["changes"] == [{"key": "pushed", "label": "pushed to Google", "count": 4}]
    detail = api("GET", f"/runs/{ran['runId']}").get_json()
    names = sorted(item["name"] for item in detail["items"])
    assert names == ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Katherine Johnson"]
    assert {item["side"] for item in detail["items"]} == {"google"}


def test_a_preview_names_the_records(api):
    data = api("POST", "/preview", body={"section": "contacts"}).get_json()
    assert (data["outcome"], data["total"]) == ("done", 4)
    (section,) = data["sections"]
    assert any("Ada Lovelace" in text for text in section["actions"])
    assert not any("c-ada" in text for text in section["actions"])


def test_settings_are_validated_by_meaning_with_friendly_messages(api):
    auto_no_tag = {"contacts": {"auto": True, "tagId": None}}
    answer = api("PUT", "/settings", body=auto_no_tag)
    assert answer.status_code == 400
    assert answer.get_json()["fields"] == {
        "contacts.tagId": "Choose a private tag to sync contacts automatically."
    }
    interval = api("PUT", "/settings", body={"contacts": {"intervalMinutes": 1}}).get_json()
    assert interval["fields"]["contacts.intervalMinutes"] == (
        "Enter a whole number of minutes from 5 to 1440."
    )
    assert "greater_than" not in json.dumps(interval)  # never pydantic's words
    assert api.store.get(SYNC_SETTINGS, seed.ALICE)["contacts"]["tagId"] == seed.ALICE_TAG


def test_the_page_connects_google_on_its_own_host(api, monkeypatch):
    """Deployed, each function has its own run.app host and cookies stay with theirs:
    the page's session and the connection's nonce must reach one function, so
    manual_sync serves /oauth_start and /oauth_callback itself."""
    from urllib.parse import parse_qs, urlsplit

    from google.auth.transport.requests import Request

    from core.model import GOOGLE_ACCOUNTS

    monkeypatch.setenv("CRMSYNC_OAUTH_REDIRECT_URI", "http://localhost/oauth_callback")
    monkeypatch.setenv("CRMSYNC_PAGE_URL", "http://localhost/")
    api.store.delete(GOOGLE_ACCOUNTS, seed.ALICE)
    browser = create_app("manual_sync", str(ROOT / "main.py"), "http").test_client()
    http = Request().session

    def through_google(location):
        consent = http.get(location, allow_redirects=False)
        return {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["Location"]).query).items()}

    start = browser.get("/signin", query_string={"email": "alice@example.com"})
    assert start.status_code == 302
    assert browser.get("/signin/callback", query_string=through_google(start.headers["Location"]))
    status = browser.get("/status").get_json()
    assert status["account"]["status"] == "not_connected"
    assert status["links"]["oauthCallback"] == "http://localhost/oauth_callback"
    begun = browser.get("/oauth_start")
    assert begun.status_code == 200, begun.get_json()
    args = through_google(begun.get_json()["authorizationUrl"])
    back = browser.get("/oauth_callback", query_string=args, headers={"Accept": "text/html"})
    assert back.status_code == 302 and back.headers["Location"] == "http://localhost/"
    assert api.store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "connected"


def test_a_missing_or_unknown_time_zone_is_shown_as_utc_never_passed_to_the_page(api):
    """Found by review: a null or bogus ``timeZone`` in the CRM's user made the page's
    date formatting throw, and it stopped loading."""
    from core.model import USERS

    user = api.store.get(USERS, seed.ALICE)
    for zone in (None, "Mars/Olympus", "", 42, "../etc"):
        api.store.put(USERS, seed.ALICE, {**user, "timeZone": zone})
        assert api("GET", "/status").get_json()["timeZone"] == "UTC", zone
    api.store.put(USERS, seed.ALICE, {**user, "timeZone": "Europe/Paris"})
    assert api("GET", "/status").get_json()["timeZone"] == "Europe/Paris"


def test_every_bad_setting_is_said_at_the_first_save(api):
    """Found in the browser trial: a date outside the window beside a bad interval was
    only said at the second save."""
    answer = api("PUT", "/settings", body={
        "contacts": {"tagId": seed.ALICE_TAG, "auto": False, "intervalMinutes": 60},
        "activities": {"auto": True, "intervalMinutes": 0, "syncFrom": "1900-01-01"},
    })  # fmt: skip
    assert answer.status_code == 400
    fields = answer.get_json()["fields"]
    assert set(fields) == {"activities.intervalMinutes", "activities.syncFrom"}
    assert "on or after" in fields["activities.syncFrom"]


def test_a_run_is_taken_back_by_its_own_user_after_a_preview_of_the_undo(api):
    ran = api("POST", "/sync", body={"section": "contacts"}).get_json()["runs"][0]
    path = f"/runs/{ran['runId']}/undo"
    assert api("POST", path, email="bob@example.com", body={}).status_code == 404  # not his
    preview = api("POST", path, body={"dryRun": True}).get_json()
    assert preview["dryRun"] and preview["total"] == 4 and preview["runId"] is None
    assert any("Ada Lovelace" in text for text in preview["actions"])
    assert len(_records(api)) == 1  # a preview records nothing
    done = api("POST", path, body={}).get_json()
    assert (done["outcome"], done["undoOf"]) == ("done", ran["runId"])
    assert done["counts"]["removedFromGroup"] == 4 and done["conflicts"] == []
    record = api.store.get(SYNC_RUNS, done["runId"])
    assert record["trigger"] == "undo" and record["userId"] == seed.ALICE
    assert api("POST", path, body={"dryRun": "soon"}).status_code == 400
    assert api("POST", "/runs/no-such-run/undo", body={}).status_code == 404


def test_an_activities_run_is_taken_back_through_the_api_in_the_user_s_words(api):
    ran = api("POST", "/sync", body={"section": "activities"}).get_json()["runs"][0]
    path = f"/runs/{ran['runId']}/undo"
    preview = api("POST", path, body={"dryRun": True}).get_json()
    assert preview["total"] == 2 and preview["outcome"] == "done", preview
    assert all(text.startswith("delete ") and not text.endswith(")") for text in preview["actions"])
    done = api("POST", path, body={}).get_json()
    assert done["counts"]["deletedInGoogle"] == 2 and done["counts"]["redoneByNextSync"] == 2
    assert {c["key"] for c in done["changes"]} >= {"deletedInGoogle"}
