"""The experiments dashboard (/admin/analytics/experiments/, section "Experiments"): the chosen
workspace's experiments still collecting data (running or stopped, not yet concluded), with their
status, days running, users and primary metric per arm, the decision job's last word and when it
looks again; each links to its results page. Registered into analytics' dashboards registry by
experiments/apps.py (analytics never imports experiments).

The numbers are experiments.results' (one call per experiment: the same numbers as the results
page); the date range does not apply, an experiment counts from its start.
"""

from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from analytics.dashboards import tables as t
from analytics.dashboards.registry import Dashboard
from experiments import results as experiment_results
from experiments.models import Experiment
from experiments.results_page import percent

DASHBOARD_KEY = "experiments"
# How often the decision job looks at a running experiment (config/cron.py schedules it hourly).
EVALUATION_INTERVAL = timedelta(hours=1)
Status = Experiment.Status


def last_decision(experiment: Experiment) -> dict | None:
    """The decision job's last word on the experiment, as stored on it (None before the first)."""
    return getattr(experiment, "last_decision", None) or None


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def next_evaluation(experiment: Experiment, decision: dict | None) -> datetime | None:
    """When the decision job looks again: an hour after its last look (None when it will not)."""
    if experiment.status != Status.RUNNING:
        return None
    evaluated = _moment(decision.get("evaluated_at")) if decision else None
    if evaluated is None:
        return None
    return max(evaluated + EVALUATION_INTERVAL, timezone.now().replace(second=0, microsecond=0))


def days_running(experiment: Experiment) -> int | None:
    if experiment.started_at is None:
        return None
    until = experiment.stopped_at or experiment.concluded_at or timezone.now()
    return (until - experiment.started_at).days


def experiments_collecting(*, workspace) -> list[Experiment]:
    """The workspace's experiments not yet concluded but started: running first, newest first."""
    rows = Experiment.objects.filter(workspace=workspace, status__in=(Status.RUNNING, Status.STOPPED))
    return sorted(rows.order_by("-started_at", "-pk"), key=lambda row: row.status != Status.RUNNING)


def _when(value: datetime | None, otherwise: str) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else otherwise


def _summary_row(experiment: Experiment, results: dict) -> list:
    decision = last_decision(experiment)
    upcoming = next_evaluation(experiment, decision)
    waiting = "next hourly run" if experiment.status == Status.RUNNING else "none: stopped"
    return [
        experiment.key,
        experiment.status,
        experiment.primary_metric,
        days_running(experiment),
        sum(arm["users"] for arm in results["arms"]),
        (decision or {}).get("action") or "none yet",
        (decision or {}).get("reason") or results.get("error") or None,
        _when(upcoming, waiting),
    ]


def _arm_rows(experiment: Experiment, results: dict) -> list[list]:
    return [
        [
            f"{experiment.key} \u00b7 {arm['key']}{' (control)' if arm['is_control'] else ''}",
            arm["users"],
            arm["conversions"],
            arm["rate"],
            None if arm["is_control"] else percent(arm["uplift_relative"], 1, True),
            None if arm["is_control"] else arm["chance_to_win"],
        ]
        for arm in results["arms"]
    ]


def _summary_table(rows: list, links: list) -> t.Table:
    return t.Table(
        "experiments",
        "Experiments collecting data",
        [
            t.Column("experiment", "experiment", t.TEXT),
            t.Column("status", "status", t.TEXT),
            t.Column("metric", "primary metric", t.TEXT),
            t.Column("days", "days running"),
            t.Column("users", "users"),
            t.Column("decision", "last decision", t.TEXT),
            t.Column("reason", "why", t.TEXT),
            t.Column("next", "next decision", t.TEXT),
        ],
        rows,
        links=links,
        note="Running and stopped experiments, whatever the date range; a concluded one keeps its frozen"
        " results on its results page.",
    )


def _arms_table(rows: list, links: list) -> t.Table:
    return t.Table(
        "arms",
        "Users and primary metric per arm",
        [
            t.Column("arm", "experiment \u00b7 arm", t.TEXT),
            t.Column("users", "users"),
            t.Column("conversions", "conversions"),
            t.Column("rate", "primary metric", t.RATIO),
            t.Column("uplift", "uplift over control", t.TEXT),
            t.Column("chance_to_win", "chance to win", t.RATIO),
        ],
        rows,
        chart=t.Chart("arm", ("rate",), "bar", "Primary metric of each arm of each experiment"),
        links=links,
    )


def build(request: HttpRequest, filters) -> dict:
    experiments = experiments_collecting(workspace=filters.workspace)
    summary_rows, summary_links, arm_rows, arm_links = [], [], [], []
    for experiment in experiments:
        url = reverse("admin:experiments_experiment_results", args=[experiment.pk])
        results = experiment_results.results_as_dict(experiment_results.experiment_results(experiment))
        summary_rows.append(_summary_row(experiment, results))
        summary_links.append(url)
        rows = _arm_rows(experiment, results)
        arm_rows += rows
        arm_links += [url] * len(rows)
    summary, arms = _summary_table(summary_rows, summary_links), _arms_table(arm_rows, arm_links)
    return {
        "tables": [summary, arms],
        "summary_table": summary,
        "arms_table": arms,
        "running": sum(1 for experiment in experiments if experiment.status == Status.RUNNING),
        "stopped": sum(1 for experiment in experiments if experiment.status == Status.STOPPED),
        "experiments_url": reverse("admin:experiments_experiment_changelist"),
    }


DASHBOARD = Dashboard(
    key=DASHBOARD_KEY,
    title="Experiments dashboard",
    order=5,
    build=build,
    template="admin/experiments/dashboard.html",
    section="Experiments",
    description="Running experiments: status, days running, users and primary metric per arm, decisions",
)
