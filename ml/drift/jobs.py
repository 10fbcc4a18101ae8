"""RQ entry point of the weekly drift check (config.cron, queue "low"). Safe to run twice: a
second run stores another report and does not start a second retraining within the cooldown."""

import logging

from ml.drift import services
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


def check_drift_job(workspace_id: int | None = None) -> dict[str, int]:
    """Check one workspace's active models, or every workspace's (the weekly run). A workspace that
    fails is logged and the others still run."""
    workspaces = Workspace.objects.order_by("pk")
    if workspace_id is not None:
        workspaces = workspaces.filter(pk=workspace_id)
    totals = {"workspaces": 0, "versions": 0, "retrainings": 0, "failures": 0}
    for workspace in workspaces.iterator():
        try:
            reports = services.drift_check_workspace(workspace_id=workspace.pk)
        except Exception as error:
            logger.warning(
                "ml.drift.workspace_failed",
                extra={"workspace_id": workspace.pk, "error": type(error).__name__},
            )
            totals["failures"] += 1
            continue
        totals["workspaces"] += 1
        totals["versions"] += len(reports)
        totals["retrainings"] += sum(report.retraining_started for report in reports)
    return totals
