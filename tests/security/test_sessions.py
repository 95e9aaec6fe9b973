# ruff: noqa: F811  (the tests take the imported fixture by name)
"""The page's session cookie cannot be forged, names a user who exists, and ends at
sign-out; sign-out itself needs the CSRF token; a deployed function without its
session key refuses to seal anything."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from functions_framework import create_app
from google.auth.transport.requests import Request

from adapters.google_auth import seal
from core.errors import ConfigError
from functions import bootstrap, seed
from tests.integration.test_manual_sync import api  # noqa: F401  (a fixture)
from tests.integration.test_scheduler import ROOT


def signed_in(email="alice@example.com"):
    """A browser (Flask test client) signed in through the sandbox's Google."""
    browser = create_app("manual_sync", str(ROOT / "main.py"), "http").test_client()
    start = browser.get("/signin", query_string={"email": email})
    consent = Request().session.get(start.headers["Location"], allow_redirects=False)
    args = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["Location"]).query).items()}
    browser.get("/signin/callback", query_string=args)
    return browser


def forged(key: str, user: str) -> str:
    return seal(key, "session", json.dumps({"u": user, "c": "x", "v": 0}).encode())


@pytest.mark.parametrize("user", [seed.BOB, "u-nobody"])
def test_a_cookie_sealed_under_the_public_default_secret_is_refused(api, user):
    browser = create_app("manual_sync", str(ROOT / "main.py"), "http").test_client()
    browser.set_cookie("crmsync_session", forged("crmsync-local", user))
    assert browser.get("/status").status_code == 401


def test_a_session_of_a_user_who_no_longer_exists_is_refused(api, monkeypatch):
    from core.model import USERS

    browser = signed_in()
    assert browser.get("/status").status_code == 200
    api.store.delete(USERS, seed.ALICE)
    assert browser.get("/status").status_code == 401


def test_sign_out_ends_the_session_even_for_a_copy_of_the_cookie(api):
    browser = signed_in()
    csrf = browser.get("/status").get_json()["csrf"]
    copy = create_app("manual_sync", str(ROOT / "main.py"), "http").test_client()
    copy.set_cookie("crmsync_session", browser.get_cookie("crmsync_session").value)
    assert copy.get("/status").status_code == 200
    assert browser.post("/signout", data={"csrf": csrf}).status_code == 302
    assert copy.get("/status").status_code == 401  # the stolen copy is dead too


def test_sign_out_without_the_csrf_token_is_refused(api):
    browser = signed_in()
    assert browser.post("/signout").status_code == 403
    assert browser.get("/status").status_code == 200  # still signed in


def test_a_deployed_function_without_a_session_key_refuses(monkeypatch, tmp_path):
    monkeypatch.setenv("K_SERVICE", "manual-sync")
    config = bootstrap.Config(state_dir=tmp_path)
    with pytest.raises(ConfigError, match="CRMSYNC_SESSION_KEY"):
        bootstrap.session_secret(config)
    keyed = bootstrap.Config(state_dir=tmp_path, session_key="k" * 32)
    assert bootstrap.session_secret(keyed) == "k" * 32


def test_the_local_session_key_is_generated_private(tmp_path):
    key = bootstrap.session_secret(bootstrap.Config(state_dir=tmp_path))
    assert len(key) >= 32 and (tmp_path / "session.key").stat().st_mode & 0o077 == 0
    assert key != "crmsync-local"
