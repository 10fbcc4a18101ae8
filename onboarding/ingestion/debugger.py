"""The live event debugger: newly stored events pushed to a workspace's websocket listeners.

Publishing is best effort: with Redis down the API keeps accepting events (PostgreSQL is the
source of truth), so a failed push is logged and counted, never raised.

A publish costs more than storing a small batch, and the debugger is rarely open: consumers
count themselves in the cache, and ingestion publishes only while the count is above zero. Each
process reads that count at most once a second, so a new listener sees events within a second.
"""

import logging
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_FRAME = 50
LISTENERS_TTL = 24 * 3600  # a count left behind by a crashed process expires
LISTENERS_RECHECK = 1.0
_listening: dict[int, tuple[float, bool]] = {}


def _listeners_key(workspace_id: int) -> str:
    return f"debugger:listeners:{workspace_id}"


def listener_joined(workspace_id: int) -> None:
    try:
        cache.add(_listeners_key(workspace_id), 0, LISTENERS_TTL)
        cache.incr(_listeners_key(workspace_id))
        cache.touch(_listeners_key(workspace_id), LISTENERS_TTL)
    except Exception:
        logger.warning("live.listener_count_failed", extra={"workspace_id": workspace_id}, exc_info=True)


def listener_left(workspace_id: int) -> None:
    try:
        if cache.decr(_listeners_key(workspace_id)) <= 0:
            cache.delete(_listeners_key(workspace_id))
    except Exception:  # noqa: S110 - the key expired or the cache is down: nothing to undo
        pass


def _anyone_listening(workspace_id: int) -> bool:
    now = time.monotonic()
    checked = _listening.get(workspace_id)
    if checked is not None and now - checked[0] < LISTENERS_RECHECK:
        return checked[1]
    try:
        listening = bool(cache.get(_listeners_key(workspace_id)))
    except Exception:
        listening = True  # cannot tell: try to publish, which logs its own failure
    _listening[workspace_id] = (now, listening)
    return listening


def debugger_group(workspace_id: int) -> str:
    return f"debugger.{workspace_id}"


def api_key_group(api_key_id: int) -> str:
    """The sockets opened with one key: they close when it is revoked."""
    return f"api-key.{api_key_id}"


def publish_api_key_revoked(*, api_key_id: int, **signal_arguments) -> None:
    """Close every socket opened with the key, in every process (after the revocation commits):
    the receiver of tenancy.signals.api_key_revoked (connected in OnboardingConfig.ready()).
    Best effort, like every push: a socket that misses it finds out at its next re-check."""
    try:
        async_to_sync(get_channel_layer().group_send)(api_key_group(api_key_id), {"type": "api_key.revoked"})
    except Exception:
        logger.warning("live.revocation_publish_failed", extra={"api_key_id": api_key_id}, exc_info=True)


def event_summary(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": event["type"],
        "name": event["name"],
        "messageId": event["message_id"],
        "userId": event["user_id"] or None,
        "anonymousId": event["anonymous_id"] or None,
        "timestamp": event["timestamp"].isoformat(),
        "properties": event["properties"],
    }


def publish_events(*, workspace_id: int, events: list[dict[str, Any]]) -> None:
    if not events or not _anyone_listening(workspace_id):
        return
    frame = {
        "type": "events.stored",
        "count": len(events),
        "events": [event_summary(event) for event in events[:MAX_EVENTS_PER_FRAME]],
    }
    try:
        async_to_sync(get_channel_layer().group_send)(debugger_group(workspace_id), frame)
    except Exception:
        logger.warning("live.publish_failed", extra={"workspace_id": workspace_id}, exc_info=True)
