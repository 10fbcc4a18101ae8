"""The one place that reads contact data for sending: a nudge's recipient, for its gateway."""

from nudges.gateways.base import PushTarget, Recipient
from nudges.models import PushSubscription
from onboarding.models import Contact
from tenancy.models import EndUser


def recipient_for(*, end_user: EndUser, channel: str) -> Recipient:
    """The recipient's contact details, and their push subscriptions when sending by push."""
    contact = Contact.objects.filter(end_user=end_user).first()
    targets = ()
    if channel == "push":
        targets = tuple(
            PushTarget(subscription.pk, subscription.endpoint, subscription.p256dh, subscription.auth)
            for subscription in PushSubscription.objects.filter(
                end_user=end_user, revoked_at__isnull=True
            ).order_by("pk")
        )
    return Recipient(
        end_user_id=end_user.pk,
        external_id=end_user.external_id or "",
        email=contact.email if contact else "",
        phone=contact.phone if contact else "",
        first_name=contact.first_name if contact else "",
        last_name=contact.last_name if contact else "",
        name=contact.name if contact else "",
        locale=end_user.locale,
        push_targets=targets,
    )
