"""Where due syncs are sent (``CRMSYNC_QUEUE``): run in process, or published to Pub/Sub.

``inline`` runs each job at once through a runner the caller gives. ``pubsub:projects/
P/topics/T`` publishes one JSON message per job (``{"userId", "section", "trigger"}``)
with google-cloud-pubsub, which honours ``PUBSUB_EMULATOR_HOST``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from core.errors import ConfigError
from core.schedule import Job

TOPIC = re.compile(r"^projects/[^/]+/topics/[^/]+$")


def encode(job: Job) -> bytes:
    return json.dumps(
        {"userId": job.user_id, "section": job.section, "trigger": job.trigger}
    ).encode()


class InlineQueue:
    def __init__(self, runner: Callable[[Job], Any]) -> None:
        self.runner = runner

    def send(self, jobs: Sequence[Job]) -> list[Any]:
        return [self.runner(job) for job in jobs]


class PubSubQueue:
    def __init__(self, topic: str, publisher: Any = None) -> None:
        if not TOPIC.match(topic):
            raise ConfigError(f"CRMSYNC_QUEUE topic must be projects/P/topics/T, got {topic!r}")
        from google.cloud import pubsub_v1

        self.topic = topic
        self.publisher = publisher or pubsub_v1.PublisherClient()

    def send(self, jobs: Sequence[Job]) -> list[str]:
        futures = [self.publisher.publish(self.topic, encode(job)) for job in jobs]
        return [future.result(timeout=60) for future in futures]


def open_queue(spec: str, runner: Callable[[Job], Any]) -> InlineQueue | PubSubQueue:
    if spec == "inline":
        return InlineQueue(runner)
    if spec.startswith("pubsub:"):
        return PubSubQueue(spec.removeprefix("pubsub:"))
    raise ConfigError(
        f"CRMSYNC_QUEUE must be 'inline' or 'pubsub:projects/P/topics/T', got {spec!r}"
    )
