"""People API v1 contact groups of the sandbox (``/v1/contactGroups...``).

list (page and sync tokens; deleted groups as ``metadata.deleted`` tombstones), get
(``maxMembers`` → ``memberResourceNames``), create (409 on a duplicate name), update,
delete and ``members:modify`` (≤1000 names; a contact's last group is never removed).
Membership changes also count as writes to the contacts involved, so they show up in
``connections.list`` deltas with a new etag.
"""

from __future__ import annotations

from typing import Any

from sandbox.people_fields import (
    CREATE_GROUP_DEFAULT,
    CREATE_GROUP_FIELDS,
    GROUP_DEFAULT,
    GROUP_FIELDS,
    bad,
    failed_precondition,
    group_mask,
    page_size,
)
from sandbox.people_store import KIND_GROUPS, Snapshot, render_group, store_of
from sandbox.routing import PEOPLE, Call, Reply, Router

MAX_MODIFY = 1000


def _group_name(call: Call) -> str:
    return "contactGroups/" + call.params["group"]


def _client_data(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise bad("Invalid value at 'contact_group.client_data': expected a list of objects.")
    return [{k: str(c[k]) for k in ("key", "value") if c.get(k) is not None} for c in value]


def _body_group(body: dict[str, Any]) -> dict[str, Any]:
    group = body.get("contactGroup")
    if not isinstance(group, dict):
        raise bad("contactGroup is required.")
    return group


def list_groups(call: Call) -> Reply:
    store = store_of(call)
    paths = group_mask(call.arg("groupFields"), GROUP_FIELDS, GROUP_DEFAULT)
    size = page_size(call, 30)
    sync = call.arg("syncToken") or ""
    params = (tuple(paths), sync)
    if call.arg("pageToken"):
        snapshot, offset = store.resume(call.arg("pageToken") or "", KIND_GROUPS, params)
    elif sync:
        seq, _ = store.read_sync_token(sync, KIND_GROUPS, expires=False)
        changed = sorted((g for g in store.groups.values() if g.seq > seq), key=lambda g: g.seq)
        names = [g.resource_name for g in changed]
        snapshot, offset = Snapshot(KIND_GROUPS, params, names, store.seq, 0, True), 0
    else:
        names = [g.resource_name for g in store.live_groups()]
        snapshot, offset = Snapshot(KIND_GROUPS, params, names, store.seq, 0, False), 0
    names, next_page = store.page(snapshot, offset, size)
    groups = [store.groups[n] for n in names]
    rendered = [
        render_group(store, g, paths) for g in groups if snapshot.incremental or not g.deleted
    ]
    out: dict[str, Any] = {"contactGroups": rendered} if rendered else {}
    if next_page:
        out["nextPageToken"] = next_page
    else:
        out["nextSyncToken"] = store.sync_token(KIND_GROUPS, snapshot.seq, 0)
    if snapshot.names:
        out["totalItems"] = len(snapshot.names)
    return Reply.json(out)


def get_group(call: Call) -> Reply:
    store = store_of(call)
    paths = group_mask(call.arg("groupFields"), GROUP_FIELDS, GROUP_DEFAULT)
    max_members = call.int_arg("maxMembers", 0) or 0
    if max_members < 0:
        raise bad("maxMembers must not be negative.")
    group = store.group(_group_name(call))
    return Reply.json(render_group(store, group, paths, max_members))


def create_group(call: Call) -> Reply:
    body = call.json()
    group = _body_group(body)
    paths = group_mask(
        body.get("readGroupFields"), CREATE_GROUP_FIELDS, CREATE_GROUP_DEFAULT, "readGroupFields"
    )
    store = store_of(call)
    created = store.create_group(group.get("name"), _client_data(group.get("clientData")))
    return Reply.json(render_group(store, created, paths))


def update_group(call: Call) -> Reply:
    body = call.json()
    given = _body_group(body)
    fields = group_mask(body.get("updateGroupFields"), ("clientData", "name"), ("name",))
    paths = group_mask(
        body.get("readGroupFields"), GROUP_FIELDS, CREATE_GROUP_DEFAULT, "readGroupFields"
    )
    store = store_of(call)
    group = store.group(_group_name(call))
    if given.get("etag") and given["etag"] != group.etag:
        raise failed_precondition(
            "Request contact group etag is different than the current contact group etag."
        )
    changes: dict[str, Any] = {}
    if "name" in fields:
        changes["name"] = given.get("name")
    if "clientData" in fields:
        changes["clientData"] = _client_data(given.get("clientData"))
    store.update_group(group, changes)
    return Reply.json(render_group(store, group, paths))


def delete_group(call: Call) -> Reply:
    store = store_of(call)
    store.delete_group(store.group(_group_name(call)), call.bool_arg("deleteContacts"))
    return Reply.json({})


def modify_members(call: Call) -> Reply:
    body = call.json()
    lists = []
    for key in ("resourceNamesToAdd", "resourceNamesToRemove"):
        value = body.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad(f"Invalid value at '{key}': expected a list of resource names.")
        lists.append(value)
    add, remove = lists
    if len(add) + len(remove) > MAX_MODIFY:
        raise bad(
            "The total number of resource names in resourceNamesToAdd and "
            f"resourceNamesToRemove must be less than or equal to {MAX_MODIFY}."
        )
    store = store_of(call)
    missing, last = store.modify_members(store.group(_group_name(call)), add, remove)
    out = {}
    if missing:
        out["notFoundResourceNames"] = missing
    if last:
        out["canNotRemoveLastContactGroupResourceNames"] = last
    return Reply.json(out)


def register(router: Router, read: tuple[str, ...], write: tuple[str, ...]) -> None:
    group = r"/v1/contactGroups/(?P<group>[^/:]+)"
    routes = [
        ("GET", r"/v1/contactGroups", "list", list_groups, read),
        ("POST", r"/v1/contactGroups", "create", create_group, write),
        ("GET", group, "get", get_group, read),
        ("PUT", group, "update", update_group, write),
        ("DELETE", group, "delete", delete_group, write),
        ("POST", group + "/members:modify", "members.modify", modify_members, write),
    ]
    for method, pattern, name, handler, scopes in routes:
        router.add(method, pattern, "people.contactGroups." + name, PEOPLE, handler, scopes=scopes)
