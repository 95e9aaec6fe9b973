"""Browser fixtures: Debian's Chromium (installed with apt when missing) driven by
Playwright, and the HTTP functions served on 127.0.0.1 against the sandbox."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.integration.conftest import (  # noqa: F401  (fixtures shared with integration)
    account,
    cloud_env,
    make_account,
    quick_retries,
    sandbox,
    sandbox_server,
)

ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    install = subprocess.run(
        ["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, text=True, timeout=900
    )
    found = shutil.which("chromium")
    if not found:
        message = f"chromium is missing and apt could not install it: {install.stderr[-500:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def site(cloud_env, sandbox, monkeypatch):  # noqa: F811
    """All HTTP functions at http://127.0.0.1:PORT/<target>, as ``serve`` lays them out."""
    from functions.serve import build_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = make_server("127.0.0.1", port, build_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ARTIFACTS.mkdir(exist_ok=True)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    tab = context.new_page()
    yield tab
    context.close()
