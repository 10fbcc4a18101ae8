"""RQ entry points for onboarding: ids in, load, call one service. Safe to run twice."""

import logging

from onboarding.models import Enrollment
from onboarding.progress import answers
from onboarding.stuck import services as enrollment_signals
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


def detect_stuck_job(workspace_id: int | None = None) -> dict[str, int]:
    """One stuck pass over one workspace, or over every workspace (the periodic run)."""
    workspaces = Workspace.objects.order_by("pk")
    if workspace_id is not None:
        workspaces = workspaces.filter(pk=workspace_id)
    totals = {"workspaces": 0, "flagged": 0, "resolved": 0, "not_judged": 0}
    for workspace in workspaces.iterator():
        report = enrollment_signals.stuck_detect(workspace=workspace)
        totals["workspaces"] += 1
        totals["flagged"] += report.flagged
        totals["resolved"] += report.resolved
        totals["not_judged"] += report.not_judged
    return totals


def answers_snapshot_job(enrollment_id: int) -> None:
    """Record a completed enrollment's answers off the request (see `answers_snapshot_record`)."""
    enrollment = Enrollment.objects.filter(pk=enrollment_id, status=Enrollment.Status.COMPLETED).first()
    if enrollment is None:
        logger.info("answers.snapshot.skipped", extra={"enrollment_id": enrollment_id})
        return
    answers.answers_snapshot_record(enrollment=enrollment)
