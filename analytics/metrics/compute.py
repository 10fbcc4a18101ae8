"""One function per metric of analytics.metrics.definitions, registered by name: the metrics API
and /metrics call `metric_value(name, request)` and never branch on the name themselves.

Enrollment metrics come from the rollups (analytics.funnels.metrics), nudge metrics from the
nudge rows (analytics.nudges.metrics), latencies and the error rate from the Prometheus
histograms (core.latency, cumulative since the metric files began: the date range does not
apply to them), and the two metrics of later issues answer None with the reason.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from analytics.funnels import metrics as rollup_metrics
from analytics.funnels.metrics import MetricValue
from analytics.funnels.query import RollupQuery
from analytics.nudges import metrics as nudge_metrics
from core import latency
from tenancy.models import Workspace

ROLLUP_SEGMENTS = ("persona", "signup_source", "company_size", "use_case")


@dataclass(frozen=True)
class MetricRequest:
    """What a metric is asked over: filters are named as in the definitions' `segments`."""

    workspace: Workspace
    date_from: date
    date_to: date
    path_version_ids: tuple[int, ...] | None = None  # resolved from path / path_version
    filters: dict[str, object] = field(default_factory=dict)  # path, path_version, persona, ..., step

    def rollup_query(self) -> RollupQuery:
        segments = {name: self.filters[name] for name in ROLLUP_SEGMENTS if name in self.filters}
        return RollupQuery(self.workspace, self.date_from, self.date_to, self.path_version_ids, segments)


def _rollup(function: Callable[[RollupQuery], MetricValue]) -> Callable[[MetricRequest], MetricValue]:
    return lambda request: function(request.rollup_query())


def _per_step(function) -> Callable[[MetricRequest], MetricValue]:
    return lambda request: function(request.rollup_query(), step_key=request.filters.get("step"))


def _nudge(function) -> Callable[[MetricRequest], MetricValue]:
    def compute(request: MetricRequest) -> MetricValue:
        query = nudge_metrics.NudgeQuery.from_segments(
            workspace=request.workspace,
            date_from=request.date_from,
            date_to=request.date_to,
            segments={name: value for name, value in request.filters.items()},
        )
        rate = function(query)
        return MetricValue(rate.value, rate.numerator, rate.denominator)

    return compute


CUMULATIVE = {"window": "cumulative since the metric files began; the date range does not apply"}


def _labels(request: MetricRequest) -> dict[str, str]:
    return {key: str(value) for key, value in request.filters.items() if key in ("route", "method")}


def _latency_p95(name: str) -> Callable[[MetricRequest], MetricValue]:
    def compute(request: MetricRequest) -> MetricValue:
        return MetricValue(
            latency.latency_quantile(name, 0.95, labels=_labels(request)), extra=dict(CUMULATIVE)
        )

    return compute


def _error_rate(request: MetricRequest) -> MetricValue:
    return MetricValue(latency.error_rate_percent(labels=_labels(request)), extra=dict(CUMULATIVE))


def _not_yet_measured(issue: str) -> Callable[[MetricRequest], MetricValue]:
    reason = f"Not yet measured: filled by the {issue} issue."
    return lambda request: MetricValue(None, extra={"reason": reason})


COMPUTERS: dict[str, Callable[[MetricRequest], MetricValue]] = {
    "onboarding_start_rate": _rollup(rollup_metrics.onboarding_start_rate),
    "activation_rate": _rollup(rollup_metrics.activation_rate),
    "time_to_activation_p50_hours": _rollup(rollup_metrics.time_to_activation_p50_hours),
    "time_to_activation_p90_hours": _rollup(rollup_metrics.time_to_activation_p90_hours),
    "step_completion_rate": _per_step(rollup_metrics.step_completion_rate),
    "drop_off_rate_by_step": _per_step(rollup_metrics.drop_off_rate_by_step),
    "nudge_send_rate": _nudge(nudge_metrics.nudge_send_rate),
    "nudge_open_rate": _nudge(nudge_metrics.nudge_open_rate),
    "nudge_conversion_rate": _nudge(nudge_metrics.nudge_conversion_rate),
    "path_selection_latency_p95_ms": _latency_p95("path_selection_latency_p95_ms"),
    "api_latency_p95_ms": _latency_p95("api_latency_p95_ms"),
    "error_rate_percent": _error_rate,
    "ml_inference_latency_p95_ms": _latency_p95("ml_inference_latency_p95_ms"),
    "experiment_allocation_consistency": _not_yet_measured("experiments"),
}


def metric_value(name: str, request: MetricRequest) -> MetricValue:
    return COMPUTERS[name](request)
