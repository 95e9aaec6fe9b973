"""``python main.py demo``: the walkthrough on embedded defaults, no cloud account needed.

Starts the Google API sandbox in process, creates a fresh local SQLite store with the
sample CRM, connects Alice's Google account (refresh token stored encrypted), then
writes her privately tagged contacts to Google through the real client and reads
them back with a sync token. Every step prints what happened and checks the outcome;
the exit code is 0 only if every check held.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters import google_api
from core import contact_mapping as cm
from core.model import CONTACTS, GOOGLE_ACCOUNTS, SYNC_SETTINGS, Contact, SyncSettings, load
from core.ports import DocumentStore, Filter
from functions import bootstrap, seed
from functions.accounts import connect
from sandbox import SandboxServer

DEMO_DIR = Path(".crmsync/demo")


class Walkthrough:
    """Numbered steps, each printed with its outcome; remembers whether all held."""

    def __init__(self) -> None:
        self.number = 0
        self.failures: list[str] = []

    def step(self, title: str, action: Callable[[], str], expect: Callable[[], bool]) -> None:
        self.number += 1
        print(f"\n[{self.number}] {title}", flush=True)
        started = time.perf_counter()
        detail = action()
        elapsed = (time.perf_counter() - started) * 1000
        ok = expect()
        for line in detail.splitlines():
            print(f"    {line}")
        print(f"    {'ok' if ok else 'FAILED'} ({elapsed:.0f} ms)", flush=True)
        if not ok:
            self.failures.append(title)


def _control(url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path, data=data, method="POST" if data else "GET",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def _tagged_contacts(store: DocumentStore, tag_id: str) -> list[Contact]:
    docs = store.query(CONTACTS, [Filter("tagIds", "array_contains", tag_id)])
    return [load(Contact, CONTACTS, d.id, d.data) for d in docs]


def run_demo() -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    with SandboxServer() as server:
        return _walk(server.url)


def _walk(url: str) -> int:
    config = bootstrap.Config(
        store_url=f"sqlite:///{DEMO_DIR / 'crmsync.db'}",
        google_endpoint=url,
        state_dir=DEMO_DIR,
    )
    store = bootstrap.store(config)
    clock = bootstrap.clock()
    demo = Walkthrough()
    s: dict[str, Any] = {}
    print(f"crmsync demo: Google API sandbox at {url}, local store {config.store_url}")

    def make_account() -> str:
        s["google"] = _control(url, "/_sandbox/accounts", {"email": "alice@example.com"})
        return f"Google account {s['google']['email']} created in the sandbox"

    demo.step("Create Alice's Google account", make_account, lambda: "google" in s)

    def seed_crm() -> str:
        s["seeded"] = seed.seed(store, clock.now())
        return ", ".join(f"{n} {name}" for name, n in s["seeded"].items())

    demo.step("Seed the sample CRM", seed_crm, lambda: s["seeded"][CONTACTS] == 8)

    def connect_alice() -> str:
        info = connect(config, seed.ALICE, s["google"]["refreshToken"])
        stored = store.get(GOOGLE_ACCOUNTS, seed.ALICE) or {}
        s["ciphertext"] = stored.get("refreshTokenCiphertext", "")
        return (
            f"googleAccounts/{seed.ALICE}: account {info.account_email}, status "
            f"{stored.get('status')}\nrefresh token stored encrypted "
            f"({len(s['ciphertext'])} bytes of Fernet ciphertext)"
        )

    demo.step(
        "Connect Alice's Google account",
        connect_alice,
        lambda: s["ciphertext"] and s["google"]["refreshToken"] not in s["ciphertext"],
    )

    def select() -> str:
        settings = load(
            SyncSettings, SYNC_SETTINGS, seed.ALICE, store.get(SYNC_SETTINGS, seed.ALICE)
        )
        s["tag"] = settings.contacts.tagId
        s["contacts"] = _tagged_contacts(store, s["tag"])
        names = ", ".join(f"{c.givenName} {c.familyName}" for c in s["contacts"])
        return (
            f"private tag {s['tag']}: {names}\n(public, corporate and untagged contacts stay out)"
        )

    demo.step(
        "Select the contacts that carry Alice's private tag",
        select,
        lambda: (
            sorted(c.id for c in s["contacts"]) == ["c-ada", "c-alan", "c-grace", "c-katherine"]
        ),
    )

    cipher = bootstrap.cipher(config)
    creds = google_api.credentials(
        cipher.decrypt(s["ciphertext"]), url, config.oauth_client_id, config.oauth_client_secret
    )
    people = google_api.people_service(creds, url)

    def create_group() -> str:
        body = {"contactGroup": {"name": config.group_name, "clientData": [
            {"key": "crmsync.group", "value": seed.ALICE}]}}  # fmt: skip
        s["group"] = people.contactGroups().create(body=body).execute()["resourceName"]
        return f"contact group '{config.group_name}' is {s['group']}"

    demo.step("Create the contact group in Google", create_group, lambda: bool(s.get("group")))

    def push() -> str:
        entries = []
        for contact in s["contacts"]:
            person = cm.to_person(cm.from_contact(contact))
            person["memberships"] = [
                {"contactGroupMembership": {"contactGroupResourceName": s["group"]}}
            ]
            person["clientData"] = [{"key": cm.CLIENT_DATA_KEY, "value": contact.id}]
            entries.append({"contactPerson": person})
        body = {"contacts": entries, "readMask": "clientData,metadata"}
        created = people.people().batchCreateContacts(body=body).execute()["createdPeople"]
        s["created"] = {
            cm.client_data_id(r["person"]): r["person"]["resourceName"] for r in created
        }
        return "\n".join(f"{cid} -> {rn}" for cid, rn in sorted(s["created"].items()))

    demo.step(
        "Write the tagged contacts to Google (one batchCreateContacts call)",
        push,
        lambda: set(s["created"]) == {c.id for c in s["contacts"]},
    )

    def read_back() -> str:
        persons, token, page = [], None, None
        while True:
            answer = people.people().connections().list(
                resourceName="people/me", personFields=cm.PERSON_FIELDS, pageSize=1000,
                requestSyncToken=True, pageToken=page,
            ).execute()  # fmt: skip
            persons += answer.get("connections", [])
            page = answer.get("nextPageToken")
            if not page:
                token = answer.get("nextSyncToken")
                break
        s["sync_token"] = token
        by_id = {cm.client_data_id(p): p for p in persons}
        s["roundtrip_ok"] = all(
            cm.from_person(by_id[c.id]) == cm.from_contact(c)
            and s["group"] in cm.group_names(by_id[c.id])
            for c in s["contacts"]
        )
        return (
            f"{len(persons)} persons read back; fields equal to the CRM's: {s['roundtrip_ok']}\n"
            f"sync token received: {bool(token)}"
        )

    demo.step(
        "Read them back from Google with a sync token",
        read_back,
        lambda: s["roundtrip_ok"] and bool(s["sync_token"]),
    )

    def incremental() -> str:
        target = s["created"]["c-alan"]
        person = people.people().get(resourceName=target, personFields="names").execute()
        person["names"] = [{"givenName": "Alan", "familyName": "Turing", "middleName": "M."}]
        people.people().updateContact(
            resourceName=target, updatePersonFields="names", body=person
        ).execute()
        answer = people.people().connections().list(
            resourceName="people/me", personFields=cm.PERSON_FIELDS, requestSyncToken=True,
            syncToken=s["sync_token"],
        ).execute()  # fmt: skip
        s["changed"] = [p["resourceName"] for p in answer.get("connections", [])]
        return f"edited {target} in Google; the incremental read returns {s['changed']}"

    demo.step(
        "Edit one contact in Google; an incremental read returns only it",
        incremental,
        lambda: s["changed"] == [s["created"]["c-alan"]],
    )

    stats = _control(url, "/_sandbox/stats")
    print(f"\nGoogle API calls made: {stats['total']} ({json.dumps(stats['byMethod'])})")
    store.close()
    if demo.failures:
        print(f"\ndemo FAILED: {len(demo.failures)} step(s) did not hold: {demo.failures}")
        return 1
    print(f"\ndemo passed: all {demo.number} steps held")
    return 0
