"""The planners' fast path (fields equal to the link's count as unchanged without a
fingerprint) plans exactly what the fingerprints alone plan, on random snapshots."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import activities_plan as ap
from core import activity_mapping as am
from core import contact_mapping as cm
from core import contacts_plan as cp
from core import pairs
from core.errors import SideEmpty
from core.merge import Policy

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
TIMES = st.sampled_from([None, T0, T0 + timedelta(hours=1)])
POLICIES = st.sampled_from(list(Policy))


def outcome(planner, snap, policy, force):
    """What a plan says, comparable across runs: its actions, or the guard's refusal."""
    try:
        return repr(planner(snap, policy, force))
    except SideEmpty as e:
        return f"SideEmpty({e})"


# --- contacts --------------------------------------------------------------------------

GROUP = "contactGroups/crm"
CRM_IDS = ("c1", "c2", "c3")
NAMES = ("people/p1", "people/p2", "people/p3")
_CONTACTS = (
    {"givenName": "Ada", "emails": [{"value": "ada@example.com"}]},
    {"givenName": "Ada", "jobTitle": "CTO", "emails": [{"value": "ada@example.com"}]},
    {"givenName": "Ada", "emails": [{"value": "ada@example.com"}, {"value": "a@b.org"}]},
    {"givenName": "Bob", "birthday": "1990-05-04", "emails": [{"value": "bob@example.com"}]},
    {"givenName": "Bob", "emails": [{"value": "bob@example.com"}]},
)


def contact_fields(i: int) -> cm.ContactFields:
    """Variant ``i``, as a fresh object each time: equal fields are never the same dict."""
    return cm.normalize(_CONTACTS[i])


variant = st.integers(0, len(_CONTACTS) - 1)


@st.composite
def contacts_world(draw):
    links = {}
    for cid in draw(st.lists(st.sampled_from(CRM_IDS), unique=True)):
        links[cid] = (draw(st.sampled_from(NAMES)), draw(st.sampled_from(["e1", "e2", None])),
                      draw(variant), draw(st.booleans()))  # fmt: skip
    crm = {
        cid: (draw(variant), draw(st.booleans()), draw(st.booleans()), draw(TIMES) or T0)
        for cid in draw(st.lists(st.sampled_from(CRM_IDS), unique=True))
    }
    people = {
        name: (
            draw(st.sampled_from(["e1", "e2"])),
            draw(variant),
            draw(st.booleans()),  # in the group
            draw(st.booleans()),  # deleted
            draw(TIMES),
            draw(st.sampled_from((None, *CRM_IDS))),
            draw(st.sampled_from([None, "--05-04", "--06-01"])),
            draw(st.booleans()),  # in another group too
        )
        for name in draw(st.lists(st.sampled_from(NAMES), unique=True))
    }
    flags = draw(st.fixed_dictionaries({
        "crm_complete": st.booleans(), "google_complete": st.booleans(),
        "retagged": st.booleans(), "account_confirmed": st.booleans(),
        "search_failed": st.sampled_from(["", "refused"]),
    }))  # fmt: skip
    return links, crm, people, flags


def contacts_snapshot(world) -> cp.Snapshot:
    links, crm, people, flags = world
    link_records = {}
    for cid, (name, etag, v, parked) in links.items():
        fields = contact_fields(v)
        link_records[cid] = cp.LinkRecord(cid, name, etag, cm.fingerprint(fields), fields, parked)
    contacts = {}
    for cid, (v, tagged, deleted, at) in crm.items():
        fields = contact_fields(v)
        emails = frozenset(e["value"] for e in fields["emails"])
        contacts[cid] = cp.CrmContact(cid, fields, tagged and not deleted, at, emails, deleted)
    persons = {}
    for name, (etag, v, in_group, deleted, at, crm_id, yearless, other) in people.items():
        fields = contact_fields(v)
        groups = ({GROUP} if in_group else set()) | ({"contactGroups/x"} if other else set())
        emails = frozenset(e["value"] for e in fields["emails"])
        persons[name] = cp.Person(name, etag, fields, in_group, deleted, at, crm_id,
                                  frozenset(groups), emails, yearless)  # fmt: skip
    by_email: dict[str, tuple[str, ...]] = {}
    for contact in contacts.values():
        for email in sorted(contact.emails):
            by_email[email] = (*by_email.get(email, ()), contact.id)
    return cp.Snapshot(contacts, persons, link_records, GROUP, by_email=by_email, **flags)


def contacts_by_fingerprint(snap, policy, force):
    """The contacts planner with every comparison made on fingerprints."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cp, "_quiet", lambda *args: False)
        mp.setattr(pairs, "same", lambda fields, synced, fp: cm.fingerprint(fields) == fp)
        mp.setattr(pairs, "differ", lambda a, b: cm.fingerprint(a) != cm.fingerprint(b))
        return outcome(cp.plan, snap, policy, force)


@settings(max_examples=max(300, settings.default.max_examples))
@given(contacts_world(), POLICIES, st.booleans())
def test_contacts_fast_path_plans_what_fingerprints_plan(world, policy, force):
    snap = contacts_snapshot(world)
    assert outcome(cp.plan, snap, policy, force) == contacts_by_fingerprint(snap, policy, force)


def test_unchanged_contact_pairs_take_no_fingerprint(monkeypatch):
    world = (
        {cid: (name, "e1", 0, False) for cid, name in zip(CRM_IDS, NAMES, strict=True)},
        {cid: (0, True, False, T0) for cid in CRM_IDS},
        {name: ("e1", 0, True, False, T0, None, None, False) for name in NAMES},
        {"crm_complete": True, "google_complete": True},
    )
    snap = contacts_snapshot(world)
    for module in (cp, pairs):
        monkeypatch.setattr(module, "fingerprint", lambda fields: pytest.fail("fingerprinted"))
    assert cp.plan(snap) == []


# --- activities ------------------------------------------------------------------------

ACTIVITY_IDS = ("a1", "a2", "a3")
EVENT_IDS = ("e1", "e2", "e3")
EMAILS = ("u@example.com", "o@example.com", "")
_BASE = {"title": "Meeting", "start": "2026-05-04T09:00:00Z", "end": "2026-05-04T10:00:00Z",
         "timeZone": "Europe/Berlin"}  # fmt: skip
_ACTIVITIES = (
    _BASE,
    {**_BASE, "title": "Moved"},
    {**_BASE, "canceled": True},
    {**_BASE, "attendees": [{"email": "a@example.com", "response": "accepted"}]},
    {"canceled": True},  # a cancelled event as an incremental listing gives it
)


def activity_fields(i: int) -> am.ActivityFields:
    return am.normalize(_ACTIVITIES[i])


act_variant = st.integers(0, len(_ACTIVITIES) - 1)


@st.composite
def activities_world(draw):
    links = {
        aid: (
            draw(st.sampled_from(EVENT_IDS)),
            draw(st.sampled_from(["1", "2", None])),
            draw(act_variant),
            draw(st.booleans()),  # tombstone
            draw(st.sampled_from([None, 0, 1, 2])),  # not propagated: a variant's fingerprint
            draw(st.booleans()),  # read only
            draw(st.sampled_from(EMAILS)),
        )
        for aid in draw(st.lists(st.sampled_from(ACTIVITY_IDS), unique=True))
    }
    crm = {
        aid: (
            draw(act_variant),
            draw(st.booleans()),
            draw(st.booleans()),
            draw(st.booleans()),
            draw(TIMES) or T0,
        )
        for aid in draw(st.lists(st.sampled_from(ACTIVITY_IDS), unique=True))
    }
    events = {
        eid: (
            draw(st.sampled_from(["1", "2"])),
            draw(act_variant),
            draw(st.sampled_from(["i1", "i2", "i3"])),
            draw(st.booleans()),  # organizer self
            draw(st.sampled_from(EMAILS)),
            draw(st.booleans()),  # cancelled
            draw(st.booleans()),  # in the window
            draw(TIMES),
            draw(st.sampled_from((None, *ACTIVITY_IDS))),
        )
        for eid in draw(st.lists(st.sampled_from(EVENT_IDS), unique=True))
    }
    shared = draw(st.dictionaries(st.sampled_from(["i1", "i2", "i3"]),
                                  st.sampled_from(ACTIVITY_IDS)))  # fmt: skip
    flags = draw(st.fixed_dictionaries({
        "crm_complete": st.booleans(), "google_complete": st.booleans(),
        "account_confirmed": st.booleans(),
        "connected": st.frozensets(st.sampled_from(EMAILS[:2])),
        "gone": st.frozensets(st.sampled_from(EVENT_IDS)),
    }))  # fmt: skip
    return links, crm, events, shared, flags


def activities_snapshot(world) -> ap.ActivitySnapshot:
    links, crm, events, shared, flags = world
    link_records = {}
    for aid, (eid, etag, v, tomb, np, read_only, organizer) in links.items():
        fields = activity_fields(v)
        propagated = None if np is None else am.fingerprint(activity_fields(np))
        link_records[aid] = ap.EventLink(aid, eid, etag, am.fingerprint(fields), fields, tomb,
                                         propagated, read_only, organizer)  # fmt: skip
    activities = {
        aid: ap.CrmActivity(aid, activity_fields(v), in_scope, gone, owned, at)
        for aid, (v, in_scope, gone, owned, at) in crm.items()
    }
    cal = {
        eid: ap.CalEvent(
            eid, etag, activity_fields(v), ical, me, organizer, cancelled, window, at, aid
        )
        for eid, (etag, v, ical, me, organizer, cancelled, window, at, aid) in events.items()
    }
    return ap.ActivitySnapshot(activities, cal, link_records, shared=shared, **flags)


def activities_by_fingerprint(snap, policy, force):
    """The activities planner with every comparison made on fingerprints."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ap, "_quiet", lambda *args: False)
        mp.setattr(pairs, "same", lambda fields, synced, fp: am.fingerprint(fields) == fp)
        mp.setattr(pairs, "differ", lambda a, b: am.fingerprint(a) != am.fingerprint(b))
        return outcome(ap.plan, snap, policy, force)


@settings(max_examples=max(300, settings.default.max_examples))
@given(activities_world(), POLICIES, st.booleans())
def test_activities_fast_path_plans_what_fingerprints_plan(world, policy, force):
    snap = activities_snapshot(world)
    assert outcome(ap.plan, snap, policy, force) == activities_by_fingerprint(snap, policy, force)


def test_unchanged_activity_pairs_take_no_fingerprint(monkeypatch):
    world = (
        {aid: (eid, "1", 0, False, None, False, "u@example.com")
         for aid, eid in zip(ACTIVITY_IDS, EVENT_IDS, strict=True)},
        {aid: (0, True, False, True, T0) for aid in ACTIVITY_IDS},
        {eid: ("1", 0, "i" + eid, True, "u@example.com", False, True, T0, None)
         for eid in EVENT_IDS},
        {},
        {"crm_complete": True, "google_complete": True},
    )  # fmt: skip
    snap = activities_snapshot(world)
    for module in (ap, pairs):
        monkeypatch.setattr(module, "fingerprint", lambda fields: pytest.fail("fingerprinted"))
    assert ap.plan(snap) == []
