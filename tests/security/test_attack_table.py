# ruff: noqa: F811  (the tests take the imported fixtures by name)
"""The attack table of issue 14, in one place: each row a test named after the
behaviour that holds. The webhook, the API's ID tokens, one user reaching for
another's runs, writes without the CSRF token, and text the settings page shows.
Many rows restate, compactly, checks made elsewhere (tests/integration/test_webhook.py,
test_manual_sync.py, tests/security/test_sessions.py, tests/e2e/): here is the whole
table."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from functions_framework import create_app

from core.model import (
    GOOGLE_ACCOUNTS,
    LINKS,
    SYNC_RUN_ITEMS,
    SYNC_RUNS,
    SYNC_SETTINGS,
    SYNC_STATE,
    USERS,
    stamp,
)
from functions import seed
from tests.e2e.conftest import FLAGS, chromium_path, site  # noqa: F401  (site: a fixture)
from tests.integration.test_manual_sync import api  # noqa: F401  (a fixture)
from tests.integration.test_scheduler import ROOT
from tests.integration.test_webhook import SECRET, event, hook  # noqa: F401
from tests.security.test_sessions import signed_in

# what an attack must leave as it was: runs and their journals, replay records, sync
# state, pairs, settings, connections
KEPT = (SYNC_RUNS, SYNC_RUN_ITEMS, "webhookEvents", SYNC_STATE, LINKS, SYNC_SETTINGS,
        GOOGLE_ACCOUNTS)  # fmt: skip


def snapshot(store) -> dict[str, dict[str, dict]]:
    return {c: {d.id: d.data for d in store.query(c)} for c in KEPT}


# --- the CRM webhook (crm_webhook) ------------------------------------------------


def webhook_client():
    return create_app("crm_webhook", str(ROOT / "main.py"), "http").test_client()


def signature(data: bytes, stamp_: str, secret: str = SECRET) -> str:
    mac = hmac.new(secret.encode(), stamp_.encode() + b"." + data, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def delivery(body=None, *, raw: bytes | None = None, skew: int = 0) -> tuple[bytes, dict]:
    """A delivery as the CRM signs it: (body, headers)."""
    data = raw if raw is not None else json.dumps(body).encode()
    when = str(int(time.time()) + skew)
    return data, {"X-Crmsync-Timestamp": when, "X-Crmsync-Signature": signature(data, when),
                  "Content-Type": "application/json"}  # fmt: skip


def refused(answer, status: int, says: str) -> None:
    assert answer.status_code == status, (answer.status_code, answer.get_data()[:300])
    assert says in answer.get_json()["error"], answer.get_json()


def test_a_correctly_signed_fresh_delivery_is_accepted_so_the_refusals_below_mean_something(hook):
    data, headers = delivery({"events": [event()]})
    answer = webhook_client().post("/", data=data, headers=headers)
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["queued"] == [{"userId": seed.ALICE, "section": "contacts"}]


UNSIGNED = {
    "no signature header": ("X-Crmsync-Signature",),
    "no timestamp header": ("X-Crmsync-Timestamp",),
    "no headers at all": ("X-Crmsync-Signature", "X-Crmsync-Timestamp"),
}


@pytest.mark.parametrize("case", list(UNSIGNED))
def test_an_unsigned_webhook_is_refused_401_and_writes_nothing(hook, case):
    data, headers = delivery({"events": [event()]})
    headers = {k: v for k, v in headers.items() if k not in UNSIGNED[case]}
    before = snapshot(hook.store)
    answer = webhook_client().post("/", data=data, headers=headers)
    refused(answer, 401, "X-Crmsync-")
    assert snapshot(hook.store) == before
    empty = hook({"events": [event()]}, signature="")  # the header, empty
    refused(empty, 401, "bad X-Crmsync-Signature")
    assert snapshot(hook.store) == before


def _tampered(data, headers):
    return data.replace(b"c-ada", b"c-grace"), headers  # signed for another body


def _restamped(data, headers):  # a captured delivery re-sent with a fresh timestamp
    return data, {**headers, "X-Crmsync-Timestamp": str(int(time.time()) + 1)}


WRONG_SIGNATURES = {
    "zeros": lambda data, headers: (data, {**headers, "X-Crmsync-Signature": "sha256=" + "0" * 64}),
    "another secret": lambda data, headers: (data, {
        **headers,
        "X-Crmsync-Signature": signature(data, headers["X-Crmsync-Timestamp"], "not-the-secret"),
    }),
    "the body changed after signing": _tampered,
    "the timestamp changed after signing": _restamped,
    "a truncated signature": lambda data, headers: (data, {
        **headers, "X-Crmsync-Signature": headers["X-Crmsync-Signature"][:-8]}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(WRONG_SIGNATURES))
def test_a_wrong_webhook_signature_is_refused_401_and_writes_nothing(hook, case):
    data, headers = WRONG_SIGNATURES[case](*delivery({"events": [event()]}))
    before = snapshot(hook.store)
    refused(webhook_client().post("/", data=data, headers=headers), 401, "bad X-Crmsync-Signature")
    assert snapshot(hook.store) == before


def test_a_replayed_delivery_is_answered_replayed_and_queues_nothing_twice(hook):
    data, headers = delivery({"events": [event("e-replay")]})
    client = webhook_client()
    first = client.post("/", data=data, headers=headers)
    assert first.status_code == 202 and first.get_json()["queued"], first.get_json()
    runs = [d.id for d in hook.store.query(SYNC_RUNS)]
    assert len(runs) == 1
    before = snapshot(hook.store)
    again = client.post("/", data=data, headers=headers)  # the very same bytes, in the window
    assert again.status_code == 202
    assert again.get_json() == {"queued": [], "coalesced": 0, "replayed": ["e-replay"]}
    other = hook({"events": [event("e-replay", record="c-grace")]})  # same id, new delivery
    assert other.get_json()["replayed"] == ["e-replay"] and other.get_json()["queued"] == []
    assert snapshot(hook.store) == before  # no second run, nothing recorded again


@pytest.mark.parametrize("skew", [-301, -3600, 301, 86400], ids=lambda s: f"{s:+d}s")
def test_a_webhook_timestamp_outside_five_minutes_is_refused_401_and_writes_nothing(hook, skew):
    data, headers = delivery({"events": [event()]}, skew=skew)  # correctly signed
    before = snapshot(hook.store)
    refused(webhook_client().post("/", data=data, headers=headers), 401, "5 minutes")
    assert snapshot(hook.store) == before


# str.isdigit() takes U+00B2 (latin-1, so a header can carry it), and int() of 400 nines
# is too large for a float, of 5000 more than int() reads: each was a 500 until verify()
# took ASCII digits of a sane length only
ODD_STAMPS = {
    "words": "yesterday",
    "negative": "-5",
    "exponent": "1e9",
    "spaced": " 123",
    "a superscript digit": "\u00b2",
    "far future, too large for a float": "9" * 400,
    "longer than int() reads": "9" * 5000,
}  # fmt: skip


@pytest.mark.parametrize("stamp_", list(ODD_STAMPS.values()), ids=list(ODD_STAMPS))
def test_a_webhook_timestamp_that_is_no_plain_unix_time_is_refused_401_and_writes_nothing(
    hook, stamp_
):  # signed over that very stamp: only the stamp is wrong
    data = json.dumps({"events": [event()]}).encode()
    headers = {"X-Crmsync-Timestamp": stamp_, "X-Crmsync-Signature": signature(data, stamp_),
               "Content-Type": "application/json"}  # fmt: skip
    before = snapshot(hook.store)
    answer = webhook_client().post("/", data=data, headers=headers)
    assert answer.status_code == 401, answer.get_json()
    assert "X-Crmsync-Timestamp" in answer.get_json()["error"]
    assert snapshot(hook.store) == before


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_an_oversized_webhook_body_is_refused_413_and_writes_nothing(hook, signed):
    big = json.dumps({"events": [event()], "pad": "x" * (256 * 1024)}).encode()
    data, headers = delivery(raw=big)
    if not signed:
        headers = {"Content-Type": "application/json"}
    before = snapshot(hook.store)
    refused(webhook_client().post("/", data=data, headers=headers), 413, "larger than")
    assert snapshot(hook.store) == before


MALFORMED = {
    "not json": b"{not json",
    "truncated json": json.dumps({"events": [event()]}).encode()[:-3],
    "empty body": b"",
    "not utf-8": b"\xff\xfe{}",
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_json_webhook_is_refused_400_and_writes_nothing(hook, case):
    before = snapshot(hook.store)
    refused(hook(None, raw=MALFORMED[case]), 400, "invalid payload")
    assert snapshot(hook.store) == before


WRONG_CONTENT = {
    "a list": [event()],
    "a string": "events",
    "no events": {"events": []},
    "events not a list": {"events": event()},
    "an unknown entity": {"events": [event(entity="invoice")]},
    "an unknown change": {"events": [event(change="merged")]},
    "a missing record id": {"events": [{k: v for k, v in event().items() if k != "recordId"}]},
    "a numeric event id": {"events": [event(event_id=123)]},
    "an unknown field": {"events": [event()], "extra": 1},
    "an unknown user": {"events": [event(userIds=["u-nobody"])]},
    "one bad event among good ones": {"events": [event("good"), event("bad", entity="x")]},
}


@pytest.mark.parametrize("case", list(WRONG_CONTENT))
def test_a_webhook_of_the_wrong_content_is_refused_400_and_writes_nothing(hook, case):
    before = snapshot(hook.store)
    answer = hook(WRONG_CONTENT[case])
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"]
    assert snapshot(hook.store) == before


def test_a_webhook_by_another_method_or_without_a_secret_is_refused(hook, monkeypatch):
    before = snapshot(hook.store)
    assert webhook_client().get("/").status_code == 405
    monkeypatch.delenv("CRMSYNC_WEBHOOK_SECRET")
    data, headers = delivery({"events": [event()]})  # signed with what was the secret
    refused(webhook_client().post("/", data=data, headers=headers), 503, "not enabled")
    assert snapshot(hook.store) == before


# --- the API's bearer ID tokens (manual_sync) ---------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict, dict]:
    head, body, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(head))),
            json.loads(base64.urlsafe_b64decode(pad(body))))  # fmt: skip


@functools.cache
def _stranger_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


def _resigned(header: dict, claims: dict) -> str:
    from google.auth import crypt, jwt

    signer = crypt.RSASigner.from_string(_stranger_key(), key_id=header.get("kid"))
    return jwt.encode(signer, claims, header={"kid": header.get("kid")}).decode()


def _unsigned(header: dict, claims: dict) -> str:
    head = {**header, "alg": "none"}
    return f"{_b64(json.dumps(head).encode())}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_the_public_cert(sandbox, header: dict, claims: dict) -> str:
    certs = sandbox.control("GET", "/oauth2/v1/certs")
    public = (certs.get(header.get("kid")) or next(iter(certs.values()))).encode()
    signing = (f"{_b64(json.dumps({**header, 'alg': 'HS256'}).encode())}."
               f"{_b64(json.dumps(claims).encode())}")  # fmt: skip
    mac = hmac.new(public, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(mac)}"


def forged_token(api, sandbox, case: str) -> str:
    real = api.token("alice@example.com")
    header, claims = _parts(real)
    if case == "payload changed after signing":  # Mallory's token, claiming to be Alice
        head, _, sig = api.token("mallory@example.com").split(".")
        return f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
    if case == "signed by another key":
        return _resigned(header, claims)
    if case == "alg none":
        return _unsigned(header, claims)
    if case == "HS256 keyed with the public certificate":
        return _hs256_with_the_public_cert(sandbox, header, claims)
    if case == "a foreign issuer":
        return _resigned(header, {**claims, "iss": "https://issuer.example"})
    if case == "expired":
        return api.token("alice@example.com", ttlSeconds=-600)
    if case == "another audience":
        body = {"email": "alice@example.com", "audience": "someone-else"}
        return sandbox.control("POST", "/_sandbox/idtoken", body)["idToken"]
    raise AssertionError(case)


BAD_TOKENS = {  # the case: what the refusal says
    "payload changed after signing": "Could not verify token signature",
    "signed by another key": "Could not verify token signature",
    "alg none": "Unsupported signature algorithm",
    "HS256 keyed with the public certificate": "Unsupported signature algorithm",
    "a foreign issuer": "are not accepted here",
    "expired": "Token expired",
    "another audience": "wrong audience",
}
API_CALLS = [
    ("GET", "/status", None),
    ("GET", "/runs", None),
    ("POST", "/sync", {"section": "contacts"}),
    ("PUT", "/settings", {"contacts": {"auto": True, "intervalMinutes": 5}}),
]


def no_data(answer) -> None:
    data = answer.get_json()
    assert set(data) <= {"error", "hint", "fields"}, data
    assert seed.ALICE not in answer.get_data(as_text=True)


def test_alices_own_token_is_accepted_so_the_refusals_below_mean_something(api):
    answer = api("GET", "/status", bearer=f"Bearer {api.token('alice@example.com')}")
    assert answer.status_code == 200 and answer.get_json()["userId"] == seed.ALICE


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_forged_expired_or_misaddressed_id_token_is_401_and_never_data(api, sandbox, case):
    token = forged_token(api, sandbox, case)
    before = snapshot(api.store)
    for method, path, body in API_CALLS:
        answer = api(method, path, body=body, bearer=f"Bearer {token}")
        assert answer.status_code == 401, (case, path, answer.get_json())
        assert BAD_TOKENS[case] in answer.get_json()["error"], answer.get_json()
        no_data(answer)
    assert snapshot(api.store) == before


def test_a_valid_token_of_an_email_that_is_no_crm_user_is_403_and_never_data(api):
    before = snapshot(api.store)
    for method, path, body in API_CALLS:
        answer = api(method, path, email="mallory@example.com", body=body)
        assert answer.status_code == 403, (path, answer.get_json())
        assert "not a CRM user" in answer.get_json()["error"]
        no_data(answer)
    assert snapshot(api.store) == before


# --- one user reaching for another's (Alice's token, Bob's things) -------------------


@pytest.fixture
def bobs_run(api, make_account):
    """Bob connected, and one contacts run of his (Barbara Liskov pushed)."""
    from functions import bootstrap
    from functions.accounts import connect

    bob = make_account("bob@example.com")
    connect(bootstrap.Config.from_env(), seed.BOB, bob.refresh_token)
    ran = api("POST", "/sync", email="bob@example.com", body={"section": "contacts"}).get_json()
    (run,) = ran["runs"]
    assert run["outcome"] == "done" and run["counts"]["pushed"] == 1, ran
    return run["runId"]


CROSS_USER = {
    "status of ?userId=bob": ("GET", "/status?userId=u-bob", None, 403),
    "runs of ?userId=bob": ("GET", "/runs?userId=u-bob", None, 403),
    "details of Bob's run": ("GET", "/runs/{run}", None, 404),
    "undo preview of Bob's run": ("POST", "/runs/{run}/undo", {"dryRun": True}, 404),
    "undo of Bob's run": ("POST", "/runs/{run}/undo", {}, 404),
    "sync with userId bob in the body": ("POST", "/sync", {"section": "contacts",
                                                            "userId": "u-bob"}, 403),
    "sync of ?userId=bob": ("POST", "/sync?userId=u-bob", {"section": "contacts"}, 403),
    "preview with userId bob": ("POST", "/preview", {"section": "contacts",
                                                     "userId": "u-bob"}, 403),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CROSS_USER))
def test_alice_never_reaches_bobs_status_runs_undo_or_sync(api, bobs_run, case):
    method, path, body, status = CROSS_USER[case]
    before = snapshot(api.store)
    answer = api(method, path.format(run=bobs_run), body=body)  # as Alice
    assert answer.status_code == status, answer.get_json()
    text = answer.get_data(as_text=True)
    assert "Barbara" not in text and seed.BOB_TAG not in text and "Bob" not in text
    assert set(answer.get_json()) <= {"error", "hint", "fields"}
    assert snapshot(api.store) == before  # Bob's run neither undone nor run again
    assert api.store.get(SYNC_RUNS, bobs_run)["outcome"] == "done"


def test_alices_history_never_lists_bobs_runs_and_her_session_cannot_ask_for_them(api, bobs_run):
    runs = api("GET", "/runs").get_json()["runs"]
    assert bobs_run not in [r["id"] for r in runs]
    browser_ = signed_in()  # Alice's session cookie
    assert browser_.get("/runs").status_code == 200
    assert browser_.get("/status?userId=u-bob").status_code == 403
    assert browser_.get("/runs?userId=u-bob").status_code == 403
    assert browser_.get(f"/runs/{bobs_run}").status_code == 404


# --- CSRF: the page's writes need the session's X-CSRF-Token --------------------------

CHANGED_SETTINGS = {"contacts": {"auto": True, "intervalMinutes": 5, "tagId": seed.ALICE_TAG},
                    "activities": {"auto": True, "intervalMinutes": 5}}  # fmt: skip
WRITES = {
    "PUT /settings": ("PUT", "/settings", CHANGED_SETTINGS),
    "POST /sync": ("POST", "/sync", {"section": "contacts"}),
    "POST /preview": ("POST", "/preview", {"section": "contacts"}),
    "POST /disconnect": ("POST", "/disconnect", None),
    "POST /runs/<id>/undo": ("POST", "/runs/{run}/undo", {}),
}
TOKENS = ["missing", "empty", "wrong", "another session's"]


@pytest.fixture
def alices_page(api):
    """Alice signed in (session cookie) with a run to her name; (browser, CSRF token,
    run id, another session's CSRF token)."""
    ran = api("POST", "/sync", body={"section": "contacts"}).get_json()["runs"][0]["runId"]
    alice, bob = signed_in(), signed_in("bob@example.com")
    csrf = alice.get("/status").get_json()["csrf"]
    other = bob.get("/status").get_json()["csrf"]
    assert csrf and other and csrf != other
    return alice, csrf, ran, other


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("write", list(WRITES))
def test_a_page_write_without_the_right_csrf_token_is_403_and_changes_nothing(
    api, alices_page, write, token
):
    browser_, csrf, run, other = alices_page
    method, path, body = WRITES[write]
    headers = {"Content-Type": "application/json"}
    wrong = csrf[:-1] + ("A" if csrf[-1] != "A" else "B")
    given = {"missing": None, "empty": "", "wrong": wrong, "another session's": other}
    if given[token] is not None:
        headers["X-CSRF-Token"] = given[token]
    before = snapshot(api.store)
    answer = browser_.open(path.format(run=run), method=method, headers=headers,
                           data=json.dumps(body) if body is not None else None)  # fmt: skip
    assert answer.status_code == 403, answer.get_json()
    assert "CSRF" in answer.get_json()["error"]
    assert snapshot(api.store) == before  # settings, runs, connection: as they were


def test_a_page_write_with_the_right_csrf_token_is_done_so_the_refusals_mean_something(
    api, alices_page
):
    browser_, csrf, _, _ = alices_page
    answer = browser_.put("/settings", json=CHANGED_SETTINGS, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.get_json()
    assert api.store.get(SYNC_SETTINGS, seed.ALICE)["contacts"]["intervalMinutes"] == 5


# --- XSS: what the settings page shows is text, never markup (Chromium) ---------------


def xss(name: str, script: bool = False) -> str:
    hit = f"(window.__xss=window.__xss||[]).push('{name}')"
    return f"<script>{hit}</script>" if script else f'<img src=x onerror="{hit}">'


def test_crm_and_run_text_holding_markup_is_shown_as_text_never_run(site, cloud_env):
    """Chromium as the e2e tests find it (``chromium_path``: skipped when missing, failed
    on CI), but not their session ``browser``: Playwright's sync API allows one running
    instance per thread, and theirs holds the main thread for the whole session (either
    one would break the other). So a Chromium of its own, on a thread of its own, closed
    at the end of the test."""
    in_own_chromium(_markup_shown_as_text, site, cloud_env)


def in_own_chromium(scenario, site: str, store) -> None:
    """``scenario(page, site, store)`` in a Chromium of its own, on a thread of its own
    (see above), closed at the end."""
    path = chromium_path()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_in_chromium, path, scenario, site, store).result(timeout=240)


def _in_chromium(path: str, scenario, site: str, store) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=FLAGS)
        try:
            scenario(chromium.new_page(), site, store)
        finally:
            chromium.close()


def _markup_shown_as_text(page, site: str, cloud_env) -> None:
    from playwright.sync_api import expect

    from core.model import ACTIVITIES, CONTACTS, TAGS

    store = cloud_env
    ada = store.get(CONTACTS, "c-ada")
    store.put(CONTACTS, "c-ada", {**ada, "givenName": xss("contact")})
    kickoff = store.get(ACTIVITIES, "a-kickoff")
    store.put(ACTIVITIES, "a-kickoff", {**kickoff, "title": xss("event", script=True)})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{site}/manual_sync/")
    page.get_by_label("Your Google email").fill("alice@example.com")
    page.get_by_role("button", name="Sign in with Google").click()
    expect(page.locator("#who")).to_be_visible()
    for section in ("contacts", "activities"):  # real runs: their journals name the records
        page.locator(f"[data-sync={section}]").click()
        expect(page.locator("#progress")).to_contain_text("Done")
    # then the CRM's and the runs' other text, as the page reads it
    user = store.get(USERS, seed.ALICE)
    store.put(USERS, seed.ALICE, {**user, "displayName": xss("display name")})
    tag = store.get(TAGS, seed.ALICE_TAG)
    store.put(TAGS, seed.ALICE_TAG, {**tag, "name": xss("tag")})
    store.put(TAGS, "t-alice-script", {"name": xss("tag2", script=True), "kind": "private",
                                       "ownerId": seed.ALICE})  # fmt: skip
    account = store.get(GOOGLE_ACCOUNTS, seed.ALICE)
    store.put(GOOGLE_ACCOUNTS, seed.ALICE, {**account, "accountEmail": xss("account email")})
    key = f"{seed.ALICE}:contacts"
    now = datetime.now(UTC)
    switch = {"from": xss("switch from"), "to": xss("switch to", script=True), "at": stamp(now),
              "restored": 0}  # fmt: skip
    store.put(SYNC_STATE, key, {**(store.get(SYNC_STATE, key) or {}), "accountSwitch": switch})
    later = [stamp(now + timedelta(seconds=s)) for s in (5, 6, 7, 8)]
    store.put(SYNC_RUNS, "r-markup-done", {
        "userId": seed.ALICE, "section": "contacts", "trigger": "manual", "startedAt": later[0],
        "finishedAt": later[1], "outcome": "done", "reason": "changes", "ok": True,
        "counts": {"pushed": 1, "errors": 1}, "itemPages": 1, "hint": xss("done hint"),
        "errors": [{"id": xss("error id"), "message": xss("error message", script=True)},
                   {"id": "(run)", "message": xss("run message")}],
    })  # fmt: skip
    store.put(SYNC_RUN_ITEMS, "r-markup-done-0000", {
        "runId": "r-markup-done", "userId": seed.ALICE, "page": 0,
        "items": [{"crmId": "c-x", "name": xss("item name"), "change": "pushed", "side": "google",
                   "fields": {"jobTitle": {"before": xss("before"), "after": xss("after", True)}}}],
    })  # fmt: skip
    store.put(SYNC_RUNS, "r-markup-failed", {
        "userId": seed.ALICE, "section": "activities", "trigger": "manual", "startedAt": later[2],
        "finishedAt": later[3], "outcome": "failed", "reason": "google_unavailable", "ok": False,
        "counts": {}, "hint": xss("failed hint"), "error": xss("failed error"),
        "errors": [{"id": "(run)", "message": xss("failed message", script=True)}],
    })  # fmt: skip
    page.reload()
    expect(page.locator("#who")).to_have_text(xss("display name"))
    options = page.locator("#contacts-tag option")
    expect(options.filter(has_text=xss("tag"))).to_have_count(1)
    expect(options.filter(has_text=xss("tag2", script=True))).to_have_count(1)
    expect(page.locator("#account-status")).to_contain_text(xss("account email"))
    expect(page.locator("#account-switch")).to_contain_text(xss("switch from"))
    expect(page.locator("#account-switch")).to_contain_text(xss("switch to", script=True))
    rows = page.locator("#history tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text(xss("failed hint"))
    details = page.locator("#detail")
    said = {
        0: [xss("failed hint"), xss("failed message", script=True)],
        1: [xss("item name"), xss("before"), xss("after", True), xss("error id"),
            xss("error message", script=True), xss("run message")],
        2: [xss("event", script=True)],  # the real activities run's journal
        3: [xss("contact")],  # the real contacts run's journal: Ada's given name
    }  # fmt: skip
    for n, texts in said.items():
        rows.nth(n).get_by_role("button", name="Details").click()
        for text in texts:
            expect(details).to_contain_text(text)
    page.wait_for_timeout(300)  # an <img src=x> would have failed to load by now
    assert page.evaluate("window.__xss || []") == [] and dialogs == []
    assert page.locator("img, [onerror]").count() == 0  # no element made of the text
    inserted = "[...document.scripts].filter((s) => s.text.includes('__xss')).length"
    assert page.evaluate(inserted) == 0  # only the page's own scripts
