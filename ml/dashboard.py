"""The ML dashboard (/admin/analytics/ml/, section "Analytics"): the chosen workspace's
model versions and their metrics, the latest drift check of each active version, the shadow
versions' agreement with the acting policy, the planner's decisions per day by policy, inference
latency, and the open model alerts. Registered into analytics' dashboards registry by ml/apps.py
(analytics never imports ml).

Versions, drift and alerts are whatever the date range; shadow agreement and decisions per day
count the path choices of the range's UTC days; latency is the instance's since its metric files
began (core.latency), as on the ops dashboard.
"""

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import HttpRequest

from analytics.dashboards import tables as t
from analytics.dashboards.registry import Dashboard
from core import latency
from ml.drift import psi
from ml.drift import services as drift_services
from ml.models import DriftReport, ModelAlert, ModelVersion, PathChoice

DASHBOARD_KEY = "ml"
SHADOW_ROWS = 50_000  # path choices read at most for shadow agreement (the most recent of the range)
POLICIES = tuple(PathChoice.Policy.values)


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _policy_estimate(metrics: dict) -> tuple[float | None, float | None, str | None]:
    """(model's estimated activation, the rules', "+0.058 [+0.010, +0.104]") from the training's
    offline policy estimate (path classifier only)."""
    policy = metrics.get("policy") or {}
    model, rules = policy.get("model") or {}, policy.get("rules") or {}
    difference, interval = model.get("difference"), model.get("difference_ci95") or [None, None]
    text = None
    if isinstance(difference, int | float):
        text = f"{difference:+.3f}"
        if None not in interval:
            text += f" [{interval[0]:+.3f}, {interval[1]:+.3f}]"
    return _number(model.get("activation")), _number(rules.get("activation")), text


def _ece(metrics: dict) -> float | None:
    found = metrics.get("ece")
    if found is None and isinstance(metrics.get("calibration"), dict):
        found = metrics["calibration"].get("ece")
    return _number(found)


def versions_table(workspace) -> t.Table:
    rows = []
    versions = ModelVersion.objects.filter(workspace=workspace).order_by("name", "-major", "-minor", "-patch")
    for version in versions:
        metrics = version.metrics or {}
        model, rules, difference = _policy_estimate(metrics)
        rows.append(
            [
                version.name,
                version.version,
                version.status,
                _number(metrics.get("auc")),
                _number(metrics.get("log_loss")),
                _ece(metrics),
                model,
                rules,
                difference,
                version.training_rows,
                version.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            ]
        )
    return t.Table(
        "versions",
        "Model versions",
        [
            t.Column("model", "model", t.TEXT),
            t.Column("version", "version", t.TEXT),
            t.Column("status", "status", t.TEXT),
            t.Column("auc", "AUC", t.TEXT),
            t.Column("log_loss", "log loss", t.TEXT),
            t.Column("ece", "calibration error (ECE)", t.TEXT),
            t.Column("policy_model", "policy estimate: model", t.RATIO),
            t.Column("policy_rules", "policy estimate: rules", t.RATIO),
            t.Column("policy_difference", "model - rules [95% CI]", t.TEXT),
            t.Column("training_rows", "training rows"),
            t.Column("created", "trained", t.TEXT),
        ],
        rows,
        note="Metrics on each version's validation rows (the latest 20% by time); the policy estimate"
        " is the path classifier's offline estimate of activation (self-normalised IPS).",
    )


def _latest_reports(workspace) -> list[DriftReport]:
    active = ModelVersion.objects.filter(workspace=workspace, status=ModelVersion.Status.ACTIVE)
    found = []
    for version in active.order_by("name"):
        report = DriftReport.objects.filter(model_version=version).order_by("-computed_at", "-pk").first()
        if report is not None:
            found.append(report)
    return found


def drift_tables(workspace) -> tuple[t.Table, t.Table]:
    reports = _latest_reports(workspace)
    psi_rows, check_rows = [], []
    for report in reports:
        label = str(report.model_version)
        for feature, value in sorted(report.psi.items(), key=lambda item: -item[1]):
            psi_rows.append([label, feature, value, psi.level(value)])
        check_rows.append(
            [
                label,
                report.computed_at.strftime("%Y-%m-%d %H:%M UTC"),
                report.max_psi,
                report.matured_rows,
                report.auc_at_training,
                report.auc_now,
                None if report.accuracy_drop is None else f"{report.accuracy_drop:.1%}",
                "yes" if report.retraining_started else "no",
                drift_services.describe(report),
            ]
        )
    checks = t.Table(
        "drift_checks",
        "Weekly drift checks (latest per active version)",
        [
            t.Column("model", "model version", t.TEXT),
            t.Column("computed", "checked", t.TEXT),
            t.Column("max_psi", "max PSI", t.TEXT),
            t.Column("matured", "matured outcomes"),
            t.Column("auc_then", "AUC at training", t.TEXT),
            t.Column("auc_now", "AUC now", t.TEXT),
            t.Column("drop", "relative AUC drop", t.TEXT),
            t.Column("retraining", "retraining started", t.TEXT),
            t.Column("summary", "summary", t.TEXT),
        ],
        check_rows,
        note=f"A relative AUC drop over {drift_services.MAX_ACCURACY_DROP:.0%} starts a retraining;"
        f" AUC is judged on at least {drift_services.MIN_MATURED} matured outcomes.",
    )
    features = t.Table(
        "drift_psi",
        "Feature drift: PSI between training and the last week",
        [
            t.Column("model", "model version", t.TEXT),
            t.Column("feature", "feature", t.TEXT),
            t.Column("psi", "PSI", t.TEXT),
            t.Column("level", "level", t.TEXT),
        ],
        psi_rows,
        note=f"Under {psi.MODERATE} stable, {psi.MODERATE}-{psi.SIGNIFICANT} moderate, over"
        f" {psi.SIGNIFICANT} significant (a drift alert).",
    )
    return checks, features


def _range(filters) -> tuple[datetime, datetime]:
    return (
        datetime.combine(filters.date_from, time.min, tzinfo=UTC),
        datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=UTC),
    )


def shadow_table(workspace, filters) -> t.Table:
    start, end = _range(filters)
    choices = PathChoice.objects.filter(workspace=workspace, decided_at__gte=start, decided_at__lt=end)
    scored, agreed, failed = Counter(), Counter(), Counter()
    for shadows in (
        choices.exclude(shadow=[]).order_by("-decided_at").values_list("shadow", flat=True)[:SHADOW_ROWS]
    ):
        for entry in shadows or []:
            version = str(entry.get("version", "?"))
            if "error" in entry:
                failed[version] += 1
                continue
            scored[version] += 1
            agreed[version] += bool(entry.get("agrees"))
    rows = [
        [
            f"path_classifier {version}",
            scored[version],
            agreed[version],
            agreed[version] / scored[version] if scored[version] else None,
            failed[version],
        ]
        for version in sorted(set(scored) | set(failed))
    ]
    return t.Table(
        "shadow",
        "Shadow versions: agreement with the acting policy",
        [
            t.Column("version", "shadow version", t.TEXT),
            t.Column("scored", "decisions scored"),
            t.Column("agreed", "same path chosen"),
            t.Column("agreement", "agreement rate", t.RATIO),
            t.Column("failed", "failed to score"),
        ],
        rows,
        chart=t.Chart("version", ("agreement",), "bar", "Agreement rate of each shadow version"),
        note=f"Path choices of the date range (the latest {SHADOW_ROWS:,} at most).",
    )


def decisions_table(workspace, filters) -> t.Table:
    start, end = _range(filters)
    counts: dict[date, Counter] = defaultdict(Counter)
    rows = (
        PathChoice.objects.filter(workspace=workspace, decided_at__gte=start, decided_at__lt=end)
        .annotate(day=TruncDate("decided_at", tzinfo=UTC))
        .values_list("day", "policy")
        .annotate(count=Count("pk"))
        .order_by()
    )
    for day, policy, count in rows:
        counts[day][policy] += count
    days = [
        filters.date_from + timedelta(days=offset)
        for offset in range((filters.date_to - filters.date_from).days + 1)
    ]
    return t.Table(
        "decisions",
        "Path decisions per day by policy",
        [t.Column("day", "day (UTC)", t.TEXT)]
        + [t.Column(policy, PathChoice.Policy(policy).label.lower()) for policy in POLICIES],
        [[day, *(counts[day][policy] for policy in POLICIES)] for day in days],
        chart=t.Chart("day", POLICIES, "line", "Path decisions per day by policy"),
        note="rules: the rules chose and acted; model: the active model; exploration: a random eligible"
        " path (logged with its propensity); model experiment: an A/B arm.",
    )


def latency_table() -> t.Table:
    families = latency.read_families()
    rows = []
    for name, what in (
        ("ml_inference_latency_p95_ms", "one model inference"),
        ("path_selection_latency_p95_ms", "the planner's whole path decision"),
    ):
        p95 = latency.latency_quantile(name, 0.95, families=families)
        rows.append([name, what, None if p95 is None else round(p95, 2)])
    return t.Table(
        "latency",
        "Inference latency (cumulative, whole instance)",
        [
            t.Column("metric", "metric", t.TEXT),
            t.Column("what", "what it times", t.TEXT),
            t.Column("p95_ms", "p95 (ms)", t.TEXT),
        ],
        rows,
        note="Since the Prometheus metric files began, for every workspace: not the date range.",
    )


def alerts_table(workspace) -> t.Table:
    alerts = ModelAlert.objects.filter(workspace=workspace, acknowledged_at__isnull=True).select_related(
        "model_version"
    )
    return t.Table(
        "alerts",
        "Open model alerts",
        [
            t.Column("created", "raised", t.TEXT),
            t.Column("kind", "kind", t.TEXT),
            t.Column("model", "model version", t.TEXT),
            t.Column("message", "message", t.TEXT),
        ],
        [
            [
                alert.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                alert.get_kind_display(),
                str(alert.model_version) if alert.model_version else None,
                alert.message,
            ]
            for alert in alerts.order_by("-created_at", "-pk")
        ],
    )


def build(request: HttpRequest, filters) -> dict:
    workspace = filters.workspace
    checks, features = drift_tables(workspace)
    tables = {
        "versions_table": versions_table(workspace),
        "drift_checks_table": checks,
        "drift_psi_table": features,
        "shadow_table": shadow_table(workspace, filters),
        "decisions_table": decisions_table(workspace, filters),
        "latency_table": latency_table(),
        "alerts_table": alerts_table(workspace),
    }
    return {
        "tables": list(tables.values()),
        **tables,
        "active": ModelVersion.objects.filter(workspace=workspace, status=ModelVersion.Status.ACTIVE).count(),
        "open_alerts": len(tables["alerts_table"].rows),
    }


DASHBOARD = Dashboard(
    key=DASHBOARD_KEY,
    title="ML dashboard",
    order=40,
    build=build,
    template="admin/analytics/ml.html",
    section="Machine learning",
    description="Model versions and metrics, drift, shadow agreement, decisions by policy, latency, alerts",
)
