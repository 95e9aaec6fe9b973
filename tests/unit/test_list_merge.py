"""Lists edited on both sides merge entry by entry (issue 9, item 10), on plain data."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.contact_mapping import LIST_ENTRIES
from core.merge import Policy, merge

T0 = datetime(2024, 5, 1, tzinfo=UTC)
TYPES = ["home", "work", None, "other"]


def email(i, v):
    entry = {"value": f"{'U' if v == 3 else 'u'}{i}@example.com"}  # case is no new identity
    return entry | ({"type": TYPES[v]} if TYPES[v] else {})


def phone(i, v):
    value = f"+1 555 01{i:02d}" if v % 2 else f"+1-555-01{i:02d}"  # formatting neither
    return {"value": value, "type": ["home", "work", "mobile", "other"][v]}


def address(i, v):
    return {"street": f"{i} Main St", "city": ["Boston", "Austin", "Berlin", "Lyon"][v],
            "type": f"t{i}"}  # fmt: skip


KINDS = {"emails": (email, True), "phones": (phone, True), "addresses": (address, False)}
# (entry maker, whether entries added on both sides with one identity are one entry)


def run(key, base, crm, google, crm_newer):
    crm_time, google_time = (T0 + timedelta(1), T0) if crm_newer else (T0, T0 + timedelta(1))
    merged = merge({key: base}, {key: crm}, {key: google}, crm_time, google_time,
                   Policy.FIELD_MOST_RECENT, LIST_ENTRIES)  # fmt: skip
    return merged.fields[key], merged.conflicts


OPS = st.one_of(st.just("keep"), st.just("delete"), st.integers(0, 3))  # an int: edit to it


@st.composite
def scenario(draw, key):
    make, _ = KINDS[key]
    variants = draw(st.dictionaries(st.integers(0, 5), st.integers(0, 3), max_size=4))
    base = {i: make(i, v) for i, v in variants.items()}
    sides = []
    for _side in ("crm", "google"):
        ops = {i: draw(OPS) for i in base}
        kept = {i: base[i] if op == "keep" else make(i, op) for i, op in ops.items()
                if op != "delete"}  # fmt: skip
        added = draw(st.dictionaries(st.integers(10, 13), st.integers(0, 3), max_size=2))
        entries = [*kept.values(), *(make(i, v) for i, v in added.items())]
        order = draw(st.permutations(entries))
        sides.append((kept, {i: make(i, v) for i, v in added.items()}, list(order)))
    return base, sides, draw(st.booleans())


def expected(key, base, sides, crm_newer):
    """The properties of issue 9, item 10, entry by entry."""
    (c_kept, c_added, _), (g_kept, g_added, _) = sides
    out = []
    for i, b in base.items():
        c, g = c_kept.get(i), g_kept.get(i)
        if c is None and g is None:
            continue  # deleted on both sides
        if c is None or g is None:  # deleted on one side
            other = g if c is None else c
            if other != b:
                out.append(other)  # ... and edited on the other: the edit is kept
            continue  # ... and untouched on the other: deleted
        if c == b or g == b:
            out.append(g if c == b else c)  # edited on one side only (or neither)
        else:
            out.append(c if crm_newer or c == g else g)  # both edited: most recent wins
    collapse = KINDS[key][1]
    for i in sorted(c_added.keys() | g_added.keys()):  # added on either side: kept
        c, g = c_added.get(i), g_added.get(i)
        if c and g and c != g and not collapse:
            out += [c, g]
        else:
            out.append((c if crm_newer else g) if c and g else (c or g))
    return out


def as_bag(entries):
    return sorted(map(repr, entries))


@pytest.mark.parametrize("key", list(KINDS))
@given(data=st.data())
def test_lists_edited_on_both_sides_merge_entry_by_entry(key, data):
    base, sides, crm_newer = data.draw(scenario(key))
    crm, google = sides[0][2], sides[1][2]
    got, _ = run(key, list(base.values()), crm, google, crm_newer)
    assert as_bag(got) == as_bag(expected(key, base, sides, crm_newer))


@pytest.mark.parametrize("key", list(KINDS))
@given(data=st.data())
def test_a_list_changed_on_one_side_only_is_that_side_exactly(key, data):
    base, sides, crm_newer = data.draw(scenario(key))
    changed = sides[0][2]
    assert run(key, list(base.values()), changed, list(base.values()), crm_newer) == (changed, ())
    assert run(key, list(base.values()), list(base.values()), changed, crm_newer) == (changed, ())


def test_an_edit_made_to_different_entries_on_each_side_keeps_both():
    base = [{"value": "ada@example.com"}, {"value": "+44 20 7946 0001"}]
    emails = [{"value": "ada@example.com", "type": "work"}, {"value": "ada@home.example"}]
    crm = {"emails": emails, "phones": [{"value": "+44 20 7946 0001", "type": "mobile"}]}
    google = {"emails": [{"value": "ADA@example.com"}, {"value": "countess@example.com"}],
              "phones": [{"value": "+44 20 7946 0001"}, {"value": "+44 20 7946 0002"}]}  # fmt: skip
    got = merge({"emails": base[:1], "phones": base[1:]}, crm, google, T0, T0,
                Policy.FIELD_MOST_RECENT, LIST_ENTRIES)  # fmt: skip
    assert got.fields["emails"] == [
        {"value": "ada@example.com", "type": "work"},  # the CRM's edit (Google's case edit lost
        {"value": "ada@home.example"},  # to the newer CRM: the same entry edited on both)
        {"value": "countess@example.com"},
    ]
    assert got.fields["phones"] == [
        {"value": "+44 20 7946 0001", "type": "mobile"},
        {"value": "+44 20 7946 0002"},
    ]
    assert got.conflicts == ("emails",)


def test_an_address_edited_in_the_crm_and_another_added_in_google_are_both_kept():
    work = {"street": "1 Navy Yard", "city": "Arlington", "type": "work"}
    crm = [{**work, "city": "Washington"}]
    google = [work, {"street": "9 Elm St", "city": "Boston", "type": "home"}]
    got = merge({"addresses": [work]}, {"addresses": crm}, {"addresses": google}, T0, T0,
                entries=LIST_ENTRIES)  # fmt: skip
    assert got.fields["addresses"] == [crm[0], google[1]] and got.conflicts == ()


def test_without_entries_a_list_is_still_one_field():
    got = merge({"l": [1]}, {"l": [1, 2]}, {"l": [0]}, T0 + timedelta(1), T0)
    assert got.fields["l"] == [1, 2] and got.conflicts == ("l",)
