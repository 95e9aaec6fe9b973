"""Google's deltas lag behind writes (the realistic profile's propagation delay): runs
that fail, or come soon after one another, must not double or lose anything."""

from __future__ import annotations

import pytest

from core import contact_mapping as cm
from core.errors import StoreError
from core.model import CONTACTS
from tests.integration.contacts_world import ALICE, TAG, World


class FailingLinkStore:
    """A store whose first batch after the Google creates fails (a lost connection)."""

    def __init__(self, store) -> None:
        self.store, self.failed = store, False

    def batch(self):
        if not self.failed:
            self.failed = True
            raise StoreError("the store went away")
        return self.store.batch()

    def __getattr__(self, name):
        return getattr(self.store, name)


@pytest.fixture
def world(tmp_path, sandbox, account):
    sandbox.profile("realistic")
    w = World(tmp_path, sandbox, account)
    w.run()
    sandbox.settle()
    yield w
    w.close()


def test_a_run_that_failed_after_creating_persons_does_not_create_them_again(world):
    radia = {"givenName": "Radia", "emails": [{"value": "rp@dec.example"}], "tagIds": [TAG]}
    world.store.put(CONTACTS, "c-radia", {**radia, "modifiedAt": world.now()})
    with pytest.raises(StoreError):
        world.engine(store=FailingLinkStore(world.store)).run(ALICE)
    world.run()  # at once: Google's deltas do not show the person created a moment ago
    world.sandbox.settle()
    world.run()
    carriers = [p for p in world.persons().values() if cm.client_data_id(p) == "c-radia"]
    assert len(carriers) == 1, "the failed run's person was created a second time"
    assert world.links()["c-radia"] == carriers[0]["resourceName"]
