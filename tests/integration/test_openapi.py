"""``functions/openapi.json``: a valid OpenAPI 3.1 document, held against the code: every
route of the ``manual_sync`` route table is documented and every documented one answered
(with a documented status), the request schemas are the pydantic models', and real
answers validate against the documented response schemas, with no undocumented field."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from functions_framework import create_app
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from core.model import CONTACTS, stamp
from functions import openapi, seed
from tests.integration.test_scheduler import ROOT

DOC = openapi.document()
METHODS = ("get", "put", "post", "delete", "patch")
MANUAL_HOST = "https://manual-sync-"


def manual_sync_operations() -> set[tuple[str, str]]:
    """(METHOD, path) of each documented operation that ``manual_sync`` serves."""
    found = set()
    for path, item in DOC["paths"].items():
        if any(s["url"].startswith(MANUAL_HOST) for s in item.get("servers", DOC["servers"])):
            found |= {(m.upper(), path) for m in METHODS if m in item}
    return found


def router_routes() -> set[tuple[str, str]]:
    """The (METHOD, path) routes of ``manual_sync``'s route table (``functions.manual``), a
    path parameter written as the document writes it (``/runs/<run_id>`` -> ``/runs/{id}``)."""
    from functions.manual import ROUTES

    return {(method, re.sub(r"<\w+>", "{id}", path)) for method, path in ROUTES}


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def strict(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with every documented object closed: an answer's field that the
    document does not name fails validation. Objects joined by ``allOf`` are closed where
    they are joined (``unevaluatedProperties``), not in each part."""
    doc = copy.deepcopy(doc)
    schemas = doc["components"]["schemas"]
    parts = {
        b["$ref"].rsplit("/", 1)[-1]
        for s in _walk(schemas)
        if "allOf" in s
        for b in s["allOf"]
        if "$ref" in b
    }

    def close(node: Any, part: bool = False) -> None:
        if isinstance(node, list):
            for value in node:
                close(value)
            return
        if not isinstance(node, dict):
            return
        if "allOf" in node:
            node.setdefault("unevaluatedProperties", False)
            for branch in node["allOf"]:
                close(branch, part=True)
        elif (
            "properties" in node
            and not part
            and not ({"additionalProperties", "unevaluatedProperties"} & node.keys())
        ):
            node["unevaluatedProperties"] = False
        for key, value in node.items():
            if key not in ("allOf", "example", "examples", "default"):
                close(value)

    for name, schema in schemas.items():
        close(schema, part=name in parts)
    return doc


STRICT = strict(DOC)


def check(pointer: str, instance: Any) -> None:
    """Validate ``instance`` against the (closed) schema at ``pointer`` in the document."""
    root = {**STRICT, "$ref": "#" + quote(pointer, safe="/~")}
    errors = sorted(Draft202012Validator(root).iter_errors(instance), key=str)
    assert not errors, f"{pointer}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
    )


def escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def response_pointer(path: str, method: str, status: int) -> str | None:
    """Where the JSON schema of the documented answer is, or None for a non-JSON answer;
    fails for a status the operation does not document."""
    responses = DOC["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not documented"
    answer = responses[str(status)]
    pointer = f"/paths/{escape(path)}/{method.lower()}/responses/{status}"
    if "$ref" in answer:
        pointer = answer["$ref"].removeprefix("#")
        answer = DOC["components"]["responses"][pointer.rsplit("/", 1)[-1]]
    if "application/json" not in answer.get("content", {}):
        return None
    return pointer + "/content/application~1json/schema"


def test_the_document_is_valid_openapi_3_1():
    assert DOC["openapi"].startswith("3.1.")
    validate(DOC)
    validate(STRICT)


def test_the_document_is_read_once_and_handed_out_as_copies():
    first = openapi.document()
    first["paths"].clear()
    assert openapi.document() == DOC and DOC["paths"]


def test_every_route_of_the_manual_sync_router_is_documented():
    routes = router_routes()
    assert ("GET", "/status") in routes and ("GET", "/runs/{id}") in routes  # the reader works
    assert routes - manual_sync_operations() == set()


def test_every_function_has_its_servers_deployed_and_local():
    for path, item in DOC["paths"].items():
        urls = [s["url"] for s in item["servers"]]
        assert any(u.startswith("https://") and u.endswith(".run.app") for u in urls), path
        assert any(u.startswith("http://127.0.0.1:{port}") for u in urls), path
    targets = {"/crm_webhook", "/oauth_start", "/oauth_callback", "/calendar_push"}
    assert targets <= set(DOC["paths"])


def test_every_example_validates_against_its_schema():
    for path, item in DOC["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            base = f"/paths/{escape(path)}/{method}"
            media = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            if media and "example" in media:
                check(base + "/requestBody/content/application~1json/schema", media["example"])
            for status, answer in op["responses"].items():
                media = answer.get("content", {}).get("application/json", {})
                if "example" in media:
                    check(
                        f"{base}/responses/{status}/content/application~1json/schema",
                        media["example"],
                    )
    for name, schema in DOC["components"]["schemas"].items():
        if "example" in schema:
            check(f"/components/schemas/{name}", schema["example"])


def _plain(schema: Any) -> Any:
    """A schema without the words for people (title, description, examples)."""
    if isinstance(schema, list):
        return [_plain(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ("title", "description", "examples", "example"):
            continue
        if key == "properties":
            out[key] = {name: _plain(s) for name, s in value.items()}
        else:
            out[key] = _plain(value)
    return out


@pytest.mark.parametrize(
    "model, name, renamed",
    [
        ("functions.manual_logic:SettingsIn", "SettingsIn", {}),
        ("functions.manual_logic:SyncIn", "SyncIn", {}),
        (
            "functions.webhook_logic:Payload",
            "WebhookPayload",
            {"Payload": "WebhookPayload", "Event": "WebhookEvent"},
        ),
    ],
)
def test_request_schemas_are_the_pydantic_models(model, name, renamed):
    import importlib

    module, attr = model.split(":")
    found = getattr(importlib.import_module(module), attr).model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    text = json.dumps(found)
    for old, new in renamed.items():
        text = text.replace(f'/schemas/{old}"', f'/schemas/{new}"')
    found = json.loads(text)
    documented = DOC["components"]["schemas"]
    for sub, schema in found.pop("$defs", {}).items():
        sub = renamed.get(sub, sub)
        assert _plain(documented[sub]) == _plain(schema), sub
    assert _plain(documented[name]) == _plain(found), name


def test_every_reason_of_an_outcome_is_listed():
    source = (ROOT / "core" / "outcome.py").read_text()
    reasons = set(re.findall(r'Outcome\("(?:done|skipped|failed|queued)",\s*"(\w+)"', source))
    reasons |= set(
        re.findall(r'"reason":\s*"(\w+)"', (ROOT / "functions" / "http_errors.py").read_text())
    )
    assert {"no_tag", "busy", "internal", "http", "changes"} <= reasons  # the reader works
    assert reasons - set(DOC["components"]["schemas"]["Reason"]["examples"]) == set()


def test_the_error_handlers_body_is_the_documented_one():
    from werkzeug.exceptions import MethodNotAllowed

    from core.errors import NotConnected, Unavailable
    from functions.http_errors import as_json

    for error in (NotConnected("u-alice"), Unavailable("Google is down"), MethodNotAllowed()):
        body, _, _ = as_json(error)
        check("/components/schemas/ErrorOutcome", body)


@pytest.fixture
def manual(cloud_env, sandbox):
    client = create_app("manual_sync", str(ROOT / "main.py"), "http").test_client()
    token = sandbox.control(
        "POST", "/_sandbox/idtoken", {"email": "alice@example.com", "audience": "crmsync-local"}
    )["idToken"]

    def call(method, path, body=None, auth=True):
        headers = {"Authorization": f"Bearer {token}"} if auth else {}
        data = json.dumps(body) if body is not None else None
        return client.open(path, method=method, headers=headers, data=data)

    call.store = cloud_env
    return call


def answer_as_documented(response, method, path, documented_path=None):
    """The answer's status is documented for the operation, and a JSON answer validates
    against its schema."""
    pointer = response_pointer(documented_path or path, method, response.status_code)
    if pointer is not None:
        assert response.is_json, f"{method} {path}: {response.status_code} is not JSON"
        check(pointer, response.get_json())
    return response


def test_real_answers_of_sync_and_of_a_run_validate_against_the_document(manual):
    ran = answer_as_documented(manual("POST", "/sync", {"section": "all"}), "POST", "/sync")
    assert ran.status_code == 200 and ran.get_json()["outcome"] == "done"
    # a CRM edit: the next run's journal has the field's values before and after
    ada = manual.store.get(CONTACTS, "c-ada")
    manual.store.put(
        CONTACTS, "c-ada", {**ada, "jobTitle": "Analyst", "modifiedAt": stamp(datetime.now(UTC))}
    )
    again = answer_as_documented(manual("POST", "/sync", {"section": "contacts"}), "POST", "/sync")
    (run,) = again.get_json()["runs"]
    detail = manual("GET", f"/runs/{run['runId']}")
    answer_as_documented(detail, "GET", f"/runs/{run['runId']}", "/runs/{id}")
    (item,) = detail.get_json()["items"]
    assert item["fields"]["jobTitle"]["after"] == "Analyst"
    for path in ("/runs", "/status"):
        assert answer_as_documented(manual("GET", path), "GET", path).status_code == 200


def test_every_documented_operation_is_answered_as_documented(manual):
    """Driven through the app: no documented route is the router's 404, each answers a
    status the document lists, and its JSON validates. The request bodies are the
    document's own examples."""
    ran = manual("POST", "/sync", {"section": "contacts"}).get_json()
    run_id = ran["runs"][0]["runId"]
    operations = sorted(manual_sync_operations(), key=lambda op: op == ("POST", "/disconnect"))
    assert operations[-1] == ("POST", "/disconnect")  # last: it ends the connection
    for method, path in [op for op in operations if op[1] != "/openapi.json"]:  # its own test
        op = DOC["paths"][path][method.lower()]
        media = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
        url = path.replace("{id}", run_id)
        response = manual(method, url, media.get("example"), auth=op.get("security") != [])
        if response.status_code == 404 and response.is_json:
            assert not response.get_json()["error"].startswith("no route"), (method, path)
        answer_as_documented(response, method, url, path)
    status = manual("GET", "/status").get_json()
    assert status["account"]["status"] == "not_connected"  # the disconnection ran
    assert status["settings"]["contacts"]["tagId"] == seed.ALICE_TAG  # the example saved


def test_manual_sync_serves_this_document(manual):
    answer = manual("GET", "/openapi.json", auth=False)
    assert answer.status_code == 200 and answer.get_json() == DOC


def test_webhook_and_push_answers_are_documented(manual, monkeypatch):
    import hashlib
    import hmac
    import time

    monkeypatch.setenv("CRMSYNC_WEBHOOK_SECRET", "s3cret")
    hook = create_app("crm_webhook", str(ROOT / "main.py"), "http").test_client()
    body = json.dumps(
        DOC["paths"]["/crm_webhook"]["post"]["requestBody"]["content"]["application/json"][
            "example"
        ]
    ).encode()
    stamp_ = str(int(time.time()))
    mac = hmac.new(b"s3cret", stamp_.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "X-Crmsync-Timestamp": stamp_,
        "X-Crmsync-Signature": f"sha256={mac}",
        "Content-Type": "application/json",
    }
    accepted = hook.post("/", data=body, headers=headers)
    assert accepted.status_code == 202
    answer_as_documented(accepted, "POST", "/crm_webhook")
    replayed = answer_as_documented(
        hook.post("/", data=body, headers=headers), "POST", "/crm_webhook"
    )
    assert len(replayed.get_json()["replayed"]) == 2
    for bad in ({**headers, "X-Crmsync-Signature": "sha256=00"}, {}):
        answer_as_documented(hook.post("/", data=body, headers=bad), "POST", "/crm_webhook")
    answer_as_documented(
        hook.post(
            "/",
            data=b'{"events": []}',
            headers={
                **headers,
                "X-Crmsync-Signature": "sha256="
                + hmac.new(
                    b"s3cret", stamp_.encode() + b'.{"events": []}', hashlib.sha256
                ).hexdigest(),
            },
        ),
        "POST",
        "/crm_webhook",
    )
    push = create_app("calendar_push", str(ROOT / "main.py"), "http").test_client()
    unknown = push.post("/", headers={"X-Goog-Channel-ID": "nope", "X-Goog-Resource-State": "sync"})
    assert unknown.status_code == 404
    answer_as_documented(unknown, "POST", "/calendar_push")


def test_the_oauth_functions_answer_as_documented(manual, sandbox):
    token = sandbox.control(
        "POST", "/_sandbox/idtoken", {"email": "alice@example.com", "audience": "crmsync-local"}
    )["idToken"]
    start = create_app("oauth_start", str(ROOT / "main.py"), "http").test_client()
    answer_as_documented(
        start.get("/", headers={"Authorization": f"Bearer {token}"}), "GET", "/oauth_start"
    )
    answer_as_documented(start.get("/"), "GET", "/oauth_start")
    callback = create_app("oauth_callback", str(ROOT / "main.py"), "http").test_client()
    refused = callback.get("/", query_string={"state": "forged", "code": "x"})
    assert refused.status_code == 400
    answer_as_documented(refused, "GET", "/oauth_callback")


def test_the_document_names_itself_where_it_is_served():
    assert "/openapi.json" in DOC["paths"]
    assert Path(openapi.PATH).name == "openapi.json" and openapi.PATH.exists()
