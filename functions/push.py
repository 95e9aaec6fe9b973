"""``calendar_push``: Google's Calendar notifications for a user's push channel.

The channel id and token are checked (channels and their upkeep: ``functions.channels``);
``sync`` messages are acknowledged, ``exists`` messages queue a debounced activities
sync. Unknown channel (or a corrupt one) → 404, wrong token → 403, and nothing is
queued.
"""

from __future__ import annotations

import hmac
from contextlib import suppress

import functions_framework

from adapters import logs
from core.model import id_problem
from core.schedule import Job
from functions import bootstrap
from functions.channels import CHANNELS, token_hash
from functions.jobs import queue_for
from functions.webhook_logic import claim, release

logs.setup()


@functions_framework.http
def calendar_push(request):
    config = bootstrap.Config.from_env()
    store = bootstrap.shared_store(config)
    channel_id = request.headers.get("X-Goog-Channel-ID", "")
    known = channel_id and id_problem(channel_id) is None  # an id no channel can have
    channel = store.get(CHANNELS, channel_id) if known else None
    if not _usable(channel):  # none, or one no notification can be checked against
        return {"error": "unknown channel"}, 404
    token = request.headers.get("X-Goog-Channel-Token", "")
    given = token_hash(token).encode()  # compared as bytes: any stored text is comparable
    if not hmac.compare_digest(given, channel["tokenHash"].encode("utf-8", "replace")):
        return {"error": "bad channel token"}, 403
    if request.headers.get("X-Goog-Resource-State") != "exists":
        return {"queued": False}, 200  # the 'sync' handshake, or a state we ignore
    job = Job(channel["userId"], "activities", "push")
    now = bootstrap.clock().now()
    if not claim(store, job, now):
        return {"queued": False, "coalesced": True}, 200
    try:
        queue_for(config, store).send([job])
    except Exception:
        with suppress(Exception):  # Google's next notification is then not coalesced
            release(store, job, now)
        raise
    return {"queued": True}, 200


def _usable(channel: object) -> bool:
    """A channel document as crmsync writes it: a token hash to check and a user to sync
    (a corrupt one is an unknown channel, never a 500)."""
    if not isinstance(channel, dict):
        return False
    user = channel.get("userId")
    return (isinstance(channel.get("tokenHash"), str) and isinstance(user, str)
            and id_problem(user) is None)  # fmt: skip
