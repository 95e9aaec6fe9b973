"""Cloud Functions for scheduled syncs (CloudEvents from Pub/Sub through Eventarc).

``dispatch_due``: Cloud Scheduler -> ``sync-ticks`` each minute; sends every due
(user, section) to ``sync-jobs`` (or runs it, with ``CRMSYNC_QUEUE=inline``).
``run_sync_job``: one message of ``sync-jobs`` -> one run. Raising asks Pub/Sub to
redeliver (passing trouble); returning acknowledges (done, skipped, or hopeless).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Literal

import functions_framework
from pydantic import BaseModel, ValidationError

from adapters import logs
from core.schedule import Job
from functions import bootstrap
from functions.jobs import dispatch, run_job

log = logging.getLogger("crmsync.scheduler")


class JobMessage(BaseModel):
    userId: str
    section: Literal["contacts", "activities"]
    trigger: str = "schedule"


logs.setup()


@functions_framework.cloud_event
def dispatch_due(cloud_event) -> None:
    config = bootstrap.Config.from_env()
    jobs = dispatch(config, bootstrap.shared_store(config))
    log.info("dispatched %d due syncs", len(jobs))


@functions_framework.cloud_event
def run_sync_job(cloud_event) -> None:
    try:
        raw = base64.b64decode(cloud_event.data["message"]["data"])
        message = JobMessage.model_validate(json.loads(raw))
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        log.error("dropping a malformed sync-jobs message: %s", exc)
        return  # acknowledged: redelivering it would never help
    config = bootstrap.Config.from_env()
    job = Job(message.userId, message.section, message.trigger)
    run_job(config, bootstrap.shared_store(config), job)
