"""HTTP batch endpoints (``POST /batch`` for People, ``/batch/calendar/v3``).

Parses the multipart/mixed body google-api-python-client sends, runs every part
through ``Sandbox.dispatch`` (each part authenticated, counted and fault-checked on its
own, as Google does), and answers in Google's shape: CRLF framing, one part per
request, ``Content-ID: <response-{request id}>`` (GOOGLE_API.md section 5). With
``Behaviours.shuffle_batches`` the parts run in a seeded random order; the response
still lists them in request order.
"""

from __future__ import annotations

import email
import email.policy
import secrets

from sandbox.routing import PLAIN, ApiError, Call, Reply, Router

MAX_PARTS = 1000
REASONS = {
    200: "OK",
    204: "No Content",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _bad(message: str) -> ApiError:
    return ApiError(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


def parse_parts(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(Content-ID, raw inner HTTP request) for each part of a multipart/mixed body."""
    if not content_type.lower().startswith("multipart/mixed"):
        raise _bad("Batch requests must be multipart/mixed.")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.message_from_bytes(head + body, policy=email.policy.compat32)
    if not message.is_multipart():
        raise _bad("Malformed multipart body.")
    parts = []
    for part in message.get_payload():
        raw = part.get_payload(decode=False)
        raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
        parts.append((part.get("Content-ID", ""), raw))
    return parts


def parse_inner(raw: bytes) -> tuple[str, str, str, dict[str, str], bytes]:
    """(method, path, query string, headers, body) of one inner HTTP request."""
    text = raw.replace(b"\r\n", b"\n")
    head, _, body = text.partition(b"\n\n")
    lines = head.decode("utf-8").split("\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        raise _bad(f"Malformed request line in batch part: {lines[0]!r}") from None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    path, _, query = target.partition("?")
    return method.upper(), path, query, headers, body


def render(boundary: str, replies: list[tuple[str, Reply]]) -> bytes:
    chunks = [b"\r\n"]
    for content_id, reply in replies:
        inner_headers = {"Content-Length": str(len(reply.body)), **reply.headers}
        inner_headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        status_line = f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}"
        header_text = "".join(f"{k}: {v}\r\n" for k, v in inner_headers.items())
        chunks.append(
            f"--{boundary}\r\nContent-Type: application/http\r\n"
            f"Content-ID: <response-{content_id}>\r\n\r\n"
            f"{status_line}\r\n{header_text}\r\n".encode()
            + reply.body
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def handle_batch(call: Call) -> Reply:
    sandbox = call.sandbox
    sandbox.stats.http_requests += 1
    parts = parse_parts(call.headers.get("content-type", ""), call.body)
    if not parts:
        raise _bad("A batch request must contain at least one part.")
    if len(parts) > MAX_PARTS:
        raise _bad(f"A batch request cannot contain more than {MAX_PARTS} requests.")
    order = list(range(len(parts)))
    if sandbox.behaviours.shuffle_batches:
        sandbox.rng.shuffle(order)  # "The server might perform your calls in any order"
    replies: list[tuple[str, Reply] | None] = [None] * len(parts)
    for index in order:
        content_id, raw = parts[index]
        method, path, query, headers, body = parse_inner(raw)
        reply = sandbox.dispatch(method, path, query, headers, body, in_batch=True)
        replies[index] = (content_id.strip().strip("<>"), reply)
    boundary = "batch_" + secrets.token_urlsafe(18)
    answered = [reply for reply in replies if reply is not None]
    return Reply(
        200, render(boundary, answered), {"Content-Type": f"multipart/mixed; boundary={boundary}"}
    )


def register(router: Router) -> None:
    router.add("POST", "/batch", "batch", PLAIN, handle_batch)
    router.add("POST", "/batch/calendar/v3", "batch", PLAIN, handle_batch)
    router.add("POST", "/batch/people/v1", "batch", PLAIN, handle_batch)
