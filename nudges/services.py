"""Writes for nudges: creating one per occasion, moving it along its status trail, the bandit's
counters. The pipeline, webhooks, click tracking and the inbox API all call these.
"""

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.jobs import enqueue
from nudges.models import Nudge, NudgeEvent, TemplateVersion, Trigger
from onboarding.models import Enrollment
from tenancy.audit import audit_record
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

Status = Nudge.Status

# Forward order of delivery statuses: a later one never moves a nudge back (webhooks arrive out
# of order: an "open" after the "click" is recorded, the status stays "clicked").
# In flight and in doubt come before sent: a provider's webhook that reports the send settles them.
RANK = {
    Status.QUEUED: 0,
    Status.DEFERRED: 1,
    Status.IN_FLIGHT: 2,
    Status.IN_DOUBT: 3,
    Status.SENT: 4,
    Status.DELIVERED: 5,
    Status.OPENED: 6,
    Status.CLICKED: 7,
    Status.CONVERTED: 8,
}
# Where a nudge ends without reaching its user; bounced can still follow sent or delivered.
ENDED = {Status.SUPPRESSED, Status.FAILED, Status.BOUNCED}
TIMESTAMP_OF = {
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.OPENED: "opened_at",
    Status.CLICKED: "clicked_at",
    Status.CONVERTED: "converted_at",
    Status.FAILED: "failed_at",
    Status.BOUNCED: "failed_at",
}
REWARDS = {Status.CLICKED, Status.CONVERTED}
PROCESS_JOB = "nudges.jobs.nudge_process_job"  # by name: nudges.jobs imports the code below it


def trace_line(stage: str, message: str, *, at: datetime | None = None) -> dict[str, str]:
    """One entry of a nudge's decision trace: what was decided at which stage, and why."""
    return {"at": (at or timezone.now()).isoformat(), "stage": stage, "message": message}


def nudge_create(
    *,
    trigger: Trigger,
    end_user: EndUser,
    occasion: str,
    enrollment: Enrollment | None = None,
    target_step_key: str = "",
    reason: str,
) -> Nudge | None:
    """A queued nudge for this trigger, user and occasion; None when one exists already (a
    trigger never fires twice for the same occasion: the idempotency key is unique)."""
    key = f"{trigger.pk}:{end_user.pk}:{occasion}"
    nudge = Nudge(
        workspace_id=trigger.workspace_id,
        end_user=end_user,
        enrollment=enrollment,
        trigger=trigger,
        occasion=occasion[:200],
        idempotency_key=key[:255],
        target_step_key=target_step_key,
        trace=[trace_line("trigger", reason)],
    )
    try:
        with transaction.atomic():
            nudge.save(force_insert=True)
            NudgeEvent.objects.create(nudge=nudge, status=Status.QUEUED, source="trigger", detail={})
    except IntegrityError:
        return None
    return nudge


def nudge_trace(*, nudge: Nudge, stage: str, message: str) -> None:
    """Add a line to the nudge's decision trace (saved at once)."""
    nudge.trace = [*nudge.trace, trace_line(stage, message)]
    Nudge.objects.filter(pk=nudge.pk).update(trace=nudge.trace)


@transaction.atomic
def nudge_status_advance(
    *,
    nudge: Nudge,
    status: str,
    source: str,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
    fields: dict[str, Any] | None = None,
) -> bool:
    """Record that the nudge reached `status` (from `source`: pipeline, sendgrid, twilio, click,
    pixel, inbox ...). Returns whether its status changed. The event is always recorded and its
    timestamp set the first time; the status only moves forward, except to an ending one
    (failed, bounced, suppressed) before delivery. A click or a conversion rewards the variant
    once. `fields`: more columns to save with it (channel, provider, content ...)."""
    at = at or timezone.now()
    # Only what the move depends on, locked: webhooks, clicks and the pipeline may race.
    locked = (
        Nudge.objects.select_for_update()
        .only("status", "template_version_id", *TIMESTAMP_OF.values())
        .get(pk=nudge.pk)
    )
    NudgeEvent.objects.create(nudge=locked, status=status, source=source, detail=detail or {})
    updates: dict[str, Any] = dict(fields or {})
    timestamp_field = TIMESTAMP_OF.get(status)
    if timestamp_field and getattr(locked, timestamp_field) is None:
        updates[timestamp_field] = at
    changed = _moves(locked.status, status)
    if changed:
        updates["status"] = status
    first_reward = status in REWARDS and locked.clicked_at is None and locked.converted_at is None
    if updates:
        Nudge.objects.filter(pk=locked.pk).update(**updates)
        for name, value in updates.items():
            setattr(nudge, name, value)
    if first_reward and locked.template_version_id is not None:
        TemplateVersion.objects.filter(pk=locked.template_version_id).update(rewards=F("rewards") + 1)
    logger.info(
        "nudge.status",
        extra={"nudge_id": locked.pk, "status": status, "source": source, "changed": changed},
    )
    return changed


def _moves(current: str, new: str) -> bool:
    if current == new or current in (Status.SUPPRESSED, Status.BOUNCED):
        return False
    if current == Status.IN_FLIGHT and new == Status.DEFERRED:
        return True  # the provider refused the attempt for now (down, rate limited): retried later
    if current == Status.FAILED:
        return new in RANK and RANK[new] >= RANK[Status.SENT]  # a dead letter sent on retry
    if new in ENDED:
        return RANK.get(current, 0) <= RANK[Status.DELIVERED]  # nothing ends a nudge once read
    return RANK.get(new, -1) > RANK.get(current, -1)


@transaction.atomic
def nudge_retry(*, nudge: Nudge, actor=None) -> bool:
    """Send a dead letter (a failed nudge) again: back to queued, then through the pipeline.
    Returns False when the nudge is not failed (nothing to retry)."""
    if not Nudge.objects.filter(pk=nudge.pk, status=Status.FAILED).update(
        status=Status.QUEUED, failed_at=None
    ):
        return False
    nudge.status, nudge.failed_at = Status.QUEUED, None
    NudgeEvent.objects.create(nudge=nudge, status=Status.QUEUED, source="retry", detail={})
    who = actor.get_username() if getattr(actor, "pk", None) else "system"
    nudge_trace(nudge=nudge, stage="retry", message=f"sent again from the dead-letter list by {who}")
    audit_record(
        action="nudge.retry",
        actor=actor,
        workspace=nudge.workspace,
        obj=nudge,
        before={"status": Status.FAILED},
        after={"status": Status.QUEUED},
    )
    enqueue(PROCESS_JOB, nudge.pk)
    return True


def template_version_sent(*, template_version: TemplateVersion) -> None:
    """Count a send for the bandit."""
    TemplateVersion.objects.filter(pk=template_version.pk).update(sends=F("sends") + 1)
