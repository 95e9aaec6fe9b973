"""Builds google-api-python-client services for the real Google APIs or the sandbox.

``CRMSYNC_GOOGLE_ENDPOINT`` unset means real Google. Set, it is the base URL that
serves People at ``{endpoint}/v1/...``, Calendar at ``{endpoint}/calendar/v3/...``,
OAuth at ``{endpoint}/token`` and the batch endpoints. The bundled (static) discovery
documents are always used, so nothing is fetched at start-up. ``batch_uri`` exists
because ``new_batch_http_request()`` ignores ``api_endpoint``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.http import BatchHttpRequest

from core.errors import GoogleError

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPES = (
    "https://www.googleapis.com/auth/contacts",
    "https://www.googleapis.com/auth/calendar.events",
)
HTTP_TIMEOUT = 60


def token_uri(endpoint: str | None) -> str:
    return f"{endpoint.rstrip('/')}/token" if endpoint else GOOGLE_TOKEN_URI


def credentials(
    refresh_token: str,
    endpoint: str | None,
    client_id: str = "crmsync-local",
    client_secret: str = "crmsync-local",
    access_token: str | None = None,
    scopes: tuple[str, ...] | None = None,
) -> Credentials:
    """User credentials that refresh themselves at the endpoint's token URI."""
    return Credentials(
        access_token,
        refresh_token=refresh_token,
        token_uri=token_uri(endpoint),
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
    )


def authorized_http(creds: Credentials) -> google_auth_httplib2.AuthorizedHttp:
    """The HTTP client of a service: its ``credentials`` may be swapped between uses, so
    that one built service serves several users in turn (never two at once)."""
    return google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=HTTP_TIMEOUT))


_http = authorized_http


def people_service(creds: Credentials, endpoint: str | None = None, http: Any = None) -> Any:
    options = {"api_endpoint": endpoint.rstrip("/") + "/"} if endpoint else None
    return build(
        "people",
        "v1",
        http=http or _http(creds),
        client_options=options,
        static_discovery=True,
        cache_discovery=False,
    )


def calendar_service(creds: Credentials, endpoint: str | None = None, http: Any = None) -> Any:
    options = {"api_endpoint": endpoint.rstrip("/") + "/calendar/v3/"} if endpoint else None
    return build(
        "calendar",
        "v3",
        http=http or _http(creds),
        client_options=options,
        static_discovery=True,
        cache_discovery=False,
    )


def batch_uri(api: str, endpoint: str | None) -> str | None:
    """The batch URI to pass to ``new_batch_http_request``; None means the library's."""
    if not endpoint:
        return None
    base = endpoint.rstrip("/")
    return f"{base}/batch/calendar/v3" if api == "calendar" else f"{base}/batch"


def new_batch(api: str, endpoint: str | None, callback: Any = None) -> BatchHttpRequest:
    """An HTTP batch aimed at the endpoint's batch URI (``api``: "people" or "calendar")."""
    uri = batch_uri(api, endpoint) or (
        "https://www.googleapis.com/batch/calendar/v3"
        if api == "calendar"
        else "https://people.googleapis.com/batch"
    )
    return BatchHttpRequest(callback=callback, batch_uri=uri)


def grant_now(creds: Any, refused: Callable[[Exception], Exception]) -> None:
    """One grant, now: ``refused(error)`` is raised when Google refuses it, a
    ``GoogleError`` when its token endpoint cannot be reached."""
    try:
        creds.refresh(Request())
    except auth_exceptions.RefreshError as exc:
        raise refused(exc) from None
    except auth_exceptions.TransportError as exc:
        raise GoogleError(f"cannot reach Google's token endpoint: {exc}") from None
