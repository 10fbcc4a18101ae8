"""Conversion attribution: a nudge converts when the step it aimed at is completed in time.

Called by nudges.jobs.progress_changed_job with the steps an enrollment just completed. Every
nudge of that user aimed at one of them, that reached its user (sent or later) and was sent at
most `NudgeSettings.conversion_window_hours` (default 48) before the completion, moves to
converted through nudges.services.nudge_status_advance, which also rewards its template version
in the bandit (once per nudge, whether a click came first or not). Running it twice converts
nothing more and records no second event.
"""

import logging
from datetime import datetime, timedelta

from django.db import transaction

from nudges import services
from nudges.models import Nudge, NudgeSettings
from onboarding.models import Enrollment

logger = logging.getLogger(__name__)

Status = Nudge.Status

# Reached the user and not converted yet. Failed and bounced nudges never reached them.
CONVERTIBLE = (Status.SENT, Status.DELIVERED, Status.OPENED, Status.CLICKED)
DEFAULT_WINDOW_HOURS = NudgeSettings._meta.get_field("conversion_window_hours").default
SOURCE = "progress"


def conversion_window(*, workspace_id: int) -> timedelta:
    hours = (
        NudgeSettings.objects.filter(workspace_id=workspace_id)
        .values_list("conversion_window_hours", flat=True)
        .first()
    )
    return timedelta(hours=DEFAULT_WINDOW_HOURS if hours is None else hours)


def conversions_record(*, enrollment_id: int, step_keys: list[str], completed_at: datetime) -> int:
    """Convert the user's nudges aimed at `step_keys` sent within the window before
    `completed_at`; returns how many converted."""
    enrollment = Enrollment.objects.filter(pk=enrollment_id).values("workspace_id", "end_user_id").first()
    if enrollment is None or not step_keys:
        return 0
    workspace_id = enrollment["workspace_id"]
    window = conversion_window(workspace_id=workspace_id)
    candidates = list(
        Nudge.objects.filter(
            workspace_id=workspace_id,
            end_user_id=enrollment["end_user_id"],
            target_step_key__in=step_keys,
            status__in=CONVERTIBLE,
            sent_at__gte=completed_at - window,
            sent_at__lte=completed_at,
        ).values_list("pk", flat=True)
    )
    converted = 0
    for nudge_id in candidates:
        with transaction.atomic():
            # Locked and checked again: a concurrent run may have converted it meanwhile.
            nudge = Nudge.objects.select_for_update().filter(pk=nudge_id, status__in=CONVERTIBLE).first()
            if nudge is None:
                continue
            converted += services.nudge_status_advance(
                nudge=nudge,
                status=Status.CONVERTED,
                source=SOURCE,
                at=completed_at,
                detail={
                    "enrollment_id": enrollment_id,
                    "step_key": nudge.target_step_key,
                    "window_hours": int(window.total_seconds() // 3600),
                },
            )
    logger.info(
        "nudges.conversions.recorded",
        extra={
            "workspace_id": workspace_id,
            "enrollment_id": enrollment_id,
            "candidates": len(candidates),
            "converted": converted,
        },
    )
    return converted
