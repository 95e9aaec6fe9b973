"""Presenting a sync run: a readable summary for people, JSON for programs."""

from __future__ import annotations

import dataclasses
import json
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
from core.contacts_plan import (
    AmbiguousEmail,
    CreatePerson,
    DropLink,
    ImportPerson,
    LeaveGroup,
    Reconcile,
    Untag,
)
from core.runs import Report

LABELS = {
    "pushed": "pushed to Google",
    "imported": "imported from Google",
    "linkedByEmail": "linked by email",
    "updatedInGoogle": "updated in Google",
    "updatedInCrm": "updated in the CRM",
    "conflicts": "conflicting fields merged",
    "untagged": "untagged in the CRM",
    "removedFromGroup": "removed from the group",
    "linked": "linked to an existing activity",
    "canceled": "canceled in the CRM",
    "deletedInGoogle": "deleted in Google",
    "notPropagated": "not propagated (read-only copy)",
    "ambiguous": "not pushed (ambiguous)",
    "skipped": "skipped (malformed)",
    "errors": "errors",
}
SECTION_KEYS = {
    "contacts": ("pushed", "imported", "linkedByEmail", "updatedInGoogle", "updatedInCrm",
                 "conflicts", "untagged", "removedFromGroup", "ambiguous", "skipped",
                 "errors"),
    "activities": ("pushed", "imported", "linked", "updatedInGoogle", "updatedInCrm", "conflicts",
                   "canceled", "deletedInGoogle", "notPropagated", "skipped", "errors"),
}  # fmt: skip


def describe(action: Any) -> str:
    match action:
        case CreatePerson(crm_id=crm_id):
            return f"push {crm_id} to Google (new contact in the group)"
        case ImportPerson(resource_name=name):
            return f"import {name} into the CRM, tagged"
        case Reconcile(reason="etag", crm_id=crm_id):
            return f"note {crm_id}'s new Google etag (no change)"
        case Reconcile() as r:
            sides = [s for s, on in (("Google", r.write_google), ("the CRM", r.write_crm)) if on]
            how = {"email": "link by email", "clientData": "link (found by our id)"}.get(
                r.reason, "update"
            )
            where = " and ".join(sides) or "link only"
            extra = f"; conflicts: {', '.join(r.conflicts)}" if r.conflicts else ""
            return f"{how} {r.crm_id} <-> {r.resource_name}: write {where}{extra}"
        case LeaveGroup(crm_id=crm_id, resource_name=name):
            return f"remove {name} from the group ({crm_id} untagged or deleted in the CRM)"
        case Untag(crm_id=crm_id, resource_name=name):
            return f"untag {crm_id} ({name} deleted in Google or left the group)"
        case AmbiguousEmail(crm_id=crm_id, resource_names=names, reason=why):
            return f"leave {crm_id} unpushed: {why} ({', '.join(names)})"
        case DropLink(crm_id=crm_id):
            return f"forget the link of {crm_id} (gone on both sides)"
        case InsertEvent(activity_id=aid):
            return f"insert activity {aid} into the calendar"
        case ImportEvent(event_id=eid):
            return f"import event {eid} as a new activity"
        case ReconcileEvent(reason="etag", activity_id=aid):
            return f"note {aid}'s new Google etag (no change)"
        case ReconcileEvent() as r:
            sides = [s for s, on in (("Google", r.write_google), ("the CRM", r.write_crm)) if on]
            where = " and ".join(sides) or "link only"
            return f"{r.reason}: {r.activity_id} <-> event {r.event_id}: write {where}"
        case CancelActivity(activity_id=aid):
            return f"cancel activity {aid} (event cancelled in Google)"
        case DeleteEvent(activity_id=aid, event_id=eid):
            return f"delete event {eid} ({aid} deleted or hidden in the CRM)"
        case DropEventLink(activity_id=aid):
            return f"forget the link of {aid}"
        case NotPropagated(activity_id=aid):
            return f"record that {aid}'s CRM edit cannot reach Google (read-only copy)"
    return repr(action)


def render(report: Report) -> str:
    kind = "dry run" if report.dry_run else "run"
    scope = "full pass" if report.full_pass else "incremental"
    lines = [f"{report.section} sync {kind} for {report.user_id} ({scope}, run {report.run_id})"]
    if report.dry_run:
        lines.append(f"plan: {len(report.plan)} action(s); nothing was changed")
        lines += [f"  - {describe(a)}" for a in report.plan]
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
    data = dataclasses.asdict(report)
    data["plan"] = [{"action": type(a).__name__, **dataclasses.asdict(a)} for a in report.plan]
    data["planSummary"] = report.plan_summary()
    return json.dumps(data, indent=2, sort_keys=True)
