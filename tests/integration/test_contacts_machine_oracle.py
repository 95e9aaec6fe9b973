"""Fixed rule sequences through the contacts state machine (tests/contacts_machine.py):
the cases where its model of "the newest edit" was wrong (the sync was right).

1. A run between edits (``sync_at_once``) settles a Google edit: the pair's last synced
   jobTitle is then Google's value. A later CRM edit of jobTitle is the only change of
   that field since, and wins (DESIGN.md: a field changed on one side only takes that
   change), even when a still later Google write to *another* field makes Google's
   record the newer one. The machine kept the settled Google edit as pending and
   expected it to win ("Google-side jobTitle edit lost").
2. The same through a pair that leaves and rejoins (crm_untag, crm_tag): the rejoining
   run merges the Google edit made meanwhile, so it is settled as in 1.
3. Moving a person into the group it is already in changes nothing in Google (no
   updateTime), so it does not make Google's record the newer one.

The persons are picked by their index in the machine's own lists, so that the
sequence is the same whatever resource names the sandbox draws.
"""

from __future__ import annotations

import pytest

from core import contact_mapping as cm
from tests.contacts_machine import ContactsMachine
from tests.integration.conftest import SandboxHandle
from tests.integration.test_contacts_machine import SandboxContactsMachine

K = "c-katherine"


@pytest.fixture
def machine(sandbox_server, tmp_path_factory, request):
    class Machine(SandboxContactsMachine):
        sandbox = SandboxHandle(sandbox_server)
        tmp_factory = tmp_path_factory

    Machine.profile = request.param
    m = Machine()
    m.start()
    yield m
    m.teardown()


def indexes(m: ContactsMachine) -> tuple[int, int]:
    """(katherine's index among live contacts, her person's among live people)."""
    return m.live_contacts().index(K), m.live_people().index(m.world.links()[K])


@pytest.mark.parametrize("machine", ["default", "realistic"], indirect=True)
def test_a_field_settled_between_syncs_takes_the_later_edit(machine):
    m = machine
    k, p = indexes(m)
    m.google_edit(i=p, field="jobTitle", value="alpha")
    m.crm_edit(i=k, field="notes", value="beta")  # so that the run reads the pair
    m.sync_at_once()  # jobTitle alpha settled on both sides
    assert cm.normalize(m.world.contact(K))["jobTitle"] == "alpha"
    m.crm_edit(i=k, field="jobTitle", value="gamma")  # the only jobTitle edit since
    m.google_edit(i=p, field="familyName", value="delta")  # Google's record newer
    m.sync()  # the machine's own check: jobTitle must be gamma (was: expected alpha)
    assert cm.normalize(m.world.contact(K))["jobTitle"] == "gamma"
    assert cm.normalize(m.world.contact(K))["familyName"] == "delta"


@pytest.mark.parametrize("machine", ["default", "realistic"], indirect=True)
def test_a_field_settled_by_a_rejoin_takes_the_later_edit(machine):
    m = machine
    person = m.world.links()[K]

    def k() -> int:
        return m.live_contacts().index(K)

    def p() -> int:
        return m.live_people().index(person)

    m.crm_create(tagged=True)
    m.crm_untag(i=k())
    m.sync_at_once()  # the pair is parked, the person leaves the group
    m.google_edit(i=p(), field="jobTitle", value="alpha")
    m.crm_tag(i=k())
    m.sync_at_once()  # the pair rejoins: jobTitle alpha settled on both sides
    assert m.world.links()[K] == person
    assert cm.normalize(m.world.contact(K))["jobTitle"] == "alpha"
    m.crm_edit(i=k(), field="jobTitle", value="gamma")  # the only jobTitle edit since
    m.google_edit(i=p(), field="notes", value="delta")  # Google's record newer
    m.sync()  # the machine's own check: gamma (was: expected alpha)
    assert cm.normalize(m.world.contact(K))["jobTitle"] == "gamma"


@pytest.mark.parametrize("machine", ["default", "realistic"], indirect=True)
def test_a_move_that_changes_nothing_is_no_google_write(machine):
    m = machine
    k, p = indexes(m)
    m.google_edit(i=p, field="jobTitle", value="alpha")
    m.crm_edit(i=k, field="jobTitle", value="gamma")  # the newer edit
    m.google_move(i=p, into=True)  # already in the group: Google unchanged
    m.sync()  # the machine's own check: gamma (was: expected alpha)
    assert cm.normalize(m.world.contact(K))["jobTitle"] == "gamma"
