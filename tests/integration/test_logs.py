"""Logs: JSON lines in Cloud Logging's shape, with ids and counts, never a token or
personal data."""

from __future__ import annotations

import io
import json
import logging

from adapters import logs
from core.schedule import Job
from functions import bootstrap, seed
from functions.jobs import run_job


def test_a_run_logs_one_json_line_of_ids_and_counts_and_nothing_personal(
    cloud_env, account, monkeypatch
):
    env = cloud_env
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-project")
    out = io.StringIO()
    logs.setup(stream=out)
    report = run_job(bootstrap.Config.from_env(), env, Job(seed.ALICE, "contacts", "schedule"))
    run_job(bootstrap.Config.from_env(), env, Job("nobody", "contacts", "webhook"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    finished = next(line for line in lines if line["message"] == "sync run finished")
    assert finished["severity"] == "INFO" and finished["userId"] == seed.ALICE
    assert finished["section"] == "contacts" and finished["counts"]["pushed"] == 4
    assert finished["logging.googleapis.com/trace"] == (
        f"projects/demo-project/traces/{report.run_id}"
    )
    assert any(line["severity"] == "ERROR" and line["userId"] == "nobody" for line in lines)
    text = out.getvalue()
    for secret in (
        account.refresh_token,
        account.access_token,
        "ada@analytical.example",
        "Lovelace",
    ):
        assert secret not in text


def test_tokens_are_scrubbed_from_any_line():
    out = io.StringIO()
    logs.setup(stream=out)
    logging.getLogger("crmsync.test").error(
        "refresh failed for 1//sbx-abc_DEF-123 with ya29.sbx-xyz and eyJhbGciOi.eyJzdWIi.c2ln"
    )
    line = json.loads(out.getvalue())
    assert line["message"].count("[redacted]") == 3 and "ya29" not in line["message"]
