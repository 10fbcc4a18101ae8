"""The in-app channel: nothing leaves the system.

The nudge is already stored, and the inbox API (nudges.api) serves it to the app. Sending only
pushes a frame {"type": "nudge", "nudge": <inbox item>} to the end user's progress websocket
(onboarding.consumers.OnboardingProgressConsumer.nudge_inbox), after the current transaction
commits. The push is best effort: with no socket open, or the channel layer down, the app finds
the nudge in its inbox on the next GET, so a failed push is logged and the send still succeeds.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from guardrails.models import Channel
from guardrails.regions import workspace_region
from nudges.gateways.base import Message, Recipient, Rejected, SendResult
from nudges.inbox import inbox_item
from nudges.models import ChannelProvider, Nudge
from onboarding.progress.push import progress_group
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

PROVIDER = ChannelProvider.Provider.IN_APP
MESSAGE_TYPE = "nudge.inbox"  # handled by the consumer's `nudge_inbox`
FRAME_TYPE = "nudge"
SENT = Nudge.Status.SENT


def builtin_provider(*, workspace: Workspace) -> ChannelProvider | None:
    """The workspace's built-in in-app provider, created when the workspace has no in-app
    provider row at all; None when it has rows but none active (switched off in the admin)."""
    rows = ChannelProvider.objects.filter(workspace=workspace, channel=Channel.IN_APP)
    if rows.exists():
        return None
    provider, _ = ChannelProvider.objects.get_or_create(
        workspace=workspace,
        channel=Channel.IN_APP,
        provider=PROVIDER,
        defaults={"priority": 1, "region": workspace_region(workspace=workspace)},
    )
    return provider


def nudge_frame(*, message: Message) -> dict:
    """The inbox item of the nudge being sent, with the content of `message` (what is sent)."""
    nudge = (
        Nudge.objects.filter(pk=message.nudge_id, workspace_id=message.workspace_id)
        .select_related("workspace")
        .first()
    )
    if nudge is None:
        raise Rejected("the nudge no longer exists: nothing to show in the inbox")
    nudge.subject, nudge.body, nudge.cta_text = message.subject, message.body, message.cta_text
    nudge.ui_component = message.ui_component
    if not message.cta_url:
        nudge.cta_url = ""  # composed without a call to action: its link leads nowhere
    elif not nudge.cta_url:
        nudge.cta_url = message.cta_url  # only whether there is one matters: the link is signed
    # The pipeline records the send after this returns: the app sees it as sent already.
    status = SENT if nudge.status in (Nudge.Status.QUEUED, Nudge.Status.DEFERRED) else nudge.status
    return inbox_item(nudge, status=status)


def push_frame(*, end_user_id: int, nudge: dict) -> None:
    """Send one inbox item to the user's sockets; logged, never raised, on failure."""
    try:
        message = {"type": MESSAGE_TYPE, "nudge": nudge}
        async_to_sync(get_channel_layer().group_send)(progress_group(end_user_id), message)
    except Exception:
        logger.warning("nudges.in_app.push_failed", extra={"nudge_id": nudge.get("id")}, exc_info=True)


class InAppGateway:
    channel = Channel.IN_APP
    provider = PROVIDER

    def send(self, *, provider: ChannelProvider, message: Message, recipient: Recipient) -> SendResult:
        frame = nudge_frame(message=message)
        end_user_id = recipient.end_user_id
        transaction.on_commit(lambda: push_frame(end_user_id=end_user_id, nudge=frame))
        logger.info(
            "nudges.in_app.sent",
            extra={"workspace_id": message.workspace_id, "nudge_id": message.nudge_id},
        )
        return SendResult(provider_message_id=f"in_app:{message.nudge_id}", detail={"frame": FRAME_TYPE})


gateway = InAppGateway()
