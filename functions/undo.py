"""Undo of a sync run (``python main.py undo RUN_ID``): the run's section taken back
by a run of its own, for the run's own user (``core.contacts_undo``,
``core.activities_undo``)."""

from __future__ import annotations

import dataclasses
import uuid

from core.activities_undo import ActivitiesUndo
from core.contacts_undo import ContactsUndo
from core.errors import UndoRefused
from core.model import SYNC_RUNS
from core.ports import DocumentStore, Progress, no_progress
from core.runs import Options, Report
from functions import bootstrap
from functions.sync import google_credentials


def undo(config: bootstrap.Config, store: DocumentStore, run_id: str, options: Options,
         progress: Progress = no_progress, user_id: str | None = None) -> Report:  # fmt: skip
    """Take run ``run_id`` back. ``user_id``: the caller, who must be the run's user
    (None: an administrator at the command line, acting for the run's user)."""
    record = store.get(SYNC_RUNS, run_id)
    owner = (record or {}).get("userId")
    if record is None or (user_id is not None and owner != user_id):
        raise UndoRefused(f"no run {run_id}" + (" of this user" if user_id else ""))
    creds = google_credentials(config, store, owner)
    common = {"new_id": lambda: uuid.uuid4().hex, "progress": progress, "undo_of": run_id}
    engine: ContactsUndo | ActivitiesUndo
    if record.get("section") == "activities":
        engine = ActivitiesUndo(store, bootstrap.calendar_port(config, creds), bootstrap.clock(),
                                **common)  # fmt: skip
    else:
        engine = ContactsUndo(store, bootstrap.people_port(config, creds), bootstrap.clock(),
                              group_name=config.group_name, **common)  # fmt: skip
    return engine.run(owner, dataclasses.replace(options, trigger="undo"))
