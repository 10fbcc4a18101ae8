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


def push_state(enrollment_id: int) -> None:
    from onboarding.enrollments import enrollment_state
    from onboarding.models import Enrollment

    try:
        enrollment = Enrollment.objects.select_related("path_version__path", "end_user").get(pk=enrollment_id)
        message = {"type": MESSAGE_TYPE, "state": enrollment_state(enrollment=enrollment)}
        async_to_sync(get_channel_layer().group_send)(progress_group(enrollment.end_user_id), message)
    except Exception:
        logger.warning("progress.push_failed", extra={"enrollment_id": enrollment_id}, exc_info=True)
