"""The live event debugger: newly stored events pushed to a workspace's websocket listeners.

Publishing is best effort: with Redis down the API keeps accepting events (PostgreSQL is the
source of truth), so a failed push is logged and counted, never raised.
"""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_FRAME = 50


def debugger_group(workspace_id: int) -> str:
    return f"debugger.{workspace_id}"


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
    if not events:
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
