"""The sandbox's shared machinery: control API, stats, faults, quota, batch framing, auth."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from googleapiclient.errors import HttpError

from adapters import google_api


def raw(sandbox, method, path, body=b"", headers=None):
    request = urllib.request.Request(
        sandbox.url + path, data=body or None, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def me(account):
    return account.people.people().get(resourceName="people/me", personFields="emailAddresses")


def test_control_creates_accounts_and_counts_calls_by_method(account, sandbox):
    assert account.refresh_token and account.access_token
    me(account).execute()
    me(account).execute()
    stats = sandbox.stats()
    assert stats["byMethod"] == {"people.people.get": 2}
    assert stats["total"] == 2 and stats["httpRequests"] == 2
    sandbox.control("DELETE", "/_sandbox/stats")
    assert sandbox.stats()["total"] == 0


def test_reset_forgets_accounts(account, sandbox):
    sandbox.control("POST", "/_sandbox/reset")
    with pytest.raises(Exception, match="invalid_grant"):
        me(account).execute()


@pytest.mark.parametrize(
    "body",
    [{"advanceSeconds": -1}, {"advanceSeconds": "x"}, {}],
)
def test_control_rejects_bad_clock_input(sandbox, body):
    status, _, payload = raw(sandbox, "POST", "/_sandbox/clock", json.dumps(body).encode())
    assert status == 400 and json.loads(payload)["error"]["message"]


def test_control_rejects_bad_fault_input(sandbox):
    for body in ({"status": "x"}, {"count": 1}, {"quotaPerMinute": 0}, {"nothing": 1}):
        status, _, _ = raw(sandbox, "POST", "/_sandbox/faults", json.dumps(body).encode())
        assert status == 400, body


def test_fault_on_one_method_fails_next_count_calls_with_retry_after(account, sandbox):
    sandbox.fault("people.people.get", 503, count=2, retryAfter=7)
    for _ in range(2):
        with pytest.raises(HttpError) as caught:
            me(account).execute()
        assert caught.value.resp.status == 503
        assert caught.value.resp["retry-after"] == "7"
    assert me(account).execute()["emailAddresses"]


def test_wildcard_fault_and_clear(account, sandbox):
    sandbox.fault("*", 500, count=5)
    with pytest.raises(HttpError):
        me(account).execute()
    sandbox.control("DELETE", "/_sandbox/faults")
    assert me(account).execute()


def test_quota_per_minute_then_next_minute(account, sandbox):
    sandbox.control("POST", "/_sandbox/faults", {"quotaPerMinute": 2})
    me(account).execute()
    me(account).execute()
    with pytest.raises(HttpError) as caught:
        me(account).execute()
    assert caught.value.resp.status == 429
    assert json.loads(caught.value.content)["error"]["status"] == "RESOURCE_EXHAUSTED"
    sandbox.advance(60)
    assert me(account).execute()


def test_latency_injection_delays_calls(account, sandbox):
    import time

    sandbox.control("POST", "/_sandbox/faults", {"latencyMs": 150})
    started = time.monotonic()
    me(account).execute()
    assert time.monotonic() - started >= 0.15


def test_no_token_or_bad_token_is_401_with_www_authenticate(sandbox):
    for headers in ({}, {"Authorization": "Bearer nope"}):
        status, got, payload = raw(
            sandbox, "GET", "/v1/people/me?personFields=names", headers=headers
        )
        assert status == 401
        assert "invalid_token" in got["WWW-Authenticate"]
        assert json.loads(payload)["error"]["errors"][0]["reason"] == "authError"


def test_batch_answers_every_part_by_content_id(account, sandbox):
    results = {}
    batch = google_api.new_batch(
        "people", sandbox.url, callback=lambda rid, resp, exc: results.update({rid: (resp, exc)})
    )
    batch.add(me(account), request_id="ok")
    batch.add(
        account.people.people().get(resourceName="people/c404", personFields="names"),
        request_id="missing",
    )
    batch.execute()
    assert results["ok"][0]["emailAddresses"]
    assert results["missing"][1].resp.status == 404
    stats = sandbox.stats()
    assert stats["httpRequests"] == 1 and stats["total"] == 2


def test_batch_over_1000_parts_is_400(account, sandbox):
    boundary = "b0undary"
    part = (
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <x + {{n}}>\r\n\r\n"
        "GET /v1/people/me?personFields=names HTTP/1.1\r\n"
        f"authorization: Bearer {account.access_token}\r\n\r\n"
    )
    body = "".join(part.replace("{n}", str(i)) for i in range(1001)) + f"--{boundary}--\r\n"
    status, _, payload = raw(
        sandbox,
        "POST",
        "/batch",
        body.encode(),
        {"Content-Type": f"multipart/mixed; boundary={boundary}"},
    )
    assert status == 400 and b"1000" in payload
    assert sandbox.stats()["total"] == 0


def test_batch_that_is_not_multipart_is_400(sandbox):
    status, _, _ = raw(sandbox, "POST", "/batch", b"{}", {"Content-Type": "application/json"})
    assert status == 400


def test_unknown_path_is_404_and_wrong_method_is_405(account, sandbox):
    assert raw(sandbox, "GET", "/v9/nothing")[0] == 404
    assert raw(sandbox, "DELETE", "/_sandbox/accounts")[0] == 405
