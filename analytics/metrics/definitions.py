"""Every metric of issue 14, defined once: the product's single source of truth.

Dashboards, the read API, `/metrics`, experiments and the ML layer read these entries (name,
unit, kind, numerator, denominator, window, segments) instead of restating them; docs/analytics.md
`## Metrics` carries the same text. A query is (workspace, range of UTC days [from, to] with `to`
inclusive, optional segment filters). A rate with a zero denominator is None, never 0.
"""

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Source(StrEnum):
    """Where a metric's value comes from, i.e. who computes it."""

    ROLLUPS = "rollups"  # analytics.rollups, read by analytics.funnels.metrics
    NUDGES = "nudges"  # analytics.nudges.metrics, from the nudge rows
    PROMETHEUS = "prometheus"  # core.latency, histograms in the multiprocess files
    EXPERIMENTS = "experiments"  # experiments.consistency, from the assignments
    NOT_YET_MEASURED = "not_yet_measured"  # the ML issue fills it


ENROLLMENT_SEGMENTS = ("path", "path_version", "persona", "signup_source", "company_size", "use_case")
NUDGE_SEGMENTS = (*ENROLLMENT_SEGMENTS, "channel", "variant")


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    unit: str
    kind: Kind
    description: str
    numerator: str
    denominator: str
    window: str
    segments: tuple[str, ...]
    source: Source

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "unit": self.unit,
            "kind": str(self.kind),
            "description": self.description,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "window": self.window,
            "segments": list(self.segments),
            "source": str(self.source),
        }


ENROLLED_IN_RANGE = "Enrollment.enrolled_at within the range (UTC days, `to` inclusive)"
LATENCY_WINDOW = "cumulative since the Prometheus metric files began; a window is Prometheus's rate()"

_DEFINITIONS = (
    MetricDefinition(
        name="onboarding_start_rate",
        unit="ratio",
        kind=Kind.GAUGE,
        description="Share of enrollments that completed (or skipped) at least one step.",
        numerator="enrollments enrolled in range with at least one non-reverted StepCompletion",
        denominator="enrollments enrolled in range",
        window=ENROLLED_IN_RANGE,
        segments=ENROLLMENT_SEGMENTS,
        source=Source.ROLLUPS,
    ),
    MetricDefinition(
        name="activation_rate",
        unit="ratio",
        kind=Kind.GAUGE,
        description="Share of mature enrollments whose path was completed within N days of "
        "enrolment (N: the workspace's activation window, default 14). Enrollments whose window "
        "has not closed are reported as `pending`, not counted.",
        numerator="mature enrollments enrolled in range that completed their path (status "
        "completed, completed_at set) within N days of enrolled_at",
        denominator="mature enrollments enrolled in range: enrolled_at + N days <= now (at day "
        "resolution: a day's enrollments are mature once the day's end + N days <= now)",
        window=ENROLLED_IN_RANGE,
        segments=ENROLLMENT_SEGMENTS,
        source=Source.ROLLUPS,
    ),
    MetricDefinition(
        name="time_to_activation_p50_hours",
        unit="hours",
        kind=Kind.GAUGE,
        description="Median of (completed_at - enrolled_at) in hours over the enrollments enrolled "
        "in range that activated within N days.",
        numerator="50th percentile of completed_at - enrolled_at (hours)",
        denominator="enrollments enrolled in range that activated within N days",
        window=ENROLLED_IN_RANGE,
        segments=ENROLLMENT_SEGMENTS,
        source=Source.ROLLUPS,
    ),
    MetricDefinition(
        name="time_to_activation_p90_hours",
        unit="hours",
        kind=Kind.GAUGE,
        description="90th percentile of (completed_at - enrolled_at) in hours over the enrollments "
        "enrolled in range that activated within N days.",
        numerator="90th percentile of completed_at - enrolled_at (hours)",
        denominator="enrollments enrolled in range that activated within N days",
        window=ENROLLED_IN_RANGE,
        segments=ENROLLMENT_SEGMENTS,
        source=Source.ROLLUPS,
    ),
    MetricDefinition(
        name="step_completion_rate",
        unit="ratio",
        kind=Kind.GAUGE,
        description="Per step: enrollments that completed the step (a non-reverted, non-skip "
        "StepCompletion) / enrollments that entered it. Without a step: sum of completed / sum of "
        "entered over the steps. A step is entered when it is the first step (by Step.order) or "
        "the enrollment advanced past the step before it.",
        numerator="enrollments enrolled in range that entered and completed the step",
        denominator="enrollments enrolled in range that entered the step",
        window=ENROLLED_IN_RANGE,
        segments=(*ENROLLMENT_SEGMENTS, "step"),
        source=Source.ROLLUPS,
    ),
    MetricDefinition(
        name="drop_off_rate_by_step",
        unit="ratio",
        kind=Kind.GAUGE,
        description="Per step: (entered - advanced past) / entered. Advanced past = a non-reverted "
        "StepCompletion of the step, any method, skip included.",
        numerator="enrollments enrolled in range that entered the step and did not advance past it",
        denominator="enrollments enrolled in range that entered the step",
        window=ENROLLED_IN_RANGE,
        segments=(*ENROLLMENT_SEGMENTS, "step"),
        source=Source.ROLLUPS,
    ),
    MetricDefinition(
        name="nudge_send_rate",
        unit="ratio",
        kind=Kind.GAUGE,
        description="Share of the nudges created in range that were sent.",
        numerator="nudges created in range with sent_at set",
        denominator="nudges created in range",
        window="Nudge.created_at within the range",
        segments=NUDGE_SEGMENTS,
        source=Source.NUDGES,
    ),
    MetricDefinition(
        name="nudge_open_rate",
        unit="ratio",
        kind=Kind.GAUGE,
        description="Share of the nudges sent in range that were opened or clicked (a click "
        "implies an open).",
        numerator="nudges sent in range with opened_at or clicked_at set",
        denominator="nudges sent in range",
        window="Nudge.sent_at within the range",
        segments=NUDGE_SEGMENTS,
        source=Source.NUDGES,
    ),
    MetricDefinition(
        name="nudge_conversion_rate",
        unit="ratio",
        kind=Kind.GAUGE,
        description="Share of the nudges sent in range that converted.",
        numerator="nudges sent in range with converted_at set",
        denominator="nudges sent in range",
        window="Nudge.sent_at within the range",
        segments=NUDGE_SEGMENTS,
        source=Source.NUDGES,
    ),
    MetricDefinition(
        name="path_selection_latency_p95_ms",
        unit="milliseconds",
        kind=Kind.HISTOGRAM,
        description="95th percentile of the time (ms) the planner takes to choose a path for an "
        "enrollment; a Prometheus histogram, p95 from its buckets.",
        numerator="p95 over the histogram's buckets",
        denominator="path selections observed",
        window=LATENCY_WINDOW,
        segments=(),
        source=Source.PROMETHEUS,
    ),
    MetricDefinition(
        name="api_latency_p95_ms",
        unit="milliseconds",
        kind=Kind.HISTOGRAM,
        description="95th percentile of API request durations (ms); a Prometheus histogram "
        "labelled `route` (the resolved URL name, 'unmatched' otherwise) and `method`.",
        numerator="p95 over the histogram's buckets",
        denominator="API requests observed",
        window=LATENCY_WINDOW,
        segments=("route", "method"),
        source=Source.PROMETHEUS,
    ),
    MetricDefinition(
        name="error_rate_percent",
        unit="percent",
        kind=Kind.GAUGE,
        description="API requests answered 5xx / all API requests x 100; the request counters are "
        "labelled `route` and `method` like the latency histogram.",
        numerator="API requests answered with a 5xx status",
        denominator="API requests answered",
        window=LATENCY_WINDOW,
        segments=("route", "method"),
        source=Source.PROMETHEUS,
    ),
    MetricDefinition(
        name="ml_inference_latency_p95_ms",
        unit="milliseconds",
        kind=Kind.HISTOGRAM,
        description="95th percentile of one ML model inference (ms): the path classifier scoring a "
        "person's eligible paths in the planner, shadow versions included (ml/serving/policy.py).",
        numerator="p95 over the histogram's buckets",
        denominator="inferences observed",
        window=LATENCY_WINDOW,
        segments=(),
        source=Source.PROMETHEUS,
    ),
    MetricDefinition(
        name="experiment_allocation_consistency",
        unit="ratio",
        kind=Kind.GAUGE,
        description="Share of experiment assignments whose arm, recomputed from the hash of (seed, "
        "external user id), equals the stored one.",
        numerator="assignments whose recomputed hash equals the stored one and falls in the stored "
        "arm's slice of the experiment's weights",
        denominator="assignments made by hashing (erased people excluded)",
        window="assignments made within the range",
        segments=("path",),
        source=Source.EXPERIMENTS,
    ),
)

METRICS: dict[str, MetricDefinition] = {definition.name: definition for definition in _DEFINITIONS}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
