"""experiment_allocation_consistency: the share of assignments whose recomputed arm equals the
stored one (analytics' metric definition; on /metrics and the metrics API).

For each assignment made by hashing, the hash of (seed, external id) is computed again and must
equal the stored hash value, and the stored arm's slice of [0, 1) under the experiment's weights
must hold it. People erased under GDPR (their external id is a tombstone) are not counted: their
id is gone, their arm stays. After a reweigh, users assigned under the old split keep their arm
(sticky) but may fall outside its new slice: the share then drops below 1 and says so.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.core.cache import cache
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from analytics.funnels.metrics import MetricValue
from analytics.metrics.compute import MetricRequest
from analytics.metrics.definitions import METRICS
from experiments import allocation
from experiments.models import Assignment, Experiment
from tenancy.models import TOMBSTONE_PREFIX, Workspace

NAME = "experiment_allocation_consistency"
EXPORT_DAYS = 30
CACHE_SECONDS = 60
CACHE_KEY = "experiments:metrics:allocation-consistency"


def _slices(experiment: Experiment) -> dict[int, tuple[float, float]]:
    variants = list(experiment.variants.all())
    ranges = allocation.bucket_ranges(len(variants), 1.0, [variant.weight / 100 for variant in variants])
    return {variant.pk: ranges[index] for index, variant in enumerate(variants)}


def consistency_counts(
    *, workspace: Workspace, start: datetime, end: datetime, path_version_ids: tuple[int, ...] | None = None
) -> dict[str, tuple[int, int]]:
    """{experiment key: (consistent, counted)} over the assignments made in [start, end), of arms
    on these path versions when given."""
    assignments = Assignment.objects.filter(
        workspace=workspace, assigned_at__gte=start, assigned_at__lt=end, hash_value__isnull=False
    )
    if path_version_ids is not None:
        assignments = assignments.filter(variant__path_version_id__in=path_version_ids)
    rows = (
        assignments.exclude(end_user__external_id__startswith=TOMBSTONE_PREFIX)
        .values_list("experiment_id", "variant_id", "hash_value", "end_user__external_id")
        .order_by()
        .iterator(chunk_size=5000)
    )
    experiments = {
        experiment.pk: experiment
        for experiment in Experiment.objects.filter(workspace=workspace).prefetch_related("variants")
    }
    slices = {pk: _slices(experiment) for pk, experiment in experiments.items()}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for experiment_id, variant_id, hash_value, external_id in rows:
        experiment = experiments[experiment_id]
        recomputed = allocation.gb_hash(experiment.hash_seed, external_id or "", 2)
        low, high = slices[experiment_id][variant_id]
        tally = counts[experiment.key]
        tally[0] += recomputed == hash_value and low <= recomputed < high
        tally[1] += 1
    return {key: (consistent, counted) for key, (consistent, counted) in counts.items()}


def _range(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """UTC days [from, to], `to` inclusive, as the definitions count them."""
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    return start, datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)


def metric_value(request: MetricRequest) -> MetricValue:
    """The metrics API's value: over the workspace's assignments made in the range."""
    start, end = _range(request.date_from, request.date_to)
    counts = consistency_counts(
        workspace=request.workspace, start=start, end=end, path_version_ids=request.path_version_ids
    )
    consistent = sum(pair[0] for pair in counts.values())
    counted = sum(pair[1] for pair in counts.values())
    return MetricValue(consistent / counted if counted else None, consistent, counted)


class ConsistencyCollector:
    """A gauge per (workspace, experiment) over the trailing EXPORT_DAYS days, cached a minute;
    registered with core.metrics from ExperimentsConfig.ready()."""

    def collect(self):
        samples = cache.get(CACHE_KEY)
        if samples is None:
            samples = self.samples()
            cache.set(CACHE_KEY, samples, CACHE_SECONDS)
        family = GaugeMetricFamily(
            NAME,
            f"{METRICS[NAME].description} Over the assignments of the trailing {EXPORT_DAYS} days.",
            labels=("workspace", "experiment"),
        )
        for workspace_slug, experiment_key, value in samples:
            family.add_metric([workspace_slug, experiment_key], value)
        yield family

    @staticmethod
    def samples() -> list[tuple[str, str, float]]:
        end = timezone.now()
        start = end - timedelta(days=EXPORT_DAYS)
        workspace_ids = Assignment.objects.filter(assigned_at__gte=start).values("workspace_id").distinct()
        samples = []
        for workspace in Workspace.objects.filter(pk__in=workspace_ids).order_by("slug"):
            for key, (consistent, counted) in sorted(
                consistency_counts(workspace=workspace, start=start, end=end).items()
            ):
                samples.append((workspace.slug, key, consistent / counted))
        return samples


COLLECTOR = ConsistencyCollector()
