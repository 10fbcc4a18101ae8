"""RQ entry point of anomaly detection (config.cron, hourly, after the rollup refresh). Safe to
run twice: an alert already raised is neither raised nor notified again."""

import logging

from analytics.alerts import services
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


def detect_anomalies_job(workspace_id: int | None = None) -> dict[str, int]:
    """Detection over one workspace, or every workspace (the periodic run). A workspace that fails
    as a whole is logged and the others still run; failed series are counted inside."""
    workspaces = Workspace.objects.order_by("pk")
    if workspace_id is not None:
        workspaces = workspaces.filter(pk=workspace_id)
    totals = {"workspaces": 0, "series": 0, "raised": 0, "failures": 0}
    for workspace in workspaces.iterator():
        try:
            report = services.alerts_detect(workspace=workspace)
        except Exception as error:
            logger.warning(
                "analytics.alerts.workspace_failed",
                extra={"workspace_id": workspace.pk, "error": type(error).__name__},
            )
            totals["failures"] += 1
            continue
        totals["workspaces"] += 1
        totals["series"] += report.series
        totals["raised"] += report.raised
        totals["failures"] += report.failures
    return totals
