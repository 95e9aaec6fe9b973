"""What a Person keeps of the raw person (``contacts_exec.current_values``, packed as
JSON) builds the same update bodies as the raw person itself, for every mask."""

from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st

from core import contact_mapping as cm
from core import person_patch
from core.contacts_exec import Packed, current_values, person_from_api
from tests.unit.test_contact_mapping import fields as crm_fields

SOURCE = {"type": "CONTACT", "id": "1a", "etag": "#x"}
PROFILE = {"type": "PROFILE", "id": "9"}
MASKS = [m for n in range(1, 4) for m in combinations(cm.UPDATE_FIELDS.split(","), n)]


def meta(primary=False, source=SOURCE):
    return {"metadata": {"primary": primary, "sourcePrimary": primary, "source": source}}


def raw_person(fields, extras: bool) -> dict:
    person = {"resourceName": "people/c26", "etag": "%e1",
              "metadata": {"sources": [{**SOURCE, "updateTime": "2026-01-01T00:00:00Z"}]},
              "memberships": [{**meta(), "contactGroupMembership": {
                  "contactGroupResourceName": "contactGroups/abc"}}],
              "clientData": [{**meta(), "key": cm.CLIENT_DATA_KEY, "value": "c-1"}]}  # fmt: skip
    for name, items in cm.to_person(fields).items():
        person[name] = [{**meta(i == 0), **item} for i, item in enumerate(items)]
    if extras:
        person["names"] = [{**(person["names"] or [meta(True)])[0], "honorificPrefix": "Dr.",
                            "displayName": "X", "unstructuredName": "X"}]  # fmt: skip
        person["emailAddresses"] = [*person["emailAddresses"],
                                    {**meta(source=PROFILE), "value": "p@x.example"},
                                    {**meta(), "value": "b@x.example", "displayName": "B",
                                     "canonicalForm": "b@x.example"}]  # fmt: skip
        person["phoneNumbers"] = [{**meta(), "value": "+1 555", "canonicalForm": "+1555"},
                                  *person["phoneNumbers"]]  # fmt: skip
        person["organizations"] = [*person["organizations"], {**meta(), "name": "Second"}]
    return person


@given(crm_fields, crm_fields, st.booleans())
def test_current_values_build_the_bodies_the_raw_person_builds(before, after, extras):
    raw = raw_person(before, extras)
    kept = Packed(current_values(raw))
    target = cm.normalize(after)
    for mask in MASKS:
        assert person_patch.body(kept, target, mask) == person_patch.body(raw, target, mask)


def test_a_person_keeps_no_reference_to_the_listing():
    raw = raw_person(cm.normalize({"givenName": "Ada", "emails": [{"value": "a@x.example"}]}),
                     True)  # fmt: skip
    person = person_from_api(raw, "contactGroups/abc")
    assert isinstance(person.raw, Packed) and person.raw["etag"] == "%e1"
    assert "metadata" not in person.raw and "memberships" not in person.raw
    assert person.in_group and person.crm_id == "c-1" and person.fields == cm.from_person(raw)
