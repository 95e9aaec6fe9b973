"""The smaller rows of the issue 14 table: the SQLite database is private to its
owner, retries spread out, and the local server's access log keeps no OAuth code."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging

import pytest

from adapters.google_calls import Retry, _wait
from adapters.stores import open_store


def test_the_sqlite_database_is_created_readable_by_its_owner_only(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'crm.db'}")
    store.put("users", "u1", {"email": "a@example.com"})
    store.close()
    assert (tmp_path / "crm.db").stat().st_mode & 0o077 == 0


def test_retries_wait_with_jitter_within_the_backoff_step():
    class State:
        attempt_number = 3
        outcome = None

    wait = _wait(Retry(attempts=5, base_seconds=1.0, max_seconds=60.0))
    waits = {round(wait(State()), 6) for _ in range(50)}
    assert len(waits) > 1 and all(2.0 <= w <= 4.0 for w in waits)


def test_the_local_access_log_keeps_no_query_string(caplog):
    from functions.serve import _QuietQuery

    class Fake(_QuietQuery):
        def __init__(self):  # no socket: only the log line is under test
            self.command, self.path = "GET", "/oauth/callback?code=SECRET&state=S"
            self.requestline = f"{self.command} {self.path} HTTP/1.1"
            self.client_address = ("127.0.0.1", 1)

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(handler)
    werkzeug.setLevel(logging.INFO)
    try:
        Fake().log_request(200, 10)
    finally:
        werkzeug.removeHandler(handler)
    line = stream.getvalue()
    assert "/oauth/callback" in line and "SECRET" not in line and "code=" not in line


def test_a_deployed_function_never_builds_its_addresses_from_the_host_header(monkeypatch):
    import pytest

    from core.errors import ConfigError
    from functions import bootstrap, oauth

    monkeypatch.setenv("K_SERVICE", "manual-sync")

    class Request:
        host_url, script_root, url_root = (
            "https://evil.example/",
            "/manual_sync",
            "https://evil.example/",
        )

    with pytest.raises(ConfigError, match="Host header"):
        oauth.links(bootstrap.Config(), Request())
    configured = bootstrap.Config(oauth_start_url="https://a/start", page_url="https://a/page",
                                  oauth_redirect_uri="https://a/oauth_callback")  # fmt: skip
    assert "evil" not in str(oauth.links(configured, Request()))


def test_stored_run_errors_never_hold_a_token_s_text(tmp_path):
    from datetime import UTC, datetime

    from core.runs import Report, RunLog, _close

    log = RunLog()
    log.fail("c-ada", "Google said: Bearer ya29.a0AfH6SMBxSECRET and refresh 1//0gSECRET")
    report = Report("r1", "u1", "contacts", "manual", "2026-12-07T12:00:00Z", False)
    _close(report, log, ValueError("token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"),
                   datetime(2026, 12, 7, 12, 1, tzinfo=UTC))  # fmt: skip
    text = str(report.errors)
    assert "SECRET" not in text and "eyJhbGciOi" not in text and "[redacted]" in text


def test_a_lease_whose_command_line_process_was_killed_is_taken_over_at_once(tmp_path):
    import subprocess
    import sys
    from datetime import UTC, datetime

    import pytest

    from adapters.process import LocalProcess
    from core import lease
    from core.errors import LeaseHeld

    store = open_store(f"sqlite:///{tmp_path / 'crm.db'}")
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone = LocalProcess()
        gone.owner = {**gone.owner, "pid": child.pid}  # the run that will be killed
        lease.acquire(store, "u1:contacts", "run-a", now, process=gone)
        with pytest.raises(LeaseHeld):  # its process lives: the lease holds
            lease.acquire(store, "u1:contacts", "run-b", now, process=LocalProcess())
        child.kill()
        child.wait()
        lease.acquire(store, "u1:contacts", "run-b", now, process=LocalProcess())  # at once
        assert store.get("syncState", "u1:contacts")["lease"]["holder"] == "run-b"
        with pytest.raises(LeaseHeld):  # without a process to check: the lease's length
            lease.acquire(store, "u1:contacts", "run-c", now)
    finally:
        child.kill()
        store.close()


def test_webhook_event_ids_are_forgotten_after_they_can_no_longer_be_retried(tmp_path):
    from datetime import UTC, datetime, timedelta

    from functions import bootstrap
    from functions.http_errors import Rejected
    from functions.jobs import WEBHOOK_EVENTS_KEPT, _forget_webhook_events
    from functions.webhook_logic import EVENTS, record, seen, verify

    store = open_store(f"sqlite:///{tmp_path / 'crm.db'}")
    now = datetime.now(UTC)
    record(store, ["old-1", "old-2"], now - WEBHOOK_EVENTS_KEPT - timedelta(minutes=1))
    record(store, ["recent"], now - WEBHOOK_EVENTS_KEPT + timedelta(minutes=1))
    _forget_webhook_events(bootstrap.Config(), store, now)

    assert seen(store, ["old-1", "old-2", "recent"]) == {"recent"}
    assert [d.id for d in store.query(EVENTS)] == ["recent"]
    store.close()

    # a forgotten id cannot be replayed: its delivery's signed time is long past the skew
    body = b'{"events": []}'
    sent = str(int((now - WEBHOOK_EVENTS_KEPT).timestamp()))
    mac = hmac.new(b"s3cret", sent.encode() + b"." + body, hashlib.sha256).hexdigest()
    with pytest.raises(Rejected) as refused:
        verify("s3cret", sent, f"sha256={mac}", body, now)
    assert refused.value.status == 401
