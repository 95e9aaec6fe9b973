"""The domain model: valid documents load; malformed ones name the document and field."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import MalformedDocument
from core.model import (
    CONTACTS,
    Activity,
    Contact,
    GoogleAccount,
    Link,
    SyncSettings,
    SyncState,
    Tag,
    User,
    link_id,
    load,
    load_each,
    state_id,
)

T0 = "2024-05-01T10:00:00Z"


def contact(**fields):
    return {"givenName": "Ada", "modifiedAt": T0, **fields}


def activity(**fields):
    base = {
        "title": "Call",
        "start": "2024-05-01T10:00:00+02:00",
        "end": "2024-05-01T11:00:00+02:00",
        "organizerId": "u1",
        "modifiedAt": T0,
    }
    return {**base, **fields}


def test_full_contact_loads_with_its_id():
    doc = contact(
        familyName="Lovelace",
        emails=[{"value": "ada@example.com", "type": "work"}],
        phones=[{"value": "+44 20 1234", "type": "mobile"}],
        addresses=[{"street": "1 St", "city": "London", "country": "UK", "type": "home"}],
        birthday="1815-12-10",
        tagIds=["t1"],
        unknownCrmField={"kept": "in the store, ignored here"},
    )
    loaded = load(Contact, CONTACTS, "c1", doc)
    assert loaded.id == "c1"
    assert loaded.emails[0].value == "ada@example.com"
    assert loaded.birthday == "1815-12-10"
    assert loaded.tagIds == ["t1"]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (contact(emails=[{"value": "not-an-email"}]), "emails.0.value"),
        (contact(modifiedAt="yesterday"), "modifiedAt"),
        (contact(modifiedAt="2024-05-01T10:00:00"), "modifiedAt"),
        (contact(modifiedAt="2024-05-01T12:00:00+02:00"), "modifiedAt"),
        (contact(birthday="1990-13-01"), "birthday"),
        (contact(tagIds="t1"), "tagIds"),
        ({"givenName": "no modifiedAt"}, "modifiedAt"),
        (contact(phones=[{"value": ""}]), "phones.0.value"),
    ],
)
def test_malformed_contact_names_document_and_field(doc, field):
    with pytest.raises(MalformedDocument) as caught:
        load(Contact, CONTACTS, "c9", doc)
    assert caught.value.collection == "contacts"
    assert caught.value.doc_id == "c9"
    assert caught.value.field == field
    assert f"contacts/c9: field '{field}'" in str(caught.value)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (activity(allDay=True), "start"),
        (activity(start="2024-05-02", end="2024-05-01", allDay=True), "end"),
        (activity(end="2024-05-01T09:00:00+02:00"), "end"),
        (activity(timeZone="Mars/Olympus"), "timeZone"),
        (activity(status="done"), "status"),
        (activity(participants=[{"response": "accepted"}]), "participants.0"),
        (activity(organizerId=None), "organizerId"),
    ],
)
def test_malformed_activity_names_field(doc, field):
    with pytest.raises(MalformedDocument) as caught:
        load(Activity, "activities", "a1", doc)
    assert caught.value.field == field


def test_all_day_activity_and_participants():
    loaded = load(
        Activity,
        "activities",
        "a1",
        activity(
            start="2024-05-01",
            end="2024-05-02",
            allDay=True,
            participants=[{"contactId": "c1", "email": "x@example.com", "response": "accepted"}],
        ),
    )
    assert loaded.allDay and loaded.participants[0].response == "accepted"


def test_private_tag_needs_owner():
    assert load(Tag, "tags", "t1", {"name": "Mine", "kind": "private", "ownerId": "u1"}).ownerId
    assert load(Tag, "tags", "t2", {"name": "All", "kind": "public"}).ownerId is None
    with pytest.raises(MalformedDocument) as caught:
        load(Tag, "tags", "t3", {"name": "Mine", "kind": "private"})
    assert caught.value.field == "ownerId"


def test_settings_defaults_and_bounds():
    settings = load(SyncSettings, "syncSettings", "u1", {})
    assert settings.contacts.intervalMinutes == 60 and not settings.activities.auto
    with pytest.raises(MalformedDocument) as caught:
        load(SyncSettings, "syncSettings", "u1", {"contacts": {"intervalMinutes": 1}})
    assert caught.value.field == "contacts.intervalMinutes"
    with pytest.raises(MalformedDocument) as caught:
        load(SyncSettings, "syncSettings", "u1", {"activities": {"syncFrom": "May 1"}})
    assert caught.value.field == "activities.syncFrom"


def test_other_documents_load():
    assert load(User, "users", "u1", {"email": "a@example.com", "timeZone": "Europe/Berlin"})
    account = {"refreshTokenCiphertext": "gAAA", "connectedAt": T0, "status": "reauth_required"}
    assert load(GoogleAccount, "googleAccounts", "u1", account).status == "reauth_required"
    state = {"userId": "u1", "section": "contacts", "lease": {"holder": "r1", "expiresAt": T0}}
    assert load(SyncState, "syncState", state_id("u1", "contacts"), state).lease.holder == "r1"
    link = {
        "userId": "u1",
        "section": "contacts",
        "crmId": "c1",
        "googleId": "people/c1",
        "syncedAt": T0,
    }
    assert load(Link, "links", link_id("u1", "contacts", "c1"), link).id == "u1:contacts:c1"


def test_load_each_skips_and_reports_bad_records():
    docs = [("c1", contact()), ("c2", contact(modifiedAt="soon")), ("c3", "not a dict")]
    good, bad = load_each(Contact, CONTACTS, docs)
    assert [c.id for c in good] == ["c1"]
    assert [(p.doc_id, p.field) for p in bad] == [("c2", "modifiedAt"), ("c3", "(document)")]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
contact_like = st.dictionaries(
    st.sampled_from([*list(Contact.model_fields), "x"]), json_values, max_size=10
)


@given(contact_like)
def test_any_json_document_loads_or_is_reported_never_crashes(doc):
    try:
        loaded = load(Contact, CONTACTS, "c1", doc)
    except MalformedDocument as problem:
        assert problem.field and problem.doc_id == "c1"
    else:
        assert loaded.modifiedAt == doc["modifiedAt"]


def test_token_key_names_pick_the_cipher(tmp_path):
    from adapters.tokens import FernetCipher, KmsCipher, cipher_for

    name = "projects/p/locations/europe-west1/keyRings/crmsync/cryptoKeys/refresh-tokens"
    assert isinstance(cipher_for(name, tmp_path), KmsCipher)
    assert isinstance(cipher_for(None, tmp_path), FernetCipher)
    assert (tmp_path / "token.key").exists()  # generated locally, mode 0600


def test_sync_from_dates_outside_ten_years_back_to_180_days_ahead_are_unusable():
    import datetime as dt

    from core.model import sync_from_problem

    today = dt.date(2026, 12, 2)
    for ok in ("2026-01-01", "2016-12-02", "2027-05-31"):
        assert sync_from_problem(ok, today, saving=True) is None
    assert "years back" in sync_from_problem("0001-01-01", today, saving=True)
    assert "years back" in sync_from_problem("2016-11-30", today, saving=True)
    assert "days ahead" in sync_from_problem("9999-12-31", today, saving=True)
    assert "days ahead" in sync_from_problem(dt.date(2027, 6, 1), today)
    assert sync_from_problem(None, today) is None


def test_a_sync_from_date_accepted_once_never_goes_bad_as_time_passes():
    import datetime as dt

    from core.model import sync_from_problem

    saved_on = dt.date(2026, 12, 2)
    assert sync_from_problem("2016-12-02", saved_on, saving=True) is None
    for years in (0, 1, 20):
        later = saved_on + dt.timedelta(days=365 * years + 1)
        assert sync_from_problem("2016-12-02", later) is None  # what a run checks
    assert "1970" in sync_from_problem("0001-01-01", saved_on)
