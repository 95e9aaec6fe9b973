"""Calendar push notifications: events.watch, channels.stop and change delivery.

A channel watches one calendar. Right after creation it gets a ``sync`` message
(``X-Goog-Message-Number: 1``); after every request that changed the calendar
(including a copy written by another account's edit) it gets one ``exists`` message
with a larger, not necessarily consecutive, message number. Messages are empty-bodied
POSTs sent by the sandbox's ``Notifier`` to loopback addresses only; channels past
their expiration (sandbox time) are dropped silently, as Google stops delivering.
"""

from __future__ import annotations

import random
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from sandbox.calendar_store import CalendarState, CalendarStore, Channel
from sandbox.calendar_times import bad
from sandbox.routing import calendar_error, is_loopback_url

if TYPE_CHECKING:  # annotations only: the sandbox that runs the request
    from sandbox.app import Sandbox

DEFAULT_TTL_SECONDS = 604_800
USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"


def watch(
    sandbox: Sandbox,
    state: CalendarState,
    store: CalendarStore,
    owner: str,
    calendar_id: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    """Create a channel on ``store`` and send its ``sync`` message."""
    channel_id, address = body.get("id"), body.get("address")
    if not isinstance(channel_id, str) or not channel_id or len(channel_id) > 64:
        raise bad("Channel id is required (at most 64 characters).")
    if body.get("type") not in ("web_hook", "webhook"):
        raise bad(f"Unknown channel type: {body.get('type')}")
    if not isinstance(address, str) or not address.lower().startswith(("http://", "https://")):
        raise bad(f"Invalid channel address: {address}")
    if not is_loopback_url(address):
        raise bad(f"The sandbox only delivers push notifications to loopback addresses: {address}")
    live = state.channels.get(channel_id)
    now_ms = int(sandbox.clock.timestamp() * 1000)
    if live is not None and live.expiration_ms > now_ms:
        raise calendar_error(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
    channel = Channel(
        id=channel_id,
        resource_id=store.resource_id,
        resource_uri=f"{sandbox.base_url}/calendar/v3/calendars/{calendar_id}/events?alt=json",
        token=body.get("token"),
        expiration_ms=_expiration(body, now_ms),
        address=address,
        owner=owner,
        calendar=store.email,
    )
    state.channels[channel_id] = channel
    _post(sandbox, channel, "sync")
    out = {
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "expiration": str(channel.expiration_ms),
    }
    if channel.token is not None:
        out["token"] = channel.token
    return out


def _expiration(body: dict[str, Any], now_ms: int) -> int:
    given = body.get("expiration")
    if given is not None:
        try:
            expiration = int(given)
        except (TypeError, ValueError):
            raise bad(f"Invalid channel expiration: {given}") from None
        if expiration <= now_ms:
            raise bad("Channel expiration must be in the future.")
        return expiration
    ttl = (body.get("params") or {}).get("ttl")
    try:
        seconds = int(ttl) if ttl is not None else DEFAULT_TTL_SECONDS
    except (TypeError, ValueError):
        raise bad(f"Invalid ttl: {ttl}") from None
    if seconds <= 0:
        raise bad(f"Invalid ttl: {ttl}")
    return now_ms + seconds * 1000


def stop(state: CalendarState, owner: str, body: dict[str, Any]) -> None:
    """channels.stop: only the creating account may stop a channel; unknown → 404."""
    channel = state.channels.get(body.get("id") or "")
    if channel is None or channel.owner != owner or channel.resource_id != body.get("resourceId"):
        raise calendar_error(404, "notFound", "Not Found")
    del state.channels[channel.id]


def notify(sandbox: Sandbox, state: CalendarState, store: CalendarStore) -> None:
    """Tell every live channel on ``store`` that the calendar changed."""
    now_ms = int(sandbox.clock.timestamp() * 1000)
    for channel in list(state.channels.values()):
        if channel.calendar != store.email:
            continue
        if channel.expiration_ms <= now_ms:
            del state.channels[channel.id]
            continue
        channel.number += random.randint(1, 1000)
        _post(sandbox, channel, "exists")


def _post(sandbox: Sandbox, channel: Channel, state: str) -> None:
    headers = {
        "Content-Type": "application/json; utf-8",
        "User-Agent": USER_AGENT,
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
        "X-Goog-Message-Number": str(channel.number),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-URI": channel.resource_uri,
        "X-Goog-Resource-State": state,
    }
    if channel.token is not None:
        headers["X-Goog-Channel-Token"] = channel.token
    sandbox.notifier.post(channel.address, headers)
