"""CRM -> Google -> CRM is lossless for every synced field, through the real People API
shape: the person is created in the sandbox, read back, and mapped home again."""

from hypothesis import HealthCheck, given, settings

from core import contact_mapping as cm
from tests.unit.test_contact_mapping import fields


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(crm=fields)
def test_round_trip_through_the_sandbox_is_lossless(account, crm):
    body = {**cm.to_person(crm), "clientData": [{"key": cm.CLIENT_DATA_KEY, "value": "c1"}]}
    created = account.people.people().createContact(body=body).execute()
    read = (
        account.people.people()
        .get(resourceName=created["resourceName"], personFields=cm.PERSON_FIELDS)
        .execute()
    )
    assert cm.from_person(read) == cm.normalize(crm)
    assert cm.client_data_id(read) == "c1"
