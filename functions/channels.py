"""Calendar push channels: their upkeep, for the tick and for disconnecting.

``maintain_channel`` keeps one ``events.watch`` channel per user whose activities sync
is on: opened when missing, renewed a day before it expires, stopped when the sync is
turned off. The tick calls it only for the pairs whose ``renewAt`` has passed: the
channel's renewal time, or now after a settings save or a connection. It needs
``CRMSYNC_PUSH_URL``, the receiver's public address (``functions.push``); without it,
push is off and the schedule alone drives syncs. Channels are indexed in
``pushChannels/{channelId}`` with a hash of their secret token.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from adapters.calendar_api import CalendarApi
from core.model import SYNC_SETTINGS, SYNC_STATE, parse_timestamp, section_settings, stamp
from core.ports import DocumentStore, WatchPort
from core.schedule import update_state
from functions import bootstrap
from functions.sync import google_credentials

CHANNELS = "pushChannels"
TTL = timedelta(days=7)
RENEW_BEFORE = timedelta(days=1)
MIN_RENEW = timedelta(hours=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def maintain_channel(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    now: datetime,
    calendar: CalendarApi | None = None,
) -> str:
    """Open, renew or stop the user's channel; returns what it did."""
    address = os.environ.get("CRMSYNC_PUSH_URL")
    settings = section_settings(user_id, store.get(SYNC_SETTINGS, user_id) or {}, "activities")
    key = f"{user_id}:activities"
    state = store.get(SYNC_STATE, key) or {}
    channel = state.get("channel")
    wanted = bool(address) and settings.activities.auto
    fresh = channel and parse_timestamp(channel["expiresAt"]) - RENEW_BEFORE > now
    if wanted and fresh:
        renew = stamp(renew_at(parse_timestamp(channel["expiresAt"]), now))
        update_state(store, key, {"renewAt": renew})
        return "kept"
    if not wanted and not channel:
        update_state(store, key, {"renewAt": None})
        return "none"
    calendar = calendar or _calendar(config, store, user_id)
    if channel:
        stop_channel(store, calendar, channel)
    new = None
    if wanted:
        token, channel_id = secrets.token_urlsafe(32), uuid.uuid4().hex
        opened = calendar.watch(channel_id, token, address, int(TTL.total_seconds()))
        expires = datetime.fromtimestamp(int(opened.get("expiration", 0)) / 1000, now.tzinfo)
        new = {"id": channel_id, "resourceId": opened["resourceId"], "expiresAt": stamp(expires)}
        store.put(
            CHANNELS,
            channel_id,
            {"userId": user_id, "tokenHash": token_hash(token), "expiresAt": new["expiresAt"]},
        )
    renew = stamp(renew_at(parse_timestamp(new["expiresAt"]), now)) if new else None
    update_state(store, key, {"channel": new, "renewAt": renew})
    return ("renewed" if channel else "opened") if wanted else "stopped"


def stop_channel(store: DocumentStore, calendar: WatchPort, channel: dict[str, Any]) -> None:
    """Stop a channel at Google (one already gone counts as stopped) and forget it, so
    its notifications answer 404; the caller clears the state's ``channel``."""
    calendar.stop(channel["id"], channel["resourceId"])
    store.delete(CHANNELS, channel["id"])


def renew_at(expires: datetime, now: datetime) -> datetime:
    """A day before the channel expires; for a channel Google granted for less (or
    without an expiry), half its life, and never sooner than an hour: a short channel
    is not stopped and watched again at every tick."""
    return max(expires - RENEW_BEFORE, now + (expires - now) / 2, now + MIN_RENEW)


def _calendar(config: bootstrap.Config, store: DocumentStore, user_id: str) -> CalendarApi:
    return bootstrap.calendar_port(config, google_credentials(config, store, user_id))
