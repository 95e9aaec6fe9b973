"""The contacts decision table, one test per row, on plain data."""

from datetime import UTC, datetime, timedelta

import pytest

from core.contact_mapping import fingerprint, normalize
from core.contacts_plan import (
    AmbiguousEmail,
    CreatePerson,
    CrmContact,
    DropLink,
    ImportPerson,
    LeaveGroup,
    LinkRecord,
    Person,
    Reconcile,
    Snapshot,
    Untag,
    plan,
)
from core.errors import SideEmpty
from core.merge import Policy
from tests.unit.actions import positional

GROUP = "contactGroups/crm1"
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)

# the actions, built positionally in their fields' order
do = positional(CreatePerson, ImportPerson, Reconcile, LeaveGroup, Untag, DropLink, AmbiguousEmail)


def f(**fields):
    return normalize({"givenName": "Ada", "emails": [{"value": "ada@example.com"}], **fields})


def crm(cid="c1", fields=None, tagged=True, at=T0, emails=("ada@example.com",)):
    return CrmContact(cid, fields or f(), tagged, at, frozenset(emails))


def person(
    name="people/c1",
    fields=None,
    in_group=True,
    deleted=False,
    at=T0,
    crm_id=None,
    etag="e1",
    groups=None,
    emails=("ada@example.com",),
):
    return Person(name, etag, fields or f(), in_group, deleted, at, crm_id,
                  frozenset(groups if groups is not None else ({GROUP} if in_group else set())),
                  frozenset(emails))  # fmt: skip


def link(cid="c1", name="people/c1", fields=None, etag="e1"):
    fields = fields or f()
    return LinkRecord(cid, name, etag, fingerprint(fields), fields)


def snap(
    crm_items=(), people=(), links=(), crm_complete=False, google_complete=False, by_email=None
):
    return Snapshot({c.id: c for c in crm_items}, {p.resource_name: p for p in people},
                    {lk.crm_id: lk for lk in links}, GROUP, crm_complete, google_complete,
                    by_email or {})  # fmt: skip


# --- first push and imports ---------------------------------------------------------------


def test_first_push_creates_tagged_contacts_only():
    got = plan(snap([crm("c1"), crm("c2", tagged=False)]))
    assert got == [do.CreatePerson("c1", f())]


def test_person_moved_into_group_is_imported():
    got = plan(snap(people=[person("people/c9", emails=("new@example.com",))]))
    assert got == [do.ImportPerson("people/c9", "e1", f())]


def test_person_outside_group_is_ignored():
    assert plan(snap(people=[person(in_group=False)])) == []


def test_import_links_to_existing_contact_with_same_email_instead_of_duplicating():
    untagged = crm("c5", fields=f(jobTitle="CTO"), tagged=False)
    got = plan(snap([untagged], [person("people/c9")], by_email={"ada@example.com": ("c5",)}))
    assert len(got) == 1 and isinstance(got[0], Reconcile)
    action = got[0]
    assert (action.crm_id, action.resource_name, action.tag, action.reason) == (
        "c5",
        "people/c9",
        True,
        "email",
    )
    assert action.fields["jobTitle"] == "CTO"  # filled from the CRM side
    assert action.write_google and not action.write_crm


def test_a_contact_links_to_at_most_one_person():
    people = [person("people/c8"), person("people/c9")]
    got = plan(snap([crm("c5", tagged=False)], people, by_email={"ada@example.com": ("c5",)}))
    assert [type(a) for a in got] == [Reconcile, ImportPerson]
    assert got[0].resource_name == "people/c8" and got[1].resource_name == "people/c9"


def test_tagged_unlinked_contact_matching_a_group_person_by_email_links_not_creates():
    got = plan(snap([crm("c1")], [person("people/c9")], by_email={"ada@example.com": ("c1",)}))
    assert len(got) == 1 and isinstance(got[0], Reconcile) and not got[0].tag


def test_retried_create_is_recognised_by_client_data():
    got = plan(snap([crm("c1")], [person("people/c7", crm_id="c1")]))
    assert len(got) == 1 and isinstance(got[0], Reconcile)
    assert got[0].reason == "clientData" and not got[0].write_google and not got[0].write_crm


def test_person_with_our_id_outside_the_group_rejoins_instead_of_duplicating():
    got = plan(snap([crm("c1")], [person("people/c7", crm_id="c1", in_group=False,
                                          groups={"contactGroups/myContacts"})]))  # fmt: skip
    assert len(got) == 1 and got[0].join_group and got[0].resource_name == "people/c7"


# --- changes ----------------------------------------------------------------------------------


def test_no_change_on_either_side_plans_nothing():
    assert plan(snap([crm()], [person()], [link()])) == []


def test_echo_with_new_etag_only_refreshes_the_link():
    got = plan(snap([crm()], [person(etag="e2")], [link()]))
    assert got == [do.Reconcile("c1", "people/c1", "e2", f(), False, False, reason="etag")]


def test_crm_change_goes_to_google():
    got = plan(snap([crm(fields=f(jobTitle="CEO"))], [], [link()]))
    assert got == [do.Reconcile("c1", "people/c1", "e1", f(jobTitle="CEO"), True, False,
                             person_fields=("organizations",))]  # fmt: skip


def test_google_change_goes_to_crm():
    got = plan(snap([], [person(fields=f(notes="met at expo"), etag="e2")], [link()]))
    assert got == [do.Reconcile("c1", "people/c1", "e2", f(notes="met at expo"), False, True)]


def test_both_sides_edit_different_fields_both_kept():
    got = plan(snap([crm(fields=f(jobTitle="CEO"))], [person(fields=f(notes="n"))], [link()]))
    (action,) = got
    assert action.fields == f(jobTitle="CEO", notes="n")
    assert action.write_google and action.write_crm and action.conflicts == ()


@pytest.mark.parametrize(("crm_later", "winner"), [(True, "CRM"), (False, "Google")])
def test_both_sides_edit_the_same_field_most_recent_wins(crm_later, winner):
    later, earlier = T0 + timedelta(minutes=5), T0
    got = plan(snap(
        [crm(fields=f(jobTitle="CRM"), at=later if crm_later else earlier)],
        [person(fields=f(jobTitle="Google"), at=earlier if crm_later else later)],
        [link()],
    ))  # fmt: skip
    assert got[0].fields["jobTitle"] == winner and got[0].conflicts == ("jobTitle",)


@pytest.mark.parametrize(
    ("policy", "title", "notes"),
    [
        (Policy.CRM_WINS, "CRM", "g-notes"),  # conflicts to the CRM, one-sided edits kept
        (Policy.GOOGLE_WINS, "Google", "g-notes"),
        (Policy.MOST_RECENT, "Google", "g-notes"),  # Google edited last: its whole record
    ],
)
def test_policies(policy, title, notes):
    got = plan(
        snap([crm(fields=f(jobTitle="CRM"), at=T0)],
             [person(fields=f(jobTitle="Google", notes="g-notes"), at=T0 + timedelta(1))],
             [link()]),
        policy,
    )  # fmt: skip
    assert (got[0].fields["jobTitle"], got[0].fields["notes"]) == (title, notes)


def test_most_recent_record_policy_drops_the_older_sides_other_edits():
    got = plan(
        snap([crm(fields=f(jobTitle="CRM", company="Acme"), at=T0 + timedelta(1))],
             [person(fields=f(jobTitle="Google", notes="g"), at=T0)], [link()]),
        Policy.MOST_RECENT,
    )  # fmt: skip
    assert got[0].fields == f(jobTitle="CRM", company="Acme")


# --- deletions never propagate --------------------------------------------------------------


def test_deleted_in_google_untags_in_crm():
    assert plan(snap([], [person(deleted=True)], [link()])) == [
        do.Untag("c1", "people/c1", park=False)
    ]


def test_left_the_group_untags_in_crm_and_parks_the_link():
    got = plan(snap([], [person(in_group=False, groups={"contactGroups/myContacts"})], [link()]))
    assert got == [do.Untag("c1", "people/c1")]


def test_missing_from_a_complete_google_listing_untags():
    other = link("c2", "people/c2")
    got = plan(snap([], [person("people/c2")], [link(), other], google_complete=True))
    assert got == [do.Untag("c1", "people/c1", park=False)]


def test_untagged_in_crm_leaves_the_group():
    got = plan(snap([crm(tagged=False)], [person(groups={GROUP, "contactGroups/myContacts"})],
                    [link()]))  # fmt: skip
    assert got == [do.LeaveGroup("c1", "people/c1", False)]


def test_leaving_the_last_group_is_flagged_for_my_contacts_first():
    got = plan(snap([crm(tagged=False)], [person()], [link()]))
    assert got == [do.LeaveGroup("c1", "people/c1", True)]


def test_deleted_in_crm_with_unknown_google_groups():
    other = link("c2", "people/c2")
    got = plan(snap([crm("c2")], [], [link(), other], crm_complete=True))
    assert got == [do.LeaveGroup("c1", "people/c1", None, park=False)]


def test_gone_on_both_sides_drops_the_link():
    assert plan(snap([crm(tagged=False)], [person(deleted=True)], [link()])) == [do.DropLink("c1")]


# --- the guard --------------------------------------------------------------------------------


def many_links(n=6):
    return [link(f"c{i}", f"people/c{i}") for i in range(n)]


def test_google_listing_nothing_while_links_exist_stops_the_run():
    with pytest.raises(SideEmpty, match="Google side no longer lists any of the 6"):
        plan(snap([], [], many_links(), google_complete=True))


def test_crm_listing_nothing_while_links_exist_stops_the_run():
    with pytest.raises(SideEmpty, match="CRM side"):
        plan(snap([], [], many_links(), crm_complete=True))


def test_force_overrides_the_guard():
    got = plan(snap([], [], many_links(), google_complete=True), force=True)
    assert len(got) == 6 and all(isinstance(a, Untag) for a in got)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_a_complete_google_listing_without_any_linked_person_stops_the_run_for_any_number(n):
    with pytest.raises(SideEmpty, match=f"any of the {n} linked contacts"):
        plan(snap([], [], many_links(n), google_complete=True))


def test_a_complete_crm_listing_without_any_linked_contact_stops_the_run_for_any_number():
    with pytest.raises(SideEmpty, match="CRM side no longer lists any of the 1"):
        plan(snap([], [], many_links(1), crm_complete=True))


def test_a_few_links_deleted_in_google_incrementally_are_untagged_without_the_guard():
    people = [person(f"people/c{i}", deleted=True) for i in range(3)]
    got = plan(snap([], people, many_links(3)))
    assert len(got) == 3 and all(isinstance(a, Untag) for a in got)


def test_guard_ignores_partial_drops():
    people = [person("people/c0")]
    assert len(plan(snap([], people, many_links(), google_complete=True))) == 5


# --- the CRM read window ----------------------------------------------------------------------


def test_crm_window_overlaps_until_the_cursor_has_settled():
    from core.gather import crm_window
    from core.ports import Filter

    assert crm_window(None, None) == []  # first run: everything
    fresh = crm_window("2024-05-01T10:00:00.000000Z", "2024-05-01T10:01:00.000000Z")
    assert fresh == [Filter("modifiedAt", ">=", "2024-05-01T09:55:00.000000Z")]
    settled = crm_window("2024-05-01T10:00:00.000000Z", "2024-05-01T10:06:00.000000Z")
    assert settled == [Filter("modifiedAt", ">", "2024-05-01T10:00:00.000000Z")]
    assert crm_window("2024-05-01T10:00:00Z", None)[0].op == ">="  # no read time known


# --- parked links: a dissolved pair comes back together ------------------------------------


def parked(cid="c1", name="people/c1", fields=None):
    lk = link(cid, name, fields)
    return LinkRecord(lk.crm_id, lk.resource_name, lk.etag, lk.fingerprint, lk.fields, True)


def test_retagged_contact_rejoins_its_old_person_instead_of_a_duplicate():
    outside = person(in_group=False, groups={"contactGroups/myContacts"}, etag="e5")
    got = plan(snap([crm()], [outside], [parked()]))
    assert len(got) == 1 and got[0].reason == "rejoined"
    assert got[0].join_group and not got[0].tag and got[0].resource_name == "people/c1"


def test_person_moved_back_into_the_group_rejoins_its_old_contact():
    got = plan(snap([crm(tagged=False)], [person()], [parked()]))
    assert len(got) == 1 and got[0].crm_id == "c1" and got[0].tag and not got[0].join_group


def test_rejoin_merges_what_changed_while_parked():
    got = plan(snap([crm(fields=f(jobTitle="CTO"))], [person(in_group=False, fields=f(notes="n"))],
                    [parked()]))  # fmt: skip
    assert got[0].fields == f(jobTitle="CTO", notes="n") and got[0].write_google


def test_retagged_contact_whose_old_person_is_gone_is_pushed_anew():
    assert plan(snap([crm()], [person(deleted=True)], [parked()])) == [do.CreatePerson("c1", f())]


def test_parked_links_are_quiet_otherwise():
    assert plan(snap([crm(tagged=False)], [person(in_group=False)], [parked()])) == []
    assert plan(snap([], [], [parked()] * 1, google_complete=True, crm_complete=True)) == []


# --- found by review -----------------------------------------------------------------------


def test_most_recent_policy_keeps_a_one_sided_edit_whatever_the_record_times():
    later = T0 + timedelta(hours=1)  # the CRM record moved (say, another tag), fields did not
    got = plan(snap([crm(at=later)], [person(fields=f(jobTitle="Countess"), at=T0, etag="e2")],
                    [link()]), Policy.MOST_RECENT)  # fmt: skip
    assert got[0].fields["jobTitle"] == "Countess" and not got[0].write_google


def test_a_deleted_crm_contact_is_never_linked_by_email_or_by_our_id():
    gone = CrmContact("c5", f(), False, T0, frozenset({"ada@example.com"}), deleted=True)
    got = plan(snap([gone], [person("people/c9")], by_email={"ada@example.com": ("c5",)}))
    assert got == [do.ImportPerson("people/c9", "e1", f())]
    got = plan(snap([gone], [person("people/c9", crm_id="c5")]))
    assert got == [do.ImportPerson("people/c9", "e1", f())]


def test_a_new_private_tag_may_take_every_contact_out_of_the_group_without_the_guard():
    contacts = [crm(f"c{i}", tagged=False) for i in range(6)]
    untagged = Snapshot({c.id: c for c in contacts}, {}, {lk.crm_id: lk for lk in many_links()},
                        GROUP, crm_complete=True, retagged=True)  # fmt: skip
    got = plan(untagged)
    assert len(got) == 6 and all(isinstance(a, LeaveGroup) for a in got)
    with pytest.raises(SideEmpty, match="CRM side"):
        plan(Snapshot(untagged.crm, {}, untagged.links, GROUP, crm_complete=True))


# --- Google data the CRM cannot hold (issue 9) --------------------------------------------


def test_only_the_person_fields_that_change_are_planned_for_google():
    got = plan(snap([crm(fields=f(jobTitle="CEO", notes="n"))], [], [link()]))
    assert got[0].person_fields == ("biographies", "organizations")
    got = plan(snap([], [person(fields=f(notes="n"), etag="e2")], [link()]))
    assert got[0].person_fields == () and not got[0].write_google


def test_a_yearless_google_birthday_with_the_crm_month_and_day_is_no_edit_on_either_side():
    from dataclasses import replace

    synced = f(birthday="1815-12-10")
    yearless = replace(person(fields=f(), etag="e2"), yearless_birthday="--12-10")
    got = plan(snap([crm(fields=synced)], [yearless], [link(fields=synced)]))
    assert got == [do.Reconcile("c1", "people/c1", "e2", synced, False, False, reason="etag")]
    edited = plan(snap([crm(fields=f(birthday="1815-12-10", jobTitle="Countess"))], [yearless],
                       [link(fields=synced)]))  # fmt: skip
    assert edited[0].person_fields == ("organizations",) and not edited[0].write_crm
    other_day = replace(yearless, yearless_birthday="--12-11")
    moved = plan(snap([crm(fields=synced)], [other_day], [link(fields=synced)]))
    assert moved[0].fields["birthday"] is None and moved[0].write_crm  # a Google edit


def test_linking_by_email_takes_a_matching_yearless_birthday_as_equal():
    from dataclasses import replace

    contact = crm("c5", fields=f(birthday="1815-12-10"), tagged=False)
    yearless = replace(person("people/c9"), yearless_birthday="--12-10")
    got = plan(snap([contact], [yearless], by_email={"ada@example.com": ("c5",)}))
    assert got[0].reason == "email" and not got[0].write_google


# --- a new contact whose email a person outside the group holds (issue 9, item 7) ---------


def outside(name="people/c9", **kw):
    return person(name, in_group=False, groups={"contactGroups/myContacts"}, **kw)


def test_a_tagged_contact_whose_email_a_person_outside_the_group_holds_joins_it():
    got = plan(snap([crm("c1", fields=f(jobTitle="CTO"))], [outside(fields=f(notes="n"))],
                    google_complete=True))  # fmt: skip
    assert len(got) == 1 and isinstance(got[0], Reconcile)
    assert (got[0].resource_name, got[0].reason, got[0].join_group, got[0].tag) == (
        "people/c9", "email", True, False)  # fmt: skip
    assert got[0].fields == f(jobTitle="CTO", notes="n")


def test_a_person_found_by_search_on_an_incremental_run_is_linked_the_same_way():
    found = Snapshot({"c1": crm("c1")}, {}, {}, GROUP, found={"people/c9": outside()})
    (action,) = plan(found)
    assert action.resource_name == "people/c9" and action.join_group and action.reason == "email"


def test_several_persons_with_its_emails_create_nothing_and_say_so():
    got = plan(snap([crm("c1")], [outside("people/c8"), outside("people/c9")],
                    google_complete=True))  # fmt: skip
    assert got == [do.AmbiguousEmail("c1", ("people/c8", "people/c9"),
                                  "several Google contacts have its emails")]  # fmt: skip


def test_a_person_holding_the_emails_of_several_new_contacts_is_taken_by_none():
    got = plan(snap([crm("c1"), crm("c2")], [outside()], google_complete=True))
    assert [type(a) for a in got] == [AmbiguousEmail, AmbiguousEmail]
    assert {a.crm_id for a in got} == {"c1", "c2"}


def test_a_person_linked_to_another_contact_is_never_taken_even_parked():
    other = link("c7", "people/c9")
    assert plan(snap([crm("c1")], [outside()], [parked("c7", "people/c9")])) == [
        do.CreatePerson("c1", f())
    ]
    got = plan(snap([crm("c1"), crm("c7")], [person("people/c9")], [other]))
    assert do.CreatePerson("c1", f()) in got


def test_a_person_with_only_other_emails_is_no_match():
    got = plan(snap([crm("c1")], [outside(emails=("ada@other.example",))], google_complete=True))
    assert got[-1] == do.CreatePerson("c1", f())


def test_with_the_account_confirmed_an_only_contact_deleted_in_google_is_untagged():
    """A user whose one synced contact is gone on a full pass is not stuck (review)."""
    one = Snapshot({}, {}, {"c1": link()}, GROUP, google_complete=True, account_confirmed=True)
    assert plan(one) == [do.Untag("c1", "people/c1", park=False)]
    many = Snapshot({}, {}, {lk.crm_id: lk for lk in many_links()}, GROUP,
                    google_complete=True, account_confirmed=True)  # fmt: skip
    with pytest.raises(SideEmpty):
        plan(many)
