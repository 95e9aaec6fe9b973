"""People API wire format for the sandbox: field masks, errors, input clean-up, derived fields.

Knows nothing about storage: ``people_store`` keeps records, this module turns request
bodies into stored field lists and stored lists back into the JSON Google sends
(proto3 style: empty fields are omitted). Texts follow GOOGLE_API.md section 3.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.routing import ApiError, people_error

DOCS_GET = "https://developers.google.com/people/api/rest/v1/people/get"
DOCS_UPDATE = "https://developers.google.com/people/api/rest/v1/people/updateContact"
DOCS_GROUPS = "https://developers.google.com/people/api/rest/v1/contactGroups/get"

UPDATABLE = (
    "addresses",
    "biographies",
    "birthdays",
    "calendarUrls",
    "clientData",
    "emailAddresses",
    "events",
    "externalIds",
    "genders",
    "imClients",
    "interests",
    "locales",
    "locations",
    "memberships",
    "miscKeywords",
    "names",
    "nicknames",
    "occupations",
    "organizations",
    "phoneNumbers",
    "relations",
    "sipAddresses",
    "urls",
    "userDefined",
)
READABLE = (*UPDATABLE, "ageRanges", "coverPhotos", "metadata", "photos", "skills")
SINGLETONS = ("names", "biographies", "birthdays", "genders")
# Stored as plain lists; memberships are kept on the record, photos are synthesized.
STORED = tuple(f for f in UPDATABLE if f != "memberships")
# Items of these fields carry no primary flags in Google's output.
UNFLAGGED = ("memberships", "clientData", "userDefined")
OUTPUT_ONLY_KEYS = {
    "metadata",
    "displayName",
    "displayNameLastFirst",
    "formattedType",
    "canonicalForm",
    "formattedProtocol",
    "contactGroupId",
}
GROUP_FIELDS = ("clientData", "groupType", "memberCount", "metadata", "name")
GROUP_DEFAULT = ("metadata", "groupType", "memberCount", "name")
CREATE_GROUP_FIELDS = ("clientData", "groupType", "metadata", "name")
CREATE_GROUP_DEFAULT = ("metadata", "groupType", "name")
DEFAULT_PHOTO = "https://lh3.googleusercontent.com/cm/ABGbSandboxDefaultContactPhoto=s100"


# -- errors ---------------------------------------------------------------------------


def bad(message: str) -> ApiError:
    return people_error(400, message)


def not_found() -> ApiError:
    return people_error(404, "Requested entity was not found.")


def failed_precondition(message: str, reason: str | None = None) -> ApiError:
    return people_error(400, message, status="FAILED_PRECONDITION", reason=reason)


STALE_ETAG = (
    "Request person.etag is different than the current person.etag. "
    "Clear local cache and get the latest person."
)
MISSING_ETAG = (
    "Request must set person.etag or person.metadata.sources.etag "
    "for the source that is being updated."
)
EXPIRED_TOKEN = "Sync token is expired. Clear local cache and retry call without the sync token."
DEPRECATED_GROUP = "Cannot add contacts to deprecated system contact group"


def status(code: int, message: str) -> dict[str, Any]:
    """A google.rpc.Status for PersonResponse and batch error details (rpc codes)."""
    return {"code": code, "message": message}


def error_status(err: ApiError) -> dict[str, Any]:
    """The rpc Status equivalent of an ApiError raised for one item of a batch."""
    body = err.body.get("error", {})
    codes = {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "FAILED_PRECONDITION": 9}
    return status(codes.get(body.get("status", ""), 2), body.get("message", ""))


# -- masks ----------------------------------------------------------------------------


def parse_mask(text: str | None, name: str, valid: tuple[str, ...], docs: str) -> list[str]:
    """Paths of a comma-separated field mask; 400 when absent or holding an unknown path."""
    paths = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not paths:
        raise bad(
            f"{name} mask is required. Please specify one or more valid paths. "
            f"Valid paths are documented at {docs}."
        )
    for path in paths:
        if path not in valid:
            raise bad(f'Invalid {name} mask path: "{path}". Valid paths are documented at {docs}.')
    return list(dict.fromkeys(paths))


def page_size(call: Any, default: int) -> int:
    """``pageSize``: 0 or absent means ``default``; valid values are 1-1000."""
    size = call.int_arg("pageSize", 0) or 0
    if size == 0:
        return default
    if not 1 <= size <= 1000:
        raise bad(f"Invalid pageSize: {size}. Valid values are between 1 and 1000, inclusive.")
    return size


def person_fields(call: Any, required: bool = True) -> list[str]:
    """``personFields`` (or legacy ``requestMask.includeField``) of a read; all when optional."""
    text = call.arg("personFields")
    legacy = call.arg("requestMask.includeField")
    if not text and legacy:
        paths = [p.strip() for p in legacy.split(",") if p.strip()]
        text = ",".join(p.removeprefix("person.") for p in paths)
    if not text and not required:
        return list(READABLE)
    return parse_mask(text, "personFields", READABLE, DOCS_GET)


def read_mask(body: dict[str, Any]) -> list[str]:
    """``readMask`` of a batch mutation: required; an empty mask skips the post-mutate read."""
    if "readMask" not in body:
        parse_mask(None, "readMask", READABLE, DOCS_GET)
    text = body["readMask"]
    if not isinstance(text, str):
        raise bad("Invalid value at 'read_mask' (type.googleapis.com/google.protobuf.FieldMask)")
    return parse_mask(text, "readMask", READABLE, DOCS_GET) if text.strip() else []


def update_mask(text: Any, name: str) -> list[str]:
    if text is not None and not isinstance(text, str):
        raise bad(f"Invalid value at '{name}' (type.googleapis.com/google.protobuf.FieldMask)")
    return parse_mask(text, name, UPDATABLE, DOCS_UPDATE)


def group_mask(
    text: Any, valid: tuple[str, ...], default: tuple[str, ...], name: str = "groupFields"
) -> list[str]:
    """A contact-group field mask; empty or absent means ``default``."""
    if text is not None and not isinstance(text, str):
        raise bad(f"Invalid value at '{name}' (type.googleapis.com/google.protobuf.FieldMask)")
    if not text or not text.strip():
        return list(default)
    return parse_mask(text, name, valid, DOCS_GROUPS)


# -- input ----------------------------------------------------------------------------


def clean_person(body: Any, fields: tuple[str, ...] | list[str]) -> dict[str, list[dict]]:
    """The stored form of the listed fields of a Person body (absent → empty list).

    Output-only keys are dropped, singleton fields hold at most one value, and
    ``memberships`` become a list of ``{"contactGroupResourceName": ...}``.
    """
    if not isinstance(body, dict):
        raise bad("Invalid JSON payload received. Expected a Person object.")
    cleaned: dict[str, list[dict]] = {}
    for field in fields:
        items = body.get(field) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise bad(f"Invalid value at 'person.{field}': expected a list of objects.")
        if field in SINGLETONS and len(items) > 1:
            raise bad(f"Cannot have more than one person.{field} per source.")
        if field == "memberships":
            cleaned[field] = [_clean_membership(i) for i in items]
        else:
            cleaned[field] = [_clean_item(field, i) for i in items]
    return cleaned


def _clean_item(field: str, item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k not in OUTPUT_ONLY_KEYS}
    if field == "genders":
        out.pop("formattedValue", None)
    if field == "names" and not (out.get("givenName") or out.get("familyName")):
        words = str(out.get("unstructuredName", "")).split()
        if words:
            out["givenName"] = " ".join(words[:-1]) or words[0]
            if len(words) > 1:
                out["familyName"] = words[-1]
    return out


def _clean_membership(item: dict[str, Any]) -> dict[str, Any]:
    group = (item.get("contactGroupMembership") or {}).get("contactGroupResourceName")
    if not isinstance(group, str) or not group.startswith("contactGroups/"):
        raise bad(
            "Invalid person.memberships: contactGroupMembership.contactGroupResourceName "
            "must be set to a resource name of the form contactGroups/*."
        )
    return {"contactGroupResourceName": group}


def supplied_etags(body: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(top-level person.etag, CONTACT source etags) from an update body."""
    top = body.get("etag") if isinstance(body.get("etag"), str) else None
    sources = ((body.get("metadata") or {}).get("sources")) or []
    etags = [s["etag"] for s in sources if isinstance(s, dict) and isinstance(s.get("etag"), str)]
    return top, etags


# -- output ---------------------------------------------------------------------------


def _words(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", camel).title()


KNOWN_TYPES = {
    "home",
    "work",
    "other",
    "mobile",
    "homeFax",
    "workFax",
    "otherFax",
    "pager",
    "workMobile",
    "workPager",
    "main",
    "googleVoice",
    "homePage",
    "blog",
    "profile",
    "appInstallPage",
    "ftp",
    "reservations",
    "birthday",
    "anniversary",
    "school",
    "spouse",
    "child",
    "mother",
    "father",
    "parent",
    "brother",
    "sister",
    "friend",
    "relative",
    "domesticPartner",
    "manager",
    "assistant",
    "referredBy",
    "partner",
}


def derive(field: str, item: dict[str, Any]) -> dict[str, Any]:
    """Output-only values Google computes from an item (display names, formatted types)."""
    out = dict(item)
    kind = out.get("type")
    if isinstance(kind, str) and kind and field != "genders":
        out["formattedType"] = _words(kind) if kind in KNOWN_TYPES else kind
    if field == "names":
        out.update(_display_names(out))
    elif field == "phoneNumbers":
        digits = re.sub(r"\D", "", str(out.get("value", "")))
        if str(out.get("value", "")).strip().startswith("+") and 8 <= len(digits) <= 15:
            out["canonicalForm"] = "+" + digits
    elif field == "genders" and isinstance(out.get("value"), str):
        out["formattedValue"] = out["value"].capitalize()
    elif field == "addresses" and "formattedValue" not in out:
        parts = [out.get(k) for k in ("streetAddress", "extendedAddress", "poBox")]
        city = " ".join(str(out[k]) for k in ("city", "region", "postalCode") if out.get(k))
        lines = [str(p) for p in (*parts, city, out.get("country")) if p]
        if lines:
            out["formattedValue"] = "\n".join(lines)
    return out


def _display_names(name: dict[str, Any]) -> dict[str, str]:
    keys = ("honorificPrefix", "givenName", "middleName", "familyName", "honorificSuffix")
    prefix, given, middle, family, suffix = (str(name.get(k) or "") for k in keys)
    display = " ".join(p for p in (prefix, given, middle, family) if p)
    display = f"{display}, {suffix}" if suffix and display else display or suffix
    first = " ".join(p for p in (prefix, given, middle) if p)
    last_first = f"{family}, {first}" if family and first else family or first
    if suffix:
        last_first = f"{last_first}, {suffix}" if last_first else suffix
    if not display:
        return {}
    return {
        "displayName": display,
        "displayNameLastFirst": last_first,
        "unstructuredName": name.get("unstructuredName") or display,
    }


def field_items(field: str, items: list[dict], source: dict[str, str]) -> list[dict]:
    """Stored items of one field as Google renders them: metadata first, derived values."""
    rendered = []
    for index, item in enumerate(items):
        meta: dict[str, Any] = {}
        if index == 0 and field not in UNFLAGGED:
            meta = {"primary": True, "sourcePrimary": True}
        meta["source"] = dict(source)
        rendered.append({"metadata": meta, **derive(field, item)})
    return rendered


def membership_item(group_name: str, source: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"source": dict(source)},
        "contactGroupMembership": {
            "contactGroupId": group_name.removeprefix("contactGroups/"),
            "contactGroupResourceName": group_name,
        },
    }


def default_photo(source: dict[str, str]) -> list[dict[str, Any]]:
    meta = {"primary": True, "source": dict(source)}
    return [{"metadata": meta, "url": DEFAULT_PHOTO, "default": True}]
