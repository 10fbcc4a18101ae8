"""The rollup metrics on /metrics: one gauge per enrollment metric of the definitions, labelled
by workspace slug and path key (bounded label sets), over the trailing EXPORT_DAYS UTC days.

The values are computed by the same functions as the read API (analytics.funnels.metrics), so
/metrics, the API and the dashboards show the same numbers. A metric with nothing to count has
no sample (a rate of nothing is not 0). The samples are cached for CACHE_SECONDS: the rollups
move every five minutes, scrapes come every few seconds.
"""

from collections import defaultdict
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from analytics.funnels import metrics as rollup_metrics
from analytics.funnels.query import RollupQuery
from analytics.metrics.definitions import METRICS
from analytics.models import EnrollmentRollup
from tenancy.models import Workspace

EXPORT_DAYS = 30
CACHE_SECONDS = 60
CACHE_KEY = "analytics:metrics:rollup-gauges"
LABELS = ("workspace", "path")

EXPORTED = {
    "onboarding_start_rate": rollup_metrics.onboarding_start_rate,
    "activation_rate": rollup_metrics.activation_rate,
    "time_to_activation_p50_hours": rollup_metrics.time_to_activation_p50_hours,
    "time_to_activation_p90_hours": rollup_metrics.time_to_activation_p90_hours,
    "step_completion_rate": rollup_metrics.step_completion_rate,
    "drop_off_rate_by_step": rollup_metrics.drop_off_rate_by_step,
}


def rollup_gauge_samples() -> dict[str, list[tuple[tuple[str, str], float]]]:
    """{metric name: [((workspace slug, path key), value)]} for every path with enrollments in
    the trailing window."""
    date_to = timezone.now().date()
    date_from = date_to - timedelta(days=EXPORT_DAYS - 1)
    rows = (
        EnrollmentRollup.objects.filter(day__gte=date_from, day__lte=date_to)
        .values_list("workspace_id", "path_version__path__key", "path_version_id")
        .distinct()
        .order_by()
    )
    versions: dict[tuple[int, str], set[int]] = defaultdict(set)
    for workspace_id, path_key, path_version_id in rows:
        versions[(workspace_id, path_key)].add(path_version_id)
    workspaces = Workspace.objects.in_bulk({workspace_id for workspace_id, _ in versions})
    samples: dict[str, list] = {name: [] for name in EXPORTED}
    for (workspace_id, path_key), version_ids in sorted(versions.items()):
        workspace = workspaces[workspace_id]
        query = RollupQuery(workspace, date_from, date_to, tuple(sorted(version_ids)))
        for name, compute in EXPORTED.items():
            value = compute(query).value
            if value is not None:
                samples[name].append(((workspace.slug, path_key), value))
    return samples


class RollupGaugeCollector:
    """A prometheus_client collector, registered with core.metrics from AnalyticsConfig.ready()."""

    def collect(self):
        samples = cache.get(CACHE_KEY)
        if samples is None:
            samples = rollup_gauge_samples()
            cache.set(CACHE_KEY, samples, CACHE_SECONDS)
        for name, values in samples.items():
            definition = METRICS[name]
            family = GaugeMetricFamily(
                name,
                f"{definition.description} Over the trailing {EXPORT_DAYS} UTC days of enrolment.",
                labels=LABELS,
            )
            for labels, value in values:
                family.add_metric(list(labels), value)
            yield family


COLLECTOR = RollupGaugeCollector()
