"""Workspace domain-wide delegation: Google credentials that act as a user of the domain
without that user's OAuth consent.

A Workspace administrator authorizes a service account's client id for the contacts
and calendar scopes (Admin console, "Domain-wide delegation"). crmsync then signs, with
the service account's key, a JWT assertion whose ``sub`` is the user's email, and trades
it at the token endpoint (the JWT-bearer grant, RFC 7523) for an access token that acts
as that user: ``google.oauth2.service_account.Credentials.with_subject`` does both.
There is no refresh token: each access token (one hour) costs a new signed assertion.

``key_info`` reads the service account's JSON key (the key file's text, or a path to it).
``credentials`` builds the user's credentials; with an endpoint configured (the
sandbox) they post to its ``/token``, else to the key's ``token_uri`` (Google's).

Google refuses a grant with ``unauthorized_client`` (401: the client id is not, or no
longer, authorized for the domain or for every scope asked) or ``invalid_grant`` (400:
bad signature, expired assertion, unknown ``sub``). ``DelegatedCredentials`` marks those
refusals (``DelegationRefused``), so that ``google_auth.auth_error`` maps them to
``DelegationRevoked`` (the user cannot fix it; the administrator can) and not to the
"reconnect your account" of a revoked refresh token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account

from adapters.google_api import SCOPES, grant_now, token_uri
from core.errors import ConfigError, DelegationRevoked, GoogleError

ADMINISTRATOR = "administrator"  # googleAccounts.connectedBy of a delegated connection
REFUSALS = ("unauthorized_client", "invalid_grant", "access_denied", "admin_policy_enforced")


class DelegationRefused(auth_exceptions.RefreshError):
    """The token endpoint refused the JWT-bearer grant of delegated credentials."""


class DelegatedCredentials(service_account.Credentials):
    """Service-account credentials whose refused grants say they were delegated ones."""

    def refresh(self, request: Any) -> None:
        try:
            super().refresh(request)
        except DelegationRefused:
            raise
        except auth_exceptions.RefreshError as exc:
            raise DelegationRefused(*exc.args, retryable=exc.retryable) from None


def key_info(key: str) -> dict[str, Any]:
    """The service account's key: ``key`` is the JSON key itself (as Secret Manager hands
    it to the function) or the path of a file that holds it. ``ConfigError`` otherwise."""
    text = key.strip().lstrip("\ufeff")
    if not text.startswith("{"):
        try:
            text = Path(text).read_text().lstrip("\ufeff")
        except (OSError, ValueError):  # never the value in a message: it may be the key
            raise ConfigError(
                "CRMSYNC_DELEGATION_KEY is neither a service account JSON key "
                "nor the path of a readable file that holds one"
            ) from None
    try:
        info = json.loads(text)
    except ValueError:
        raise ConfigError("CRMSYNC_DELEGATION_KEY is not a service account JSON key") from None
    if not isinstance(info, dict) or not {"client_email", "private_key"} <= info.keys():
        raise ConfigError("CRMSYNC_DELEGATION_KEY lacks client_email or private_key")
    return info


def credentials(info: dict[str, Any], subject: str, endpoint: str | None) -> DelegatedCredentials:
    """Credentials acting as ``subject`` with crmsync's scopes, granted at the endpoint's
    token URI (the sandbox's) or, for real Google, at the key's."""
    uri = token_uri(endpoint) if endpoint else info.get("token_uri") or token_uri(None)
    creds = DelegatedCredentials.from_service_account_info(
        {**info, "token_uri": uri}, scopes=list(SCOPES)
    )
    return creds.with_subject(subject)


def check(creds: DelegatedCredentials) -> None:
    """One grant, now: ``DelegationRevoked`` when Google refuses the delegation for the
    user, ``GoogleError`` when the endpoint cannot be reached or fails otherwise."""
    grant_now(creds, refusal)


def refusal(exc: auth_exceptions.RefreshError) -> GoogleError:
    """A refused grant as a domain error: Google's refusal of the delegation for the
    user is ``DelegationRevoked``; passing trouble (retryable) a plain ``GoogleError``."""
    text = str(exc.args[0] if exc.args else exc)
    body = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    word = body.get("error") or text.partition(":")[0]
    skew = "short-lived token" in text  # our clock, not the administrator's choice
    if word not in REFUSALS or exc.retryable or skew:
        return GoogleError(f"Google's token endpoint refused the delegated grant: {text}")
    return DelegationRevoked(
        f"Google refused crmsync's domain-wide delegation ({text}); the Workspace "
        "administrator must restore it",
        status=401 if word == "unauthorized_client" else 400,
        reason=word,
    )
