"""Cloud Functions for scheduled syncs (CloudEvents from Pub/Sub through Eventarc).

``dispatch_due``: Cloud Scheduler -> ``sync-ticks`` each minute; sends every due
(user, section) to ``sync-jobs`` (or runs it, with ``CRMSYNC_QUEUE=inline``).
``run_sync_job``: one message of ``sync-jobs`` -> one run, or a batch of scheduled runs
(``{"jobs": [...]}``, see ``functions.jobs.run_batch``). For a single job, raising asks
Pub/Sub to redeliver (passing trouble); returning acknowledges (done, skipped, or
hopeless). A batch is always acknowledged: its failed pairs retry at their next slot.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Literal

import functions_framework
from pydantic import BaseModel, Field, ValidationError

from adapters import logs
from adapters.queue import job_from
from functions import bootstrap
from functions.jobs import dispatch, run_batch, run_job

log = logging.getLogger("crmsync.scheduler")


class ProbeIn(BaseModel):
    googleCursor: str
    crmCursor: str
    crmReadAt: str | None = None
    slot: str | None = None
    tagId: str | None = None
    syncFrom: str | None = None
    syncFromSetting: str | None = None
    timeZone: str | None = None
    tokenCiphertext: str | None = None


class JobMessage(BaseModel):
    userId: str
    section: Literal["contacts", "activities"]
    trigger: str = "schedule"
    probe: ProbeIn | None = None
    runId: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")  # a run started by hand


class BatchMessage(BaseModel):
    jobs: list[dict] = Field(min_length=1, max_length=500)


logs.setup()


@functions_framework.cloud_event
def dispatch_due(cloud_event) -> None:
    config = bootstrap.Config.from_env()
    jobs = dispatch(config, bootstrap.shared_store(config))
    log.info("dispatched %d due syncs", len(jobs))


@functions_framework.cloud_event
def run_sync_job(cloud_event) -> None:
    try:
        raw = json.loads(base64.b64decode(cloud_event.data["message"]["data"]))
        if isinstance(raw, dict) and "jobs" in raw:
            batch = BatchMessage.model_validate(raw).jobs
            single = None
        else:
            single, batch = JobMessage.model_validate(raw), []
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        log.error("dropping a malformed sync-jobs message: %s", exc)
        return  # acknowledged: redelivering it would never help
    config = bootstrap.Config.from_env()
    store = bootstrap.shared_store(config)
    if single is not None:
        run_job(config, store, job_from(single.model_dump()))
        return
    jobs = []
    for item in batch:  # one bad job is dropped, not the batch
        try:
            jobs.append(job_from(JobMessage.model_validate(item).model_dump()))
        except ValidationError as exc:
            log.error("dropping a malformed job of a sync-jobs batch: %s", exc)
    run_batch(config, store, jobs)
