"""What a run, a preview or a refused request came to, in one shape for every caller:
``{outcome, reason, hint}``.

- ``done``: the run happened (``reason``: ``changes``, ``no_changes`` or
  ``item_errors`` when some items failed and are retried next run).
- ``skipped``: the run could not start and nothing was changed: no tag chosen, no
  Google connection, a connection to renew, another run under way.
- ``failed``: the run started and stopped on an error; what it did before stays done.
- ``queued``: handed to the queue; its record says how it goes.

``hint`` names the user's next action in the settings page's words. Pure: a function
of the error or the counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from core.errors import (
    AccountChanged,
    AlreadyExists,
    AuthRevoked,
    BadStoreRequest,
    ConfigError,
    ConnectedByAdministrator,
    DelegationRevoked,
    DelegationSuspended,
    GoogleError,
    LeaseHeld,
    LeaseLost,
    MalformedDocument,
    NoTag,
    NotConnected,
    QuotaExceeded,
    ReauthRequired,
    SettingsError,
    SideEmpty,
    StoreError,
    SyncTokenExpired,
    Unavailable,
    UndoRefused,
    UnknownUser,
)
from core.lease import run_of
from core.model import parse_timestamp

Kind = Literal["done", "skipped", "failed", "queued"]
RECONNECT = "Google no longer accepts the connection: reconnect your Google account."
DELEGATION = ("Your administrator's delegation for crmsync was revoked, so Google no longer "
              "accepts it; ask your administrator to restore it.")  # fmt: skip
BY_ADMINISTRATOR = ("Your administrator connected your Google account for crmsync "
                    "(domain-wide delegation); only your administrator can end it.")  # fmt: skip
BUSY = "Google is busy or unavailable; try again in a minute."
RETRY = "Try again later; if it keeps failing, tell your administrator."
STORE = ("crmsync's database did not answer. What the sync changed stays changed, and "
         "the next sync carries on from there; try again in a few minutes.")  # fmt: skip
ALLOW = ("Google refused access: reconnect your Google account and allow access to "
         "contacts and calendar.")  # fmt: skip
# how long a run may sit without its lease before it is taken as dead: the moment
# between its claim and its lease, and between its record and the lease's release
GRACE = timedelta(minutes=2)
QUEUED_FOR = timedelta(hours=1)  # a queued run never started by then is taken as lost


@dataclass(frozen=True)
class Outcome:
    outcome: Kind
    reason: str
    hint: str | None = None
    status: int = 200  # the HTTP status of a request that met it

    def fields(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason, "hint": self.hint}


QUEUED = Outcome("queued", "queued", "It runs in the background; this page follows it.")
INTERRUPTED = Outcome(
    "failed",
    "interrupted",
    "The sync stopped before it finished (it took too long or its server stopped). "
    "What it changed stays changed; start it again.",
)
TAKEN_OVER = Outcome("failed", "interrupted",
                     "The sync ran past its time and another sync took over from it. What it "
                     "changed stays changed; the other sync carries on.", 409)  # fmt: skip
NEVER_STARTED = Outcome("failed", "interrupted",
                        "The sync was queued but never started; start it again.")  # fmt: skip


def settled(run_id: str, record: Mapping[str, Any], lease: Mapping[str, Any] | None,
            now: datetime) -> dict[str, Any]:  # fmt: skip
    """A run record as the page should see it: a ``running`` record whose run no
    longer holds its section's lease (past ``GRACE``), or a ``queued`` one never
    started within ``QUEUED_FOR``, ended without saying so (timeout, crash, a lost
    message) and is shown as ``interrupted``. Other records are as stored."""
    state = record.get("outcome")
    if state == "running":
        holder = str((lease or {}).get("holder") or "")
        expires = (lease or {}).get("expiresAt")
        held = run_of(holder) == run_id and bool(expires) and parse_timestamp(str(expires)) > now
        since = last_word(record)
        if not held and (not since or since + GRACE <= now):
            return {**record, **INTERRUPTED.fields(), "ok": False}
    if state == "queued":
        since = record.get("queuedAt") or record.get("startedAt")
        if not since or parse_timestamp(str(since)) + QUEUED_FOR <= now:
            return {**record, **NEVER_STARTED.fields(), "ok": False}
    return dict(record)


def last_word(record: Mapping[str, Any]) -> datetime | None:
    """When a run last said something in its record: its last progress update, its
    claim, or its start."""
    since = record.get("updatedAt") or record.get("claimedAt") or record.get("startedAt")
    return parse_timestamp(str(since)) if since else None


CONFLICT = "UndoConflict"  # an item an undo left alone: changed again since its run


def _left_alone(n: int) -> str:
    return (f"{n} item{'s' if n != 1 else ''} changed again since that run and "
            f"{'were' if n != 1 else 'was'} left as {'they are' if n != 1 else 'it is'}; "
            "see the details.")  # fmt: skip


def of_counts(counts: Mapping[str, int], errors: Sequence[Any]) -> Outcome:
    """A run that finished: what it changed, and whether items failed."""
    conflicts = sum(1 for e in errors if isinstance(e, Mapping) and e.get("kind") == CONFLICT)
    if conflicts and conflicts == len(errors):
        return Outcome("done", "undo_conflicts", _left_alone(conflicts))
    if errors:
        n = len(errors)
        return Outcome("done", "item_errors",
                       f"{n} item{'s' if n != 1 else ''} could not be synced; "
                       "see the details. They are tried again at the next sync.")  # fmt: skip
    changed = any(n for key, n in counts.items() if key not in ("skipped", "errors"))
    return Outcome("done", "changes" if changed else "no_changes")


def of_error(error: BaseException) -> Outcome:
    """A run, preview or request that met ``error``."""
    if isinstance(error, (ConnectedByAdministrator, DelegationSuspended, DelegationRevoked)):
        return _of_delegation(error)
    match error:
        case NoTag():
            return Outcome("skipped", "no_tag",
                           "Choose a private tag for contacts in the sync settings, "
                           "then save.", 400)  # fmt: skip
        case ReauthRequired():
            return Outcome("skipped", "reauth_required", RECONNECT, 409)
        case NotConnected():
            return Outcome("skipped", "not_connected", "Connect a Google account first.", 409)
        case LeaseLost():  # it ran, and stopped part way
            return TAKEN_OVER
        case LeaseHeld():
            return Outcome("skipped", "busy",
                           "Another sync of this section is under way; its result "
                           "appears in the history.", 409)  # fmt: skip
        case AuthRevoked():
            return Outcome("failed", "reauth_required", RECONNECT, 409)
        case QuotaExceeded() | Unavailable() | SyncTokenExpired():
            return Outcome("failed", "google_unavailable", BUSY, 503)
        case SideEmpty():
            return Outcome("failed", "side_empty", str(error), 409)
        case UndoRefused():
            return Outcome("skipped", "undo_refused", str(error), 409)
        case AccountChanged():
            return Outcome("skipped", "account_changed",
                           "The Google account changed; start a sync to begin afresh "
                           "in the new account.", 409)  # fmt: skip
        case SettingsError() | MalformedDocument():
            return Outcome("failed", "bad_settings",
                           "Check the sync settings and save them again.", 400)  # fmt: skip
        case ConfigError():  # the deployment's: nothing the user can do
            return Outcome("failed", "server_misconfigured",
                           "crmsync is not completely set up on the server; tell your "
                           "administrator.", 500)  # fmt: skip
        case UnknownUser():
            return Outcome("failed", "unknown_user", "Sign in as a CRM user.", 403)
    return _of_failure(error)


def _of_failure(error: BaseException) -> Outcome:
    """A run that failed on Google's side, on the store's, or on a bug."""
    match error:
        case StoreError() if not isinstance(error, AlreadyExists | BadStoreRequest):
            return Outcome("failed", "store_unavailable", STORE, 503)
        case GoogleError(status=403):  # a scope the user did not grant, or took back
            return Outcome("failed", "permission_missing", ALLOW, 403)
        case GoogleError():
            return Outcome("failed", "google_error", RETRY, 502)
    return Outcome("failed", "internal", RETRY, 500)


def _of_delegation(error: BaseException) -> Outcome:
    """The administrator's connection (domain-wide delegation): the user cannot end it,
    and only the administrator can restore it once Google refuses it."""
    if isinstance(error, ConnectedByAdministrator):
        return Outcome("skipped", "connected_by_administrator", BY_ADMINISTRATOR, 409)
    kind: Kind = "skipped" if isinstance(error, DelegationSuspended) else "failed"
    return Outcome(kind, "reauth_required", DELEGATION, 409)
