"""Raising, notifying and closing anomaly alerts.

`alerts_detect` judges every published path version of a workspace (detection.py) and raises an
Alert per finding. The row is unique per (workspace, path version, metric, step, day): a finding
already raised is skipped, so detection run again (every hour, or by two processes at once)
neither duplicates nor notifies again. Raising is audited (action "analytics.alert_raised", actor
"system"); acknowledging and resolving happen through the admin's actions, which the admin site
audits (tenancy/admin_changes.py).

A series that cannot be computed (an exception reading the rollups) is skipped: logged without
personal data, counted in `analytics_alert_detection_failures_total`, and the other series still
run (seed 000: "If detection fails, skip the alert and count it").

A notification channel that failed is tried again by the next runs (hourly), three attempts in
all within a day; one that succeeded is never sent again.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from prometheus_client import Counter

from analytics.alerts import detection, notify
from analytics.alerts.detection import Finding, Metric
from analytics.models import Alert
from paths import selectors as paths_selectors
from paths.models import PathVersion
from tenancy.audit import audit_record, audit_snapshot
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

DETECTION_FAILURES = Counter(
    "analytics_alert_detection_failures",
    "Alert series (a path version's metric) whose detection raised an error and was skipped.",
    ["metric"],
)


NOTIFY_ATTEMPTS = 3
NOTIFY_RETRY_WITHIN = timedelta(days=1)


@dataclass
class DetectionReport:
    series: int = 0
    raised: int = 0
    failures: int = 0


def _findings(workspace: Workspace, path_version: PathVersion, metric: str, day, now) -> list[Finding]:
    if metric == Metric.ACTIVATION_RATE:
        series = detection.activation_series(
            workspace=workspace, path_version=path_version, last=day, now=now
        )
        found = detection.judge(metric, "", day, series)
        return [found] if found else []
    by_step = detection.drop_off_series(workspace=workspace, path_version=path_version, last=day)
    judged = (detection.judge(metric, step_key, day, series) for step_key, series in by_step.items())
    return [found for found in judged if found]


def alert_raise(*, workspace: Workspace, path_version: PathVersion, finding: Finding) -> Alert | None:
    """The new alert, audited; None when this (version, metric, step, day) was raised before."""
    fields = {
        "workspace": workspace,
        "path_version": path_version,
        "metric": finding.metric,
        "step_key": finding.step_key,
        "day": finding.day,
    }
    if Alert.objects.filter(**fields).exists():
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                **fields,
                value=finding.point.value,
                numerator=finding.point.numerator,
                denominator=finding.point.denominator,
                baseline_median=finding.median,
                baseline_mad=finding.mad,
                baseline_days=finding.baseline_days,
                score=finding.score,
            )
            audit_record(
                workspace=workspace, action="analytics.alert_raised", obj=alert, after=audit_snapshot(alert)
            )
    except IntegrityError:  # another run raised it between the check and the insert
        return None
    return alert


def alert_notify(*, alert: Alert, channels: list[str] | None = None) -> dict[str, dict]:
    """Send the alert on every configured channel (or on `channels`) and record each outcome on
    the row, with how many attempts each channel has had."""
    outcomes = notify.notify(alert, channels=channels)
    recorded = dict(alert.notifications)
    for channel, outcome in outcomes.items():
        recorded[channel] = {**outcome, "attempts": recorded.get(channel, {}).get("attempts", 0) + 1}
    Alert.objects.filter(pk=alert.pk).update(notifications=recorded)
    alert.notifications = recorded
    return outcomes


def alerts_notify_failed(*, workspace: Workspace, now: datetime) -> int:
    """Try again the channels that failed (a webhook answering 500, mail server down) on the
    alerts of the last NOTIFY_RETRY_WITHIN, up to NOTIFY_ATTEMPTS in all; a sent channel is
    never sent again. Returns how many alerts were tried."""
    tried = 0
    recent = Alert.objects.filter(workspace=workspace, created_at__gte=now - NOTIFY_RETRY_WITHIN).exclude(
        status=Alert.Status.RESOLVED
    )
    for alert in recent.select_related("workspace", "path_version__path"):
        failed = [
            channel
            for channel, outcome in alert.notifications.items()
            if outcome.get("outcome") == "failed" and outcome.get("attempts", 1) < NOTIFY_ATTEMPTS
        ]
        if failed:
            alert_notify(alert=alert, channels=failed)
            tried += 1
    return tried


def alerts_detect(*, workspace: Workspace, now: datetime | None = None) -> DetectionReport:
    """Judge every published version of the workspace; raise and notify what is new."""
    now = now or timezone.now()
    days = detection.judged_days(workspace=workspace, today=now.date())
    report = DetectionReport()
    alerts_notify_failed(workspace=workspace, now=now)
    for path_version in paths_selectors.published_versions(workspace=workspace):
        for metric, day in days.items():
            report.series += 1
            try:
                findings = _findings(workspace, path_version, metric, day, now)
            except Exception as error:
                DETECTION_FAILURES.labels(metric=str(metric)).inc()
                report.failures += 1
                logger.warning(
                    "analytics.alerts.detection_failed",
                    extra={
                        "workspace_id": workspace.pk,
                        "path_version_id": path_version.pk,
                        "metric": str(metric),
                        "error": type(error).__name__,
                    },
                )
                continue
            for finding in findings:
                alert = alert_raise(workspace=workspace, path_version=path_version, finding=finding)
                if alert is not None:
                    report.raised += 1
                    alert_notify(alert=alert)
    logger.info("analytics.alerts.detected", extra={"workspace_id": workspace.pk, **report.__dict__})
    return report


def alerts_acknowledge(*, alerts: QuerySet[Alert]) -> int:
    """Open alerts among `alerts` become acknowledged; returns how many."""
    return alerts.filter(status=Alert.Status.OPEN).update(
        status=Alert.Status.ACKNOWLEDGED, acknowledged_at=timezone.now()
    )


def alerts_resolve(*, alerts: QuerySet[Alert]) -> int:
    """Alerts among `alerts` not yet resolved become resolved; returns how many."""
    return alerts.exclude(status=Alert.Status.RESOLVED).update(
        status=Alert.Status.RESOLVED, resolved_at=timezone.now()
    )
