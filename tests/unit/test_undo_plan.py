"""The undo planner (``core.undo.plan_undo``), on plain data: one test per row of its
table, conflicts, and pairs already back where the run found them."""

from datetime import UTC, datetime

from core.contact_mapping import fingerprint, normalize
from core.contacts_plan import CrmContact, LeaveGroup, LinkRecord, Person, Reconcile, Untag
from core.undo import Current, plan_undo

GROUP = "contactGroups/crm"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def f(**fields):
    return normalize({"givenName": "Ada", **fields})


def now(crm_fields=None, google_fields=None, tagged=True, in_group=True, parked=False,
        linked_to="people/1"):  # fmt: skip
    crm = {"c1": CrmContact("c1", crm_fields or f(), tagged, T0)}
    groups = frozenset({GROUP}) if in_group else frozenset()
    google = {"people/1": Person("people/1", "e1", google_fields or f(), in_group,
                                 groups=groups)}  # fmt: skip
    synced = crm_fields or f()
    links = {"c1": LinkRecord("c1", linked_to, "e1", fingerprint(synced), synced, parked)}
    return Current(crm, google, links if linked_to else {}, GROUP)


def entry(change, side, **fields):
    out = {"change": change, "side": side, "crmId": "c1", "googleId": "people/1", "name": "Ada"}
    if fields:
        out["fields"] = {k: {"before": b, "after": a} for k, (b, a) in fields.items()}
    return out


def test_an_update_goes_back_on_both_sides():
    undo = plan_undo([entry("updatedInGoogle", "google", jobTitle=("Eng", "CEO"))],
                     now(f(jobTitle="CEO"), f(jobTitle="CEO")))  # fmt: skip
    (action,) = undo.actions
    assert isinstance(action, Reconcile) and action.fields["jobTitle"] == "Eng"
    assert action.write_crm and action.write_google and action.person_fields == ("organizations",)
    assert not undo.conflicts


def test_a_field_changed_again_on_either_side_is_a_conflict_left_alone():
    for crm, google in (
        (f(jobTitle="CTO"), f(jobTitle="CEO")),
        (f(jobTitle="CEO"), f(jobTitle="CTO")),
    ):
        undo = plan_undo([entry("updatedInCrm", "crm", jobTitle=("Eng", "CEO"))], now(crm, google))
        assert undo.actions == [] and [c.crm_id for c in undo.conflicts] == ["c1"]
        assert "jobTitle" in undo.conflicts[0].reason


def test_a_pair_linked_to_another_person_since_is_a_conflict():
    undo = plan_undo([entry("pushed", "google")], now(linked_to="people/9"))
    assert undo.actions == [] and "another Google contact" in undo.conflicts[0].reason


def test_a_push_leaves_the_group_and_the_next_sync_would_push_it_again():
    undo = plan_undo([entry("pushed", "google")], now())
    assert undo.actions == [LeaveGroup(crm_id="c1", resource_name="people/1", last_group=True)]
    assert undo.redone == ["c1"]  # still tagged


def test_an_import_loses_the_tag_unless_the_contact_was_tagged_before():
    assert plan_undo([entry("imported", "crm")], now()).actions == [
        Untag(crm_id="c1", resource_name="people/1")
    ]
    kept = entry("imported", "crm", tagged=(True, True))
    assert plan_undo([kept], now()).actions == []


def test_an_untag_and_a_removal_from_the_group_come_back():
    (action,) = plan_undo([entry("untagged", "crm")], now(tagged=False, parked=True)).actions
    assert isinstance(action, Reconcile) and action.tag and not action.join_group
    (action,) = plan_undo([entry("removedFromGroup", "google")],
                          now(in_group=False, parked=True)).actions  # fmt: skip
    assert action.join_group and not action.tag


def test_a_pair_already_back_where_the_run_found_it_needs_nothing():
    undo = plan_undo([entry("pushed", "google")], now(in_group=False, parked=True))
    assert undo.actions == [] and undo.unchanged == ["c1"] and not undo.conflicts


def test_an_edit_not_yet_synced_on_either_side_makes_the_item_a_conflict():
    """The undo writes whole person fields (jobTitle and company share one): an edit the
    sync has not carried over yet would be overwritten, so the item is left alone."""
    run = [entry("updatedInGoogle", "google", jobTitle=("Eng", "CEO"))]
    synced = f(jobTitle="CEO")
    pending_google = now(synced, f(jobTitle="CEO", company="Google-side edit"))
    undo = plan_undo(run, pending_google)
    assert undo.actions == [] and "company" in undo.conflicts[0].reason
    pending_crm = now(f(jobTitle="CEO", notes="CRM edit"), synced)
    pending_crm.links["c1"] = LinkRecord("c1", "people/1", "e1", fingerprint(synced), synced)
    undo = plan_undo(run, pending_crm)
    assert undo.actions == [] and "notes" in undo.conflicts[0].reason


def test_a_pair_no_longer_synced_keeps_its_fields():
    undo = plan_undo([entry("updatedInCrm", "crm", jobTitle=("Eng", "CEO"))],
                     now(f(jobTitle="CEO"), f(jobTitle="CEO"), parked=True))  # fmt: skip
    assert undo.actions == [] and "no longer synced" in undo.conflicts[0].reason


def test_a_pair_saved_again_after_the_run_even_with_the_same_values_is_left_alone():
    """Found by the state machine: a CRM save after the run that kept the run's values
    (the user set a field to what it held) is a later word, never overwritten."""
    from dataclasses import replace
    from datetime import timedelta

    run = [entry("updatedInGoogle", "google", jobTitle=("Eng", "CEO"))]
    state = now(f(jobTitle="CEO"), f(jobTitle="CEO"))
    saved_after = replace(state, since=T0 - timedelta(minutes=1))
    undo = plan_undo(run, saved_after)
    assert undo.actions == [] and "saved again in the CRM" in undo.conflicts[0].reason
    before_it = replace(state, since=T0 + timedelta(minutes=1))
    assert len(plan_undo(run, before_it).actions) == 1
