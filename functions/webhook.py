"""``crm_webhook``: the CRM tells crmsync that records changed (HTTPS POST, signed).

Thin entry point: check, parse, hand over to ``webhook_logic`` (a ``Rejected`` is
answered by the error handler, ``functions.http_errors``). Answers 202 with what was
queued, coalesced and replayed.
"""

from __future__ import annotations

import functions_framework

from adapters import logs
from functions import bootstrap
from functions.http_errors import Rejected
from functions.jobs import queue_for
from functions.webhook_logic import MAX_BODY, accept, parse, verify

logs.setup()


@functions_framework.http
def crm_webhook(request):
    if request.method != "POST":
        return {"error": "use POST"}, 405
    if (request.content_length or 0) > MAX_BODY:
        raise Rejected(413, f"body larger than {MAX_BODY} bytes")
    config = bootstrap.Config.from_env()
    body = request.get_data()
    now = bootstrap.clock().now()
    verify(config.webhook_secret, request.headers.get("X-Crmsync-Timestamp"),
           request.headers.get("X-Crmsync-Signature"), body, now)  # fmt: skip
    payload = parse(body)
    store = bootstrap.shared_store(config)
    return accept(store, payload, now, queue_for(config, store).send), 202
