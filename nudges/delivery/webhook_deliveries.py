"""Provider deliveries already applied, so that a replayed one is acknowledged and not applied
twice (nudges.delivery.webhook_events).

A signature proves who wrote a request, not that it is new: whoever saw one signed SendGrid batch
or Twilio callback could post it again, and a provider retries what it thinks failed. Each event
is remembered by an id the provider signed: SendGrid's `sg_event_id` (in the signed body), and
for Twilio, which signs no id nor time, the message and the status it reports (Twilio reports a
status once per message; its I-Twilio-Idempotency-Token header is not signed). Ids are kept for
RETENTION: SendGrid's replays older than the freshness window are refused by their timestamp
anyway, and a Twilio replay later than that can only repeat a status the nudge has moved past.
"""

import hashlib
from datetime import datetime, timedelta

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from nudges.models import WebhookDelivery
from tenancy.models import Workspace

RETENTION = timedelta(days=30)
MAX_ID_LENGTH = 128


def sendgrid_delivery_id(event: dict) -> str:
    """SendGrid's own event id; an event without one is known by its content."""
    event_id = event.get("sg_event_id")
    if isinstance(event_id, str) and event_id and len(event_id) <= MAX_ID_LENGTH:
        return event_id
    return "sha256:" + hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()


def twilio_delivery_id(*, message_sid: str, message_status: str) -> str:
    return f"{message_sid[:100]}:{message_status[:20]}"


def delivery_first_seen(*, workspace: Workspace, provider: str, delivery_id: str) -> bool:
    """Record the delivery: False when it was recorded before. Called inside the transaction that
    applies it, so that a delivery whose application failed is not remembered. Two requests
    carrying it at once: the second waits on the unique row, then finds it."""
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(workspace=workspace, provider=provider, delivery_id=delivery_id)
    except IntegrityError:
        return False
    return True


def deliveries_forget_old(*, workspace: Workspace, provider: str, now: datetime | None = None) -> int:
    """Forget the workspace's deliveries older than RETENTION (one indexed delete per request)."""
    cutoff = (now or timezone.now()) - RETENTION
    deleted, _ = WebhookDelivery.objects.filter(
        workspace=workspace, provider=provider, received_at__lt=cutoff
    ).delete()
    return deleted
