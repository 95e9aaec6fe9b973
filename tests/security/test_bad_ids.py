# ruff: noqa: F811  (the tests take the imported fixtures by name)
"""Ids a document store cannot hold (Firestore: no "/", not "." or "..", not
"__x__") and headers that are not ASCII are refused with 400 or 401 at every door,
never a 500, and change nothing."""

from __future__ import annotations

import pytest

from tests.integration.test_manual_sync import api  # noqa: F401  (a fixture)
from tests.integration.test_webhook import event, hook, writes  # noqa: F401

BAD_IDS = ["a/b", ".", "..", "__x__", "x" * 1600]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("field", ["eventId", "recordId"])
def test_a_webhook_event_with_an_id_no_store_can_hold_is_refused(hook, bad, field):
    before = writes(hook.store)
    answer = hook({"events": [event(**{field: bad})]})
    assert answer.status_code == 400, answer.get_json()
    assert writes(hook.store) == before


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_webhook_event_naming_a_user_by_such_an_id_is_refused(hook, bad):
    answer = hook({"events": [event(userIds=[bad])]})
    assert answer.status_code == 400, answer.get_json()


@pytest.mark.parametrize("bad", ["a%2Fb", ".", "..", "__x__"])
@pytest.mark.parametrize("tail", ["", "/undo"])
def test_a_run_id_no_store_can_hold_is_refused(api, bad, tail):
    method = "POST" if tail else "GET"
    answer = api(method, f"/runs/{bad}{tail}", body={} if tail else None)
    assert answer.status_code in (400, 404), (answer.status_code, answer.get_json())


@pytest.mark.parametrize("bad", ["a/b", "__x__", ".."])
def test_a_settings_tag_id_no_store_can_hold_is_refused(api, bad):
    answer = api("PUT", "/settings", body={"contacts": {"tagId": bad}})
    assert answer.status_code == 400, answer.get_json()


def test_a_signature_that_is_not_ascii_is_refused(hook):
    answer = hook({"events": [event()]}, signature="sha256=é")
    assert answer.status_code == 401, answer.get_json()
