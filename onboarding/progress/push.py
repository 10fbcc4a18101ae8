"""Real-time progress: an enrollment's new state pushed to its end user's Channels group.

Sent after commit by the services and the progress engine. Best effort: with Redis down the
API keeps accepting events and progress (PostgreSQL is the source of truth, and a client gets
the state on reconnect), so a failed push is logged, never raised.
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from core import http
from core.on_commit import on_commit_batched

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "onboarding.state"  # handled by the consumer's `onboarding_state`


def progress_group(end_user_id: int) -> str:
    return f"onboarding.user.{end_user_id}"


def push(*, end_user_id: int, state: dict) -> None:
    """Send an enrollment's state to its end user's sockets; logged, never raised, on failure."""
    _send([(end_user_id, state)])


def push_after_commit(*, end_user_id: int, state: dict) -> None:
    """Push the state once the transaction commits: all of a transaction's pushes go out in one
    round (one hop to the event loop, the group sends in flight together)."""
    on_commit_batched("progress.push", _push_all, (end_user_id, state))


def _push_all(items: list[tuple[int, dict]]) -> None:
    if len(items) == 1:
        end_user_id, state = items[0]
        push(end_user_id=end_user_id, state=state)
    else:
        _send(items)


def _send(items: list[tuple[int, dict]]) -> None:
    """In a request's thread the request does not wait for the sends (core.http.run_soon);
    elsewhere (jobs, commands, tests' clients) they are done before this returns."""
    if http.run_soon(_send_all, items):
        return
    try:
        async_to_sync(_send_all)(items)
    except Exception:  # no event loop to be had, say
        logger.warning("progress.push_failed", extra={"pushes": len(items)}, exc_info=True)


async def _send_all(items: list[tuple[int, dict]]) -> None:
    try:
        layer = get_channel_layer()
    except Exception:  # a layer that cannot be built (its settings, its server)
        logger.warning("progress.push_failed", extra={"pushes": len(items)}, exc_info=True)
        return
    results = await asyncio.gather(
        *(
            layer.group_send(progress_group(end_user_id), {"type": MESSAGE_TYPE, "state": state})
            for end_user_id, state in items
        ),
        return_exceptions=True,
    )
    failed = [result for result in results if isinstance(result, Exception)]
    if failed:
        logger.warning(
            "progress.push_failed",
            extra={
                "pushes": len(items),
                "failed": len(failed),
                "enrollment_id": items[0][1].get("enrollment_id"),
                "error_type": type(failed[0]).__name__,
            },
            exc_info=failed[0] if len(items) == 1 else None,
        )
