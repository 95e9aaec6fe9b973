"""A hypothesis state machine over the contacts sync, shared by its two worlds: the real
client over the sandbox (``tests/integration/test_contacts_machine.py``) and the fakes
(``tests/unit/test_contacts_machine_fakes.py``). Both run the real ``ContactsEngine``
over a SQLite store; a subclass says how the world is made and how a user's hand
deletes and moves persons in Google.

Rules edit, delete, tag, untag, create and move contacts on both sides at random, and
sync. After every sync (and a second, which must plan nothing), the invariants hold:

* the linked pairs are exactly the tagged CRM contacts and exactly the group's members;
* the synced fields are equal on both sides of every pair;
* no duplicates: one person per contact, one contact per person, no id used twice;
* nothing stays-deleted comes back: a deleted person never reappears, a CRM contact
  deleted in the CRM stays deleted and unlinked;
* the newest edit survives: a field edited on one side only takes that edit; edited on
  both, the side whose record changed last (DESIGN.md, "Sync semantics") wins.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from core import contact_mapping as cm
from core.model import CONTACTS
from functions.seed import ALICE_TAG as TAG

FIELDS = ("jobTitle", "notes", "company", "familyName")
VALUES = st.sampled_from(["", "alpha", "beta", "gamma", "delta"])
PICK = st.integers(min_value=0, max_value=10_000)
COUNTER = itertools.count()


class ContactsMachine(RuleBasedStateMachine):
    """The rules and invariants; a subclass supplies the world and Google's hand."""

    examples = 0

    # --- what a subclass supplies -------------------------------------------------------

    def new_world(self) -> Any:
        """A fresh world (``contacts_world.World``'s interface), nothing synced yet."""
        raise NotImplementedError

    def clock(self) -> float:
        """The world's one clock, as a timestamp."""
        raise NotImplementedError

    def settle(self) -> None:
        """Let Google's deltas catch up with the edits (minutes pass)."""

    def delete_person(self, name: str) -> None:
        raise NotImplementedError

    def move_person(self, name: str, into: bool) -> None:
        """Put the person into the world's group, or take it out."""
        raise NotImplementedError

    def person_updated(self, name: str) -> str | None:
        """The person's record time as Google keeps it (its source's ``updateTime``):
        what the sync compares with the CRM's ``modifiedAt``."""
        raise NotImplementedError

    # --- the machine ------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        type(self).examples += 1
        self.world = self.new_world()
        self.world.run()
        self.crm_edits: dict[str, dict[str, Any]] = {}  # crm id -> field -> value
        self.google_edits: dict[str, dict[str, Any]] = {}  # resource name -> field -> value
        self.crm_time: dict[str, float] = {}
        self.google_time: dict[str, float] = {}
        self.deleted_people: set[str] = set()
        self.deleted_contacts: set[str] = set()
        self.last_run: str | None = None  # the run an undo_last takes back
        self.steps: list[str] = []  # our own log: hypothesis cannot print a flaky failure's

    def teardown(self) -> None:
        if hasattr(self, "world"):
            self.world.close()

    # --- helpers ----------------------------------------------------------------------

    def live_contacts(self) -> list[str]:
        docs = self.world.store.scan(CONTACTS, order_by="modifiedAt")
        return sorted(d.id for d in docs if not d.data.get("deletedAt"))

    def live_people(self) -> list[str]:
        return sorted(self.world.persons())

    def pick(self, items: list[str], index: int) -> str | None:
        """The item the index falls on; the step log names it, since resource names are
        drawn at random and the same indexes hit other persons on a replay."""
        item = items[index % len(items)] if items else None
        if self.steps:
            self.steps[-1] += f"  # {item}"
        return item

    # --- CRM rules --------------------------------------------------------------------

    @rule(i=PICK, field=st.sampled_from(FIELDS), value=VALUES)
    def crm_edit(self, i: int, field: str, value: str) -> None:
        self.steps.append(f"crm_edit(i={i!r}, field={field!r}, value={value!r})")
        crm_id = self.pick(self.live_contacts(), i)
        if crm_id:
            self.world.edit_contact(crm_id, **{field: value or None})
            self.crm_edits.setdefault(crm_id, {})[field] = value or None
            self.crm_time[crm_id] = self.clock()

    @rule(i=PICK)
    def crm_tag(self, i: int) -> None:
        self.steps.append(f"crm_tag(i={i!r})")
        crm_id = self.pick(self.live_contacts(), i)
        if crm_id:
            tags = self.world.contact(crm_id).get("tagIds", [])
            self.world.edit_contact(crm_id, tagIds=sorted(set(tags) | {TAG}))
            self.crm_time[crm_id] = self.clock()  # any change moves the record's time

    @rule(i=PICK)
    def crm_untag(self, i: int) -> None:
        self.steps.append(f"crm_untag(i={i!r})")
        crm_id = self.pick(self.live_contacts(), i)
        if crm_id:
            tags = self.world.contact(crm_id).get("tagIds", [])
            self.world.edit_contact(crm_id, tagIds=[t for t in tags if t != TAG])
            self.crm_time[crm_id] = self.clock()

    @rule(i=PICK)
    def crm_delete(self, i: int) -> None:
        self.steps.append(f"crm_delete(i={i!r})")
        crm_id = self.pick(self.live_contacts(), i)
        if crm_id:
            self.world.edit_contact(crm_id, deletedAt=self.world.now())
            self.deleted_contacts.add(crm_id)

    @rule(tagged=st.booleans())
    def crm_create(self, tagged: bool) -> None:
        self.steps.append(f"crm_create(tagged={tagged!r})")
        n = next(COUNTER)
        self.world.store.put(
            CONTACTS,
            f"c-new{n}",
            {
                "givenName": f"New{n}",
                "emails": [{"value": f"new{n}@example.com"}],
                "tagIds": [TAG] if tagged else [],
                "modifiedAt": self.world.now(),
            },
        )

    # --- Google rules -----------------------------------------------------------------

    @rule(i=PICK, field=st.sampled_from(FIELDS), value=VALUES)
    def google_edit(self, i: int, field: str, value: str) -> None:
        self.steps.append(f"google_edit(i={i!r}, field={field!r}, value={value!r})")
        name = self.pick(self.live_people(), i)
        if name:
            self.world.edit_person(name, **{field: value or None})
            self.google_edits.setdefault(name, {})[field] = value or None
            self.google_time[name] = self.clock()

    @rule(i=PICK)
    def google_delete(self, i: int) -> None:
        self.steps.append(f"google_delete(i={i!r})")
        name = self.pick(self.live_people(), i)
        if name:
            self.delete_person(name)
            self.deleted_people.add(name)

    @rule(i=PICK, into=st.booleans())
    def google_move(self, i: int, into: bool) -> None:
        self.steps.append(f"google_move(i={i!r}, into={into!r})")
        name = self.pick(self.live_people(), i)
        if not name:
            return
        before = self.person_updated(name)
        self.move_person(name, into)
        if self.person_updated(name) != before:  # a membership change is a write too; a
            self.google_time[name] = self.clock()  # move that changed nothing is none

    @rule(in_group=st.booleans(), reuse_email=PICK)
    def google_create(self, in_group: bool, reuse_email: int) -> None:
        self.steps.append(f"google_create(in_group={in_group!r}, reuse_email={reuse_email!r})")
        n = next(COUNTER)
        contacts = self.live_contacts()
        email = f"g{n}@example.com"
        if contacts and reuse_email % 3 == 0:  # sometimes an existing CRM contact's email
            doc = self.world.contact(self.pick(contacts, reuse_email))
            email = (doc.get("emails") or [{"value": email}])[0]["value"]
        self.world.create_person(f"G{n}", email, in_group=in_group)

    # --- sync and invariants ----------------------------------------------------------

    @rule()
    def sync_at_once(self) -> None:
        """A run right after the edits, before Google's deltas show them (realistic
        profile): nothing may be lost or doubled; the next settled sync converges."""
        self.steps.append("sync_at_once()")
        self.last_run = self.world.run().run_id
        self.check_no_duplicates()
        self.forget_settled()

    @rule()
    def undo_last(self) -> None:
        """The last run taken back (an undo's undo, when the last run was an undo):
        items with edits not synced yet are left alone, so the pending edits stay the
        newest; the next sync re-links what is still tagged or in the group."""
        self.steps.append("undo_last()")
        if self.last_run is None:
            return
        undone = self.last_run
        report = self.world.undo(undone)
        assert not [e for e in report.errors if e.get("kind") != "UndoConflict"], report.errors
        self.last_run = report.run_id
        self.check_no_duplicates()
        self.check_restored(undone, report)

    def check_restored(self, undone: str, report: Any) -> None:
        """Each pair whose fields the undo took back holds, on both sides, the values
        the undone run's journal says they had before it."""
        from core.model import SYNC_RUNS
        from core.runs import journal

        record = self.world.store.get(SYNC_RUNS, undone) or {}
        before: dict[str, dict[str, Any]] = {}
        for entry in journal(self.world.store, undone, int(record.get("itemPages") or 0)):
            for name, values in (entry.get("fields") or {}).items():
                if name in cm.FIELDS:
                    before.setdefault(entry["crmId"], {}).setdefault(name, values["before"])
        persons = self.world.persons()
        for action in report.plan:
            if not (getattr(action, "write_crm", False) or getattr(action, "write_google", False)):
                continue
            crm = cm.normalize(self.world.contact(action.crm_id))
            google = cm.from_person(persons[action.resource_name])
            for name, value in before.get(action.crm_id, {}).items():
                assert crm[name] == value == google[name], (action.crm_id, name, self.steps)

    def forget_settled(self) -> None:
        """A field a run left equal on both sides of a pair is settled: its edits so far
        were reconciled (or agree), and the pair's last synced value is that value. Only
        edits made after the run can change it, and an edit on one side alone wins
        whatever the other side's record time (DESIGN.md: changed on one side only)."""
        persons = self.world.persons()
        for crm_id, name in self.world.links().items():
            if name not in persons:
                continue
            crm, google = cm.normalize(self.world.contact(crm_id)), cm.from_person(persons[name])
            for field in FIELDS:
                if crm[field] == google[field]:
                    self.crm_edits.get(crm_id, {}).pop(field, None)
                    self.google_edits.get(name, {}).pop(field, None)

    @rule()
    def sync(self) -> None:
        self.steps.append("sync()")
        before, synced = {**self.world.links()}, self.world.synced()
        self.settle()  # minutes pass: Google's deltas catch up with the edits
        self.last_run = self.world.run().run_id
        self.check_newest_edit_survives(before, synced)
        again = self.world.run()
        # a contact whose email several Google contacts share is said until the user
        # resolves it (again when Google changes, or a day on): a standing report
        ambiguous = {a.crm_id for a in again.plan if type(a).__name__ == "AmbiguousEmail"}
        ambiguous |= set(self.world.state().get("retryCrmLater") or {})
        changes = [a for a in again.plan if type(a).__name__ != "AmbiguousEmail"]
        assert changes == [], f"a second sync still planned {changes}"
        self.check_pairs(ambiguous)
        self.crm_edits.clear()
        self.google_edits.clear()

    def check_newest_edit_survives(self, links_before: dict[str, str],
                                   synced: dict[str, dict[str, Any]]) -> None:  # fmt: skip
        """An edit that leaves a field at its last synced value (``synced``) changed
        nothing on its side: the other side's change of that field wins, whatever the
        record times (DESIGN.md: changed on one side only)."""
        links = self.world.links()
        for crm_id, name in links_before.items():
            if links.get(crm_id) != name:
                continue  # the pair was dissolved (deleted or untagged): no value to check
            was = synced.get(crm_id, {})
            expected = {f: v for f, v in self.google_edits.get(name, {}).items()
                        if v != was.get(f)}  # fmt: skip
            crm_newer = self.crm_time.get(crm_id, 0) >= self.google_time.get(name, 0)
            for field, value in self.crm_edits.get(crm_id, {}).items():
                if value != was.get(field) and (field not in expected or crm_newer):
                    expected[field] = value
            contact = cm.normalize(self.world.contact(crm_id))
            for field, value in expected.items():
                assert contact[field] == value, (
                    crm_id,
                    field,
                    contact[field],
                    value,
                    self.steps[-25:],
                )

    def check_pairs(self, ambiguous: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        w = self.world
        links = w.links()
        persons = w.persons()
        members = {n for n, p in persons.items() if w.group() in cm.group_names(p)}
        assert set(links) == w.tagged_ids() - ambiguous, "links != tagged CRM contacts"
        assert set(links.values()) == members, "links != group members"
        assert len(set(links.values())) == len(links), "a person linked twice"
        for crm_id, name in links.items():
            assert cm.normalize(w.contact(crm_id)) == cm.from_person(persons[name]), crm_id
        self.check_no_duplicates()

    def check_no_duplicates(self) -> None:
        persons = self.world.persons()
        ids = [cm.client_data_id(p) for p in persons.values() if cm.client_data_id(p)]
        assert len(ids) == len(set(ids)), ("two persons carry the same CRM id", self.steps[-25:])
        links = self.world.links()
        assert len(set(links.values())) == len(links), ("a person linked twice", self.steps[-25:])

    @invariant()
    def deleted_things_stay_deleted(self) -> None:
        if not hasattr(self, "world"):
            return
        assert not self.deleted_people & set(self.world.persons()), "a deleted person is back"
        for crm_id in self.deleted_contacts:  # (and unlinked after a sync: check_pairs)
            assert self.world.contact(crm_id).get("deletedAt"), f"{crm_id} undeleted"
