"""A CRM webhook delivery is recorded only once its work is queued: a delivery whose
queueing (or inline run) failed is served again when the CRM retries it, never
answered "replayed" with nothing synced; a delivery holding one bad event records
none of its good ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.stores import open_store
from functions import seed
from functions.http_errors import Rejected
from functions.webhook_logic import EVENTS, Payload, accept

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'crm.db'}")
    seed.seed(s, NOW)
    yield s
    s.close()


def payload(*events):
    return Payload.model_validate({"events": list(events)})


def event(event_id, record="c-ada", **extra):
    return {"eventId": event_id, "entity": "contact", "recordId": record, "change": "updated",
            **extra}  # fmt: skip


def test_a_delivery_whose_queueing_failed_is_served_when_the_crm_retries_it(store):
    def down(jobs):
        raise ConnectionError("Pub/Sub unreachable")

    with pytest.raises(ConnectionError):
        accept(store, payload(event("e1")), NOW, down)
    assert store.get(EVENTS, "e1") is None  # nothing recorded
    sent = []
    answer = accept(store, payload(event("e1")), NOW, sent.extend)  # the CRM's retry
    assert answer["replayed"] == [] and [j.user_id for j in sent] == [seed.ALICE]
    assert store.get(EVENTS, "e1") is not None
    again = accept(store, payload(event("e1")), NOW, sent.extend)
    assert again["replayed"] == ["e1"] and len(sent) == 1


def test_a_delivery_with_one_bad_event_records_none_of_its_good_ones(store):
    bad = event("e2", userIds=["no-such-user"])
    with pytest.raises(Rejected):
        accept(store, payload(event("e1"), bad), NOW, lambda jobs: None)
    assert store.get(EVENTS, "e1") is None and store.get(EVENTS, "e2") is None
