"""Connecting a Google account through oauth_start / oauth_callback, against the
sandbox's OAuth endpoints: PKCE, a sealed state bound to the user, encrypted storage,
and reconnection clearing ``reauth_required``."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from flask import Flask, request
from functions_framework import create_app
from google.auth.transport.requests import Request

from core.model import GOOGLE_ACCOUNTS
from functions import bootstrap, oauth, seed
from tests.integration.test_scheduler import ROOT

CALLBACK = "http://127.0.0.1:9/oauth_callback"


@pytest.fixture
def flow(cloud_env, sandbox, make_account, monkeypatch):
    monkeypatch.setenv("CRMSYNC_OAUTH_REDIRECT_URI", CALLBACK)
    make_account("bob@example.com")
    starter = create_app("oauth_start", str(ROOT / "main.py"), "http").test_client()
    callback = create_app("oauth_callback", str(ROOT / "main.py"), "http").test_client()

    def id_token(email):
        body = {"email": email, "audience": "crmsync-local"}
        return sandbox.control("POST", "/_sandbox/idtoken", body)["idToken"]

    def begin(email="bob@example.com"):
        answer = starter.get("/", headers={"Authorization": f"Bearer {id_token(email)}"})
        assert answer.status_code == 200, answer.get_json()
        cookie = starter.get_cookie("crmsync_oauth")
        assert cookie.http_only and cookie.same_site == "Lax"
        callback.set_cookie("crmsync_oauth", cookie.value)  # the same browser comes back
        return answer.get_json()["authorizationUrl"]

    def consent(url):
        """The browser at Google: the sandbox approves and redirects back."""
        response = Request().session.get(url, allow_redirects=False)
        assert response.status_code == 302
        return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}

    def back(args, headers=None):
        return callback.get("/", query_string=args, headers=headers or {})

    flow.store, flow.begin, flow.consent, flow.back = cloud_env, begin, consent, back
    yield flow


def test_connect_with_pkce_stores_the_token_encrypted(flow, sandbox):
    url = flow.begin()
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["access_type"] == ["offline"]
    assert "https://www.googleapis.com/auth/calendar.events" in query["scope"][0].split()
    assert query["login_hint"] == ["bob@example.com"]
    answer = flow.back(flow.consent(url))
    assert answer.status_code == 200 and answer.get_json()["connected"] == seed.BOB
    account = flow.store.get(GOOGLE_ACCOUNTS, seed.BOB)
    assert account["status"] == "connected" and account["accountEmail"] == "bob@example.com"
    assert "1//" not in account["refreshTokenCiphertext"]


def test_reconnecting_clears_reauth_required(flow):
    account = flow.store.get(GOOGLE_ACCOUNTS, seed.ALICE)
    flow.store.put(GOOGLE_ACCOUNTS, seed.ALICE, {**account, "status": "reauth_required"})
    assert flow.back(flow.consent(flow.begin("alice@example.com"))).status_code == 200
    assert flow.store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "connected"


def test_forged_altered_or_expired_state_is_refused_and_changes_nothing(flow, monkeypatch):
    args = flow.consent(flow.begin())
    forged = Fernet(Fernet.generate_key()).encrypt(b'{"u": "u-bob", "v": "x"}').decode()
    for state in (forged, args["state"][:-4] + "AAAA", "", "garbage"):
        answer = flow.back({**args, "state": state})
        assert answer.status_code == 400 and "state" in answer.get_json()["error"]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 601)  # the state is 10 minutes old
    assert flow.back(args).status_code == 400
    monkeypatch.setattr(time, "time", real)
    assert flow.store.get(GOOGLE_ACCOUNTS, seed.BOB) is None


def test_denied_consent_and_a_bad_code_are_refused(flow):
    args = flow.consent(flow.begin())
    assert flow.back({"state": args["state"], "error": "access_denied"}).status_code == 400
    assert flow.back({**args, "code": "4/not-a-code"}).status_code == 400
    assert flow.store.get(GOOGLE_ACCOUNTS, seed.BOB) is None


def test_start_needs_a_signed_in_crm_user(flow, make_account):
    starter = create_app("oauth_start", str(ROOT / "main.py"), "http").test_client()
    assert starter.get("/").status_code == 401


def test_a_consent_url_finished_in_another_browser_is_refused(flow):
    """Account-linking CSRF: Bob starts, Carol's browser (without Bob's nonce cookie)
    completes; her Google account must not land on Bob's user."""
    args = flow.consent(flow.begin())
    other = create_app("oauth_callback", str(ROOT / "main.py"), "http").test_client()
    answer = other.get("/", query_string=args)
    assert answer.status_code == 400 and "another browser" in answer.get_json()["error"]
    other.set_cookie("crmsync_oauth", "a-different-nonce")
    assert other.get("/", query_string=args).status_code == 400
    assert flow.store.get(GOOGLE_ACCOUNTS, seed.BOB) is None


PAGE = "https://manual-sync-123456789012.europe-west1.run.app/"
BROWSER = {"Accept": "text/html,application/xhtml+xml"}


def test_the_configured_redirect_uri_and_page_are_used(flow, monkeypatch):
    """Deployed, each function has its own host: Google is sent to the configured
    callback, and a browser goes back to the configured page afterwards."""
    monkeypatch.setenv("CRMSYNC_PAGE_URL", PAGE)
    url = flow.begin()
    assert parse_qs(urlsplit(url).query)["redirect_uri"] == [CALLBACK]
    answer = flow.back(flow.consent(url), BROWSER)
    assert answer.status_code == 302 and answer.headers["Location"] == PAGE
    assert flow.store.get(GOOGLE_ACCOUNTS, seed.BOB)["status"] == "connected"


def test_without_a_configured_page_a_browser_goes_back_beside_the_callback(flow):
    """One host for all functions (a proxy, or ``serve``): the page is beside the
    configured callback."""
    answer = flow.back(flow.consent(flow.begin()), BROWSER)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "http://127.0.0.1:9/manual_sync/"


def test_links_derive_the_serve_layout_from_any_function(monkeypatch):
    """Unconfigured (``serve``): every function shares one host, each at /<target>."""
    for key in ("CRMSYNC_OAUTH_REDIRECT_URI", "CRMSYNC_OAUTH_START_URL", "CRMSYNC_PAGE_URL"):
        monkeypatch.delenv(key, raising=False)
    local = {
        "oauthStart": "http://127.0.0.1:8080/oauth_start",
        "page": "http://127.0.0.1:8080/manual_sync/",
        "oauthCallback": "http://127.0.0.1:8080/oauth_callback",
    }
    app = Flask(__name__)
    for mount, path in (("manual_sync", "/status"), ("oauth_start", "/"), ("oauth_callback", "/")):
        with app.test_request_context(path, base_url=f"http://127.0.0.1:8080/{mount}/"):
            assert oauth.links(bootstrap.Config.from_env(), request) == local
            assert oauth.callback_uri(request) == local["oauthCallback"]


def test_links_follow_a_configured_one_host_callback(monkeypatch):
    monkeypatch.setenv("CRMSYNC_OAUTH_REDIRECT_URI", "https://crm.example/sync/oauth_callback")
    monkeypatch.delenv("CRMSYNC_OAUTH_START_URL", raising=False)
    monkeypatch.delenv("CRMSYNC_PAGE_URL", raising=False)
    with Flask(__name__).test_request_context("/", base_url="http://10.0.0.7:8080/oauth_start/"):
        assert oauth.links(bootstrap.Config.from_env(), request) == {
            "oauthStart": "https://crm.example/sync/oauth_start",
            "page": "https://crm.example/sync/manual_sync/",
            "oauthCallback": "https://crm.example/sync/oauth_callback",
        }


def test_links_and_callback_uri_answer_the_configured_addresses(monkeypatch):
    deployed = {
        "oauthStart": "https://oauth-start-123456789012.europe-west1.run.app",
        "page": PAGE,
        "oauthCallback": "https://oauth-callback-123456789012.europe-west1.run.app",
    }
    monkeypatch.setenv("CRMSYNC_OAUTH_START_URL", deployed["oauthStart"])
    monkeypatch.setenv("CRMSYNC_PAGE_URL", deployed["page"])
    monkeypatch.setenv("CRMSYNC_OAUTH_REDIRECT_URI", deployed["oauthCallback"])
    with Flask(__name__).test_request_context("/status", base_url="https://elsewhere.example/"):
        assert oauth.links(bootstrap.Config.from_env(), request) == deployed
        assert oauth.callback_uri(request) == deployed["oauthCallback"]


def test_a_failed_connection_answers_a_fixed_word_and_a_browser_goes_back_to_the_page(flow):
    """Never text from the request in the redirect: the page turns the word into its
    own sentence (the request's ``error`` could carry anything)."""
    from urllib.parse import parse_qs as query_of

    args = flow.consent(flow.begin())
    cases = {
        "cancelled": {"state": args["state"], "error": "access_denied"},
        "not_completed": {"state": args["state"], "error": "<script>alert(1)</script>"},
        "google_refused": {**args, "code": "4/not-a-code"},
        "state_expired": {**args, "state": "garbage"},
    }
    for code, query in cases.items():
        api = flow.back(query)
        assert api.status_code == 400 and api.get_json()["code"] == code
        browser = flow.back(query, headers=BROWSER)
        assert browser.status_code == 302
        location = browser.headers["Location"]
        assert query_of(urlsplit(location).query) == {"connect_error": [code]}
        assert "script" not in location
    assert flow.store.get(GOOGLE_ACCOUNTS, seed.BOB) is None
