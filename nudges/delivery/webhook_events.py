"""What providers' delivery reports do to nudges, once their signature is verified (nudges.delivery.webhooks).

SendGrid's Event Webhook posts batches of email events; Twilio's status callback posts one SMS
status. Each event is matched to a nudge of the workspace that sent it, then moves it along its
status trail through nudges.services.nudge_status_advance (the status only moves forward: an open
after a click is recorded and the nudge stays clicked). Bounces and spam complaints suppress the
address (guardrails' Suppression, keyed by digest); unsubscribes withdraw consent through
guardrails.preferences.services.unsubscribe_apply. Addresses are never logged nor stored in the status trail.
"""

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from guardrails.models import Channel, Suppression
from guardrails.policy import subjects
from guardrails.preferences import services as preferences_services
from nudges import services
from nudges.delivery import webhook_deliveries
from nudges.models import Nudge
from onboarding.models import Workspace
from tenancy.audit import audit_record

logger = logging.getLogger(__name__)

Status = Nudge.Status
Reason = Suppression.Reason

# The email gateway sends the nudge's id as Anymail metadata under this key; SendGrid returns
# custom args as top-level keys of every event.
METADATA_NUDGE_ID = "nudge_id"

SENDGRID_STATUS = {
    "processed": Status.SENT,  # accepted by SendGrid: says nothing about the inbox yet
    "delivered": Status.DELIVERED,
    "open": Status.OPENED,
    "click": Status.CLICKED,
    "bounce": Status.BOUNCED,
    "dropped": Status.BOUNCED,
}
# A send whose worker died before recording the provider's answer (nudges.delivery.attempts): SendGrid's
# events carry the nudge id (custom_args), so the first event about it settles it.
UNSETTLED = {Status.IN_FLIGHT, Status.IN_DOUBT}
SENDGRID_UNSUBSCRIBES = {"unsubscribe", "group_unsubscribe"}
SENDGRID_SPAM = "spamreport"
# A dropped message's reason says whether the address itself is at fault (SendGrid's own list).
DROPPED_SUPPRESSION = {
    "bounced address": Reason.HARD_BOUNCE,
    "invalid": Reason.HARD_BOUNCE,
    "spam reporting address": Reason.SPAM_COMPLAINT,
    "unsubscribed address": Reason.UNSUBSCRIBED,
}
SENDGRID_SAFE_DETAIL = ("sg_event_id", "type", "status", "bounce_classification", "attempt")

TWILIO_STATUS = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.OPENED,  # WhatsApp read receipts
    "undelivered": Status.FAILED,
    "failed": Status.FAILED,
}
# Error codes that condemn the number itself. 30003 (handset switched off or out of coverage) is
# temporary and does not suppress; 30005 (unknown number) and 30006 (landline or unreachable
# carrier) do; 21610 is a recipient who replied STOP.
TWILIO_SUPPRESSION = {
    "30005": Reason.HARD_BOUNCE,
    "30006": Reason.HARD_BOUNCE,
    "21610": Reason.UNSUBSCRIBED,
}


def address_suppress(
    *, workspace: Workspace, channel: str, kind: str, address: str, reason: str, source: str
) -> bool:
    """Suppress an address on a channel (kept as its digest); False when it already was."""
    digest = subjects.subject_digest(workspace, kind, address)
    with transaction.atomic():
        suppression, created = Suppression.objects.get_or_create(
            workspace=workspace, channel=channel, subject_digest=digest, defaults={"reason": reason}
        )
        if created:
            audit_record(
                workspace=workspace,
                action="suppression.created",
                actor_label=f"{source} webhook",
                obj=suppression,
                after={"channel": channel, "reason": reason, "kind": kind},
            )
    logger.info(
        "nudges.webhook.suppressed",
        extra={
            "workspace_id": workspace.pk,
            "channel": channel,
            "reason": reason,
            "source": source,
            "new": created,
        },
    )
    return created


COUNTS = ("received", "applied", "unmatched", "unhandled", "invalid", "suppressed", "replayed")
SENDGRID, TWILIO = "sendgrid", "twilio"


def _counts(received: int) -> Counter[str]:
    counts: Counter[str] = Counter(dict.fromkeys(COUNTS, 0))
    counts["received"] = received
    return counts


def _at(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return timezone.now()


# --- SendGrid --------------------------------------------------------------------------------------


def _sendgrid_ids(event: dict) -> tuple[int | None, set[str]]:
    raw_id = str(event.get(METADATA_NUDGE_ID) or "")
    nudge_id = int(raw_id) if raw_id.isdigit() and len(raw_id) <= 18 else None
    message_ids = {str(event[key]) for key in ("anymail_id",) if event.get(key)}
    if event.get("sg_message_id"):
        # sg_message_id is the X-Message-Id of the send, then a per-recipient suffix.
        message_ids.add(str(event["sg_message_id"]).split(".", 1)[0])
    return nudge_id, message_ids


def _sendgrid_nudges(workspace: Workspace, events: list[dict]) -> tuple[dict[int, Nudge], dict[str, Nudge]]:
    nudge_ids, message_ids = set(), set()
    for event in events:
        nudge_id, ids = _sendgrid_ids(event)
        if nudge_id is not None:
            nudge_ids.add(nudge_id)
        message_ids |= ids
    if not nudge_ids and not message_ids:
        return {}, {}
    found = (
        Nudge.objects.filter(workspace=workspace, channel=Channel.EMAIL)
        .filter(Q(pk__in=nudge_ids) | Q(provider_message_id__in=message_ids))
        .select_related("trigger", "end_user")
    )
    by_pk = {nudge.pk: nudge for nudge in found}
    by_message_id = {
        nudge.provider_message_id: nudge for nudge in by_pk.values() if nudge.provider_message_id
    }
    return by_pk, by_message_id


def _sendgrid_suppression(name: str, event: dict) -> str | None:
    if name == SENDGRID_SPAM:
        return Reason.SPAM_COMPLAINT
    if name == "bounce":
        # "blocked" is the receiving server refusing this message (reputation, content), not a
        # dead address: the nudge bounced, the address stays usable.
        return None if str(event.get("type", "")).lower() == "blocked" else Reason.HARD_BOUNCE
    if name == "dropped":
        return DROPPED_SUPPRESSION.get(str(event.get("reason", "")).strip().lower())
    return None


def sendgrid_events_apply(*, workspace: Workspace, events: list[Any]) -> dict[str, int]:
    """Apply a verified batch of SendGrid events; counts of what happened to them."""
    counts = _counts(len(events))
    objects = [event for event in events if isinstance(event, dict) and isinstance(event.get("event"), str)]
    counts["invalid"] = len(events) - len(objects)
    by_pk, by_message_id = _sendgrid_nudges(workspace, objects)
    webhook_deliveries.deliveries_forget_old(workspace=workspace, provider=SENDGRID)
    for event in objects:
        # Each event with its delivery record: one that fails is not remembered, and SendGrid's
        # retry of the batch applies it then, and only it.
        with transaction.atomic():
            delivery_id = webhook_deliveries.sendgrid_delivery_id(event)
            if webhook_deliveries.delivery_first_seen(
                workspace=workspace, provider=SENDGRID, delivery_id=delivery_id
            ):
                counts.update(_sendgrid_event_handle(workspace, event, by_pk, by_message_id))
            else:
                counts["replayed"] += 1
    logger.info("nudges.webhook.sendgrid", extra={"workspace_id": workspace.pk, **counts})
    return dict(counts)


def _sendgrid_event_handle(
    workspace: Workspace, event: dict, by_pk: dict[int, Nudge], by_message_id: dict[str, Nudge]
) -> list[str]:
    """What one event did, as the counts it adds to."""
    outcome = []
    name = event["event"]
    reason = _sendgrid_suppression(name, event)
    email = event.get("email")
    if reason is not None and isinstance(email, str) and "@" in email:
        address_suppress(
            workspace=workspace,
            channel=Channel.EMAIL,
            kind=subjects.EMAIL,
            address=email,
            reason=reason,
            source=SENDGRID,
        )
        outcome.append("suppressed")
    nudge_id, message_ids = _sendgrid_ids(event)
    nudge = by_pk.get(nudge_id) if nudge_id is not None else None
    nudge = nudge or next((by_message_id[key] for key in message_ids if key in by_message_id), None)
    if nudge is None:
        outcome.append("unmatched")
    elif _sendgrid_event_apply(nudge, name, event, reason):
        outcome.append("applied")
    else:
        outcome.append("unhandled")
    return outcome


def _sendgrid_event_apply(nudge: Nudge, name: str, event: dict, reason: str | None) -> bool:
    detail = {"event": name, **{key: event[key] for key in SENDGRID_SAFE_DETAIL if key in event}}
    if name == "dropped" and isinstance(event.get("reason"), str):
        detail["reason"] = event["reason"][:100]  # SendGrid's fixed wording, no address
    status = SENDGRID_STATUS.get(name)
    if status is not None:
        fields = {}
        if status == Status.BOUNCED:
            code = f" ({detail['status']})" if isinstance(detail.get("status"), str) else ""
            fields["last_error"] = f"SendGrid {name}{code}"[:500]
        unsettled = nudge.status in UNSETTLED
        if unsettled:
            fields["claimed_until"] = None  # settled here: nothing left to reconcile
        changed = services.nudge_status_advance(
            nudge=nudge,
            status=status,
            source="sendgrid",
            detail=detail,
            at=_at(event.get("timestamp")),
            fields=fields,
        )
        if unsettled and changed:
            services.nudge_trace(
                nudge=nudge,
                stage="webhook",
                message=f"SendGrid reported it {name}: the attempt in flight reached the provider",
            )
        if reason is not None:
            services.nudge_trace(nudge=nudge, stage="webhook", message=f"email address suppressed: {reason}")
        return True
    if name == SENDGRID_SPAM:
        services.nudge_trace(
            nudge=nudge, stage="webhook", message="spam complaint: the email address is suppressed"
        )
        return True
    if name in SENDGRID_UNSUBSCRIBES:
        changed = preferences_services.unsubscribe_apply(
            end_user=nudge.end_user, channel=Channel.EMAIL, purpose=nudge.trigger.purpose
        )
        services.nudge_trace(
            nudge=nudge,
            stage="webhook",
            message=f"unsubscribed through SendGrid ({name}): {Channel.EMAIL} consent for "
            f"{nudge.trigger.purpose} withdrawn" + ("" if changed else " already"),
        )
        return True
    return False  # deferred, group_resubscribe ...: nothing to change


# --- Twilio ----------------------------------------------------------------------------------------


@transaction.atomic
def twilio_status_apply(*, workspace: Workspace, params: dict[str, str]) -> dict[str, int]:
    """Apply one verified Twilio status callback; counts like sendgrid_events_apply. A callback
    applied before (Twilio's retry, or a replay) is counted as replayed and changes nothing."""
    counts = _counts(1)
    message_status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    webhook_deliveries.deliveries_forget_old(workspace=workspace, provider=TWILIO)
    delivery_id = webhook_deliveries.twilio_delivery_id(message_sid=sid, message_status=message_status)
    if not webhook_deliveries.delivery_first_seen(
        workspace=workspace, provider=TWILIO, delivery_id=delivery_id
    ):
        counts["replayed"] = 1
        logger.info("nudges.webhook.twilio_replayed", extra={"workspace_id": workspace.pk})
        return dict(counts)
    error_code = (params.get("ErrorCode") or "").strip()
    reason = TWILIO_SUPPRESSION.get(error_code) if message_status in ("undelivered", "failed") else None
    number = params.get("To") or ""
    if reason is not None and number:
        address_suppress(
            workspace=workspace,
            channel=Channel.SMS,
            kind=subjects.PHONE,
            address=number,
            reason=reason,
            source="twilio",
        )
        counts["suppressed"] += 1
    outcome = _twilio_nudge_apply(
        workspace=workspace, sid=sid, message_status=message_status, error_code=error_code, reason=reason
    )
    counts[outcome] += 1
    logger.info(
        "nudges.webhook.twilio",
        extra={
            "workspace_id": workspace.pk,
            "message_status": message_status,
            "error_code": error_code,
            **counts,
        },
    )
    return dict(counts)


def _twilio_nudge_apply(
    *, workspace: Workspace, sid: str, message_status: str, error_code: str, reason: str | None
) -> str:
    """Move the SMS nudge the callback names along its status trail; returns the count it adds
    to (applied, unmatched, or unhandled)."""
    nudge = (
        Nudge.objects.filter(workspace=workspace, channel=Channel.SMS, provider_message_id=sid).first()
        if sid
        else None
    )
    status = TWILIO_STATUS.get(message_status)
    if nudge is None:
        return "unmatched"
    if status is None:
        return "unhandled"  # queued, accepted, sending, scheduled: the pipeline knows
    detail = {"event": message_status, "error_code": error_code} if error_code else {"event": message_status}
    fields = {}
    if status == Status.FAILED:
        fields["last_error"] = f"Twilio error {error_code or 'unknown'}: {message_status}"
    services.nudge_status_advance(nudge=nudge, status=status, source="twilio", detail=detail, fields=fields)
    if reason is not None:
        services.nudge_trace(
            nudge=nudge,
            stage="webhook",
            message=f"phone number suppressed: {reason} (error {error_code})",
        )
    return "applied"
