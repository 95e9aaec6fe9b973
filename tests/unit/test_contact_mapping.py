"""CRM <-> People field mapping: lossless round trip and a stable fingerprint."""

from hypothesis import given
from hypothesis import strategies as st

from core import contact_mapping as cm

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda s: s.strip() == s and s)
maybe = st.none() | text
kind = st.none() | st.sampled_from(["home", "work", "mobile", "other", "Custom label"])
emails = st.lists(
    st.builds(
        lambda u, k: {"value": f"{u}@example.com", "type": k},
        st.from_regex(r"[a-z0-9._]{1,12}", fullmatch=True),
        kind,
    ),
    max_size=3,
)
phones = st.lists(st.builds(lambda v, k: {"value": v, "type": k}, text, kind), max_size=3)
address = st.fixed_dictionaries({k: maybe for k in cm.ADDRESS_KEYS}).filter(
    lambda a: any(a.values())
)
birthday = st.none() | st.dates().filter(lambda d: d.year >= 1).map(lambda d: d.isoformat())
fields = st.fixed_dictionaries(
    {
        "givenName": maybe, "familyName": maybe, "middleName": maybe,
        "company": maybe, "jobTitle": maybe, "department": maybe,
        "notes": maybe, "birthday": birthday,
        "emails": emails, "phones": phones, "addresses": st.lists(address, max_size=2),
    }
)  # fmt: skip


@given(fields)
def test_crm_to_google_to_crm_is_lossless(crm):
    assert cm.from_person(cm.to_person(crm)) == cm.normalize(crm)


@given(fields)
def test_fingerprint_is_stable_across_the_round_trip(crm):
    assert cm.fingerprint(cm.from_person(cm.to_person(crm))) == cm.fingerprint(cm.normalize(crm))


def test_fingerprint_ignores_whitespace_and_empty_entries_but_sees_edits():
    base = {"givenName": "Ada", "emails": [{"value": "ada@example.com"}]}
    noisy = {
        "givenName": " Ada ",
        "emails": [{"value": "ada@example.com"}, {"value": ""}],
        "phones": [],
        "notes": "",
    }
    fp = cm.fingerprint
    assert fp(cm.normalize(base)) == fp(cm.normalize(noisy))
    assert fp(cm.normalize(base)) != fp(cm.normalize({**base, "givenName": "Ada B."}))


def test_person_shape_for_a_full_contact():
    person = cm.to_person(
        {
            "givenName": "Ada", "familyName": "Lovelace", "company": "Analytical",
            "jobTitle": "Engineer", "birthday": "1815-12-10", "notes": "First programmer",
            "addresses": [{"street": "1 St James's Sq", "city": "London", "type": "home"}],
        }
    )  # fmt: skip
    assert person["names"] == [{"givenName": "Ada", "familyName": "Lovelace"}]
    assert person["organizations"] == [{"name": "Analytical", "title": "Engineer"}]
    assert person["birthdays"] == [{"date": {"year": 1815, "month": 12, "day": 10}}]
    assert person["biographies"] == [{"value": "First programmer", "contentType": "TEXT_PLAIN"}]
    assert person["addresses"] == [
        {"streetAddress": "1 St James's Sq", "city": "London", "type": "home"}
    ]


def test_primary_item_wins_for_singletons_and_client_data_is_found():
    person = {
        "names": [{"givenName": "Other"}, {"givenName": "Main", "metadata": {"primary": True}}],
        "clientData": [{"key": "x", "value": "1"}, {"key": cm.CLIENT_DATA_KEY, "value": "c7"}],
        "memberships": [
            {"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}}
        ],
    }
    assert cm.from_person(person)["givenName"] == "Main"
    assert cm.client_data_id(person) == "c7"
    assert cm.group_names(person) == {"contactGroups/myContacts"}


def test_yearless_google_birthday_is_not_invented():
    assert cm.from_person({"birthdays": [{"date": {"month": 3, "day": 4}}]})["birthday"] is None
