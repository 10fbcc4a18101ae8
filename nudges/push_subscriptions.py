"""Web Push subscriptions saved by the browser through the API (contact data: never logged).

A subscription is keyed by its endpoint: saving the same endpoint again replaces its keys (the
browser re-subscribed) and revives it if the push service had said it was gone. An endpoint
names one browser profile, so when another user of the workspace signs in on it and subscribes,
the previous user's row for that endpoint is removed: their nudges must not reach this browser.
"""

import logging

from django.db import transaction

from nudges.models import PushSubscription
from tenancy.models import EndUser

logger = logging.getLogger(__name__)


@transaction.atomic
def push_subscription_save(
    *, end_user: EndUser, endpoint: str, p256dh: str, auth: str
) -> tuple[PushSubscription, bool]:
    """Create or refresh the user's subscription for `endpoint`; (subscription, created)."""
    taken_over, _ = (
        PushSubscription.objects.filter(workspace_id=end_user.workspace_id, endpoint=endpoint)
        .exclude(end_user=end_user)
        .delete()
    )
    subscription, created = PushSubscription.objects.update_or_create(
        end_user=end_user,
        endpoint=endpoint,
        defaults={
            "workspace_id": end_user.workspace_id,
            "p256dh": p256dh,
            "auth": auth,
            "revoked_at": None,
        },
    )
    logger.info(
        "nudges.push_subscription.saved",
        extra={
            "workspace_id": end_user.workspace_id,
            "end_user_id": end_user.pk,
            "subscription_id": subscription.pk,
            "new": created,
            "taken_over": taken_over,
        },
    )
    return subscription, created


@transaction.atomic
def push_subscription_delete(*, end_user: EndUser, endpoint: str) -> bool:
    """Remove the user's subscription for `endpoint`; False when they had none."""
    deleted, _ = PushSubscription.objects.filter(
        workspace_id=end_user.workspace_id, end_user=end_user, endpoint=endpoint
    ).delete()
    logger.info(
        "nudges.push_subscription.deleted",
        extra={"workspace_id": end_user.workspace_id, "end_user_id": end_user.pk, "deleted": bool(deleted)},
    )
    return bool(deleted)
