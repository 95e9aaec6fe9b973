"""``check_document``'s fast path (exact plain types, one pass) decides every document
exactly as the detailed walk does: the same copy, the same size verdict, the same
error message; and its copy never shares a container with the caller's document."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import store_base as sb
from core.errors import StoreError


class Text(str):
    pass


class Number(int):
    pass


def walk(collection: str, doc_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The detailed walk alone (the reference)."""
    where = f"{collection}/{doc_id}"
    copy = sb._copy_map(data, where)
    size = sb._map_size(copy) + len(where.encode()) + 1 + 16 + 32
    if size > sb.MAX_DOC_BYTES:
        raise StoreError(f"{where}: document is {size} bytes, over {sb.MAX_DOC_BYTES}")
    return copy


def outcome(check, data):
    try:
        copy = check("links", "u:contacts:c1", data)
    except StoreError as exc:
        return ("error", str(exc))
    return ("ok", shape(copy))


def shape(value: Any) -> Any:
    """A value with its exact types spelled out (so that 1 and True, "a" and Text("a"),
    a list and a tuple differ)."""
    if isinstance(value, dict):
        return ("dict", [(shape(k), shape(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [shape(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


keys = st.sampled_from(["a", "b", "_x", "__x__", "", "é", "k\ud800", "crmId"]) | st.text(max_size=4)
odd_keys = keys | st.integers(0, 3) | st.just(None)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["\ud800", "ü", "x" * 40, "__a__"])
    | st.text(max_size=3).map(Text)
    | st.integers(-3, 3).map(Number)
    | st.sampled_from([b"b", {1, 2}, 1j])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=2).map(tuple)
        | st.dictionaries(odd_keys, inner, max_size=3)
    ),
    max_leaves=12,
)
documents = st.dictionaries(odd_keys, values, max_size=5)


@settings(max_examples=max(1000, settings.default.max_examples))
@given(documents)
def test_fast_path_decides_as_the_detailed_walk(data):
    assert outcome(sb.check_document, data) == outcome(walk, data)


@given(st.dictionaries(keys, values, max_size=5))
def test_the_copy_shares_no_container_with_the_document(data):
    try:
        copy = sb.check_document("links", "u:contacts:c1", data)
    except StoreError:
        return
    seen = set()

    def containers(value):
        if isinstance(value, dict | list | tuple):
            seen.add(id(value))
            for item in value.values() if isinstance(value, dict) else value:
                containers(item)

    containers(data)
    mine = set()

    def walk_copy(value):
        if isinstance(value, dict | list):
            mine.add(id(value))
            for item in value.values() if isinstance(value, dict) else value:
                walk_copy(item)

    walk_copy(copy)
    assert not (seen & mine)


def link() -> dict[str, Any]:
    return {
        "userId": "u", "section": "contacts", "crmId": "c1", "googleId": "people/c1",
        "googleEtag": "%Eg", "fingerprint": "ab" * 16, "syncedAt": "2024-01-01T00:00:00Z",
        "fields": {"givenName": "Ada", "notes": None, "emails": [{"value": "a@b.c"}]},
        "tombstone": False, "parked": False, "count": 3,
    }  # fmt: skip


def test_a_link_takes_the_fast_path_and_later_edits_do_not_leak(monkeypatch):
    doc = link()
    monkeypatch.setattr(sb, "_copy_map", lambda *a: pytest.fail("walked"))
    copy = sb.check_document("links", "u:contacts:c1", doc)
    assert copy == doc
    doc["fields"]["emails"].append({"value": "x@y.z"})
    doc["fields"]["givenName"] = "Eve"
    assert copy["fields"] == {"givenName": "Ada", "notes": None, "emails": [{"value": "a@b.c"}]}


@pytest.mark.parametrize("extra", [0, 1, 2])
def test_the_size_limit_is_the_same_at_the_byte(extra):
    where = "links/u:contacts:c1"
    overhead = len(where) + 1 + 16 + 32
    fill = sb.MAX_DOC_BYTES - overhead - (len("big") + 1) - 2 - 1 + extra  # "é": 2 bytes
    data = {"big": "é" + "x" * fill}
    assert outcome(sb.check_document, data) == outcome(walk, data)
    assert outcome(sb.check_document, data)[0] == ("ok" if extra == 0 else "error")
