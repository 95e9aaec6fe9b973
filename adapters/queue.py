"""Where due syncs are sent (``CRMSYNC_QUEUE``): run in process, or published to Pub/Sub.

``inline`` runs each job at once through a runner the caller gives. ``pubsub:projects/
P/topics/T`` publishes JSON messages with google-cloud-pubsub, which honours
``PUBSUB_EMULATOR_HOST``: one per job (``{"userId", "section", "trigger"}``), or, for
the scheduler's ``send_batched``, one per batch (``{"jobs": [job, ...]}``), where a job
may carry its ``probe`` (the cursors to look for changes past).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from core.errors import ConfigError
from core.schedule import Job, Probe

TOPIC = re.compile(r"^projects/[^/]+/topics/[^/]+$")


def job_fields(job: Job) -> dict[str, Any]:
    fields: dict[str, Any] = {"userId": job.user_id, "section": job.section,
                              "trigger": job.trigger}  # fmt: skip
    if job.probe is not None:
        fields["probe"] = {
            camel(name): value for name, value in dataclasses.asdict(job.probe).items()
        }
    if job.run_id:
        fields["runId"] = job.run_id
    return fields


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def job_from(fields: dict[str, Any]) -> Job:
    """The inverse of ``job_fields`` (fields already validated by the caller)."""
    probe = fields.get("probe")
    names = [f.name for f in dataclasses.fields(Probe)]
    return Job(fields["userId"], fields["section"], fields.get("trigger") or "schedule",
               Probe(**{n: probe.get(camel(n)) for n in names}) if probe else None,
               fields.get("runId"))  # fmt: skip


def encode(job: Job) -> bytes:
    return json.dumps(job_fields(job)).encode()


def encode_batch(jobs: Sequence[Job]) -> bytes:
    return json.dumps({"jobs": [job_fields(job) for job in jobs]}).encode()


def batches(jobs: Sequence[Job], size: int) -> list[Sequence[Job]]:
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


class InlineQueue:
    def __init__(self, runner: Callable[[Job], Any]) -> None:
        self.runner = runner

    def send(self, jobs: Sequence[Job]) -> list[Any]:
        return [self.runner(job) for job in jobs]

    def send_batched(
        self, jobs: Sequence[Job], size: int, batch_runner: Callable[[Sequence[Job]], Any]
    ) -> list[Any]:
        return [batch_runner(batch) for batch in batches(jobs, size)]


class PubSubQueue:
    def __init__(self, topic: str, publisher: Any = None) -> None:
        if not TOPIC.match(topic):
            raise ConfigError(f"CRMSYNC_QUEUE topic must be projects/P/topics/T, got {topic!r}")
        from google.cloud import pubsub_v1

        self.topic = topic
        self.publisher = publisher or pubsub_v1.PublisherClient()

    def send(self, jobs: Sequence[Job]) -> list[str]:
        return self._publish([encode(job) for job in jobs])

    def send_batched(self, jobs: Sequence[Job], size: int, batch_runner: Any = None) -> list[str]:
        return self._publish([encode_batch(batch) for batch in batches(jobs, size)])

    def _publish(self, messages: list[bytes]) -> list[str]:
        futures = [self.publisher.publish(self.topic, message) for message in messages]
        return [future.result(timeout=60) for future in futures]


def open_queue(spec: str, runner: Callable[[Job], Any]) -> InlineQueue | PubSubQueue:
    if spec == "inline":
        return InlineQueue(runner)
    if spec.startswith("pubsub:"):
        return PubSubQueue(spec.removeprefix("pubsub:"))
    raise ConfigError(
        f"CRMSYNC_QUEUE must be 'inline' or 'pubsub:projects/P/topics/T', got {spec!r}"
    )
