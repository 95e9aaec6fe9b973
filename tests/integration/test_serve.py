"""``python main.py serve``: the HTTP functions mounted at /<target> on one server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url, headers=None):
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=5
        ) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_serve_mounts_the_functions_and_runs_a_ready_playground(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env["PYTHONPATH"] = str(ROOT)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        token = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and token is None:
            line = server.stdout.readline()
            if "Authorization: Bearer" in line:
                token = line.split("Bearer ", 1)[1].split("'", 1)[0]
        assert token, "serve printed no sample ID token"
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                status, body = get(
                    f"{base}/manual_sync/status", {"Authorization": f"Bearer {token}"}
                )
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        assert status == 200 and body["userId"] == "u-alice"
        assert body["account"]["status"] == "connected"
        assert get(f"{base}/manual_sync/status")[0] == 401
        assert get(f"{base}/nothing")[0] == 404
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_function_answers_at_its_bare_url_without_a_redirect():
    """POST /crm_webhook (no trailing slash) reaches the webhook, as the deployed URL
    does: its own JSON answer (an unsigned request is refused), not a 308 page."""
    from werkzeug.test import Client

    from functions.serve import build_app

    client = Client(build_app())
    answer = client.post("/crm_webhook", data=b"{}", headers={"Content-Type": "application/json"})
    assert answer.status_code not in (301, 302, 307, 308)
    assert answer.headers["Content-Type"].startswith("application/json")
    assert client.post("/crm_webhook/", data=b"{}").status_code == answer.status_code
    missing = client.get("/no_such_function")
    assert missing.status_code == 404 and missing.json == {"error": "no such function"}
