"""Delivery attempts: recorded in flight before a provider is called, and settled without a blind
resend when the worker that made one died before recording the provider's answer.

    record_in_flight(nudge=..., channel=...)   durable before the provider call: the attempt's key
    record_sent(nudge=..., ...)                the provider accepted it
    reconcile(nudge=..., now=...)              an in-flight attempt whose lease ran out
    nudge_mark_delivered(nudge=..., actor=...) admin: a person saw that it reached the user
    nudge_send_again(nudge=..., actor=...)     admin: a person decided that it did not

An in-flight attempt whose lease ran out is settled, in this order:

1. a provider's delivery webhook naming the nudge (SendGrid's events carry its id) has already
   moved it to sent or delivered (nudges.delivery.webhook_events): the sweep no longer sees it;
2. every provider that may have received it drops a second request with the same idempotency
   key (its gateway's `idempotent`): the same attempt is sent again with the same key;
3. otherwise it is in doubt, for a person to decide in the admin ("mark as delivered" or "send
   again", both audited). A webhook arriving later still settles it.

The daily-cap slot the first attempt took stays with the nudge: reconciliation and "send again"
reserve nothing, so the cap counts the delivery once and never refuses its own retry. In-app
nudges are written locally, in the same transaction as their status: never in flight.
"""

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from guardrails.policy import engine as policy
from nudges import services
from nudges.content import choosers, composer
from nudges.delivery import failover as delivery
from nudges.delivery import webhooks
from nudges.gateways import idempotent_resend
from nudges.gateways.base import GatewayError, Message, Recipient
from nudges.gateways.recipients import recipient_for
from nudges.llm.personalize import Draft
from nudges.models import ChannelProvider, Nudge, NudgeEvent, NudgeSettings, TemplateVersion
from tenancy.audit import audit_record

logger = logging.getLogger(__name__)

Status = Nudge.Status
# The statuses a worker holding the lease may find its nudge in when the provider has accepted it.
SENDABLE = (Status.QUEUED, Status.DEFERRED, Status.IN_FLIGHT)
CONTENT_FIELDS = (
    "channel",
    "template_version",
    "subject",
    "body",
    "cta_text",
    "cta_url",
    "ui_component",
    "personalised",
    "llm_call_id",
)


@dataclass
class Outcome:
    status: str
    detail: str = ""


def lease() -> timedelta:
    """How long a worker holds a nudge (settings.NUDGE_LEASE_SECONDS)."""
    return timedelta(seconds=settings.NUDGE_LEASE_SECONDS)


def note(nudge: Nudge, stage: str, message: str) -> None:
    """Add a line to the nudge's trace in memory: it is saved with the nudge's next status, in
    the same UPDATE (a nudge's run writes its row a couple of times, not once per line)."""
    nudge.trace = [*nudge.trace, services.trace_line(stage, message)]


def content(nudge: Nudge) -> dict:
    """What the nudge says (set once a template was chosen), saved with its status."""
    return {name: getattr(nudge, name) for name in CONTENT_FIELDS}


def attempt_key_for(nudge: Nudge, channel: str) -> str:
    """One key per attempt: a provider that deduplicates drops a second request of this attempt,
    never a later attempt made after it refused one. No personal data: ids and a digest."""
    digest = hashlib.sha256(nudge.idempotency_key.encode()).hexdigest()[:16]
    return f"nudge-{nudge.pk}-{digest}-{nudge.attempts}-{channel}"


def record_in_flight(*, nudge: Nudge, channel: str) -> str:
    """Record, durably and before the provider is called, that this attempt is being handed to
    it; returns the attempt's idempotency key. A fresh lease covers the provider call."""
    key = attempt_key_for(nudge, channel)
    note(nudge, "delivery", f"in flight on {channel} (attempt {key})")
    nudge.status, nudge.attempt_key = Status.IN_FLIGHT, key
    nudge.claimed_until = timezone.now() + lease()
    Nudge.objects.filter(pk=nudge.pk).update(
        status=Status.IN_FLIGHT,
        attempt_key=key,
        claimed_until=nudge.claimed_until,
        trace=nudge.trace,
        **content(nudge),
    )
    return key


def record_sent(
    *, nudge: Nudge, sent: delivery.Delivery, version: TemplateVersion | None, started: float
) -> Outcome:
    """The provider accepted the nudge: sent (and, in-app, delivered), with who sent it and after
    what. One conditional UPDATE; a webhook or a person that settled it first keeps their status."""
    attempts = "; ".join(f"{attempt.get('provider')}: {attempt.get('outcome')}" for attempt in sent.attempts)
    elapsed_ms = 1000 * (time.monotonic() - started)
    note(
        nudge,
        "delivery",
        f"sent by {sent.provider.get_provider_display()} in {elapsed_ms:.0f} ms"
        + (f" ({attempts})" if attempts else ""),
    )
    now = timezone.now()
    fields = {
        "provider": sent.provider,
        "provider_message_id": sent.result.provider_message_id,
        "send_after": None,
        "last_error": "",
        "trace": nudge.trace,
        "claimed_until": None,
        "lease_token": "",
        **content(nudge),
    }
    with transaction.atomic():
        moved = Nudge.objects.filter(pk=nudge.pk, status__in=SENDABLE).update(
            status=Status.SENT, sent_at=nudge.sent_at or now, **fields
        )
        if moved:
            NudgeEvent.objects.create(
                nudge=nudge, status=Status.SENT, source="pipeline", detail=sent.result.detail
            )
            nudge.status, nudge.sent_at = Status.SENT, nudge.sent_at or now
            for name, value in fields.items():
                setattr(nudge, name, value)
        else:
            services.nudge_status_advance(
                nudge=nudge, status=Status.SENT, source="pipeline", detail=sent.result.detail, fields=fields
            )
        if version is not None:
            services.template_version_sent(template_version=version)
            choosers.version_sent(nudge=nudge)
        if nudge.channel == "in_app":
            services.nudge_status_advance(nudge=nudge, status=Status.DELIVERED, source="in_app")
    return Outcome(Status.SENT)


def draft_of(nudge: Nudge) -> Draft:
    """The nudge's content as a draft (contact variables still placeholders)."""
    return Draft(
        subject=nudge.subject,
        body=nudge.body,
        cta_text=nudge.cta_text,
        cta_url=nudge.cta_url,
        ui_component=nudge.ui_component,
    )


def stored_message(*, nudge: Nudge) -> tuple[Message, Recipient]:
    """The message of the nudge's last attempt, rebuilt from what it stored (its rendered
    content) and the recipient's contact data as it is now, with that attempt's key."""
    draft = draft_of(nudge)
    end_user, workspace = nudge.end_user, nudge.trigger.workspace
    recipient = recipient_for(end_user=end_user, channel=nudge.channel)
    message = composer.message_for(
        nudge=nudge,
        channel=nudge.channel,
        draft=draft,
        recipient=recipient,
        nudge_settings=NudgeSettings.objects.filter(workspace=workspace).first()
        or NudgeSettings(workspace=workspace),
        end_user=end_user,
        purpose=nudge.trigger.purpose,
        status_callback_url=webhooks.twilio_status_callback_url(workspace=workspace)
        if nudge.channel == "sms"
        else "",
    )
    return replace(message, idempotency_key=nudge.attempt_key), recipient


def _resend_is_deduplicated(nudge: Nudge) -> bool:
    """Whether every provider that may have received the attempt drops a copy with its key."""
    codes = ChannelProvider.objects.filter(
        workspace_id=nudge.workspace_id, channel=nudge.channel, is_active=True
    ).values_list("provider", flat=True)
    codes = list(codes)
    return bool(codes) and all(idempotent_resend(code) for code in codes)


def _send_stored(nudge: Nudge) -> Outcome:
    """Send the attempt's stored message again (same key) and record it sent; GatewayError passes."""
    message, recipient = stored_message(nudge=nudge)
    started = time.monotonic()
    sent = delivery.deliver(
        workspace=nudge.trigger.workspace, channel=nudge.channel, message=message, recipient=recipient
    )
    return record_sent(nudge=nudge, sent=sent, version=nudge.template_version, started=started)


def reconcile(*, nudge: Nudge, now: datetime) -> Outcome:
    """Settle an in-flight attempt whose worker stopped (its lease ran out): the same attempt
    again where the provider deduplicates it, otherwise in doubt. Never a second send."""
    if _resend_is_deduplicated(nudge):
        note(
            nudge,
            "reconcile",
            f"the worker stopped mid-send: attempt {nudge.attempt_key} sent again with its key",
        )
        try:
            return _send_stored(nudge)
        except GatewayError as error:
            note(nudge, "reconcile", f"sending it again failed ({error.reason})")
    return in_doubt(
        nudge,
        f"the worker sending attempt {nudge.attempt_key} stopped before recording the provider's answer: "
        "whether it reached the user is unknown. A delivery webhook naming it settles it; "
        "otherwise decide in the admin (mark as delivered, or send again)",
    )


def in_doubt(nudge: Nudge, why: str) -> Outcome:
    note(nudge, "in_doubt", why)
    with transaction.atomic():
        moved = Nudge.objects.filter(
            pk=nudge.pk, status=Status.IN_FLIGHT, attempt_key=nudge.attempt_key
        ).update(status=Status.IN_DOUBT, trace=nudge.trace, claimed_until=None, lease_token="")
        if moved:
            NudgeEvent.objects.create(nudge=nudge, status=Status.IN_DOUBT, source="reconcile", detail={})
            nudge.status = Status.IN_DOUBT
    logger.warning("nudge.in_doubt", extra={"nudge_id": nudge.pk, "attempt_key": nudge.attempt_key})
    return Outcome(Status.IN_DOUBT if moved else nudge.status, why)


def _who(actor) -> str:
    return actor.get_username() if getattr(actor, "pk", None) else "system"


def nudge_mark_delivered(*, nudge: Nudge, actor) -> bool:
    """A person saw that an in-doubt nudge reached its user: delivered, counted once (its cap
    slot was taken by the attempt). False when the nudge is not in doubt."""
    with transaction.atomic():
        if not Nudge.objects.select_for_update().filter(pk=nudge.pk, status=Status.IN_DOUBT).exists():
            return False
        services.nudge_status_advance(
            nudge=nudge, status=Status.DELIVERED, source="admin", detail={"by": _who(actor)}
        )
        services.nudge_trace(nudge=nudge, stage="admin", message=f"marked as delivered by {_who(actor)}")
        if nudge.template_version_id is not None:
            services.template_version_sent(template_version=nudge.template_version)
            choosers.version_sent(nudge=nudge)
        audit_record(
            workspace=nudge.workspace,
            action="nudge.mark_delivered",
            actor=actor,
            obj=nudge,
            before={"status": Status.IN_DOUBT},
            after={"status": Status.DELIVERED},
        )
    return True


def nudge_send_again(*, nudge: Nudge, actor) -> Outcome | None:
    """A person decided an in-doubt nudge did not reach its user: the same content once more, as
    a new attempt recorded in flight first. No cap slot is taken (the first attempt holds one),
    but every other rule still applies. None when the nudge is not in doubt."""
    decision = policy.check(
        policy.NUDGE_SEND,
        nudge.end_user,
        {"channel": nudge.channel, "purpose": nudge.trigger.purpose},
        dry_run=True,
    )
    blocking = [reason for reason in decision.reasons if reason.code != "daily_cap"]
    with transaction.atomic():
        locked = Nudge.objects.select_for_update().filter(pk=nudge.pk, status=Status.IN_DOUBT).first()
        if locked is None:
            return None
        reason = "; ".join(f"{item.code}: {item.message}" for item in blocking)
        audit_record(
            workspace=nudge.workspace,
            action="nudge.send_again",
            actor=actor,
            obj=nudge,
            before={"status": Status.IN_DOUBT},
            after={"status": Status.IN_DOUBT, "refused": reason}
            if blocking
            else {"status": Status.IN_FLIGHT},
        )
        if blocking:
            services.nudge_trace(
                nudge=nudge,
                stage="admin",
                message=f"{_who(actor)} asked to send it again: refused ({reason})",
            )
            return Outcome(Status.IN_DOUBT, reason)
        nudge.attempts = locked.attempts + 1
        Nudge.objects.filter(pk=nudge.pk).update(attempts=nudge.attempts)
        note(nudge, "admin", f"{_who(actor)} decided it did not arrive: sent again")
        record_in_flight(nudge=nudge, channel=nudge.channel)
    try:
        return _send_stored(nudge)
    except GatewayError as error:
        return in_doubt(nudge, f"sending it again failed ({error.reason}); still in doubt")
