# ruff: noqa: F811
"""Regressions from the third independent review of issue 14 (each failed before its
fix): a chunked body was read whole, past the cap, whenever the route or an early
refusal did not read it itself; a corrupt journal page answered 500 on a run's details
and its undo; run retention left the journal pages of a run with a corrupt count."""

from __future__ import annotations

import pytest
from functions_framework import create_app
from werkzeug.test import EnvironBuilder, run_wsgi_app

from core.model import SYNC_RUNS
from tests.integration.test_manual_sync import api  # noqa: F401
from tests.integration.test_scheduler import ROOT
from tests.security.test_http_hardening import Counted, alices_run, bearer

MAX_BODY = 256 * 1024


def chunked(method, path, headers=None, size=8 * 1024 * 1024):
    body = Counted(b'{"pad": "' + b"x" * size + b'"}')
    environ = EnvironBuilder(
        path=path, method=method, input_stream=body, headers=headers or {}
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ.update({"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    app = create_app("manual_sync", str(ROOT / "main.py"), "http")
    _, status, _ = run_wsgi_app(app, environ, buffered=True)
    return status, body.taken


# 1. a chunked body is read whole (by functions_framework's drain) whenever the handler
#    never calls _read: not signed in (401), no CSRF (403), GET routes, 404s.
@pytest.mark.parametrize(
    "method,path,signed",
    [
        ("POST", "/sync", False),  # 401: "a body is read only once the caller is known"
        ("PUT", "/settings", False),
        ("GET", "/status", True),  # a route that reads no body
        ("POST", "/signout", False),
        ("GET", "/nowhere", False),
    ],
)
def test_a_chunked_body_is_never_read_past_the_cap(api, method, path, signed):
    status, taken = chunked(method, path, bearer(api) if signed else {})
    assert taken <= 2 * MAX_BODY, (status, taken)


# 2. a corrupt journal page (syncRunItems) still answers 500 on the run's details / undo
@pytest.mark.parametrize("items", [5, True, 1.5])
def test_a_corrupt_journal_page_never_answers_500(api, items):
    run = alices_run(api)
    record = api.store.get(SYNC_RUNS, run)
    assert record["itemPages"] >= 1, record
    api.store.put("syncRunItems", f"{run}-0000", {"items": items})
    answer = api("GET", f"/runs/{run}")
    assert answer.status_code < 500, (answer.status_code, answer.get_data()[:300])
    answer = api("POST", f"/runs/{run}/undo", body={"dryRun": True})
    assert answer.status_code < 500, (answer.status_code, answer.get_data()[:300])


@pytest.mark.parametrize("dry", [True, False])
def test_the_undo_of_a_run_whose_journal_page_is_corrupt_never_answers_500(api, dry):
    run = alices_run(api)
    api.store.put("syncRunItems", f"{run}-0000", {"items": 5})
    answer = api("POST", f"/runs/{run}/undo", body={"dryRun": dry})
    assert answer.status_code < 500, (answer.status_code, answer.get_data()[:300])


def test_run_retention_never_leaves_a_journal_behind_for_a_corrupt_count(api):
    """jobs._forget_runs: a run whose itemPages is corrupt is deleted alone; its journal
    pages (names, before/after field values) stay in syncRunItems for ever."""
    from datetime import timedelta

    from core.model import when
    from functions import bootstrap
    from functions.jobs import RUNS_KEPT, _forget_runs

    run = alices_run(api)
    record = api.store.get(SYNC_RUNS, run)
    assert record["itemPages"] >= 1
    started = when(record["startedAt"])
    api.store.put(SYNC_RUNS, run, {**record, "itemPages": "1"})
    _forget_runs(bootstrap.Config.from_env(), api.store, started + RUNS_KEPT + timedelta(days=1))
    assert api.store.get(SYNC_RUNS, run) is None
    left = [d.id for d in api.store.query("syncRunItems") if d.id.startswith(run)]
    assert left == [], left


def test_a_mark_a_run_served_is_cleared_even_when_the_store_holds_nan():
    from core import lease

    nan = float("nan")
    assert lease._same(nan, nan) and lease._same("t", "t") and not lease._same("t", nan)
