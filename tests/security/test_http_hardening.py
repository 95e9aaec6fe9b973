# ruff: noqa: F811  (the tests take the imported fixtures by name)
"""The HTTP surface's hardening (a security probe's findings): corrupt crmsync and CRM
documents are read as absent, never a 500 (and unreadable settings can be saved over);
bodies are read only after the caller is known, never past 256 KiB, and JSON nested too
deep is a 400; cookies are Secure whenever deployed; every answer carries the security
headers, and the page's Content-Security-Policy still lets the page run (Chromium)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from functions_framework import create_app
from google.auth.transport.requests import Request
from werkzeug.test import EnvironBuilder, run_wsgi_app

from core.model import SYNC_RUNS, SYNC_SETTINGS, SYNC_STATE
from functions import seed
from functions.channels import CHANNELS, token_hash
from functions.manual import PAGE
from functions.session import SESSIONS
from tests.e2e.conftest import site  # noqa: F401  (a fixture)
from tests.integration.test_manual_sync import api  # noqa: F401  (a fixture)
from tests.integration.test_scheduler import ROOT
from tests.security.test_attack_table import in_own_chromium, snapshot
from tests.security.test_sessions import signed_in

ALICE = "alice@example.com"
MAX_BODY = 256 * 1024


def client(target: str = "manual_sync"):
    return create_app(target, str(ROOT / "main.py"), "http").test_client()


def bearer(api, email: str = ALICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token(email)}"}


def no_500(answer) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.get_data()[:400])


# --- 1. corrupt documents are read as absent, never a 500 -----------------------------

DEFAULTS = {"contacts": {"auto": False, "intervalMinutes": 60, "tagId": None},
            "activities": {"auto": False, "intervalMinutes": 60, "syncFrom": None}}  # fmt: skip
GOOD = {"contacts": {"auto": True, "intervalMinutes": 30, "tagId": seed.ALICE_TAG},
        "activities": {"auto": False, "intervalMinutes": 60, "syncFrom": None}}  # fmt: skip
UNREADABLE = {
    "contacts is text": {"contacts": "bad"},
    "activities is a list": {"activities": [1]},
    "an interval that is text": {"contacts": {"auto": True, "intervalMinutes": "often"}},
    "a tag id that is a number": {"contacts": {"tagId": 12, "auto": "x"}},
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_settings_answer_status_200_as_defaults_with_a_hint_and_are_saved_over(
    api, case
):
    stored = api.store.get(SYNC_SETTINGS, seed.ALICE) or {}
    api.store.put(SYNC_SETTINGS, seed.ALICE, {**stored, **UNREADABLE[case]})
    (section,) = UNREADABLE[case]
    answer = api("GET", "/status")
    assert answer.status_code == 200, answer.get_data()[:400]
    data = answer.get_json()
    assert data["settings"][section] == DEFAULTS[section]  # what the page fills its form with
    ready = data["sections"][section]["ready"]
    assert (ready["ok"], ready["reason"]) == (False, "bad_settings"), ready
    assert "could not be read" in ready["hint"] and "save" in ready["hint"]
    saved = api("PUT", "/settings", body=GOOD)  # the page's Save: valid settings over them
    assert saved.status_code == 200, saved.get_json()
    after = api("GET", "/status").get_json()
    assert after["settings"] == GOOD
    assert all(after["sections"][s]["ready"]["ok"] for s in ("contacts", "activities")), after


def put_state(api, section: str = "contacts", **fields) -> None:
    key = f"{seed.ALICE}:{section}"
    api.store.put(SYNC_STATE, key, {**(api.store.get(SYNC_STATE, key) or {}), **fields})


NOW = "2026-01-15T10:00:00.000000Z"
SWITCH = {"from": "a@example.com", "to": "b@example.com"}
CORRUPT_STATE = {  # what is stored -> what the section's status shows of it
    "an account switch that is text": ({"accountSwitch": "x"}, {"accountSwitch": None}),
    "an account switch that is a list": ({"accountSwitch": ["x"]}, {"accountSwitch": None}),
    "an account switch whose time is a number": ({"accountSwitch": {**SWITCH, "at": 5}},
                                                 {"accountSwitch": None}),
    "an account switch without its accounts": ({"accountSwitch": {"at": NOW}},
                                               {"accountSwitch": None}),
    "a last run time that is a number": ({"lastRunAt": 5, "lastCheckedAt": NOW},
                                         {"lastRunAt": None, "lastCheckedAt": NOW}),
    "a schedule slot that is text": ({"slot": "x", "nextDueAt": None}, {"nextDueAt": None}),
    "a schedule slot of every 0 minutes": ({"slot": "0:5", "nextDueAt": None},
                                           {"nextDueAt": None}),
    "a last result that is text": ({"lastResult": "x"}, {"lastResult": None}),
    "an empty-run count that is text": ({"emptyRuns": "x"}, {"emptyRuns": None}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CORRUPT_STATE))
def test_a_corrupt_sync_state_answers_status_200_and_shows_nothing_of_it(api, case):
    stored, shown = CORRUPT_STATE[case]
    put_state(api, **stored)
    answer = api("GET", "/status")
    assert answer.status_code == 200, answer.get_data()[:400]
    data = answer.get_json()
    assert data["account"]["switched"] is None
    section = data["sections"]["contacts"]
    assert {k: section[k] for k in shown} == shown


def test_a_good_account_switch_is_still_shown_so_the_refusals_mean_something(api):
    put_state(api, accountSwitch={**SWITCH, "at": NOW, "restored": 2})
    data = api("GET", "/status").get_json()
    assert data["account"]["switched"] == {**SWITCH, "at": NOW, "restored": 2}


def alices_run(api) -> str:
    ran = api("POST", "/sync", body={"section": "contacts"}).get_json()
    (run,) = ran["runs"]
    assert run["outcome"] == "done", ran
    return run["runId"]


CORRUPT_RUN = {
    "a journal page count that is text": {"itemPages": "x"},
    "counts that are a list": {"counts": [1, 2]},
    "a count that is text": {"counts": {"pushed": "many"}},
    "errors that are a number": {"errors": 3},
    "errors that are text": {"errors": "abc"},
    "a running run whose start is a number": {"outcome": "running", "startedAt": 5,
                                              "updatedAt": "x"},
    "a queued run whose queue time is a list": {"outcome": "queued", "queuedAt": [1]},
    "an end that is not a time": {"finishedAt": "yesterday"},
}  # fmt: skip


@pytest.mark.parametrize("case", list(CORRUPT_RUN))
def test_a_corrupt_run_record_never_stops_the_history_its_details_or_its_undo(api, case):
    run = alices_run(api)
    api.store.put(SYNC_RUNS, run, {**api.store.get(SYNC_RUNS, run), **CORRUPT_RUN[case]})
    runs = api("GET", "/runs")
    assert runs.status_code == 200, runs.get_data()[:400]
    (row,) = [r for r in runs.get_json()["runs"] if r["id"] == run]
    assert isinstance(row["counts"], dict) and isinstance(row["errors"], int)
    assert all(isinstance(v, int) for v in row["counts"].values())
    detail = api("GET", f"/runs/{run}")
    assert detail.status_code == 200, detail.get_data()[:400]
    assert isinstance(detail.get_json()["errors"], list)
    undo = api("POST", f"/runs/{run}/undo", body={"dryRun": True})
    no_500(undo)
    assert undo.status_code in (200, 409), undo.get_json()


def test_a_run_whose_journal_count_is_corrupt_is_refused_undo_409_and_nothing_changes(api):
    run = alices_run(api)
    api.store.put(SYNC_RUNS, run, {**api.store.get(SYNC_RUNS, run), "itemPages": "x"})
    before = snapshot(api.store)
    for dry in (True, False):
        undo = api("POST", f"/runs/{run}/undo", body={"dryRun": dry})
        assert undo.status_code == 409, undo.get_data()[:400]
        assert undo.get_json()["reason"] == "undo_refused"
    assert snapshot(api.store) == before


def push(headers: dict[str, str]):
    base = {"X-Goog-Channel-Token": "t0ken", "X-Goog-Resource-State": "exists"}
    return client("calendar_push").post("/", headers={**base, **headers})


CORRUPT_CHANNELS = {
    "no token hash": {"userId": seed.ALICE},
    "a token hash that is a number": {"userId": seed.ALICE, "tokenHash": 5},
    "a token hash that is not ascii": {"userId": seed.ALICE, "tokenHash": "é" * 64},
    "no user": {"tokenHash": token_hash("t0ken")},
    "a user that is a list": {"userId": [seed.ALICE], "tokenHash": token_hash("t0ken")},
    "text, not an object's fields": {"tokenHash": None, "userId": None},
}


@pytest.mark.parametrize("case", list(CORRUPT_CHANNELS))
def test_a_corrupt_push_channel_is_refused_like_an_unknown_one_and_queues_nothing(cloud_env, case):
    store = cloud_env
    store.put(CHANNELS, "ch-corrupt", CORRUPT_CHANNELS[case])
    before = snapshot(store)
    answer = push({"X-Goog-Channel-ID": "ch-corrupt"})
    assert answer.status_code in (403, 404), (answer.status_code, answer.get_data()[:400])
    assert snapshot(store) == before


def test_a_good_push_channel_still_queues_so_the_refusals_mean_something(cloud_env):
    cloud_env.put(CHANNELS, "ch-good", {"userId": seed.ALICE, "tokenHash": token_hash("t0ken")})
    answer = push({"X-Goog-Channel-ID": "ch-good"})
    assert answer.status_code == 200 and answer.get_json()["queued"] is True, answer.get_json()


@pytest.mark.parametrize("version", ["abc", [1], {"n": 1}, -3, True], ids=repr)
def test_a_corrupt_sign_out_count_never_breaks_sign_in_or_sign_out(api, version):
    api.store.put(SESSIONS, seed.ALICE, {"version": version})
    browser = signed_in()  # the sign-in replaces the corrupt count
    status = browser.get("/status")
    assert status.status_code == 200, status.get_data()[:300]
    copy = client()
    copy.set_cookie("crmsync_session", browser.get_cookie("crmsync_session").value)
    assert copy.get("/status").status_code == 200
    out = browser.post("/signout", data={"csrf": status.get_json()["csrf"]})
    assert out.status_code == 302, out.get_data()[:300]
    assert copy.get("/status").status_code == 401  # the session died with the sign-out
    stored = api.store.get(SESSIONS, seed.ALICE)["version"]
    assert type(stored) is int and stored >= 0
    assert signed_in().get("/status").status_code == 200  # and one can sign in again


def test_a_sign_out_count_corrupted_during_a_session_ends_it(api):
    browser = signed_in()
    csrf = browser.get("/status").get_json()["csrf"]
    api.store.put(SESSIONS, seed.ALICE, {"version": "abc"})
    assert browser.get("/status").status_code == 401  # no session counts at such a count
    assert browser.post("/signout", data={"csrf": csrf}).status_code == 302
    assert signed_in().get("/status").status_code == 200


# --- 2. JSON nested too deep is a 400, never a RecursionError's 500 -------------------

DEEP = {
    "a list in contacts": b'{"contacts":' + b"[" * 50000 + b"]" * 50000 + b"}",
    "objects in activities": b'{"activities":' + b'{"a":' * 40000 + b"1" + b"}" * 40001,
    "a list as the sync-from date": b'{"activities":{"syncFrom":' + b"[" * 50000
    + b"]" * 50000 + b"}}",
    "a bare list": b"[" * 100000 + b"]" * 100000,
}  # fmt: skip


@pytest.mark.parametrize("case", list(DEEP))
def test_settings_nested_too_deep_are_refused_400_and_change_nothing(api, case):
    assert len(DEEP[case]) <= MAX_BODY
    before = snapshot(api.store)
    answer = client().put("/settings", data=DEEP[case], headers=bearer(api))
    assert answer.status_code == 400, (answer.status_code, answer.get_data()[:300])
    assert snapshot(api.store) == before


@pytest.mark.parametrize("path", ["/sync", "/preview", "/runs/r-1/undo"])
def test_deep_json_for_the_other_writes_is_400_too(api, path):
    answer = client().post(path, data=DEEP["a bare list"], headers=bearer(api))
    assert answer.status_code == 400, (answer.status_code, answer.get_data()[:300])


# --- 3. the caller first, then the body, and never past 256 KiB -----------------------

BODY_ROUTES = {
    "POST /sync": ("POST", "/sync"),
    "POST /preview": ("POST", "/preview"),
    "POST /runs/<id>/undo": ("POST", "/runs/r-1/undo"),
    "PUT /settings": ("PUT", "/settings"),
}
MALFORMED = json.dumps({"section": 5, "dryRun": "maybe", "contacts": 1, "bogus": True})


@pytest.mark.parametrize("route", list(BODY_ROUTES))
def test_an_unsigned_in_caller_gets_401_and_never_a_word_about_the_body(api, route):
    method, path = BODY_ROUTES[route]
    before = snapshot(api.store)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        answer = client().open(path, method=method, data=MALFORMED, headers=headers)
        assert answer.status_code == 401, (answer.status_code, answer.get_json())
        text = answer.get_data(as_text=True)
        assert "validation" not in text and "section" not in text and "pydantic" not in text
    assert snapshot(api.store) == before


@pytest.mark.parametrize("route", list(BODY_ROUTES))
def test_a_session_write_without_csrf_gets_403_before_its_body_is_read(api, route):
    method, path = BODY_ROUTES[route]
    answer = signed_in().open(path, method=method, data=MALFORMED)
    assert answer.status_code == 403 and "CSRF" in answer.get_json()["error"], answer.get_json()


def test_a_userid_in_the_body_is_still_checked_after_the_caller_is_known(api):
    for path in ("/sync", "/preview"):
        body = {"section": "contacts", "userId": seed.BOB}
        assert api("POST", path, body=body).status_code == 403
        body = {"section": "contacts", "userId": seed.ALICE}
        assert api("POST", path, body=body).status_code == 200


class Counted(io.BytesIO):
    """A request body that counts what the server read of it."""

    taken = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk

    def readinto(self, buffer):
        n = super().readinto(buffer)
        self.taken += n
        return n


@pytest.mark.parametrize("signed", [True, False], ids=["signed in", "not signed in"])
@pytest.mark.parametrize("route", list(BODY_ROUTES))
def test_a_body_over_256_kib_is_refused_413_unread_and_changes_nothing(api, route, signed):
    method, path = BODY_ROUTES[route]
    headers = bearer(api) if signed else {}
    before = snapshot(api.store)
    body = Counted(json.dumps({"section": "x" * (4 * 1024 * 1024)}).encode())
    answer = client().open(path, method=method, input_stream=body, headers=headers)
    assert answer.status_code == 413, (answer.status_code, answer.get_data()[:300])
    assert "larger than" in answer.get_json()["error"]
    assert body.taken == 0  # refused on its Content-Length: not a byte read
    assert snapshot(api.store) == before


@pytest.mark.parametrize("route", list(BODY_ROUTES))
def test_a_body_without_a_length_is_cut_off_at_256_kib_and_refused_413(api, route):
    """Chunked: no Content-Length to check first; the read stops past the cap."""
    method, path = BODY_ROUTES[route]
    body = Counted(b'{"pad": "' + b"x" * (8 * 1024 * 1024) + b'"}')
    environ = EnvironBuilder(path=path, method=method, input_stream=body,
                             headers=bearer(api)).get_environ()  # fmt: skip
    del environ["CONTENT_LENGTH"]
    environ.update({"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    before = snapshot(api.store)
    app = create_app("manual_sync", str(ROOT / "main.py"), "http")
    chunks, status, _ = run_wsgi_app(app, environ, buffered=True)  # as the server hands it
    assert status.startswith("413"), (status, b"".join(chunks)[:300])
    assert body.taken <= 2 * MAX_BODY, body.taken  # never the whole 8 MiB
    assert snapshot(api.store) == before


# --- 4. cookies are Secure whenever deployed ------------------------------------------


def set_cookie(answer, name: str) -> str:
    found = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    assert found, (name, answer.headers.getlist("Set-Cookie"))
    return found[-1]


def secure(cookie: str) -> bool:
    return "secure" in [part.strip().lower() for part in cookie.split(";")]


def sign_in(browser, email: str = ALICE):
    """(the /signin answer, the callback's answer), through the sandbox's Google."""
    start = browser.get("/signin", query_string={"email": email})
    consent = Request().session.get(start.headers["Location"], allow_redirects=False)
    args = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["Location"]).query).items()}
    return start, browser.get("/signin/callback", query_string=args)


def cookies_of_the_page_flow(api) -> dict[str, str]:
    """Each cookie as set over plain http (as Cloud Run's request says): sign-in state,
    session, its removal at sign-out, and the connection flow's state."""
    browser = client()
    start, back = sign_in(browser)
    assert back.status_code == 302 and "signin_error" not in back.headers["Location"], back
    found = {"signin": set_cookie(start, "crmsync_signin"),
             "signin removed": set_cookie(back, "crmsync_signin"),
             "session": set_cookie(back, "crmsync_session")}  # fmt: skip
    connect = browser.get("/oauth_start")
    assert connect.status_code == 200, connect.get_json()
    found["connection state"] = set_cookie(connect, "crmsync_oauth")
    csrf = browser.get("/status").get_json()["csrf"]
    found["session removed"] = set_cookie(browser.post("/signout", data={"csrf": csrf}),
                                          "crmsync_session")  # fmt: skip
    direct = client("oauth_start").get("/", headers=bearer(api))  # the function's own host
    assert direct.status_code == 200, direct.get_json()
    found["connection state (oauth_start)"] = set_cookie(direct, "crmsync_oauth")
    return found


def test_cookies_are_secure_when_the_page_is_served_over_https(api, monkeypatch):
    monkeypatch.setenv("CRMSYNC_PAGE_URL", "https://crm.example.test/manual_sync")
    for name, cookie in cookies_of_the_page_flow(api).items():
        assert secure(cookie), (name, cookie)
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower(), cookie


def test_cookies_are_secure_when_deployed_though_the_request_says_http(api, monkeypatch):
    monkeypatch.setenv("K_SERVICE", "manual-sync")  # Cloud Run: TLS ends before the function
    monkeypatch.setenv("CRMSYNC_SESSION_KEY", "k" * 32)
    monkeypatch.setenv("CRMSYNC_PAGE_URL", "http://localhost/manual_sync")
    monkeypatch.setenv("CRMSYNC_OAUTH_START_URL", "http://localhost/manual_sync/oauth_start")
    monkeypatch.setenv("CRMSYNC_OAUTH_REDIRECT_URI", "http://localhost/oauth_callback")
    for name, cookie in cookies_of_the_page_flow(api).items():
        assert secure(cookie), (name, cookie)


def test_cookies_are_not_secure_over_local_http_so_serve_keeps_working(api):
    for name, cookie in cookies_of_the_page_flow(api).items():
        assert not secure(cookie), (name, cookie)


# --- 5. security headers ---------------------------------------------------------------


def directives(answer) -> dict[str, list[str]]:
    policy = answer.headers.get("Content-Security-Policy", "")
    parts = [p.split() for p in policy.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


def hardened(answer, *, cached: bool = False) -> None:
    assert "'none'" in directives(answer).get("frame-ancestors", []), answer.headers
    assert answer.headers.get("X-Frame-Options") == "DENY"
    assert answer.headers.get("X-Content-Type-Options") == "nosniff"
    if not cached:
        assert "no-store" in answer.headers.get("Cache-Control", ""), answer.headers


def inline(tag: str) -> list[str]:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", PAGE, re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'"
            for b in blocks]  # fmt: skip


def test_the_page_runs_only_its_own_inline_script_and_style_and_is_never_framed(api):
    answer = client().get("/")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    hardened(answer)
    policy = directives(answer)
    assert policy["default-src"] == ["'none'"]
    assert inline("script") and sorted(policy["script-src"]) == sorted(inline("script"))
    assert inline("style") and sorted(policy["style-src"]) == sorted(inline("style"))
    assert "'unsafe-inline'" not in answer.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in answer.headers["Content-Security-Policy"]
    assert policy["connect-src"] == ["'self'"]
    # the hashes cover no inline attribute: the page must hold none
    assert not re.search(r"<[^>]+\s(style|on[a-z]+)\s*=", PAGE, re.IGNORECASE)


def test_every_json_answer_of_manual_sync_carries_the_security_headers(api):
    answers = {
        "status 200": client().get("/status", headers=bearer(api)),
        "status 401": client().get("/status"),
        "runs 200": client().get("/runs", headers=bearer(api)),
        "unknown route 404": client().get("/nowhere", headers=bearer(api)),
        "bad body 400": client().post("/sync", data="{", headers=bearer(api)),
        "not a user 403": client().get("/status", headers=bearer(api, "mallory@example.com")),
        "too large 413": client().post("/sync", data=b"x" * (MAX_BODY + 1)),
        "openapi 200": client().get("/openapi.json"),
    }
    for name, answer in answers.items():
        assert answer.is_json, (name, answer.status_code)
        assert directives(answer).get("default-src") == ["'none'"], name
        hardened(answer)


def test_the_connection_functions_answers_carry_them_too(api):
    hardened(client("oauth_start").get("/", headers=bearer(api)))
    hardened(client("oauth_start").get("/"))  # 401
    hardened(client("oauth_callback").get("/", query_string={"state": "x"}))  # 400


# --- the page in Chromium: its policy lets it run; unreadable settings are saved over --


def test_the_page_runs_under_its_policy_and_saves_over_unreadable_settings(site, cloud_env):
    """Chromium as the attack table runs it (a thread of its own: the e2e tests' session
    browser holds the main thread)."""
    in_own_chromium(_unreadable_settings_saved_over, site, cloud_env)


WATCH = """window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"""


def _unreadable_settings_saved_over(page, site: str, store) -> None:
    from playwright.sync_api import expect

    settings = store.get(SYNC_SETTINGS, seed.ALICE) or {}
    store.put(SYNC_SETTINGS, seed.ALICE, {**settings, "contacts": "bad"})
    page.add_init_script(WATCH)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)
    answer = page.goto(f"{site}/manual_sync")  # the bare URL: the inline script sets a base
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    page.get_by_label("Your Google email").fill(ALICE)
    page.get_by_role("button", name="Sign in with Google").click()
    expect(page.locator("#who")).to_be_visible()  # the app, not a blank page
    expect(page.locator("#why-contacts")).to_contain_text("could not be read")
    expect(page.locator("[data-sync=contacts]")).to_be_disabled()
    expect(page.locator("#contacts-interval")).to_have_value("60")  # the defaults shown
    page.locator("#contacts-tag").select_option(seed.ALICE_TAG)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#saved")).to_have_text("Saved.")
    expect(page.locator("#why-contacts")).to_have_text("")
    expect(page.locator("[data-sync=contacts]")).to_be_enabled()
    saved = store.get(SYNC_SETTINGS, seed.ALICE)["contacts"]
    assert saved["tagId"] == seed.ALICE_TAG and saved["intervalMinutes"] == 60, saved
    page.locator("[data-sync=contacts]").click()  # the page's scripts and calls run on
    expect(page.locator("#progress")).to_contain_text("Done")
    assert page.evaluate("window.__csp") == [] and not errors, (page.evaluate("window.__csp"),
                                                                  errors)  # fmt: skip
