"""``PeoplePort`` on the People API v1, through google-api-python-client.

Batching follows the API's limits: ``batchCreateContacts`` and
``batchUpdateContacts`` take at most 200 persons, ``members:modify`` at most 1000
names, and ``connections.list`` pages of up to 1000. Every call goes through
``google_calls.execute`` (bounded retries, domain errors). The API resources
(``people()``, ``contactGroups()``...) are built once per adapter: the client builds
each one anew from the discovery document on every call (milliseconds each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import Any, TypeVar

from adapters.google_calls import DEFAULT_RETRY, Retry, execute, sync_pages
from core.contact_mapping import PERSON_FIELDS, UPDATE_FIELDS
from core.errors import (
    AlreadyExists,
    AuthRevoked,
    EtagMismatch,
    GoogleError,
    NotFound,
    QuotaExceeded,
    Unavailable,
)
from core.ports import MembersResult, PeopleChanges, WriteResult

WRITE_CHUNK = 200
WRITE_READ_MASK = "clientData"  # writes need back only the resource name and etag (always sent)
MEMBERS_CHUNK = 1000
SEARCH_PAGE = 30  # the most searchContacts returns
GROUP_KEY = "crmsync.group"
T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PeopleApi:
    def __init__(self, service: Any, retry: Retry = DEFAULT_RETRY, page_size: int = 1000) -> None:
        self.service = service
        self.retry = retry
        self.page_size = page_size

    def _run(self, request: Any) -> Any:
        return execute(request, self.retry)

    @cached_property
    def _people(self) -> Any:
        return self.service.people()

    @cached_property
    def _connections(self) -> Any:
        return self._people.connections()

    @cached_property
    def _groups(self) -> Any:
        return self.service.contactGroups()

    @cached_property
    def _members(self) -> Any:
        return self._groups.members()

    # --- the group ---------------------------------------------------------------------

    def find_or_create_group(self, name: str) -> str:
        found = self.find_group(name)
        if found:
            return found
        body = {
            "contactGroup": {"name": name, "clientData": [{"key": GROUP_KEY, "value": name}]},
            "readGroupFields": "name,clientData",
        }
        try:
            return self._run(self._groups.create(body=body))["resourceName"]
        except GoogleError as exc:
            if exc.status != 409:  # 409: made meanwhile (or by the user): use it
                raise
        found = self.find_group(name)
        if not found:
            raise AlreadyExists("contactGroups", name)
        return found

    def find_group(self, name: str) -> str | None:
        """Ours (by clientData) first, else a user group with that name."""
        by_name = None
        page = None
        while True:
            answer = self._run(
                self._groups.list(
                    groupFields="name,groupType,clientData", pageSize=1000, pageToken=page
                )
            )
            for group in answer.get("contactGroups", []):
                marks = {(d.get("key"), d.get("value")) for d in group.get("clientData", [])}
                if (GROUP_KEY, name) in marks:
                    return group["resourceName"]
                if group.get("groupType") == "USER_CONTACT_GROUP" and group.get("name") == name:
                    by_name = by_name or group["resourceName"]
            page = answer.get("nextPageToken")
            if not page:
                return by_name

    # --- reads -------------------------------------------------------------------------

    def _listing(self, sync_token: str | None, page: str | None) -> Any:
        """One ``connections.list`` page of a sync: every parameter the same on every
        call of a token (Google requires it of a ``syncToken`` call), the page aside."""
        return self._connections.list(
            resourceName="people/me",
            personFields=PERSON_FIELDS,
            pageSize=self.page_size,
            requestSyncToken=True,
            syncToken=sync_token,
            pageToken=page,
        )

    def changes(
        self, sync_token: str | None, transform: Callable[[dict[str, Any]], Any] | None = None
    ) -> PeopleChanges:
        persons: list[Any] = []
        token = None
        for items, last in self._pages(sync_token):
            persons += items if transform is None else [transform(p) for p in items]
            token = last or token
        return PeopleChanges(persons, token, sync_token is None)

    def has_changes(self, sync_token: str) -> bool:
        """Whether the incremental listing since ``sync_token`` holds any person: the
        first page of the request ``changes`` makes, and the next ones only while they
        come empty with a next page. Raises what ``changes`` raises."""
        return any(items for items, _ in self._pages(sync_token))

    def _pages(self, sync_token: str | None) -> Iterator[tuple[list[Any], str | None]]:
        return sync_pages(lambda page: self._run(self._listing(sync_token, page)), "connections")

    def get(self, resource_names: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for part in chunks(list(resource_names), WRITE_CHUNK):
            answer = self._run(
                self._people.getBatchGet(resourceNames=list(part), personFields=PERSON_FIELDS)
            )
            for response in answer.get("responses", []):
                if response.get("person"):
                    found[response["requestedResourceName"]] = response["person"]
        return found

    def search(self, queries: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """``people.searchContacts`` for each query, after the empty-query warmup Google
        asks for ("to update the cache"): 1 + len(queries) calls."""
        if not queries:
            return {}
        people = self._people
        self._run(people.searchContacts(query="", readMask=PERSON_FIELDS, pageSize=SEARCH_PAGE))
        found: dict[str, list[dict[str, Any]]] = {}
        for query in queries:
            request = people.searchContacts(query=query, readMask=PERSON_FIELDS,
                                            pageSize=SEARCH_PAGE)  # fmt: skip
            found[query] = [r["person"] for r in self._run(request).get("results", [])]
        return found

    # --- writes ------------------------------------------------------------------------

    def create(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for part in chunks(list(items), WRITE_CHUNK):
            body = {
                "contacts": [{"contactPerson": person} for _, person in part],
                "readMask": WRITE_READ_MASK,
            }
            answer = self._run(self._people.batchCreateContacts(body=body))
            created = answer.get("createdPeople", [])
            for (crm_id, _), response in zip(part, created, strict=True):
                results.append(_result(crm_id, response))
        return results

    def update(
        self, items: Sequence[tuple[str, dict[str, Any]]], fields: str = UPDATE_FIELDS
    ) -> list[WriteResult]:
        results: list[WriteResult] = []
        for part in chunks(list(items), WRITE_CHUNK):
            body = {
                "contacts": dict(part),
                "updateMask": fields,
                "readMask": WRITE_READ_MASK,
            }
            try:
                answer = self._run(self._people.batchUpdateContacts(body=body))
            except (EtagMismatch, NotFound):
                # one stale etag, or one person deleted since it was read, failed the whole
                # call: find which, one by one (the others are written)
                results += [self._update_one(name, person, fields) for name, person in part]
                continue
            updated = answer.get("updateResult", {})
            results += [_result(name, updated.get(name, {})) for name, _ in part]
        return results

    def _update_one(self, name: str, person: dict[str, Any], fields: str) -> WriteResult:
        request = self._people.updateContact(
            resourceName=name, updatePersonFields=fields, personFields=WRITE_READ_MASK,
            body=person,
        )  # fmt: skip
        try:
            return WriteResult(name, self._run(request))
        except (QuotaExceeded, Unavailable, AuthRevoked):
            raise  # the run's problem, not this item's
        except GoogleError as exc:
            return WriteResult(name, None, exc)

    def modify_members(
        self, group: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> MembersResult:
        ops = [("add", n) for n in add] + [("remove", n) for n in remove]
        not_found: list[str] = []
        last: list[str] = []
        for part in chunks(ops, MEMBERS_CHUNK):
            body = {
                "resourceNamesToAdd": [n for op, n in part if op == "add"],
                "resourceNamesToRemove": [n for op, n in part if op == "remove"],
            }
            request = self._members.modify(resourceName=group, body=body)
            answer = self._run(request)
            not_found += answer.get("notFoundResourceNames", [])
            last += answer.get("canNotRemoveLastContactGroupResourceNames", [])
        return MembersResult(tuple(not_found), tuple(last))


def _result(key: str, response: dict[str, Any]) -> WriteResult:
    """A PersonResponse as a WriteResult (its ``status`` carries a per-item failure)."""
    person = response.get("person")
    status = response.get("status") or {}
    if person and not status.get("code"):
        return WriteResult(key, person)
    code = status.get("code") or response.get("httpStatusCode")
    message = status.get("message") or "no person in the response"
    error_type = (
        EtagMismatch if code in (9, 400, 412) and "etag" in message.lower() else GoogleError
    )
    return WriteResult(key, None, error_type(f"{key}: {message}", status=code))
