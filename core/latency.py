"""The latency histograms (milliseconds) and request counters of the seeds' metrics, and their
quantiles and error rate read back from the multiprocess files.

Declared here, in the lowest layer, so that whichever layer measures them (core's request
middleware, onboarding's enrolment, the ML layer later) imports them without a cycle, and the
analytics API reads the same numbers `/metrics` shows. Every series is cumulative since the
metric files in PROMETHEUS_MULTIPROC_DIR were started: a windowed view is Prometheus's job
(`histogram_quantile(0.95, sum by (le) (rate(api_latency_p95_ms_bucket[5m])))`), and the readers
below say "since the files began", not "lately".
"""

import math
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

# From 1 ms to 10 s, roughly x2.5 per bucket: an API answer, a batch of 100 events, a slow query.
API_LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# In-process decisions (path selection, model inference): from 0.1 ms to 2.5 s.
DECISION_BUCKETS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)

API_LATENCY = Histogram(
    "api_latency_p95_ms",
    "API request durations in ms (/api/ and /v1/), by resolved URL name ('unmatched' when none) and"
    " method; p95 via histogram_quantile over the buckets.",
    ["route", "method"],
    buckets=API_LATENCY_BUCKETS_MS,
)
API_REQUESTS = Counter(
    "api_requests", "API requests answered (/api/ and /v1/), by route and method.", ["route", "method"]
)
API_ERRORS = Counter(
    "api_errors", "API requests answered with a 5xx status, by route and method.", ["route", "method"]
)
PATH_SELECTION_LATENCY = Histogram(
    "path_selection_latency_p95_ms",
    "Time in ms the planner took to choose a path for an enrollment, by outcome (experiment, model,"
    " explore, rules, default, none).",
    ["outcome"],
    buckets=DECISION_BUCKETS_MS,
)
# Observed by the ML layer (ml/serving/policy.score): the acting and the shadow versions alike.
ML_INFERENCE_LATENCY = Histogram(
    "ml_inference_latency_p95_ms",
    "Time in ms of one ML model inference in process (the path classifier scoring a person's eligible"
    " paths in one predict call, its explanation included; a shadow version's scoring counts too).",
    buckets=DECISION_BUCKETS_MS,
)

ERROR_RATE_NAME = "error_rate_percent"
ERROR_RATE_HELP = (
    "API requests answered 5xx / all API requests x 100, cumulative since the metric files began"
    " (for a window: 100 * rate(api_errors_total[5m]) / rate(api_requests_total[5m]))."
)


def histogram_quantile(quantile: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The quantile Prometheus's histogram_quantile returns for cumulative buckets given as
    (upper bound, count of observations <= bound), the last bound +Inf: linear interpolation
    inside the bucket the rank falls in, the highest finite bound when it falls in +Inf. None
    when there is nothing to say (no observations, fewer than two buckets, no +Inf bucket)."""
    if not 0 <= quantile <= 1:
        raise ValueError("quantile must be between 0 and 1")
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    bounds = [bound for bound, _ in ordered]
    counts, highest = [], 0.0
    for _, count in ordered:  # as Prometheus does: a count that went down is read as the one before
        highest = max(highest, count)
        counts.append(highest)
    observations = counts[-1]
    if observations == 0:
        return None
    rank = quantile * observations
    index = next(position for position, count in enumerate(counts) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, in_bucket = 0.0, bounds[index], counts[index]
    if index > 0:
        start, in_bucket, rank = bounds[index - 1], in_bucket - counts[index - 1], rank - counts[index - 1]
    if in_bucket == 0:
        return start
    return start + (end - start) * (rank / in_bucket)


def read_families(directory: str | None = None) -> list[Metric]:
    """Every metric of every process, summed (histogram buckets cumulative), as /metrics has them."""
    return list(MultiProcessCollector(None, path=directory).collect())


def _matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(name) == value for name, value in wanted.items())


def latency_quantile(
    name: str,
    quantile: float = 0.95,
    *,
    labels: Mapping[str, str] | None = None,
    families: Iterable[Metric] | None = None,
) -> float | None:
    """The quantile (ms) of histogram `name` over the series whose labels match `labels` (e.g.
    {"route": "segment-batch"}; none: all series), their buckets summed first, as
    `histogram_quantile(q, sum by (le) (...))` would. None without observations."""
    wanted = labels or {}
    summed: dict[float, float] = {}
    for family in read_families() if families is None else families:
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket" and _matches(sample.labels, wanted):
                bound = float(sample.labels["le"])
                summed[bound] = summed.get(bound, 0.0) + sample.value
    return histogram_quantile(quantile, list(summed.items()))


def _total(families: Iterable[Metric], name: str, wanted: Mapping[str, str]) -> float:
    return sum(
        sample.value
        for family in families
        if family.name == name
        for sample in family.samples
        if sample.name == f"{name}_total" and _matches(sample.labels, wanted)
    )


def error_rate_percent(
    families: Iterable[Metric] | None = None, *, labels: Mapping[str, str] | None = None
) -> float | None:
    """API requests answered 5xx / all API requests x 100, since the metric files began, over
    the series whose labels match `labels` (route, method; none: all); None before the first
    such request."""
    families = read_families() if families is None else list(families)
    wanted = labels or {}
    requests = _total(families, "api_requests", wanted)
    if requests == 0:
        return None
    return 100.0 * _total(families, "api_errors", wanted) / requests


def error_rate_family(families: Iterable[Metric]) -> GaugeMetricFamily:
    """error_rate_percent as a gauge for /metrics, computed from the same scrape's counters (a
    NaN before the first request: a rate of nothing is not 0)."""
    rate = error_rate_percent(families)
    return GaugeMetricFamily(ERROR_RATE_NAME, ERROR_RATE_HELP, value=math.nan if rate is None else rate)
