"""Updates written into the person's current values: what the CRM cannot hold survives."""

from hypothesis import given

from core import contact_mapping as cm
from core import person_patch
from tests.unit.test_contact_mapping import fields as crm_fields

SOURCE = {"type": "CONTACT", "id": "1a"}


def meta(primary=False):
    return {"metadata": {"primary": primary, "source": SOURCE}}


def person(**fields):
    return {"resourceName": "people/c26", "etag": "%e1", **fields}


def apply(current, body, mask):
    """What Google holds after the update: the listed fields replaced wholesale."""
    return {**current, **{name: body.get(name, []) for name in mask}}


def write(current, **changes):
    """Bring ``current``'s synced fields to ``changes`` the way the executor does."""
    target = {**cm.from_person(current), **changes}
    mask = cm.changed_person_fields(cm.from_person(current), cm.normalize(target))
    return person_patch.body(current, target, mask), mask


def test_a_crm_name_edit_keeps_the_google_name_prefix_suffix_and_phonetic_name():
    current = person(names=[{**meta(True), "givenName": "Grace", "familyName": "Hopper",
                             "honorificPrefix": "Rear Adm.", "honorificSuffix": "PhD",
                             "phoneticGivenName": "GRAY-s", "displayName": "Grace Hopper",
                             "unstructuredName": "Grace Hopper"}])  # fmt: skip
    body, mask = write(current, middleName="Brewster")
    assert mask == ("names",)
    assert body == {"etag": "%e1", "names": [{"givenName": "Grace", "familyName": "Hopper",
                    "middleName": "Brewster", "honorificPrefix": "Rear Adm.",
                    "honorificSuffix": "PhD", "phoneticGivenName": "GRAY-s"}]}  # fmt: skip


def test_a_crm_job_title_edit_keeps_the_second_organization_and_the_primary_first():
    current = person(organizations=[
        {**meta(), "name": "Yale", "title": "Alumna"},
        {**meta(True), "name": "US Navy", "title": "Officer", "location": "Arlington"},
    ])  # fmt: skip
    body, mask = write(current, jobTitle="Rear Admiral")
    assert mask == ("organizations",)
    assert body["organizations"] == [
        {"name": "US Navy", "title": "Rear Admiral", "location": "Arlington"},
        {"name": "Yale", "title": "Alumna"},
    ]


def test_clearing_the_crm_organization_keeps_the_other_organizations():
    current = person(organizations=[{**meta(True), "name": "US Navy"}, {"name": "Yale"}])
    body, _ = write(current, company=None)
    assert body["organizations"] == [{"name": "Yale"}]


def test_an_edit_elsewhere_writes_only_that_field_and_never_the_yearless_birthday():
    bio = {**meta(True), "value": "x", "contentType": "TEXT_PLAIN"}
    current = person(birthdays=[{**meta(True), "date": {"month": 12, "day": 9}}], biographies=[bio])
    body, mask = write(current, notes="Found a moth")
    assert mask == ("biographies",) and "birthdays" not in body


def test_a_crm_birthday_replaces_the_date_and_keeps_nothing_stale():
    current = person(birthdays=[{**meta(True), "date": {"month": 12, "day": 9}, "text": "Dec 9"}])
    body, _ = write(current, birthday="1906-12-09")
    assert body["birthdays"] == [{"date": {"year": 1906, "month": 12, "day": 9}}]


def test_email_and_phone_entries_keep_what_we_do_not_map_matched_by_identity():
    current = person(
        emailAddresses=[{**meta(True), "value": "Grace@Navy.example", "displayName": "Amazing"},
                        {**meta(), "value": "old@navy.example"}],
        phoneNumbers=[{**meta(True), "value": "+1 (555) 0100", "type": "work",
                       "formattedType": "Work", "canonicalForm": "+15550100"}],
    )  # fmt: skip
    body, mask = write(
        current,
        emails=[{"value": "gh@yale.example"}, {"value": "grace@navy.example", "type": "work"}],
        phones=[{"value": "+15550100", "type": "mobile"}],
    )
    assert mask == ("emailAddresses", "phoneNumbers")
    assert body["emailAddresses"] == [
        {"value": "gh@yale.example"},
        {"value": "grace@navy.example", "displayName": "Amazing", "type": "work"},
    ]
    assert body["phoneNumbers"] == [{"value": "+15550100", "type": "mobile"}]


def test_an_edited_address_keeps_its_extra_lines_and_drops_what_google_derives():
    home = {"streetAddress": "1 Main St", "city": "Boston", "type": "home", "poBox": "7"}
    work = {"streetAddress": "1 Navy Yard", "city": "Arlington", "country": "US",
            "countryCode": "US", "type": "work", "extendedAddress": "Building 3",
            "formattedValue": "1 Navy Yard\nArlington\nUS"}  # fmt: skip
    current = person(addresses=[{**meta(True), **work}, {**meta(), **home}])
    edited = [{"street": "1 Navy Yard", "city": "Washington", "country": "USA", "type": "work"},
              {"street": "1 Main St", "city": "Boston", "type": "home"}]  # fmt: skip
    body, _ = write(current, addresses=edited)
    assert body["addresses"] == [
        {"streetAddress": "1 Navy Yard", "city": "Washington", "country": "USA", "type": "work",
         "extendedAddress": "Building 3"},
        home,
    ]  # fmt: skip


def test_items_of_another_source_are_not_written_back():
    profile = {"metadata": {"source": {"type": "PROFILE", "id": "9"}}, "value": "p@x.example"}
    current = person(emailAddresses=[profile, {**meta(True), "value": "c@x.example"}])
    body, _ = write(current, emails=[{"value": "c@x.example"}, {"value": "new@x.example"}])
    assert body["emailAddresses"] == [{"value": "c@x.example"}, {"value": "new@x.example"}]


EXTRAS = {"honorificPrefix": "Dr.", "phoneticFamilyName": "HOP-er"}


@given(crm_fields, crm_fields)
def test_google_reads_back_the_target_and_keeps_what_the_crm_cannot_hold(before, after):
    current = person(**cm.to_person(before))
    current["names"] = [{**(current["names"] or [{}])[0], **EXTRAS}]
    current["organizations"] = [*(current["organizations"] or [{"name": "First"}]),
                                {"name": "Second Org"}]  # fmt: skip
    current["nicknames"] = [{"value": "Nick"}]
    target = cm.normalize(after)
    mask = cm.changed_person_fields(cm.from_person(current), target)
    result = apply(current, person_patch.body(current, target, mask), mask)
    emptied_org = not (target["company"] or target["jobTitle"] or target["department"])
    assert cm.from_person(result) == target or emptied_org  # the next one is then primary
    assert {k: result["names"][0].get(k) for k in EXTRAS} == EXTRAS
    assert {"name": "Second Org"} in result["organizations"]
    assert result["nicknames"] == [{"value": "Nick"}]
