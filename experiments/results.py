"""An experiment's full results: every number from the stats engine (experiments/stats) over the
counts of results_data.py, as frozen dataclasses (``results_as_dict`` makes them JSON).

Per arm against control (position 0): Welch's test of the relative and absolute effect with its
p-value (Holm-adjusted across arms), the mSPRT always-valid interval (safe to peek at), the
Bayesian chance to win, risk and credible interval; sample ratio mismatch against the
configured weights; for path experiments, Kaplan-Meier curves of time to activation with users
not yet activated censored, the median with its interval and the log-rank test. A concluded
experiment reads the copy frozen at its conclusion (``Experiment.final_results``).
"""

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from analytics.rollups.services import activation_window_days
from experiments import stats, template_results
from experiments.models import Experiment, Variant
from experiments.results_data import ArmCounts, arm_counts
from experiments.results_types import (
    ArmResult,
    DailyPoint,
    ExperimentResults,
    GuardrailResult,
    HealthCheck,
    SurvivalCurve,
    results_as_dict,
    results_from_dict,
)

__all__ = [
    "ArmResult",
    "DailyPoint",
    "ExperimentResults",
    "GuardrailResult",
    "HealthCheck",
    "SurvivalCurve",
    "compute_results",
    "experiment_results",
    "results_as_dict",
    "results_from_dict",
]

logger = logging.getLogger(__name__)

HOURS_PER_DAY = 24


def chart_hours(window_days: int) -> list[float]:
    """Where the survival curves are read for a chart: hourly for a day, then every 6 hours."""
    last = window_days * HOURS_PER_DAY
    return [float(hour) for hour in [*range(0, min(24, last)), *range(24, last + 1, 6)]]


def _rate(conversions: int, users: int) -> float | None:
    return conversions / users if users else None


def _compare(control: ArmCounts, arm: ArmCounts) -> dict[str, Any]:
    """One arm against control on a proportion, by every method of the engine."""
    if arm.users == 0 or control.users == 0:
        return {"message": "no users in this arm or in control yet"}
    a = stats.proportion(control.users, control.conversions, field="control")
    b = stats.proportion(arm.users, arm.conversions, field="arm")
    relative = stats.welch_t_test(a, b, difference="relative")
    absolute = stats.welch_t_test(a, b, difference="absolute")
    sequential = stats.sequential_t_test(a, b, difference="relative")
    bayes = stats.bayesian_test(a, b, difference="relative")
    message = relative.message or absolute.message or bayes.message
    if message:
        return {"message": message}
    return {
        "uplift_relative": relative.expected,
        "ci_relative": relative.ci,
        "uplift_absolute": absolute.expected,
        "ci_absolute": absolute.ci,
        "p_value": relative.p_value,
        "sequential_ci": sequential.ci,
        "sequential_p_value": sequential.p_value,
        "chance_to_win": bayes.chance_to_win,
        "risk": bayes.risk,
        "risk_control": bayes.risk_control,
        "bayes_ci": bayes.ci,
    }


def _with_adjusted(arms: list[ArmResult]) -> list[ArmResult]:
    """Holm across the compared arms, for the fixed-horizon and the sequential p-values."""
    compared = [index for index, arm in enumerate(arms) if arm.p_value is not None]
    if not compared:
        return arms
    fixed = stats.holm([arms[index].p_value for index in compared])
    sequential = stats.holm([arms[index].sequential_p_value for index in compared])
    adjusted = list(arms)
    for index, fixed_p, sequential_p in zip(compared, fixed, sequential, strict=True):
        adjusted[index] = replace(
            arms[index], p_value_adjusted=fixed_p, sequential_p_value_adjusted=sequential_p
        )
    return adjusted


def _durations(counts: ArmCounts) -> tuple[np.ndarray, np.ndarray]:
    """Per-user durations rebuilt from the hour counts (numpy, no Python loop per user)."""
    keys = list(counts.durations)
    hours = np.array([hour for hour, _ in keys], dtype=float)
    activated = np.array([flag for _, flag in keys], dtype=bool)
    repeats = np.array([counts.durations[key] for key in keys], dtype=np.int64)
    return np.repeat(hours, repeats), np.repeat(activated, repeats)


def _survival(
    variants: Sequence[Variant], counts: dict[int, ArmCounts], window_days: int
) -> tuple[list[SurvivalCurve], dict[int, dict[str, Any]], float | None]:
    """Kaplan-Meier per arm at the chart's hours, median with its interval, log-rank vs control."""
    times = chart_hours(window_days)
    data = {variant.pk: _durations(counts[variant.pk]) for variant in variants if counts[variant.pk].users}
    curves, per_arm = [], {}
    for variant in variants:
        if variant.pk not in data:
            continue
        curve = stats.kaplan_meier(*data[variant.pk])
        median = stats.median_time(curve)
        curves.append(SurvivalCurve(variant.key, times, stats.survival_at(curve, times)))
        per_arm[variant.pk] = {
            "median_hours_to_activation": median.estimate,
            "median_ci": (median.low, median.high),
        }
    control = variants[0]
    tested = [variant for variant in variants[1:] if variant.pk in data and control.pk in data]
    p_values = [stats.log_rank(data[control.pk], data[variant.pk]).p_value for variant in tested]
    for variant, p_value in zip(tested, p_values, strict=True):
        per_arm[variant.pk]["log_rank_p_value"] = p_value
    smallest = min(stats.holm(p_values)) if p_values else None
    return curves, per_arm, smallest


def _daily(
    variants: Sequence[Variant], counts: dict[int, ArmCounts], first: date, last: date
) -> list[DailyPoint]:
    """Cumulative users and conversions per arm at each day's end, from the first day to the last."""
    points = []
    for variant in variants:
        arm = counts[variant.pk]
        users = sum(n for day, n in arm.assigned_by_day.items() if day < first)
        conversions = sum(n for day, n in arm.converted_by_day.items() if day < first)
        day = first
        while day <= last:
            users += arm.assigned_by_day.get(day, 0)
            conversions += arm.converted_by_day.get(day, 0)
            points.append(DailyPoint(day, variant.key, users, conversions, _rate(conversions, users)))
            day += timedelta(days=1)
    return points


def _health(variants: Sequence[Variant], counts: dict[int, ArmCounts]) -> list[HealthCheck]:
    users = [counts[variant.pk].users for variant in variants]
    conversions = [counts[variant.pk].conversions for variant in variants]
    checks = [
        stats.srm_check(users, [variant.weight for variant in variants]),
        stats.too_little_data_check(users, conversions),
        stats.multiple_exposures_check(sum(counts[variant.pk].other_arm for variant in variants), sum(users)),
    ]
    return [HealthCheck(check.name, check.passed, check.message, check.value) for check in checks]


def _guardrail(metric: str, variant: Variant, control: ArmCounts, arm: ArmCounts) -> GuardrailResult:
    """A guardrail is harmed when its always-valid interval lies entirely below zero."""
    numerators = {"activation_rate": "conversions", "onboarding_start_rate": "started"}
    if metric not in numerators:
        detail = f"{metric} is not computed per arm (supported: {', '.join(sorted(numerators))})"
        return GuardrailResult(metric, variant.key, None, None, None, False, detail)
    control_rate = _rate(getattr(control, numerators[metric]), control.users)
    rate = _rate(getattr(arm, numerators[metric]), arm.users)
    if not control.users or not arm.users:
        return GuardrailResult(metric, variant.key, control_rate, rate, None, False, "no users yet")
    result = stats.sequential_t_test(
        stats.proportion(control.users, getattr(control, numerators[metric]), field="control"),
        stats.proportion(arm.users, getattr(arm, numerators[metric]), field="arm"),
        difference="relative",
    )
    if result.message:
        return GuardrailResult(metric, variant.key, control_rate, rate, None, False, result.message)
    low, high = result.ci
    harmed = high < 0
    detail = (
        f"{variant.key}: {metric} {rate:.2%} vs {control_rate:.2%}, always-valid interval "
        f"[{low:+.1%}, {high:+.1%}]" + (" entirely below 0: harmed" if harmed else "")
    )
    return GuardrailResult(metric, variant.key, control_rate, rate, result.ci, harmed, detail)


def _conversions(experiment: Experiment, arm: ArmCounts) -> int:
    return arm.started if experiment.primary_metric == "onboarding_start_rate" else arm.conversions


def _arms(
    experiment: Experiment, variants: Sequence[Variant], counts: dict[int, ArmCounts]
) -> list[ArmResult]:
    control = counts[variants[0].pk]
    control_primary = ArmCounts(users=control.users, conversions=_conversions(experiment, control))
    arms = []
    for variant in variants:
        arm = counts[variant.pk]
        conversions = _conversions(experiment, arm)
        compared = (
            _compare(control_primary, ArmCounts(users=arm.users, conversions=conversions))
            if not variant.is_control
            else {}
        )
        arms.append(
            ArmResult(
                key=variant.key,
                is_control=variant.is_control,
                weight=variant.weight,
                users=arm.users,
                conversions=conversions,
                rate=_rate(conversions, arm.users),
                pending=arm.pending,
                **compared,
            )
        )
    return _with_adjusted(arms)


def _analysed(
    experiment: Experiment,
    variants: list[Variant],
    counts: dict[int, ArmCounts],
    at: datetime,
    base: dict[str, Any],
) -> ExperimentResults:
    arms = _arms(experiment, variants, counts)
    health = _health(variants, counts)
    survival, per_arm, log_rank_p_value = [], {}, None
    if experiment.kind == Experiment.Kind.PATH and any(arm.users for arm in arms):
        survival, per_arm, log_rank_p_value = _survival(variants, counts, base["window_days"])
        arms = [
            replace(arm, **per_arm.get(variant.pk, {})) for arm, variant in zip(arms, variants, strict=True)
        ]
    daily = []
    if experiment.kind != Experiment.Kind.TEMPLATE and experiment.primary_metric == "activation_rate":
        assigned_days = [day for arm in counts.values() for day in arm.assigned_by_day]
        if experiment.started_at is not None or assigned_days:
            first = _day_of(experiment.started_at) if experiment.started_at else min(assigned_days)
            daily = _daily(variants, counts, first, _day_of(at))
    guardrails = [
        _guardrail(metric, variant, counts[variants[0].pk], counts[variant.pk])
        for metric in experiment.guardrail_metrics
        for variant in variants[1:]
    ]
    return ExperimentResults(
        **base,
        arms=arms,
        health=health,
        srm_p_value=health[0].value,
        daily=daily,
        survival=survival,
        log_rank_p_value=log_rank_p_value,
        guardrails=guardrails,
        unrefreshed=sum(arm.unrefreshed for arm in counts.values()),
    )


def _day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _template_counts(experiment: Experiment, variants: list[Variant]) -> dict[int, ArmCounts]:
    """Users assigned at nudge send and users converted by a nudge of their arm (template_results)."""
    counted = template_results.arm_counts(experiment)
    return {
        variant.pk: ArmCounts(
            users=counted.get(variant.pk, (0, 0))[0], conversions=counted.get(variant.pk, (0, 0))[1]
        )
        for variant in variants
    }


def _counts(
    experiment: Experiment, variants: list[Variant], at: datetime, window_days: int
) -> dict[int, ArmCounts]:
    if experiment.kind == Experiment.Kind.TEMPLATE:
        return _template_counts(experiment, variants)
    return arm_counts(
        experiment_id=experiment.pk,
        variant_ids=[variant.pk for variant in variants],
        at=at,
        window_days=window_days,
        survival=experiment.kind == Experiment.Kind.PATH,
    )


def compute_results(experiment: Experiment, *, at: datetime | None = None) -> ExperimentResults:
    """The results as of ``at`` (now), computed afresh. A failure of the stats engine is returned
    in ``error`` (with the counts), never raised: the decision job then defers."""
    at = at or timezone.now()
    variants = list(Variant.objects.filter(experiment=experiment).order_by("position"))
    window_days = activation_window_days(workspace=experiment.workspace)
    metric = (
        "nudge_conversion_rate" if experiment.kind == Experiment.Kind.TEMPLATE else experiment.primary_metric
    )
    base = {
        "experiment_key": experiment.key,
        "status": experiment.status,
        "kind": experiment.kind,
        "computed_at": at,
        "metric": metric,
        "window_days": window_days,
    }
    counts = _counts(experiment, variants, at, window_days)
    try:
        return _analysed(experiment, variants, counts, at, base)
    except Exception as error:  # the engine failed: say so, the job defers (recovery rule)
        logger.warning(
            "experiments.results.failed",
            extra={"experiment_id": experiment.pk, "error": f"{type(error).__name__}: {error}"},
        )
        arms = [
            ArmResult(
                variant.key,
                variant.is_control,
                variant.weight,
                counts[variant.pk].users,
                _conversions(experiment, counts[variant.pk]),
                _rate(_conversions(experiment, counts[variant.pk]), counts[variant.pk].users),
            )
            for variant in variants
        ]
        return ExperimentResults(
            **base, arms=arms, error=f"the analysis failed: {type(error).__name__}: {error}"
        )


def experiment_results(experiment: Experiment, *, at: datetime | None = None) -> ExperimentResults:
    """The results a page shows: a concluded experiment's frozen copy, otherwise computed now (or
    as of ``at``)."""
    if experiment.status == Experiment.Status.CONCLUDED and experiment.final_results and at is None:
        return results_from_dict(experiment.final_results)
    return compute_results(experiment, at=at)
