"""Presenting a sync run: a readable summary for people, JSON for programs."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, TextIO

from core.activities_plan import (
    CancelActivity,
    DeleteEvent,
    DropEventLink,
    ImportEvent,
    InsertEvent,
    NotPropagated,
    ReconcileEvent,
)
from core.contact_mapping import display_name
from core.contacts_plan import (
    AmbiguousEmail,
    CreatePerson,
    DropLink,
    ImportPerson,
    LeaveGroup,
    Reconcile,
    Untag,
)
from core.event_undo import RemoveImport
from core.runs import Report

LABELS = {
    "pushed": "pushed to Google",
    "imported": "imported from Google",
    "linkedByEmail": "linked by email",
    "relinked": "relinked after a crash",
    "updatedInGoogle": "updated in Google",
    "updatedInCrm": "updated in the CRM",
    "conflicts": "conflicting fields merged",
    "untagged": "untagged in the CRM",
    "removedFromGroup": "removed from the group",
    "retagged": "tagged again in the CRM",
    "rejoinedGroup": "put back in the group",
    "linked": "linked to an existing activity",
    "canceled": "canceled in the CRM",
    "deletedInGoogle": "deleted in Google",
    "removedFromCrm": "deleted in the CRM (an import taken back)",
    "notPropagated": "not propagated (read-only copy)",
    "ambiguous": "not pushed (ambiguous)",
    "skipped": "skipped (malformed)",
    "errors": "errors",
}
SECTION_KEYS = {
    "contacts": ("pushed", "imported", "linkedByEmail", "relinked", "updatedInGoogle",
                 "updatedInCrm", "conflicts", "retagged", "rejoinedGroup", "untagged",
                 "removedFromGroup", "ambiguous", "skipped", "errors"),
    "activities": ("pushed", "imported", "linked", "updatedInGoogle", "updatedInCrm", "conflicts",
                   "canceled", "deletedInGoogle", "removedFromCrm", "notPropagated", "skipped",
                   "errors"),
}  # fmt: skip


def describe(action: Any, names: Mapping[str, str] | None = None) -> str:
    """One planned action in the user's words. Items are named by what they hold
    (a contact's name, an event's title), else by ``names`` (id -> name, from the
    CRM records and links), else by id."""
    who = _Namer(names or {})
    return _contact_action(action, who) or _activity_action(action, who) or repr(action)


def describe_undo(action: Any, names: Mapping[str, str] | None = None) -> str:
    """An undo's action in the user's words: as a sync's, without the cause a sync
    would have for it (the parenthesis at the end): an undo's cause is the undone run."""
    text = describe(action, names)
    cut = text.rfind(" (")
    return text[:cut] if cut > 0 and text.endswith(")") else text


class _Namer:
    """What to call an item: by what it holds, else by a known name, else by its id."""

    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = known

    def __call__(self, ident: str, fields: Any = None, *alternatives: str) -> str:
        if fields:
            name = display_name(fields) if "title" not in fields else fields.get("title")
            if name:
                return name
        for key in (ident, *alternatives):
            if self.known.get(key):
                return self.known[key]
        return ident


def _sides(r: Any) -> str:
    on = [s for s, yes in (("Google", r.write_google), ("the CRM", r.write_crm)) if yes]
    return " and ".join(on)


def _reconcile(r: Reconcile, who: _Namer) -> str:
    name, where = who(r.crm_id, r.fields, r.resource_name), _sides(r)
    if not where:
        return f"link {name} to its Google contact"
    how = {"email": "link by email and update", "clientData": "link again and update"}
    extra = f"; edited on both sides: {', '.join(r.conflicts)}" if r.conflicts else ""
    return f"{how.get(r.reason, 'update')} {name} in {where}{extra}"


def _contact_action(action: Any, who: _Namer) -> str | None:
    match action:
        case CreatePerson(crm_id=crm_id, fields=fields):
            return f"add {who(crm_id, fields)} to Google (a new contact in the group)"
        case ImportPerson(resource_name=name, fields=fields):
            return f"import {who(name, fields)} into the CRM, with your tag"
        case Reconcile(reason="etag", crm_id=crm_id, fields=fields):
            return f"note that {who(crm_id, fields)} changed nothing synced in Google"
        case Reconcile() as r:
            return _reconcile(r, who)
        case LeaveGroup(crm_id=crm_id, resource_name=name):
            return (f"take {who(crm_id, None, name)} out of the Google group "
                    "(untagged or deleted in the CRM)")  # fmt: skip
        case Untag(crm_id=crm_id, resource_name=name):
            return (f"remove your tag from {who(crm_id, None, name)} in the CRM "
                    "(deleted in Google or taken out of the group)")  # fmt: skip
        case AmbiguousEmail(crm_id=crm_id, resource_names=found, reason=why):
            return f"leave {who(crm_id)} out of Google: {why} ({len(found)} Google contacts)"
        case DropLink(crm_id=crm_id):
            return f"forget the link of {who(crm_id)} (gone on both sides)"
    return None


def _activity_action(action: Any, who: _Namer) -> str | None:
    match action:
        case InsertEvent(activity_id=aid, fields=fields):
            return f"add {who(aid, fields)} to the Google calendar"
        case ImportEvent(event_id=eid, fields=fields):
            return f"import the event {who(eid, fields)} as a new activity"
        case ReconcileEvent(reason="etag", activity_id=aid, fields=fields):
            return f"note that {who(aid, fields)} changed nothing synced in Google"
        case ReconcileEvent() as r:
            where, name = _sides(r), who(r.activity_id, r.fields, r.event_id)
            return f"update {name} in {where}" if where else f"link {name} to its event"
        case CancelActivity(activity_id=aid, event_id=eid):
            return f"cancel {who(aid, None, eid)} in the CRM (cancelled in Google)"
        case DeleteEvent(activity_id=aid, event_id=eid):
            return (f"delete {who(aid, None, eid)} from the Google calendar "
                    "(deleted or no longer shown in the calendar in the CRM)")  # fmt: skip
        case DropEventLink(activity_id=aid):
            return f"forget the link of {who(aid)}"
        case RemoveImport(activity_id=aid, event_id=eid):
            return f"delete {who(aid, None, eid)} from the CRM; its Google event stays"
        case NotPropagated(activity_id=aid):
            return f"note that the CRM edit of {who(aid)} cannot reach Google (a read-only copy)"
    return None


def ids_of(action: Any) -> list[str]:
    """The CRM ids an action names, to look their names up."""
    return [v for k in ("crm_id", "activity_id") if isinstance(v := getattr(action, k, None), str)]


def render(report: Report) -> str:
    kind = "dry run" if report.dry_run else "run"
    scope = "full pass" if report.full_pass else "incremental"
    lines = [f"{report.section} sync {kind} for {report.user_id} ({scope}, run {report.run_id})"]
    if report.dry_run:
        lines.append(f"plan: {len(report.plan)} action(s); nothing was changed")
        say = describe_undo if report.trigger == "undo" else describe
        lines += [f"  - {say(a)}" for a in report.plan]
    else:
        keys = SECTION_KEYS.get(report.section, tuple(LABELS))
        width = max(len(LABELS[key]) for key in keys)
        for key in keys:
            lines.append(f"  {LABELS[key]:<{width}}  {report.counts.get(key, 0)}")
    for error in report.errors:
        lines.append(f"  ! {error['id']}: {error['message']}")
    return "\n".join(lines)


class ProgressPrinter:
    """Progress on a terminal: messages as lines, and a bar for item work over 500 items."""

    BAR_FROM = 500
    WIDTH = 30

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = -1

    def __call__(self, message: str, done: int = 0, total: int = 0) -> None:
        if not total:
            print(f"  .. {message}", file=self.out, flush=True)
        elif total > self.BAR_FROM:
            step = done * 100 // total
            if step == self.shown:
                return
            self.shown = step
            filled = done * self.WIDTH // total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            end = "\n" if done >= total else ""
            print(f"\r  [{bar}] {done}/{total} {message}", end=end, file=self.out, flush=True)


def summary_line(report: Report) -> str:
    """Only what happened: ``pushed to Google 4, updated in the CRM 1`` or ``no changes``."""
    done = [
        f"{label} {report.counts[key]}" for key, label in LABELS.items() if report.counts.get(key)
    ]
    return ", ".join(done) or "no changes"


def to_json(report: Report) -> str:
    # less the finish's own bookkeeping (a set, an exception)
    data = dataclasses.asdict(dataclasses.replace(report, saved=set(), unsaved=None))
    for key in ("saved", "unsaved"):
        data.pop(key)
    data["plan"] = [{"action": type(a).__name__, **dataclasses.asdict(a)} for a in report.plan]
    data["planSummary"] = report.plan_summary()
    return json.dumps(data, indent=2, sort_keys=True)
