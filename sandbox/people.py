"""People API v1 of the sandbox: contacts (``people.*``) and, via ``people_groups``,
contact groups, at Google's paths (``/v1/people/...``, ``/v1/contactGroups/...``).

Handlers validate requests as Google does (GOOGLE_API.md section 3: required masks,
limits, etags, membership rules, exact error texts) and keep state in the caller's
``PeopleStore`` (``sandbox.people_store``). ``POST /_sandbox/people/settings`` flips the
behaviours Google leaves unverified (see ``people_store.DEFAULT_SETTINGS``).
The realism switches (``sandbox.realism``) reach connections.list: short pages,
the propagation delay of deltas, and the quota on the first page of a full sync.

Batch mutations (``batchCreateContacts``, ``batchUpdateContacts``) are all-or-nothing,
as Google documents with ``Batch*ContactsErrorDetails``: one bad contact fails the
request with a ``contactErrors`` map naming every bad one, and nothing is written.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox import people_groups, people_search
from sandbox.people_fields import (
    UPDATABLE,
    bad,
    clean_person,
    error_status,
    page_size,
    person_fields,
    read_mask,
    update_mask,
)
from sandbox.people_store import (
    DEFAULT_SETTINGS,
    KIND_CONNECTIONS,
    PeopleStore,
    PersonRecord,
    Snapshot,
    render_person,
    render_profile,
    settings,
    store_of,
)
from sandbox.realism import page_length
from sandbox.routing import PEOPLE, PLAIN, ApiError, Call, Reply, Router, fault_error, people_error

CONTACTS = "https://www.googleapis.com/auth/contacts"
READ_SCOPES = (CONTACTS, "https://www.googleapis.com/auth/contacts.readonly")
WRITE_SCOPES = (CONTACTS,)
SORT_ORDERS = (
    "LAST_MODIFIED_ASCENDING",
    "LAST_MODIFIED_DESCENDING",
    "FIRST_NAME_ASCENDING",
    "LAST_NAME_ASCENDING",
)
MAX_BATCH_GET = 200
MAX_BATCH_MUTATE = 200
MAX_BATCH_DELETE = 500
_CONTACT_NAME = re.compile(r"^people/c\d+$")
_ERROR_DETAILS = "type.googleapis.com/google.people.v1."


# -- shared helpers -------------------------------------------------------------------


def contact(store: PeopleStore, name: str) -> PersonRecord:
    """A live contact of the caller; 400 for a name that is no contact's, 404 if unknown."""
    if not _CONTACT_NAME.match(name):
        raise bad(f"Resource name {name!r} is not a valid contact person resource name.")
    return store.person(name)


def lookup(store: PeopleStore, name: str, paths: list[str]) -> dict[str, Any]:
    """Any readable person: the caller's profile (``people/me``) or one of their contacts."""
    if name in ("people/me", f"people/{store.account_id}"):
        return render_profile(store, paths)
    if re.match(r"^people/\d+$", name):
        raise people_error(404, "Requested entity was not found.")
    return render_person(contact(store, name), paths)


def person_response(name: str, person: dict[str, Any]) -> dict[str, Any]:
    return {"requestedResourceName": name, "httpStatusCode": 200, "person": person, "status": {}}


def batch_failure(kind: str, errors: dict[str, dict[str, Any]]) -> ApiError:
    """A whole-request failure carrying Google's ``contactErrors`` map."""
    first = next(iter(errors.values()))
    names = {3: "INVALID_ARGUMENT", 5: "NOT_FOUND", 9: "FAILED_PRECONDITION"}
    http = 404 if first["code"] == 5 else 400
    err = people_error(http, first["message"], status=names.get(first["code"]))
    err.body["error"]["details"] = [{"@type": _ERROR_DETAILS + kind, "contactErrors": errors}]
    return err


def json_list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise bad(f"Invalid value at '{key}': expected a list.")
    return value


# -- connections.list -----------------------------------------------------------------


def list_connections(call: Call) -> Reply:
    if call.params["person"] != "me":
        raise bad("Only people/me is valid as the resource name of connections.list.")
    store = store_of(call)
    paths = person_fields(call)
    size = page_size(call, 100)
    order = call.arg("sortOrder") or SORT_ORDERS[0]
    if order not in SORT_ORDERS:
        raise bad(f"Invalid value for sortOrder: {order}")
    want_token = call.bool_arg("requestSyncToken")
    sync = call.arg("syncToken") or ""
    params = (tuple(paths), order, want_token, sync, tuple(call.args("sources")))
    since = store.read_sync_token(sync, KIND_CONNECTIONS, expires=True) if sync else None
    if want_token and not sync and not call.arg("pageToken"):
        charge_full_sync(call)  # a full *sync* (requestSyncToken); a plain listing is not
    if call.arg("pageToken"):
        token = call.arg("pageToken") or ""
        snapshot, offset, index = store.resume_at(token, KIND_CONNECTIONS, params)
    else:
        snapshot, offset, index = connections_snapshot(call, store, params, order, since), 0, 0
    remaining = len(snapshot.names) - offset
    size = page_length(call.sandbox.behaviours, size, remaining, len(snapshot.names), offset, index)
    names, next_page = store.page(snapshot, offset, size, index)
    people = [store.persons[n] for n in names]
    out: dict[str, Any] = {}
    rendered = [render_person(p, paths) for p in people if snapshot.incremental or not p.deleted]
    if rendered:
        out["connections"] = rendered
    if next_page:
        out["nextPageToken"] = next_page
    elif want_token:
        out["nextSyncToken"] = store.sync_token(
            KIND_CONNECTIONS, snapshot.seq, snapshot.chain_start
        )
    if snapshot.names:
        out["totalPeople"] = out["totalItems"] = len(snapshot.names)
    return Reply.json(out)


def charge_full_sync(call: Call) -> None:
    """The first page of a full sync (``requestSyncToken=true``, no ``syncToken``, no
    ``pageToken``) has its own fixed quota (realism): past
    ``people_full_sync_quota_per_minute`` such pages in a sandbox minute, 429."""
    limit = call.sandbox.behaviours.people_full_sync_quota_per_minute
    if limit is None:
        return
    now = call.sandbox.clock.timestamp()
    used = call.sandbox.ext.setdefault("people.fullSyncQuota", {})
    bucket = (call.me.email, int(now // 60))
    used[bucket] = used.get(bucket, 0) + 1
    if used[bucket] > limit:
        raise fault_error(PEOPLE, 429, None, 60 - int(now % 60))


def connections_snapshot(
    call: Call,
    store: PeopleStore,
    params: tuple,
    order: str,
    since: tuple[int, float] | None,
) -> Snapshot:
    """The full result of a first page: every contact, or every change since the token."""
    now = call.sandbox.clock.timestamp()
    if since is None:
        people = sorted(store.live_persons(), key=lambda p: p.seq)
        if order == "LAST_MODIFIED_DESCENDING":
            people.reverse()
        elif order in ("FIRST_NAME_ASCENDING", "LAST_NAME_ASCENDING"):
            key = "givenName" if order == "FIRST_NAME_ASCENDING" else "familyName"
            people.sort(key=lambda p: (not p.sort_name(key), p.sort_name(key)))
        names = [p.resource_name for p in people]
        return Snapshot(KIND_CONNECTIONS, params, names, store.seq, now, incremental=False)
    seq, chain_start = since
    # writes not yet propagated stay out, and the token stops before them (realism)
    upto = max(seq, store.propagated(call.sandbox.behaviours.people_propagation_seconds))
    changed = sorted(
        (p for p in store.persons.values() if seq < p.seq <= upto), key=lambda p: p.seq
    )
    if settings(call.sandbox)["syncTokenExtends"]:
        chain_start = now
    names = [p.resource_name for p in changed]
    return Snapshot(KIND_CONNECTIONS, params, names, upto, chain_start, incremental=True)


# -- reads ----------------------------------------------------------------------------


def get_person(call: Call) -> Reply:
    paths = person_fields(call)
    return Reply.json(lookup(store_of(call), "people/" + call.params["person"], paths))


def batch_get(call: Call) -> Reply:
    paths = person_fields(call)
    names = call.args("resourceNames")
    if not names:
        raise bad("resourceNames must contain at least one resource name.")
    if len(names) > MAX_BATCH_GET:
        raise bad(f"resourceNames cannot contain more than {MAX_BATCH_GET} resource names.")
    store = store_of(call)
    responses = []
    for name in names:
        try:
            responses.append(person_response(name, lookup(store, name, paths)))
        except ApiError as err:
            item = {"requestedResourceName": name, "httpStatusCode": err.status}
            responses.append({**item, "status": error_status(err)})
    return Reply.json({"responses": responses})


# -- single writes --------------------------------------------------------------------


def create_contact(call: Call) -> Reply:
    paths = person_fields(call, required=False)
    store = store_of(call)
    fields = clean_person(call.json(), UPDATABLE)
    person = store.create_person(fields, store.initial_groups(fields["memberships"]))
    return Reply.json(render_person(person, paths))


def prepare_update(
    store: PeopleStore, name: str, body: Any, mask: list[str]
) -> tuple[PersonRecord, dict[str, list[dict]], list[str] | None]:
    """Validate one update (contact, etag, values) without applying it."""
    person = contact(store, name)
    if not isinstance(body, dict):
        raise bad("Invalid JSON payload received. Expected a Person object.")
    store.check_etag(person, body)
    fields = clean_person(body, mask)
    groups = (
        store.check_new_groups(person, fields["memberships"]) if "memberships" in mask else None
    )
    return person, fields, groups


def update_contact(call: Call) -> Reply:
    mask = update_mask(call.arg("updatePersonFields"), "updatePersonFields")
    paths = person_fields(call, required=False)
    store = store_of(call)
    person, fields, groups = prepare_update(
        store, "people/" + call.params["person"], call.json(), mask
    )
    store.update_person(person, fields, groups)
    return Reply.json(render_person(person, paths))


def delete_contact(call: Call) -> Reply:
    store = store_of(call)
    store.delete_person(contact(store, "people/" + call.params["person"]))
    return Reply.json({})


# -- batch writes ---------------------------------------------------------------------


def batch_create(call: Call) -> Reply:
    body = call.json()
    contacts = json_list(body, "contacts")
    if not contacts:
        raise bad("contacts must contain at least one contact to create.")
    if len(contacts) > MAX_BATCH_MUTATE:
        raise bad(f"Too many contacts in the request: the maximum is {MAX_BATCH_MUTATE}.")
    paths = read_mask(body)
    store = store_of(call)
    prepared, errors = [], {}
    for index, item in enumerate(contacts):
        try:
            person = item.get("contactPerson") if isinstance(item, dict) else None
            fields = clean_person(person, UPDATABLE)
            prepared.append((fields, store.initial_groups(fields["memberships"])))
        except ApiError as err:
            errors[str(index)] = error_status(err)
    if errors:
        raise batch_failure("BatchCreateContactsErrorDetails", errors)
    created = [store.create_person(fields, groups) for fields, groups in prepared]
    if not paths:
        return Reply.json({})
    people = [person_response(p.resource_name, render_person(p, paths)) for p in created]
    return Reply.json({"createdPeople": people})


def batch_update(call: Call) -> Reply:
    body = call.json()
    contacts = body.get("contacts") or {}
    if not isinstance(contacts, dict) or not contacts:
        raise bad("contacts must map at least one resource name to a person.")
    if len(contacts) > MAX_BATCH_MUTATE:
        raise bad(f"Too many contacts in the request: the maximum is {MAX_BATCH_MUTATE}.")
    mask = update_mask(body.get("updateMask"), "updateMask")
    paths = read_mask(body)
    store = store_of(call)
    prepared, errors = [], {}
    for name, person in contacts.items():
        try:
            prepared.append((name, *prepare_update(store, name, person, mask)))
        except ApiError as err:
            errors[name] = error_status(err)
    if errors:
        raise batch_failure("BatchUpdateContactsErrorDetails", errors)
    result = {}
    for name, person, fields, groups in prepared:
        store.update_person(person, fields, groups)
        result[name] = person_response(name, render_person(person, paths))
    return Reply.json({"updateResult": result} if paths else {})


def batch_delete(call: Call) -> Reply:
    given = json_list(call.json(), "resourceNames")
    if not given:
        raise bad("resourceNames must contain at least one resource name.")
    if len(given) > MAX_BATCH_DELETE:
        raise bad(f"resourceNames cannot contain more than {MAX_BATCH_DELETE} resource names.")
    names = list(dict.fromkeys(given))
    store = store_of(call)
    people = [contact(store, str(name)) for name in names]  # all exist, or nothing happens
    for person in people:
        store.delete_person(person)
    return Reply.json({})


# -- sandbox switches -----------------------------------------------------------------


def people_settings(call: Call) -> Reply:
    current = settings(call.sandbox)
    if call.method == "POST":
        changes = call.json()
        unknown = set(changes) - set(DEFAULT_SETTINGS)
        if unknown or not all(isinstance(v, bool) for v in changes.values()):
            raise ApiError(400, {"error": {"code": 400, "message": f"bad settings: {changes}"}})
        current.update(changes)
    return Reply.json(current)


def register(router: Router) -> None:
    person = r"/v1/people/(?P<person>[^/:]+)"
    routes = [
        ("GET", person + "/connections", "connections.list", list_connections, READ_SCOPES),
        ("GET", r"/v1/people:batchGet", "getBatchGet", batch_get, READ_SCOPES),
        ("GET", person, "get", get_person, READ_SCOPES),
        ("POST", r"/v1/people:createContact", "createContact", create_contact, WRITE_SCOPES),
        ("PATCH", person + ":updateContact", "updateContact", update_contact, WRITE_SCOPES),
        ("DELETE", person + ":deleteContact", "deleteContact", delete_contact, WRITE_SCOPES),
        ("POST", r"/v1/people:batchCreateContacts", "batchCreateContacts", batch_create),
        ("POST", r"/v1/people:batchUpdateContacts", "batchUpdateContacts", batch_update),
        ("POST", r"/v1/people:batchDeleteContacts", "batchDeleteContacts", batch_delete),
    ]
    for method, pattern, name, handler, *scopes in routes:
        scope = scopes[0] if scopes else WRITE_SCOPES
        router.add(method, pattern, "people.people." + name, PEOPLE, handler, scopes=scope)
    people_groups.register(router, READ_SCOPES, WRITE_SCOPES)
    people_search.register(router, READ_SCOPES)
    for method in ("GET", "POST"):
        router.add(method, "/_sandbox/people/settings", "sandbox.control", PLAIN, people_settings)
