"""The email index: CRM contacts and users by email, so that matching an email (an
attendee, a person to import) reads a few documents, whatever the size of the CRM.

    emailIndex/{key}         {"email": e, "contacts": [contact ids], "users": [user ids]}
    indexState/emailIndex    how far ``catch_up`` has read (below)

``key`` is the email stripped and lower-cased, percent-encoded (UTF-8, ``%XX`` upper
case) except for ``a-z 0-9 @ . _ + -``, so ``/`` and ``%`` never appear raw; a key
starting with ``__`` has its first ``_`` encoded (``%5F``: ids may not be ``__x__``),
``.`` and ``..`` have their dots encoded (``%2E``), and a key over 1,500 bytes is
``#`` and the SHA-256 of the email in hex (``#`` is always encoded otherwise, so no
key is two emails'). Ids in an entry are in the order they were added.

Who writes entries:

* crmsync's own contact writes (``core.contacts_exec``): in the same batch as the
  contact, its new emails are added and the emails it no longer holds are dropped;
* ``catch_up`` (the dispatch tick, each minute): the CRM owns ``contacts`` and writes
  them directly, so it reads those modified past its cursor and adds their emails.
  The first time it also reads every user and Google account (building the index);
  later, the Google accounts connected past its accounts cursor (``connectedAt``);
* ``index_user``: where users are provisioned (the seed; the lead's connect) and each
  real activities run for its own user (``ensure_user``: a read, a write if missing).
  ``users`` documents have no ``modifiedAt``: a user the CRM creates or re-addresses
  itself is found by email once one of those has run for it, or at the latest once
  ``catch_up`` has read every user again (once a day: ``USERS_EVERY``).

An entry can hold ids that no longer match (an email edited or removed, a contact
deleted, a user re-addressed): ``lookup`` reads every candidate by id and keeps only
those that still hold the email, so a stale id never matches; real runs then ``prune``
them. Between catch-ups ``lookup`` is exact for contacts: it adds the contacts
modified since the cursor (``since``: with an overlap window, as the engines' CRM
cursor, since writes can commit late), and the Google accounts connected since.
Until a first pass has completed, it reads every contact (and every user and account
until they have been read once): the index being built answers as a scan does.

An entry lists at most ``MAX_ENTRY_IDS`` contacts (10,000: far below Firestore's 1 MiB
a document): a writer that reads it first (``catch_up``, crmsync's contact writes)
marks it ``"overfull": true`` instead of going past, and adds no more contact ids to
it; ``lookup`` answers its email by reading every contact (once a run with a
``Tail``), which costs what reading its holders would. Users are not capped.

Every write of an entry's ids is an atomic array write (the store's ``add_to_array``
/ ``remove_from_array``: Firestore's ``ArrayUnion`` / ``ArrayRemove``), so two writers
changing one entry at the same moment both land: none erases ids another added. Only
``prune`` rewrites an entry whole, in a transaction that reads it (and each id's
document) first.
"""

from __future__ import annotations

import hashlib
import logging
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.model import CONTACTS, GOOGLE_ACCOUNTS, USERS, _utc_timestamp, parse_timestamp, stamp
from core.ports import Doc, DocumentStore, Filter

log = logging.getLogger(__name__)

EMAIL_INDEX = "emailIndex"
INDEX_STATE = "indexState"
STATE_ID = "emailIndex"
OVERLAP = timedelta(minutes=5)  # how late a write may commit after its timestamp
USERS_EVERY = timedelta(days=1)  # how often catch_up reads every user again
MAX_ID_BYTES = 1_500
PAGE = 500
ENTRY_CHUNK = 450  # entries written per batch (a batch holds at most 500 writes)
MAX_ENTRY_IDS = 10_000  # contacts an entry lists at most (then "overfull": far below 1 MiB)

_SAFE = frozenset(string.ascii_lowercase + string.digits + "@._+-")

Have = Mapping[str, Mapping[str, dict[str, Any] | None]]  # collection -> id -> doc read


# --- keys and emails ----------------------------------------------------------------


def norm(email: Any) -> str:
    """An email as the index keeps it: stripped, lower case ("" for anything else)."""
    return email.strip().lower() if isinstance(email, str) else ""


def key(email: str) -> str:
    """The ``emailIndex`` document id of an email (see the module's docstring)."""
    text = norm(email)
    out = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode())
                  for c in text)  # fmt: skip
    if out.startswith("__"):
        out = "%5F" + out[1:]
    if out in (".", ".."):
        out = out.replace(".", "%2E")
    if len(out.encode()) > MAX_ID_BYTES:
        out = "#" + hashlib.sha256(text.encode()).hexdigest()
    return out


def contact_emails(doc: Mapping[str, Any] | None) -> set[str]:
    """The emails a stored contact holds (none once it is deleted)."""
    if not doc or doc.get("deletedAt"):
        return set()
    items = doc.get("emails")
    if not isinstance(items, list):
        return set()
    return {e for item in items if isinstance(item, dict) and (e := norm(item.get("value")))}


def user_emails(user: Mapping[str, Any] | None, account: Mapping[str, Any] | None) -> set[str]:
    """A user's CRM email and its Google account's email."""
    out = {norm((user or {}).get("email")), norm((account or {}).get("accountEmail"))}
    return out - {""}


def when(value: Any) -> datetime | None:
    """A stored timestamp as a time, when it is valid as the model has it (RFC 3339, UTC,
    ending in ``Z``: what string order sorts as time order); None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(_utc_timestamp(value))
    except (ValueError, TypeError):
        return None


def since(field_name: str, cursor: str | None, read_at: str | None) -> list[Filter]:
    """The documents to read again: those whose ``field_name`` is at or after the cursor
    less the overlap, so that writes committed late with equal or earlier timestamps
    are never missed. Once the cursor is older than the previous read less the overlap,
    every write up to it had committed before that read: then strictly newer ones are
    enough, and a bulk of equal timestamps is not read again and again."""
    if cursor is None:
        return []
    newest = when(cursor)
    if newest is None:  # a cursor no valid timestamp: read everything, as with none
        log.warning("%s cursor %r is not a UTC timestamp: reading from the start",
                    field_name, cursor)  # fmt: skip
        return []
    read = when(read_at)
    if read is not None and newest < read - OVERLAP:
        return [Filter(field_name, ">", cursor)]
    return [Filter(field_name, ">=", stamp(newest - OVERLAP))]


def _ids(entry: Any, kind: str) -> list[str]:
    """The ids an entry lists under ``kind`` (anything but a list of ids: none)."""
    ids = entry.get(kind) if isinstance(entry, Mapping) else None
    return [i for i in ids if isinstance(i, str) and i] if isinstance(ids, list) else []


def _entry(email: str, doc: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"email": email, "contacts": _ids(doc, "contacts"), "users": _ids(doc, "users")}


def _with(entry: dict[str, Any], kind: str, ident: str) -> bool:
    if ident in entry[kind]:
        return False
    entry[kind] = sorted({*entry[kind], ident})
    return True


def _without(entry: dict[str, Any], kind: str, ident: str) -> bool:
    if ident not in entry[kind]:
        return False
    entry[kind] = [i for i in entry[kind] if i != ident]
    return True


# --- writing ------------------------------------------------------------------------


class EntryWrites:
    """Index entry changes to write in a batch, each an atomic array write (``add_to_array``
    / ``remove_from_array``: no writer can erase ids another adds meanwhile), grouped by
    entry, kind and direction; ``len`` is the number of batch writes they take.

    ``known``: the entries as read (by key), when the caller read them: an entry that
    would list more than ``MAX_ENTRY_IDS`` contacts is marked ``overfull`` instead, and
    an overfull entry gets no more contact ids (``lookup`` answers its email by a scan)."""

    def __init__(self, known: Mapping[str, Mapping[str, Any] | None] | None = None) -> None:
        self.groups: dict[tuple[str, str, bool], tuple[str, list[str]]] = {}
        self.known = dict(known or {})
        self.full: dict[str, str] = {}  # key -> email, of entries to mark overfull

    def change(self, email: str, kind: str, ident: str, add: bool) -> None:
        k = key(email)
        if add and kind == "contacts":
            doc = self.known.get(k)
            if k in self.full or (isinstance(doc, Mapping) and doc.get("overfull")):
                return
            pending = self.groups.get((k, kind, True), ("", []))[1]
            if ident not in pending and len(_ids(doc, kind)) + len(pending) >= MAX_ENTRY_IDS:
                self.full[k] = email
                return
        opposite = self.groups.get((k, kind, not add))
        if opposite and ident in opposite[1]:  # the later change wins
            opposite[1].remove(ident)
            if not opposite[1]:
                del self.groups[(k, kind, not add)]
        ids = self.groups.setdefault((k, kind, add), (email, []))[1]
        if ident not in ids:
            ids.append(ident)

    def cost(self, changes: Iterable[tuple[str, str, str, bool]]) -> int:
        """The batch writes ``changes`` would add to these (at most)."""
        return len({(key(e), kind, add) for e, kind, _, add in changes} - set(self.groups))

    def write(self, batch: Any) -> int:
        """Write them into ``batch`` and forget them; returns the entries written."""
        marks = dict(self.full)
        for (k, kind, add), (email, ids) in sorted(self.groups.items()):
            if add:
                more = {"overfull": True} if kind == "contacts" and marks.pop(k, None) else {}
                batch.add_to_array(EMAIL_INDEX, k, kind, ids, {"email": email, **more})
            else:
                batch.remove_from_array(EMAIL_INDEX, k, kind, ids)
        for k, email in sorted(marks.items()):
            batch.add_to_array(EMAIL_INDEX, k, "contacts", [], {"email": email, "overfull": True})
        written = len({k for k, _, _ in self.groups} | set(self.full))
        self.known.update({k: {**(self.known.get(k) or {}), "overfull": True} for k in self.full})
        self.groups.clear()
        self.full.clear()
        return written

    def __len__(self) -> int:
        return len(self.groups) + len(self.full.keys() - {k for k, _, _ in self.groups})


def contact_changes(contact_id: str, before: Mapping[str, Any] | None,
                    after: Mapping[str, Any]) -> list[tuple[str, str, str, bool]]:  # fmt: skip
    """The entry changes of writing contact ``before`` as ``after``, as (email, "contacts",
    id, add): its new emails list it, the emails it dropped no longer do. Written blind
    (no read): an atomic array write that changes nothing costs a write, no more."""
    old, new = contact_emails(before), contact_emails(after)
    return [(email, "contacts", contact_id, email in new) for email in sorted(old ^ new)]


def index_user(batch: Any, user_id: str, emails: Iterable[str], store: DocumentStore | None = None,
               found: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """List ``user_id`` in the entries of ``emails`` (its CRM email, its Google account's
    email), as part of ``batch``, with atomic array writes (``add_to_array``): the
    entries are read first (``found``, by key, when the caller read them; else from
    ``store``), and only those that lack the user are written. Returns the entries as
    they are after it, by key. Call it where a user is provisioned or connects a
    Google account (with both emails), in the batch that writes the user's document or
    its ``googleAccounts`` document."""
    wanted = {key(e): n for e in emails if (n := norm(e))}
    keys = sorted(wanted)
    if found is None:
        found = store.get_many(EMAIL_INDEX, keys) if store is not None and keys else {}
    out = {}
    for k in keys:
        entry = _entry(wanted[k], found.get(k))
        if _with(entry, "users", user_id):
            batch.add_to_array(EMAIL_INDEX, k, "users", [user_id], {"email": wanted[k]})
        out[k] = entry
    return out


def ensure_user(store: DocumentStore, user_id: str, emails: Iterable[str]) -> dict[str, Any]:
    """What each real activities run does for its own user: read its entries, and write
    only those that lack it (one batch). Returns the entries by key, as read or written
    (None for an email with no entry)."""
    wanted = {key(e): n for e in emails if (n := norm(e))}
    found = store.get_many(EMAIL_INDEX, sorted(wanted)) if wanted else {}
    lacking = [k for k in wanted if user_id not in _ids(found.get(k), "users")]
    if not lacking:
        return {k: found.get(k) for k in wanted}
    with store.batch() as batch:
        entries = index_user(batch, user_id, [wanted[k] for k in lacking], found=found)
    return {k: found.get(k) for k in wanted} | entries


def prune(store: DocumentStore, stale: Mapping[str, Mapping[str, Iterable[str]]]) -> int:
    """Drop ids that ``lookup`` found no longer matching (``Found.stale``) from their
    entries, in one transaction that reads each candidate again (a contact or user that
    holds the email again by now keeps its id; an id added meanwhile is kept); returns
    the number of entries written. Only real runs call it: they write anyway."""
    keys = sorted(stale)[:ENTRY_CHUNK]
    if not keys:
        return 0

    def drop(tx: Any) -> int:
        current = {k: tx.get(EMAIL_INDEX, k) for k in keys}
        gone: dict[str, list[tuple[str, str]]] = {}
        checked: dict[tuple[str, str], set[str]] = {}  # (kind, id) -> its emails now
        for k in keys:
            doc = current[k]
            if doc is None:
                continue
            email = norm(doc.get("email"))
            if not email:  # nothing to check the ids against: they stay
                continue
            for kind in ("contacts", "users"):
                for ident in stale[k].get(kind, ()):
                    if ident not in _ids(doc, kind):
                        continue
                    if (kind, ident) not in checked:
                        if kind == "contacts":
                            now = contact_emails(tx.get(CONTACTS, ident))
                        else:
                            now = user_emails(tx.get(USERS, ident), tx.get(GOOGLE_ACCOUNTS, ident))
                        checked[(kind, ident)] = now
                    if email not in checked[(kind, ident)]:
                        gone.setdefault(k, []).append((kind, ident))
        for k, drops in gone.items():
            entry = _entry(current[k].get("email", ""), current[k])
            for kind, ident in drops:
                _without(entry, kind, ident)
            tx.put(EMAIL_INDEX, k, {**current[k], **entry})
        return len(gone)

    return store.transaction(drop)


def _add(store: DocumentStore, additions: Mapping[str, tuple[str, str, str]]) -> int:
    """Add (email, kind, id) triples to their entries: read them, write (atomic array
    writes) the ids they lack. ``additions`` is keyed by anything unique; returns the
    entries written."""
    by_key: dict[str, list[tuple[str, str, str]]] = {}
    for email, kind, ident in additions.values():
        by_key.setdefault(key(email), []).append((email, kind, ident))
    written = 0
    keys = sorted(by_key)
    for start in range(0, len(keys), ENTRY_CHUNK // 2):  # up to two writes an entry
        part = keys[start : start + ENTRY_CHUNK // 2]
        found = store.get_many(EMAIL_INDEX, part)
        writes = EntryWrites(found)
        for k in part:
            entry = _entry(by_key[k][0][0], found.get(k))
            for email, kind, ident in by_key[k]:
                if _with(entry, kind, ident):
                    writes.change(email, kind, ident, True)
        if writes:
            with store.batch() as batch:
                written += writes.write(batch)
    return written


# --- catching up with the CRM ---------------------------------------------------------


def catch_up(store: DocumentStore, now: datetime, *, max_contacts: int = 20_000,
             page_size: int = PAGE) -> dict[str, int]:  # fmt: skip
    """Bring the email index up to date with what the CRM wrote itself. The dispatch
    tick calls it every minute (``now`` is the tick's time).

    Contacts: those modified past the cursor of ``indexState/emailIndex`` (``since``:
    the overlap window until it has settled), page by page in ``modifiedAt`` order;
    each live contact's emails are added to their entries. A pass longer than
    ``max_contacts`` (the first one, which reads them all, or one after a long pause)
    goes on from where it stopped at the next call; the cursor moves when a pass is
    complete. Users and Google accounts: all of them on the first call, then the
    accounts connected past the accounts cursor (``connectedAt``) with their users.
    Adding is idempotent: an email already listed writes nothing.

    A tick that finds nothing new once both cursors have settled (read strictly past)
    writes nothing: one document read and two queries.

    Every user is read again once a day (``USERS_EVERY``; they have no ``modifiedAt``).
    A contact whose ``modifiedAt`` is not a UTC timestamp ending in ``Z`` is skipped
    (and logged): as text it sorts anywhere, so it can neither move the cursor nor be
    trusted to come back; the cursor is the latest valid time read, never past the
    pass's start (a contact dated in the future would hide every later one).

    Returns counts: ``contacts``, ``accounts`` and ``users`` read, ``entries`` written,
    ``skipped`` (contacts with a malformed ``modifiedAt``), and ``done`` (1 when the
    contacts pass is complete, 0 when it continues next call)."""
    state = before = store.get(INDEX_STATE, STATE_ID) or {}
    counts = {"contacts": 0, "accounts": 0, "users": 0, "entries": 0, "done": 0, "skipped": 0}
    state = {**state, "accounts": _catch_up_accounts(store, state, now, counts)}
    state |= _catch_up_users(store, state, now, counts)
    contacts = _catch_up_contacts(store, state.get("contacts"), now, counts, max_contacts,
                                  page_size)  # fmt: skip
    if not _idle(counts, before):  # an idle tick on a settled index writes nothing
        store.put(INDEX_STATE, STATE_ID, {**state, "contacts": contacts, "updatedAt": stamp(now)})
    return counts


def _catch_up_users(store: DocumentStore, state: Mapping[str, Any], now: datetime,
                    counts: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    """Every user read again once a day (the accounts' first pass read them all); returns
    the state's fields to update."""
    if not state.get("usersBuilt"):  # the accounts' first pass read every user
        return {"usersBuilt": True, "usersReadAt": stamp(now)}
    read = when(state.get("usersReadAt"))
    if read is not None and now - read < USERS_EVERY:
        return {}
    # users have no modifiedAt: those the CRM added or re-addressed itself are
    # found by reading them all again, once a day
    users = list(store.scan(USERS, order_by="email"))
    counts["users"] += len(users)
    additions = {(doc.id, email): (email, "users", doc.id)
                 for doc in users for email in user_emails(doc.data, None)}  # fmt: skip
    counts["entries"] += _add(store, additions)
    return {"usersReadAt": stamp(now)}


def _catch_up_contacts(store: DocumentStore, part: Any, now: datetime, counts: dict[str, int],
                       max_contacts: int, page_size: int) -> dict[str, Any]:  # fmt: skip
    """The contacts modified past the cursor, page by page, their emails added, at most
    ``max_contacts`` a call; returns the contacts part of the state: the pass to go on
    with, or, once it is complete, the next cursor."""
    contacts = dict(part) if isinstance(part, dict) else {}  # else: from the start
    run = _contacts_pass(contacts, now)
    where = since("modifiedAt", contacts.get("cursor"), contacts.get("readAt"))
    while counts["contacts"] < max_contacts:
        if _catch_up_page(store, where, run, page_size, counts) < page_size:
            counts["done"] = 1
            return _passed(contacts, run)
    return {**contacts, "pass": run}


def _contacts_pass(contacts: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The contacts pass under way (a new one if there is none, or it is unreadable),
    counting one call more."""
    run = contacts.get("pass")
    if not isinstance(run, dict) or when(run.get("startedAt")) is None:
        run = {"startedAt": stamp(now), "newest": None, "after": None, "calls": 0}
    return {**run, "calls": run.get("calls", 0) + 1}


def _catch_up_page(store: DocumentStore, where: list[Filter], run: dict[str, Any],
                   page_size: int, counts: dict[str, int]) -> int:  # fmt: skip
    """The pass's next page: its contacts' emails added, and ``run`` moved past it;
    returns the number of contacts it held."""
    after = run.get("after")
    cursor = Doc(CONTACTS, after["id"], {"modifiedAt": after["modifiedAt"]}) if after else None
    page = store.query(CONTACTS, where, order_by="modifiedAt", limit=page_size,
                       start_after=cursor)  # fmt: skip
    good = _dated(page, counts)
    additions = {(doc.id, email): (email, "contacts", doc.id)
                 for doc in good for email in contact_emails(doc.data)}  # fmt: skip
    counts["entries"] += _add(store, additions)
    counts["contacts"] += len(page)
    if page:
        _advance(run, page, good)
    return len(page)


def _dated(page: list[Doc], counts: dict[str, int]) -> list[Doc]:
    """The page's contacts with a valid ``modifiedAt``. One whose modifiedAt is no UTC
    timestamp ending in Z (another zone, no zone, not a time) is skipped (logged and
    counted): as text it sorts anywhere, so it must neither move the cursor nor be
    trusted to be read again."""
    good = [doc for doc in page if when(doc.data.get("modifiedAt")) is not None]
    if len(good) < len(page):
        bad = [doc.id for doc in page if doc not in good]
        log.warning("email index: contacts with a malformed modifiedAt skipped: %s", bad)
        counts["skipped"] += len(bad)
    return good


def _advance(run: dict[str, Any], page: list[Doc], good: list[Doc]) -> None:
    """``run`` past a page: at its last contact (its position, as the store orders
    it), with the newest valid time read so far."""
    last = page[-1]
    run["after"] = {"id": last.id, "modifiedAt": last.data["modifiedAt"]}
    newest = max((when(doc.data["modifiedAt"]) for doc in good), default=None)
    if newest is not None:
        run["newest"] = _later(run.get("newest"), stamp(newest))


def _passed(contacts: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    """The contacts part of the state once a pass is complete: the cursor at the newest
    time read, and no pass."""
    newest = _later(contacts.get("cursor"), run.get("newest"))
    if newest is not None:
        # never past the pass's start: a contact dated in the future would hide those
        # written until then; and a pass over several calls may have missed writes
        # committed behind it while it went on: the next one reads again from there
        newest = min(newest, run["startedAt"], key=parse_timestamp)
    # no contact yet: those modified from the pass's start on are the next ones
    return {"cursor": newest or run["startedAt"], "readAt": run["startedAt"], "pass": None}


def _idle(counts: Mapping[str, int], before: Mapping[str, Any]) -> bool:
    """A tick that read nothing new, on an index whose state has settled."""
    return (not counts["contacts"] and not counts["accounts"] and not counts["users"]
            and _settled(before))  # fmt: skip


def _settled(state: Mapping[str, Any]) -> bool:
    """Whether the stored state reads strictly past both cursors (``since``): then a
    tick that finds nothing new has nothing to record."""
    parts = [state.get("contacts"), state.get("accounts")]
    if not state.get("usersBuilt") or not all(isinstance(p, dict) for p in parts):
        return False
    if parts[0].get("pass"):
        return False
    for part in parts:
        cursor, read_at = when(part.get("cursor")), when(part.get("readAt"))
        if cursor is None or read_at is None or cursor >= read_at - OVERLAP:
            return False
    return True


def _catch_up_accounts(store: DocumentStore, state: Mapping[str, Any], now: datetime,
                       counts: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    """Index the users of Google accounts connected past the cursor (every user and
    account the first time); returns the accounts part of the state to keep."""
    previous = state.get("accounts")
    previous = previous if isinstance(previous, dict) else {}
    users, accounts = _connected(store, state, previous)
    found = {doc.id: doc.data for doc in accounts}
    counts["accounts"] += len(accounts)
    additions = {(uid, email): (email, "users", uid) for uid, user in users.items()
                 for email in user_emails(user, found.get(uid))}  # fmt: skip
    counts["entries"] += _add(store, additions)
    # no account yet: those connected from now on (less the overlap) are the next ones
    cursor = _newest_connected(previous.get("cursor"), accounts, now)
    return {"cursor": cursor or stamp(now), "readAt": stamp(now)}


def _connected(store: DocumentStore, state: Mapping[str, Any],
               previous: Mapping[str, Any]) -> tuple[dict[str, Any], list[Doc]]:  # fmt: skip
    """(users by id, Google accounts) to index: those connected past the cursor and
    their users; every user and account until the users have been read once."""
    if not state.get("usersBuilt"):
        users = {doc.id: doc.data for doc in store.scan(USERS, order_by="email")}
        return users, list(store.scan(GOOGLE_ACCOUNTS, order_by="connectedAt"))
    where = since("connectedAt", previous.get("cursor"), previous.get("readAt"))
    accounts = list(store.scan(GOOGLE_ACCOUNTS, where, order_by="connectedAt"))
    users = store.get_many(USERS, sorted({d.id for d in accounts})) if accounts else {}
    return users, accounts


def _newest_connected(cursor: Any, accounts: list[Doc], now: datetime) -> str | None:
    """The latest valid ``connectedAt`` read, or the cursor; never past now: a
    future-dated account would hide the next."""
    newest = _later(cursor, None)
    for doc in accounts:
        newest = _later(newest, doc.data.get("connectedAt"))
    return None if newest is None else min(newest, stamp(now), key=parse_timestamp)


def _later(a: Any, b: Any) -> str | None:
    """The later of two stored timestamps, as ``stamp`` writes it; an invalid one
    (``when``) counts as none."""
    times = [t for t in (when(a), when(b)) if t is not None]
    return stamp(max(times)) if times else None


# --- looking up -----------------------------------------------------------------------


@dataclass
class Found:
    """What ``lookup`` found for each email asked."""

    contacts: dict[str, list[str]] = field(default_factory=dict)  # email -> live holders,
    # oldest modifiedAt first (then by id)
    users: dict[str, list[str]] = field(default_factory=dict)  # email -> users whose CRM or
    # Google account email it is (any account status), by id
    contact_docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # holders, by id
    user_docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # the users found
    account_docs: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # theirs
    stale: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # key -> ids an
    # entry lists that no longer match: {"contacts": [...], "users": [...]}, for ``prune``
    reads: int = 0  # documents read (for tests and benches)


@dataclass
class Tail:
    """What ``lookup`` read past the index's cursors (the state, the contacts modified
    and the accounts connected since), kept to answer the next lookups of one run from:
    pass one to every ``lookup`` of a run and the tail is scanned once, not once a call
    (a contact written meanwhile is the next run's). Not kept while the index has no
    cursor (an unbuilt index reads everything, each time)."""

    state: dict[str, Any] | None = None
    contacts: dict[str, dict[str, Any]] | None = None  # id -> contact
    accounts: dict[str, dict[str, Any]] | None = None  # id -> Google account
    overfull: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # the
    # holders of the emails of overfull entries (read by a scan), by email, then id


def lookup(store: DocumentStore, emails: Iterable[str], *, users: bool = True,
           have: Have | None = None, tail: Tail | None = None) -> Found:  # fmt: skip
    """The CRM contacts and (with ``users``) users that hold each of ``emails``, exactly:
    the index's entries, plus the contacts modified since the index's cursor (and the
    Google accounts connected since its accounts cursor), each candidate read by id and
    kept only if it still holds the email (a contact not deleted; a user by its CRM
    email or its Google account's). ``have``: documents the caller read already
    (collection -> id -> document or None), used instead of reading them again.
    Matching is on ``norm``-ed emails; the result is keyed by them. ``tail``: see
    ``Tail``."""
    have = have or {}
    wanted = {n for e in emails if (n := norm(e))}
    found = Found()
    if not wanted:
        return found
    state = _index_state(store, found, tail)
    keys = {key(e): e for e in wanted}
    try:
        entries = _read(store, EMAIL_INDEX, sorted(keys), have, found)
        _contacts(store, state, keys, entries, found, tail)
        if users:
            _users(store, state, keys, entries, have, found, tail)
        return found
    except (ValueError, TypeError, KeyError, AttributeError):
        # an index state or entry this code cannot read: answer as an unbuilt index
        # does (every contact, user and account read), and let the tick mend it
        log.exception("email index: unreadable state or entries; scanning instead")
        return _unindexed(store, keys, users, have)


def _index_state(store: DocumentStore, found: Found, tail: Tail | None) -> Mapping[str, Any]:
    """``indexState/emailIndex``: as the run's tail kept it, else read (and kept)."""
    if tail is not None and tail.state is not None:
        return tail.state
    state = store.get(INDEX_STATE, STATE_ID) or {}
    found.reads += 1
    if tail is not None:
        tail.state = state
    return state


def _unindexed(store: DocumentStore, keys: dict[str, str], users: bool, have: Have) -> Found:
    """``lookup``'s answer as an unbuilt index gives it: every contact, user and
    account read."""
    found = Found(reads=1)
    _contacts(store, {}, keys, {}, found)
    if users:
        _users(store, {}, keys, {}, have, found)
    return found


def _read(store: DocumentStore, collection: str, ids: Iterable[str], have: Have,
          found: Found) -> dict[str, dict[str, Any]]:  # fmt: skip
    known = have.get(collection) or {}
    ids = sorted(set(ids))
    out = {i: doc for i in ids if i in known and (doc := known[i]) is not None}
    missing = [i for i in ids if i not in known]
    if missing:
        read = store.get_many(collection, missing)
        found.reads += len(read)
        out |= read
    return out


def _contacts(store: DocumentStore, state: Mapping[str, Any], keys: dict[str, str],
              entries: dict[str, dict[str, Any]], found: Found,
              kept: Tail | None = None) -> None:  # fmt: skip
    """The live contacts holding each email of ``keys`` (key -> email), into ``found``:
    those its entry lists that still hold it (the others are stale), and those modified
    since the cursor."""
    wanted = set(keys.values())
    progress = state.get("contacts") or {}
    cursor = progress.get("cursor")
    # contacts modified since the cursor; every contact while no pass has completed
    where = since("modifiedAt", cursor, progress.get("readAt")) if cursor else []
    tail = _recent_contacts(store, where, wanted, found, kept)
    # an overfull entry (over MAX_ENTRY_IDS contacts) lists no more: its email is
    # answered by reading every contact (its holders would all be read anyway)
    full = _overfull(keys, entries)
    if full and where:
        tail |= _holders_of(store, full, found, kept)
    claimed = {(i, keys[k]) for k, entry in entries.items() for i in _ids(entry, "contacts")
               if keys[k] not in full}  # fmt: skip
    docs = tail | _read(store, CONTACTS, {i for i, _ in claimed} - set(tail), {}, found)
    _record_contacts(found, _contact_holders(claimed, tail, docs, wanted, found), docs)


def _recent_contacts(store: DocumentStore, where: list[Filter], wanted: set[str], found: Found,
                     kept: Tail | None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The contacts ``where`` selects (every one for none) that hold a ``wanted`` email;
    the tail is read once a run, with ``kept``."""
    if kept is not None and kept.contacts is not None:
        scanned: Iterable[tuple[str, dict[str, Any]]] = kept.contacts.items()
    else:
        scanned = _scan(store, CONTACTS, where, "modifiedAt", found,
                        kept, "contacts" if where else None)  # fmt: skip
    return {ident: doc for ident, doc in scanned if contact_emails(doc) & wanted}


def _overfull(keys: dict[str, str], entries: dict[str, dict[str, Any]]) -> set[str]:
    """The emails whose entry is marked overfull."""
    return {keys[k] for k, entry in entries.items()
            if isinstance(entry, Mapping) and entry.get("overfull")}  # fmt: skip


def _contact_holders(claimed: set[tuple[str, str]], tail: Mapping[str, dict[str, Any]],
                     docs: Mapping[str, Any], wanted: set[str],
                     found: Found) -> dict[str, set[str]]:  # fmt: skip
    """Email -> the contacts that hold it: those listed for it that still do (the
    others are stale, in ``found``), and those of the tail."""
    holders: dict[str, set[str]] = {}
    for ident, email in sorted(claimed):
        if email in contact_emails(docs.get(ident)):
            holders.setdefault(email, set()).add(ident)
        else:
            _mark_stale(found, email, "contacts", ident)
    for ident, doc in tail.items():
        for email in contact_emails(doc) & wanted:
            holders.setdefault(email, set()).add(ident)
    return holders


def _record_contacts(found: Found, holders: Mapping[str, set[str]],
                     docs: Mapping[str, dict[str, Any]]) -> None:  # fmt: skip
    """Each email's holders into ``found``, oldest ``modifiedAt`` first (then by id)."""
    for email, ids in holders.items():
        order = sorted(ids, key=lambda i: (str(docs[i].get("modifiedAt") or ""), i))
        found.contacts[email] = order
        found.contact_docs |= {i: docs[i] for i in order}


def _mark_stale(found: Found, email: str, kind: str, ident: str) -> None:
    """``ident`` is listed in the entry of ``email`` but no longer holds it."""
    found.stale.setdefault(key(email), {"contacts": [], "users": []})[kind].append(ident)


def _holders_of(store: DocumentStore, emails: set[str], found: Found,
                kept: Tail | None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Every contact holding one of ``emails``, by a scan of all contacts (once a run
    for each email, with ``kept``)."""
    known = kept.overfull if kept is not None else {}
    out = {i: d for e in emails & known.keys() for i, d in known[e].items()}
    todo = emails - known.keys()
    if todo:
        fresh: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in todo}
        for doc in store.scan(CONTACTS, order_by="modifiedAt"):
            found.reads += 1
            for email in contact_emails(doc.data) & todo:
                fresh[email][doc.id] = doc.data
                out[doc.id] = doc.data
        known.update(fresh)
    return out


def _scan(
    store: DocumentStore,
    collection: str,
    where: list[Filter],
    order_by: str,
    found: Found,
    kept: Tail | None,
    part: str | None,
) -> list[tuple[str, dict[str, Any]]]:
    """The documents of a tail query (counted in ``found``), kept in ``kept.<part>``."""
    docs = [(doc.id, doc.data) for doc in store.scan(collection, where, order_by=order_by)]
    found.reads += len(docs)
    if kept is not None and part is not None:
        setattr(kept, part, dict(docs))
    return docs


def _users(store: DocumentStore, state: Mapping[str, Any], keys: dict[str, str],
           entries: dict[str, dict[str, Any]], have: Have, found: Found,
           kept: Tail | None = None) -> None:  # fmt: skip
    """The users whose CRM or Google account email is each email of ``keys`` (key ->
    email), into ``found``: those its entry lists (the others are stale), and those whose
    Google account connected since the accounts cursor."""
    wanted = set(keys.values())
    claimed = {(i, keys[k]) for k, entry in entries.items() for i in _ids(entry, "users")}
    ids = {i for i, _ in claimed}
    if not state.get("usersBuilt"):  # not read once yet: every user and account
        users = _every(store, USERS, "email", found)
        accounts = _every(store, GOOGLE_ACCOUNTS, "connectedAt", found)
        ids |= {u for u in users if user_emails(users[u], accounts.get(u)) & wanted}
    else:
        accounts = _recent_accounts(store, state, found, kept)
        for ident in accounts:
            ids.add(ident)  # matched below by its account's email or its CRM email
        users = _read(store, USERS, ids, have, found)
        accounts |= _read(store, GOOGLE_ACCOUNTS, ids - set(accounts), have, found)
    matches = _user_matches(ids, users, accounts, wanted)
    for ident, email in sorted(claimed):
        if ident not in matches.get(email, set()):
            _mark_stale(found, email, "users", ident)
    _record_users(found, matches, users, accounts)


def _every(store: DocumentStore, collection: str, order_by: str,
           found: Found) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Every document of ``collection``, by id (counted in ``found``)."""
    docs: dict[str, dict[str, Any]] = {}
    for doc in store.scan(collection, order_by=order_by):
        found.reads += 1
        docs[doc.id] = doc.data
    return docs


def _recent_accounts(store: DocumentStore, state: Mapping[str, Any], found: Found,
                     kept: Tail | None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The Google accounts connected since the accounts cursor, by id (none without a
    cursor); read once a run, with ``kept``."""
    progress = state.get("accounts") or {}
    where = since("connectedAt", progress.get("cursor"), progress.get("readAt"))
    if not where:
        return {}
    if kept is not None and kept.accounts is not None:
        return dict(kept.accounts)
    return dict(_scan(store, GOOGLE_ACCOUNTS, where, "connectedAt", found, kept, "accounts"))


def _user_matches(ids: set[str], users: Mapping[str, Any], accounts: Mapping[str, Any],
                  wanted: set[str]) -> dict[str, set[str]]:  # fmt: skip
    """Email -> the users among ``ids`` (those read) whose CRM or Google account email
    it is."""
    matches: dict[str, set[str]] = {}
    for ident in ids:
        for email in user_emails(users.get(ident), accounts.get(ident)) & wanted:
            if ident in users:
                matches.setdefault(email, set()).add(ident)
    return matches


def _record_users(found: Found, matches: Mapping[str, set[str]], users: Mapping[str, Any],
                  accounts: Mapping[str, Any]) -> None:  # fmt: skip
    """Each email's users into ``found`` (by id), with their documents."""
    for email, idents in matches.items():
        found.users[email] = sorted(idents)
        for ident in idents:
            found.user_docs[ident] = users[ident]
            found.account_docs[ident] = accounts.get(ident)
