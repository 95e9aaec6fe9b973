"""``python main.py connect``: the refresh token is checked, stored encrypted, never leaked."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from adapters.stores import open_store

ROOT = Path(__file__).resolve().parents[2]


def run_connect(tmp_path, sandbox, user, token, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "CRMSYNC_STORE": f"sqlite:///{tmp_path / 'crm.db'}",
        "CRMSYNC_GOOGLE_ENDPOINT": sandbox.url,
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "connect", "--user", user, "--refresh-token", "-"],
        input=token + "\n", capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )  # fmt: skip


@pytest.fixture
def crm(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'crm.db'}")
    store.put("users", "u1", {"email": "alice@example.com", "displayName": "Alice"})
    yield store
    store.close()


def every_file_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_connect_stores_the_token_encrypted_and_nowhere_in_plaintext(
    tmp_path, sandbox, account, crm
):
    done = run_connect(tmp_path, sandbox, "u1", account.refresh_token)
    assert done.returncode == 0, done.stderr
    assert "alice@example.com" in done.stdout

    stored = crm.get("googleAccounts", "u1")
    assert stored["status"] == "connected" and stored["accountEmail"] == "alice@example.com"
    assert "https://www.googleapis.com/auth/contacts" in stored["scopes"]
    key_file = tmp_path / ".crmsync" / "token.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes().strip()
    assert Fernet(key).decrypt(stored["refreshTokenCiphertext"].encode()).decode() == (
        account.refresh_token
    )
    secret = account.refresh_token.encode()
    assert secret not in every_file_bytes(tmp_path)  # the db, its WAL, the key file
    assert account.refresh_token not in done.stdout + done.stderr


def test_connect_honours_a_configured_key(tmp_path, sandbox, account, crm):
    key = Fernet.generate_key().decode()
    done = run_connect(tmp_path, sandbox, "u1", account.refresh_token, {"CRMSYNC_TOKEN_KEY": key})
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".crmsync" / "token.key").exists()
    ciphertext = crm.get("googleAccounts", "u1")["refreshTokenCiphertext"]
    assert Fernet(key.encode()).decrypt(ciphertext.encode()).decode() == account.refresh_token


def test_connect_with_a_malformed_key_fails_clearly(tmp_path, sandbox, account, crm):
    done = run_connect(
        tmp_path, sandbox, "u1", account.refresh_token, {"CRMSYNC_TOKEN_KEY": "not-a-key"}
    )
    assert done.returncode == 1
    assert "CRMSYNC_TOKEN_KEY is not a Fernet key" in done.stderr
    assert crm.get("googleAccounts", "u1") is None


def test_connect_for_an_unknown_user_writes_nothing(tmp_path, sandbox, account, crm):
    done = run_connect(tmp_path, sandbox, "nobody", account.refresh_token)
    assert done.returncode == 2
    assert "unknown user 'nobody'" in done.stderr
    assert crm.get("googleAccounts", "nobody") is None
    assert account.refresh_token.encode() not in every_file_bytes(tmp_path)


def test_connect_with_a_revoked_token_writes_nothing(tmp_path, sandbox, account, crm):
    sandbox.state.tokens.revoke(account.refresh_token)
    done = run_connect(tmp_path, sandbox, "u1", account.refresh_token)
    assert done.returncode == 1
    assert "invalid_grant" in done.stderr and "reconnect" in done.stderr
    assert account.refresh_token not in done.stderr
    assert crm.get("googleAccounts", "u1") is None
