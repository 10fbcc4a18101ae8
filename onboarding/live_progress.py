"""Real-time progress: an enrollment's new state pushed to its end user's Channels group.

Sent after commit by the services and the progress engine. Best effort: with Redis down the
API keeps accepting events and progress (PostgreSQL is the source of truth, and a client gets
the state on reconnect), so a failed push is logged, never raised.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "onboarding.state"  # handled by the consumer's `onboarding_state`


def progress_group(end_user_id: int) -> str:
    return f"onboarding.user.{end_user_id}"


def push(*, end_user_id: int, state: dict) -> None:
    """Send an enrollment's state to its end user's sockets; logged, never raised, on failure."""
    try:
        message = {"type": MESSAGE_TYPE, "state": state}
        async_to_sync(get_channel_layer().group_send)(progress_group(end_user_id), message)
    except Exception:
        logger.warning(
            "progress.push_failed", extra={"enrollment_id": state.get("enrollment_id")}, exc_info=True
        )
