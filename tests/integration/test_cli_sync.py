"""``python main.py sync``: summary, progress bar, --dry-run, --json and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.stores import open_store
from core.model import stamp
from functions import bootstrap
from functions.accounts import connect

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path, sandbox, account):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env |= {"PYTHONPATH": str(ROOT), "CRMSYNC_STORE": url, "CRMSYNC_GOOGLE_ENDPOINT": sandbox.url}
    store = open_store(url)
    now = stamp(datetime.now(UTC))
    store.put("users", "u1", {"email": account.email})
    store.put("tags", "t1", {"name": "Mine", "kind": "private", "ownerId": "u1"})
    store.put("syncSettings", "u1", {"contacts": {"tagId": "t1"}})
    for start in range(0, 600, 300):
        with store.batch() as batch:
            for i in range(start, start + 300):
                batch.put("contacts", f"c{i:03d}", {"givenName": f"N{i}", "tagIds": ["t1"],
                                                    "modifiedAt": now})  # fmt: skip
    config = bootstrap.Config(store_url=url, google_endpoint=sandbox.url,
                              state_dir=tmp_path / ".crmsync")  # fmt: skip
    connect(config, "u1", account.refresh_token)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "main.py"), "sync", *args],
                              capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=120)  # fmt: skip

    run.store = store
    yield run
    store.close()


def test_dry_run_prints_the_plan_and_changes_nothing(cli, sandbox):
    done = cli("--user", "u1", "--section", "contacts", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "plan: 600 action(s); nothing was changed" in done.stdout
    assert "add N0 to Google (a new contact in the group)" in done.stdout
    assert cli.store.get("syncState", "u1:contacts") is None
    writes = {m for m in sandbox.stats()["byMethod"] if "list" not in m and "get" not in m.lower()}
    assert writes == set()


def test_sync_prints_a_summary_and_a_progress_bar(cli):
    done = cli("--user", "u1", "--section", "contacts")
    assert done.returncode == 0, done.stderr
    assert "pushed to Google           600" in done.stdout
    assert "[##############################] 600/600 applying changes" in done.stderr
    again = cli("--user", "u1", "--section", "contacts", "--json")
    (report,) = json.loads(again.stdout)
    assert again.returncode == 0 and report["plan"] == [] and report["counts"] == {}


def test_unknown_user_and_bad_policy_are_clear_errors(cli):
    done = cli("--user", "nobody")
    assert done.returncode == 2 and "unknown user 'nobody'" in done.stderr
    bad = cli("--user", "u1", "--policy", "sometimes")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_revoked_token_exits_non_zero_with_a_clear_message(cli, sandbox, account):
    sandbox.state.tokens.revoke(account.refresh_token)
    done = cli("--user", "u1")
    assert done.returncode == 1
    assert "invalid_grant" in done.stderr and "reconnect" in done.stderr
    assert cli.store.get("googleAccounts", "u1")["status"] == "reauth_required"
    again = cli("--user", "u1")
    assert again.returncode == 1 and "reconnect" in again.stderr
