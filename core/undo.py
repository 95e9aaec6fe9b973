"""Taking a contacts run back: ``plan_undo(entries, now) -> UndoPlan``, pure.

A run's journal (``core.runs.RunLog.note``) says, item by item, what the run wrote:
the side, the pair's ids and, for an update, each synced field it set as (before,
after). Undo turns each pair's entries back into the sync's own actions, executed by
the contacts executor in a run of its own (trigger ``undo``), whose journal can be
undone in turn:

    entry                                   undo
    updatedInCrm / updatedInGoogle          the fields' before-values on both sides
                                            (Reconcile: the pair converges on them)
    pushed, rejoinedGroup, linkedByEmail    the person leaves the group (LeaveGroup,
      (Google side)                         the link parked)
    imported, retagged, linkedByEmail       the contact loses the tag (Untag, the link
      (CRM side)                            parked)
    untagged                                the contact is tagged again (Reconcile+tag)
    removedFromGroup                        the person rejoins the group (Reconcile+join)

An item changed again since the run is never overwritten: a field the run set that
no longer holds the run's after-value, on the side that holds it, or a pair linked
otherwise since, makes the whole item a ``Conflict``, listed and left alone. A pair
already back where the run found it (dissolved again, say) needs nothing.

The sync's rules still hold after an undo: a contact that stays tagged is pushed
again by the next sync, a person left in the group imported again; an undo takes
back what a run wrote, the cause of it is the user's to change (``UndoPlan.redone``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core import contact_mapping as cm
from core.contacts_plan import (
    CrmContact,
    LeaveGroup,
    LinkRecord,
    Person,
    Reconcile,
    Untag,
    Why,
)

LEAVE = frozenset({"pushed", "rejoinedGroup"})  # the run put the person in the group
UNTAG = frozenset({"imported", "retagged"})  # the run tagged the contact
# entries whose fields the undo restores, and the side that holds the run's after-values
FIELDS_OF = {"updatedInCrm": "crm", "updatedInGoogle": "google", "imported": "crm"}


@dataclass(frozen=True, kw_only=True)
class Conflict:
    """An item changed again since the run: left alone, said item by item."""

    crm_id: str
    google_id: str
    name: str
    reason: str


@dataclass
class Item:
    """One pair's entries in the run's journal, combined."""

    crm_id: str
    google_id: str = ""
    name: str = ""
    before: dict[str, Any] = field(default_factory=dict)  # field -> the value to restore
    crm_only: bool = False  # an import over an earlier contact: only the CRM goes back
    problems: list[str] = field(default_factory=list)  # why its fields cannot go back
    after: dict[str, dict[str, Any]] = field(default_factory=dict)  # side -> field -> after
    leave: bool = False
    untag: bool = False
    retag: bool = False
    rejoin: bool = False
    changes: set[str] = field(default_factory=set)  # the entries' change keys
    whole: dict[str, dict[str, Any]] = field(default_factory=dict)  # change -> every field before


@dataclass(frozen=True)
class UndoPlan:
    actions: list[Any]
    conflicts: list[Conflict]
    unchanged: list[str]  # CRM ids whose pair is already as the run found it
    redone: list[str]  # CRM ids the next sync would link again (their cause remains)


@dataclass(frozen=True)
class Current:
    """The pairs' records as they are now."""

    crm: Mapping[str, CrmContact]
    google: Mapping[str, Person]  # by resource name
    links: Mapping[str, LinkRecord]  # by CRM id (parked ones too)
    group: str
    since: datetime | None = None  # when the run ended: a record written after it changed


def items(entries: Iterable[Mapping[str, Any]], fields_of: Mapping[str, str] = FIELDS_OF,
          known: Iterable[str] = cm.FIELDS) -> list[Item]:  # fmt: skip
    """The journal's entries, combined per pair, in the order the run met them.
    ``fields_of``: the entries whose fields go back, and the side holding their
    after-values; ``known``: the section's synced fields."""
    found: dict[str, Item] = {}
    for entry in entries:
        crm_id = entry.get("crmId") if isinstance(entry, Mapping) else None
        if not crm_id or not isinstance(crm_id, str):
            continue  # not an item of ours (a malformed entry changes nothing)
        item = found.setdefault(crm_id, Item(crm_id))
        item.google_id = _text(entry.get("googleId")) or item.google_id
        item.name = _text(entry.get("name")) or item.name
        _take(item, entry, fields_of, frozenset(known))
    return list(found.values())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _take(item: Item, entry: Mapping[str, Any], fields_of: Mapping[str, str],
          known: frozenset[str]) -> None:  # fmt: skip
    change, side = entry.get("change"), entry.get("side")
    fields = entry.get("fields") if isinstance(entry.get("fields"), Mapping) else {}
    if isinstance(change, str):
        item.changes.add(change)
        item.whole[change] = {k: v.get("before") for k, v in fields.items()
                              if k in known and isinstance(v, Mapping)}  # fmt: skip
    if change in fields_of:
        _take_fields(item, fields_of[change], fields, entry.get("fieldsOmitted") or [], known)
    tagged = fields.get("tagged")
    was_tagged = isinstance(tagged, Mapping) and tagged.get("before") is True
    item.crm_only |= change == "imported"
    item.leave |= change in LEAVE or (change == "linkedByEmail" and side == "google")
    item.untag |= (change in UNTAG and not was_tagged) or (change == "linkedByEmail"
                                                           and side == "crm")  # fmt: skip
    item.retag |= change == "untagged"
    item.rejoin |= change == "removedFromGroup"


def _take_fields(item: Item, side: str, fields: Mapping[str, Any], omitted: Any,
                 known: frozenset[str]) -> None:  # fmt: skip
    """A field update's values: the before-value to restore, the after-value that must
    still hold. What cannot be restored safely is the item's problem: values the
    journal left out (too large), a field merged from both sides (each side had its
    own value before), a yearless Google birthday (the CRM cannot hold one)."""
    if omitted:
        item.problems.append(f"the run kept no values for: {', '.join(map(str, omitted))}")
    for name, values in fields.items():
        if name not in known or not isinstance(values, Mapping):
            continue
        before = values.get("before")
        if name in item.before and item.before[name] != before:
            item.problems.append(f"{name} was merged from both sides' values")
        if name == "birthday" and isinstance(before, str) and before.startswith("--"):
            item.problems.append("a birthday without a year cannot be restored")
        item.before.setdefault(name, before)
        item.after.setdefault(side, {})[name] = values.get("after")


def plan_undo(entries: Iterable[Mapping[str, Any]], now: Current) -> UndoPlan:
    actions: list[Any] = []
    conflicts: list[Conflict] = []
    unchanged: list[str] = []
    for item in items(entries):
        problem = _conflict(item, now)
        if problem:
            conflicts.append(Conflict(crm_id=item.crm_id, google_id=item.google_id,
                                      name=item.name, reason=problem))  # fmt: skip
            continue
        mine = _undo(item, now)
        actions += mine
        if not mine:
            unchanged.append(item.crm_id)
    redone = [a.crm_id for a in actions if _redone(a, now)]
    return UndoPlan(actions, conflicts, unchanged, redone)


def _conflict(item: Item, now: Current) -> str:
    """Why the item cannot be taken back without overwriting a later change ("": it can)."""
    problem = _relinked(item, now) or "; ".join(dict.fromkeys(item.problems))
    after = {k: v for side in item.after.values() for k, v in side.items()}
    if problem or not after:
        return problem
    link = now.links.get(item.crm_id)
    contact = now.crm.get(item.crm_id)
    if link is None or link.parked or (contact is not None and not contact.tagged):
        return "no longer synced with its Google contact"
    if _back_already(item, now):
        return ""  # an undo done before: nothing to write, nothing to overwrite
    for where, held in _sides(item, now):
        problem = changed_since(where, held, after, item.before, link.fields)
        if problem:
            return problem
    written = _written_since(item, now)
    return f"saved again in {written} since the run" if written else ""


def _relinked(item: Item, now: Current) -> str:
    link = now.links.get(item.crm_id)
    if link is not None and item.google_id and link.resource_name != item.google_id:
        return f"linked to another Google contact ({link.resource_name}) since"
    return ""


def _back_already(item: Item, now: Current) -> bool:
    """Both sides hold the fields' before-values (an undo of this run done before)."""
    return all(held is not None and all(held.get(k) == v for k, v in item.before.items())
               for _, held in _sides(item, now))  # fmt: skip


def _written_since(item: Item, now: Current) -> str:
    """Where the pair was saved after the run ended (even with the same values: a later
    save is a later word, never overwritten), "" if nowhere."""
    contact, person = now.crm.get(item.crm_id), now.google.get(item.google_id)
    if now.since is None:
        return ""
    if contact is not None and contact.modified_at > now.since:
        return "the CRM"
    if not item.crm_only and person is not None and person.updated_at is not None:
        return "Google" if person.updated_at > now.since else ""
    return ""


def changed_since(where: str, held: Any, after: Mapping[str, Any], before: Mapping[str, Any],
                   synced: Any, known: Iterable[str] = cm.FIELDS) -> str:  # fmt: skip
    """Why one side's fields (``held``; None: gone) cannot be written back ("": they can).
    A field holding the run's after-value goes back; one back at its before-value
    already (an undo done before) stays; any other value is a later change."""
    if held is None:
        return f"no longer exists in {where}"
    changed = sorted(k for k, v in after.items() if held.get(k) not in (v, before.get(k)))
    if changed:
        return f"changed again in {where} since the run: {', '.join(changed)}"
    pending = sorted(k for k in known if held.get(k) != synced.get(k))
    if pending:  # an edit the sync has not carried over yet: never overwritten
        return f"changed in {where} since its last sync: {', '.join(pending)}"
    return ""


def _sides(item: Item, now: Current) -> list[tuple[str, Any]]:
    """Where the run left the pair at its after-values, with the fields held there now
    (None: gone): both sides of a reconcile; the CRM alone for an import."""
    contact, person = now.crm.get(item.crm_id), now.google.get(item.google_id)
    sides = [("the CRM", contact.fields if contact else None)]
    if not item.crm_only:
        base = contact.fields if contact else {}
        sides.append(("Google", person.view(base) if person else None))
    return sides


def _undo(item: Item, now: Current) -> list[Any]:
    link = now.links.get(item.crm_id)
    contact, person = now.crm.get(item.crm_id), now.google.get(item.google_id)
    found = [_fields_back(item, now), _apart(item, now, link, contact, person),
             _back(item, contact, person, link)]  # fmt: skip
    return [a for a in found if a is not None]


def _fields_back(item: Item, now: Current) -> Reconcile | None:
    """The fields the run set, back (None: none, or back already on both sides: an undo
    done before; ``_conflict`` asks the same)."""
    contact, person = now.crm.get(item.crm_id), now.google.get(item.google_id)
    if not item.before or contact is None or person is None or _back_already(item, now):
        return None
    return _restore(item, contact, person)


def _apart(item: Item, now: Current, link: LinkRecord | None, contact: CrmContact | None,
           person: Person | None) -> LeaveGroup | Untag | None:  # fmt: skip
    """A pair the run made: the person leaves the group, or the contact loses the tag."""
    if link is None or link.parked:
        return None
    if item.leave and person is not None and person.in_group:
        last = person.groups <= {now.group}
        return LeaveGroup(crm_id=item.crm_id, resource_name=item.google_id, last_group=last)
    if item.untag and contact is not None and contact.tagged:
        return Untag(crm_id=item.crm_id, resource_name=item.google_id)
    return None


def _restore(item: Item, contact: CrmContact, person: Person) -> Reconcile:
    """Both sides back to the fields' before-values (the pair converges on them); an
    import over an earlier contact gives the CRM its values back, and leaves Google's.
    Both sides hold the same fields here (``_conflict``: nothing pending)."""
    target = cm.normalize({**contact.fields, **item.before})
    google = person.view(target)
    to_write = () if item.crm_only else cm.changed_person_fields(google, target)
    return Reconcile(crm_id=item.crm_id, resource_name=item.google_id, etag=person.etag,
                     fields=target, write_google=bool(to_write),
                     write_crm=target != contact.fields, person_fields=to_write)  # fmt: skip


def _back(item: Item, contact: CrmContact | None, person: Person | None,
          link: LinkRecord | None) -> Reconcile | None:  # fmt: skip
    """A pair the run dissolved comes back: tagged again, or back in the group."""
    parked = link is not None and link.parked
    if not (item.retag or item.rejoin) or not parked or contact is None or person is None:
        return None
    if person.deleted or contact.deleted:
        return None
    tag = item.retag and not contact.tagged
    join = item.rejoin and not person.in_group
    if not (tag or join):
        return None
    # the contact's fields as they are now (a tag write carries them): edits made while
    # the pair was apart are kept, and the next sync merges them with Google's
    return Reconcile(crm_id=item.crm_id, resource_name=item.google_id, etag=person.etag,
                     fields=contact.fields, write_google=False, write_crm=False, tag=tag,
                     join_group=join, reason=Why.REJOINED)  # fmt: skip


def _redone(action: Any, now: Current) -> bool:
    """A pair the undo dissolved, or brought back, whose cause remains on the side it
    left alone: the next sync does what the run did again (links it again, or
    dissolves it again)."""
    contact, person = now.crm.get(action.crm_id), now.google.get(action.resource_name)
    tagged = contact is not None and contact.tagged
    in_group = person is not None and person.in_group and not person.deleted
    if isinstance(action, LeaveGroup):
        return tagged
    if isinstance(action, Untag):
        return in_group
    if isinstance(action, Reconcile) and (action.tag or action.join_group):
        return (action.tag and not in_group and not action.join_group) or (
            action.join_group and not tagged and not action.tag
        )
    return False


def saved_after(read_at: datetime | None, doc: Mapping[str, Any]) -> bool:
    """The CRM document was saved after ``read_at`` (when the undo read it): an edit
    made while the undo ran, never written over. Unknown times say no."""
    stamp = doc.get("modifiedAt")
    if read_at is None or not isinstance(stamp, str):
        return False
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")) > read_at
    except ValueError:
        return False
