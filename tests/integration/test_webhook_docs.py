"""README's "For CRM integrators" examples work as written: its Python signing code and
its curl command reach a real ``crm_webhook`` over HTTP and are accepted, and its
example payload is a valid one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request

import pytest
from functions_framework import create_app
from werkzeug.serving import make_server

from core.model import SYNC_RUNS
from functions import seed
from tests.integration.test_openapi import check
from tests.integration.test_scheduler import ROOT

SECRET = "readme-example-secret"


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## For CRM integrators\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", section(), re.S | re.M)


@pytest.fixture
def webhook(cloud_env, monkeypatch):
    """``crm_webhook`` on a real local HTTP server, with the example's secret."""
    monkeypatch.setenv("CRMSYNC_WEBHOOK_SECRET", SECRET)
    app = create_app("crm_webhook", str(ROOT / "main.py"), "http")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/crm_webhook", cloud_env
    finally:
        server.shutdown()
        thread.join(timeout=10)


def readme_python() -> dict:
    (code,) = blocks("python")
    found: dict = {"__name__": "readme_example"}  # its __main__ part does not run
    exec(compile(code, "README.md (python example)", "exec"), found)
    return found


def test_the_example_payload_is_valid():
    (payload,) = blocks("json")
    check("/components/schemas/WebhookPayload", json.loads(payload))


def test_the_python_example_is_accepted(webhook):
    url, store = webhook
    example = readme_python()
    event = {
        "eventId": "evt-readme-1",
        "entity": "contact",
        "recordId": "c-ada",
        "change": "updated",
    }
    answer = example["send"](url, SECRET, [event])
    assert answer["queued"] == [{"userId": seed.ALICE, "section": "contacts"}]
    assert answer["replayed"] == [] and [d.data["trigger"] for d in store.query(SYNC_RUNS)] == [
        "webhook"
    ]
    again = example["send"](url, SECRET, [event])  # the same id: a replay
    assert again["replayed"] == ["evt-readme-1"] and again["queued"] == []


def test_the_python_example_signs_what_crmsync_checks(webhook):
    url, _ = webhook
    example = readme_python()
    event = {
        "eventId": "evt-readme-2",
        "entity": "contact",
        "recordId": "c-ada",
        "change": "updated",
    }
    body = json.dumps({"events": [event]}).encode()
    headers = example["signed_headers"](SECRET, body, 1_700_000_000)
    assert headers["X-Crmsync-Timestamp"] == "1700000000"
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", headers["X-Crmsync-Signature"])
    # a stale timestamp and a wrong secret are refused, as the README says
    with pytest.raises(urllib.error.HTTPError) as stale:
        urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"))
    assert stale.value.code == 401 and "5 minutes" in json.load(stale.value)["error"]
    with pytest.raises(urllib.error.HTTPError) as wrong:
        example["send"](
            url,
            "not-the-secret",
            [{"eventId": "e", "entity": "contact", "recordId": "c-ada", "change": "updated"}],
        )
    assert wrong.value.code == 401 and "Signature" in json.load(wrong.value)["error"]


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("openssl")),
    reason="curl or openssl is not installed",
)
def test_the_curl_example_is_accepted(webhook):
    url, store = webhook
    (script,) = blocks("sh")
    assert "openssl dgst" in script and "curl" in script
    script, n = re.subn(r'^URL=".*"$', f'URL="{url}"', script, flags=re.M)
    assert n == 1
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CRMSYNC_WEBHOOK_SECRET": SECRET},
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["queued"] == [{"userId": seed.ALICE, "section": "contacts"}], answer
    assert answer["replayed"] == []
    assert store.get("webhookEvents", "evt-000125") is not None
