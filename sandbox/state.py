"""In-memory state shared by the sandbox's APIs: the clock, accounts and OAuth grants.

Sandbox time is real time plus an offset that ``POST /_sandbox/clock`` advances, so
token expiry (access tokens: 1 hour; People sync tokens: 7 days) can be reached in
tests without waiting.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACCESS_TOKEN_SECONDS = 3600
ALL_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/contacts",
        "https://www.googleapis.com/auth/calendar",
        "https://www.googleapis.com/auth/calendar.events",
        "openid",
        "email",
        "https://www.googleapis.com/auth/userinfo.email",
    }
)


class SandboxClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def timestamp(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def rfc3339(moment: datetime, digits: int = 3) -> str:
    """``2024-05-01T10:00:00.123Z`` (UTC, with a fraction of ``digits`` digits)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: 20 + digits] + "Z" if digits else text[:19] + "Z"


@dataclass
class Account:
    """One Google account. Each API keeps its own per-account state in ``ext``."""

    email: str
    numeric_id: str  # 21 digits, as Google account ids are
    ext: dict[str, Any] = field(default_factory=dict)
    time_zone: str | None = None  # the calendar's; None: the behaviours' default


@dataclass
class RefreshGrant:
    email: str
    scopes: frozenset[str]
    client_id: str
    revoked: bool = False
    issued_at: float = 0.0  # sandbox time


@dataclass
class AccessGrant:
    email: str
    scopes: frozenset[str]
    expires_at: float
    refresh_token: str | None


@dataclass
class CodeGrant:
    email: str
    scopes: frozenset[str]
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str
    nonce: str | None
    expires_at: float


class TokenRegistry:
    """Refresh tokens, access tokens and authorization codes, with expiry and revocation."""

    def __init__(self, clock: SandboxClock) -> None:
        self.clock = clock
        self.refresh: dict[str, RefreshGrant] = {}
        self.access: dict[str, AccessGrant] = {}
        self.codes: dict[str, CodeGrant] = {}

    def issue_refresh(self, email: str, scopes: frozenset[str], client_id: str = "") -> str:
        token = "1//sbx-" + secrets.token_urlsafe(32)
        self.refresh[token] = RefreshGrant(
            email, scopes, client_id, issued_at=self.clock.timestamp()
        )
        return token

    def issue_access(self, email: str, scopes: frozenset[str], refresh: str | None = None) -> str:
        token = "ya29.sbx-" + secrets.token_urlsafe(32)
        expires = self.clock.timestamp() + ACCESS_TOKEN_SECONDS
        self.access[token] = AccessGrant(email, scopes, expires, refresh)
        return token

    def access_grant(self, token: str) -> AccessGrant | None:
        """The grant behind a live access token; None if unknown, expired or revoked."""
        grant = self.access.get(token)
        if grant is None or grant.expires_at <= self.clock.timestamp():
            return None
        if grant.refresh_token and self.refresh[grant.refresh_token].revoked:
            return None
        return grant

    def live_refresh(self, token: str) -> RefreshGrant | None:
        grant = self.refresh.get(token)
        return None if grant is None or grant.revoked else grant

    def revoke(self, token: str) -> bool:
        """Revoke a refresh or access token. Either way the refresh token and every
        access token minted from it stop working (Google's revocation cascades)."""
        refresh = token if token in self.refresh else None
        if refresh is None and token in self.access:
            refresh = self.access.pop(token).refresh_token
            if refresh is None:
                return True
        if refresh is None or self.refresh[refresh].revoked:
            return False
        self.refresh[refresh].revoked = True
        for key in [k for k, g in self.access.items() if g.refresh_token == refresh]:
            del self.access[key]
        return True
