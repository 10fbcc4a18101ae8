"""Path funnels and the enrollment metrics read from the rollups, against numbers worked out
from the known history (rollup_data.SPECS) in plain Python, following the definitions."""

import math
from datetime import UTC, datetime

import pytest

from analytics.funnels import metrics
from analytics.funnels.path_funnel import path_funnel
from analytics.funnels.query import RollupQuery
from analytics.funnels.trends import activation_distribution, daily_trend
from analytics.rollups import services
from analytics.rollups.buckets import bucket_middle_seconds, bucket_of
from tests.analytics.rollup_data import DAY_1, DAY_2, SPECS, build_history
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

STEPS = ("s1", "s2", "s3")


def reference_funnel(specs) -> dict[str, dict]:
    """Per step: entered, advanced, completed and the raw durations, straight from the specs."""
    funnel = {key: {"entered": 0, "advanced": 0, "completed": 0, "seconds": []} for key in STEPS}
    for spec in specs:
        standing = {step: (method, at) for step, method, at in spec.completions if step not in spec.reverted}
        for index, step in enumerate(STEPS):
            previous = STEPS[index - 1] if index else None
            if previous is not None and previous not in standing:
                continue
            funnel[step]["entered"] += 1
            if step in standing:
                funnel[step]["advanced"] += 1
                method, at = standing[step]
                if method != "skip":
                    funnel[step]["completed"] += 1
                    funnel[step]["seconds"].append(at - (standing[previous][1] if previous else 0))
    return funnel


def as_reported(seconds: list[int], quantile: float) -> float | None:
    """A quantile of the raw durations as the log buckets report it (nearest rank)."""
    if not seconds:
        return None
    ranked = sorted(seconds)[max(1, math.ceil(quantile * len(seconds))) - 1]
    return bucket_middle_seconds(bucket_of(ranked))


@pytest.fixture
def history():
    workspace = WorkspaceFactory()
    version, _ = build_history(workspace)
    services.rollups_refresh(workspace=workspace)
    return workspace, version


@pytest.mark.parametrize("persona", [None, "pm", "dev", ""])
def test_funnel_numbers_are_the_definitions_per_segment(history, persona):
    workspace, version = history
    segments = {} if persona is None else {"persona": persona}
    expected = reference_funnel([spec for spec in SPECS if persona is None or spec.persona == persona])

    funnel = path_funnel(RollupQuery(workspace, DAY_1, DAY_2, segments=segments), version)

    started = expected["s1"]["entered"]
    assert [step.key for step in funnel] == list(STEPS)
    for step in funnel:
        want = expected[step.key]
        assert (step.entered, step.advanced, step.completed) == (
            want["entered"],
            want["advanced"],
            want["completed"],
        )
        assert step.drop_off_rate == (
            (want["entered"] - want["advanced"]) / want["entered"] if want["entered"] else None
        )
        assert step.conversion_from_start == (want["advanced"] / started if started else None)
        assert step.median_seconds_to_complete == as_reported(want["seconds"], 0.5)
        assert step.p90_seconds_to_complete == as_reported(want["seconds"], 0.9)


def test_the_funnel_of_all_segments_by_hand(history):
    workspace, version = history

    funnel = path_funnel(RollupQuery(workspace, DAY_1, DAY_2), version)

    assert [(step.entered, step.advanced, step.completed) for step in funnel] == [
        (7, 5, 5),
        (5, 3, 2),
        (4, 2, 2),
    ]
    assert funnel[0].median_seconds_to_complete == pytest.approx(100, rel=0.045)
    assert funnel[0].p90_seconds_to_complete == pytest.approx(1000, rel=0.045)
    assert funnel[2].p90_seconds_to_complete == pytest.approx(3600, rel=0.045)


def test_a_range_without_enrollments_gives_zeros_and_no_rates(history):
    workspace, version = history

    funnel = path_funnel(RollupQuery(workspace, DAY_2.replace(year=2027), DAY_2.replace(year=2027)), version)

    assert [(step.entered, step.drop_off_rate, step.median_seconds_to_complete) for step in funnel] == [
        (0, None, None)
    ] * 3


def test_one_day_of_the_range(history):
    workspace, version = history
    expected = reference_funnel([spec for spec in SPECS if spec.day == DAY_2])

    funnel = path_funnel(RollupQuery(workspace, DAY_2, DAY_2), version)

    assert [step.entered for step in funnel] == [expected[key]["entered"] for key in STEPS]


def test_start_rate_and_step_rates(history):
    workspace, _ = history
    query = RollupQuery(workspace, DAY_1, DAY_2)
    expected = reference_funnel(SPECS)
    started = sum(1 for spec in SPECS if any(step not in spec.reverted for step, _, _ in spec.completions))

    start_rate = metrics.onboarding_start_rate(query)
    completion = metrics.step_completion_rate(query)
    drop_off = metrics.drop_off_rate_by_step(query, step_key="s1")

    assert (start_rate.numerator, start_rate.denominator, start_rate.value) == (started, 7, started / 7)
    entered = sum(step["entered"] for step in expected.values())
    completed = sum(step["completed"] for step in expected.values())
    assert (completion.numerator, completion.denominator, completion.value) == (
        completed,
        entered,
        completed / entered,
    )
    assert completion.extra["steps"]["s2"]["value"] == expected["s2"]["completed"] / expected["s2"]["entered"]
    assert (
        drop_off.value == (expected["s1"]["entered"] - expected["s1"]["advanced"]) / expected["s1"]["entered"]
    )
    assert metrics.step_completion_rate(query, step_key="nope").value is None


def test_activation_counts_only_mature_enrollments(history):
    workspace, _ = history
    query = RollupQuery(workspace, DAY_1, DAY_2)

    all_mature = metrics.activation_rate(query, now=datetime(2026, 3, 1, tzinfo=UTC))
    # Day 1's windows closed on Jan 20 at the latest (day end + 14 days); day 2's had not.
    day_1_mature = metrics.activation_rate(query, now=datetime(2026, 1, 20, 12, tzinfo=UTC))
    none_mature = metrics.activation_rate(query, now=datetime(2026, 1, 19, 23, tzinfo=UTC))

    assert (all_mature.value, all_mature.numerator, all_mature.denominator, all_mature.pending) == (
        1 / 7,
        1,
        7,
        0,
    )
    assert (day_1_mature.numerator, day_1_mature.denominator, day_1_mature.pending) == (1, 5, 2)
    assert (none_mature.value, none_mature.denominator, none_mature.pending) == (None, 0, 7)


def test_time_to_activation_percentiles(history):
    workspace, _ = history
    query = RollupQuery(workspace, DAY_1, DAY_2)

    p50 = metrics.time_to_activation_p50_hours(query)
    p90 = metrics.time_to_activation_p90_hours(query)

    # Only e1 activated within 14 days, after 4700 s; e6 took 20 days.
    assert p50.value == p90.value == bucket_middle_seconds(bucket_of(4700)) / 3600
    assert p50.value == pytest.approx(4700 / 3600, rel=0.045)
    assert p50.denominator == 1


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 3, 1, tzinfo=UTC),  # every window closed
        datetime(2026, 1, 20, 12, tzinfo=UTC),  # day 1's closed, day 2's pending
        datetime(2026, 1, 19, 23, tzinfo=UTC),  # none closed
    ],
)
def test_the_product_headline_summed_from_the_trend_is_the_metric_functions(history, now):
    """The Product page reads its headline from the per-day trend and the distribution it has
    already read, instead of five more queries: the same MetricValues as the metric functions."""
    workspace, _ = history
    query = RollupQuery(workspace, DAY_1, DAY_2)

    headline = metrics.headline_from_trend(daily_trend(query, now=now), activation_distribution(query))

    assert headline == {
        "activation": metrics.activation_rate(query, now=now),
        "tta_p50": metrics.time_to_activation_p50_hours(query),
        "tta_p90": metrics.time_to_activation_p90_hours(query),
        "starts": metrics.onboarding_start_rate(query),
    }
