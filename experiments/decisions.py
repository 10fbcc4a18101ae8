"""What to do with a running experiment, judged from its results (issue 15, "Decisions"); a read,
never a write: services.experiment_decide records the verdict and acts on it.

In order, the first that applies:

1. defer: the analysis failed (the stats engine, the data); say why, decide nothing;
2. stop: sample ratio mismatch (p < 0.001), or a guardrail harmed (its always-valid interval
   entirely below 0): the results cannot be trusted, or the variant does damage;
3. winner, only once every arm has the minimum sample and the minimum duration has passed: the
   variant with chance to win >= 95 % (or whose sequential test, Holm-adjusted, rejects in its
   favour) and risk under the threshold; or control, when every variant loses that way and the
   risk of keeping control is under the threshold;
4. stop (inconclusive) at the maximum duration;
5. extend by EXTENSION_DAYS (never past the maximum) at the planned end without a winner;
6. continue.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from experiments.models import Experiment
from experiments.results import ArmResult, ExperimentResults, compute_results, results_as_dict
from experiments.stats import ALPHA, CHANCE_TO_WIN_THRESHOLD, RISK_THRESHOLD

logger = logging.getLogger(__name__)

WINNER, EXTEND, CONTINUE, STOP, DEFER = "winner", "extend", "continue", "stop", "defer"
ACTIONS = (WINNER, EXTEND, CONTINUE, STOP, DEFER)
# An experiment still without a winner at its planned end runs this much longer (up to the maximum).
EXTENSION_DAYS = 7
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class Decision:
    action: str  # winner | extend | continue | stop | defer
    winner: str  # the winning arm's key, or ""
    reason: str  # a sentence a person reads
    evaluated_at: datetime
    results: ExperimentResults | None
    planned_duration_days: int | None = None  # the planned end after an extension

    def as_dict(self) -> dict[str, Any]:
        """What Experiment.last_decision stores (without the results)."""
        return {
            "action": self.action,
            "winner": self.winner,
            "reason": self.reason,
            "evaluated_at": self.evaluated_at.isoformat(),
            "planned_duration_days": self.planned_duration_days,
        }


def _percent(value: float) -> str:
    return f"{value:.1%}" if value >= 0.01 else f"{value:.2%}"


def _days_running(experiment: Experiment, at: datetime) -> float:
    if experiment.started_at is None:
        return 0.0
    return max((at - experiment.started_at).total_seconds() / SECONDS_PER_DAY, 0.0)


def _users(results: ExperimentResults) -> str:
    return "/".join(f"{arm.users:,}" for arm in results.arms)


def _variant_wins(arm: ArmResult) -> str | None:
    """Why this variant beats control, or None."""
    if arm.chance_to_win is None or arm.risk is None or arm.risk >= RISK_THRESHOLD:
        return None
    risk = f"risk {_percent(arm.risk)} < {_percent(RISK_THRESHOLD)}"
    if arm.chance_to_win >= CHANCE_TO_WIN_THRESHOLD:
        return (
            f"{arm.key}: chance to win {_percent(arm.chance_to_win)} >= {CHANCE_TO_WIN_THRESHOLD:.0%}, {risk}"
        )
    adjusted = arm.sequential_p_value_adjusted
    if adjusted is not None and adjusted < ALPHA and (arm.uplift_relative or 0) > 0:
        low, high = arm.sequential_ci
        return (
            f"{arm.key}: the sequential test rejects in its favour (always-valid interval "
            f"[{low:+.1%}, {high:+.1%}], adjusted p {adjusted:.3g} < {ALPHA}), {risk}"
        )
    return None


def _control_wins(results: ExperimentResults) -> str | None:
    """Why control beats every variant, or None."""
    variants = [arm for arm in results.arms if not arm.is_control]
    if not variants or any(arm.chance_to_win is None or arm.risk_control is None for arm in variants):
        return None
    losing = all(arm.chance_to_win <= 1 - CHANCE_TO_WIN_THRESHOLD for arm in variants)
    worst_risk = max(arm.risk_control for arm in variants)
    if not losing or worst_risk >= RISK_THRESHOLD:
        return None
    chances = ", ".join(f"{arm.key} {_percent(arm.chance_to_win)}" for arm in variants)
    control = results.control.key
    return (
        f"{control} (control): every variant's chance to win <= {1 - CHANCE_TO_WIN_THRESHOLD:.0%} "
        f"({chances}), risk of keeping control {_percent(worst_risk)} < {_percent(RISK_THRESHOLD)}"
    )


def _winner(results: ExperimentResults) -> tuple[str, str] | None:
    candidates = [
        (arm.chance_to_win, arm.key, why)
        for arm in results.arms
        if not arm.is_control and (why := _variant_wins(arm)) is not None
    ]
    if candidates:
        _, key, why = max(candidates)
        return key, why
    why = _control_wins(results)
    return (results.control.key, why) if why else None


def _no_winner_yet(results: ExperimentResults) -> str:
    variants = [arm for arm in results.arms if not arm.is_control and arm.chance_to_win is not None]
    if not variants:
        return "no comparison yet"
    return "; ".join(
        f"{arm.key} chance to win {_percent(arm.chance_to_win)}, risk {_percent(arm.risk)}"
        for arm in variants
    )


def _stop_reason(results: ExperimentResults) -> str | None:
    srm = next((check for check in results.health if check.name == "srm"), None)
    if srm is not None and not srm.ok:
        weights = "/".join(str(arm.weight) for arm in results.arms)
        return f"{srm.detail}; users {_users(results)} against weights {weights}"
    harmed = [row for row in results.guardrails if row.harmed]
    if harmed:
        return "guardrail harmed: " + "; ".join(row.detail for row in harmed)
    return None


def _judge(experiment: Experiment, results: ExperimentResults, at: datetime) -> Decision:
    def decided(action: str, reason: str, winner: str = "", planned: int | None = None) -> Decision:
        return Decision(action, winner, reason, at, results, planned)

    stop = _stop_reason(results)
    if stop:
        return decided(STOP, stop)
    days = _days_running(experiment, at)
    smallest = min((arm.users for arm in results.arms), default=0)
    sample = (
        f"{_users(results)} users {'>=' if smallest >= experiment.minimum_sample_per_arm else '<'} "
        f"{experiment.minimum_sample_per_arm:,} per arm"
    )
    duration = f"{days:.0f} days {'>=' if days >= experiment.minimum_duration_days else '<'} "
    duration += f"{experiment.minimum_duration_days}"
    if smallest >= experiment.minimum_sample_per_arm and days >= experiment.minimum_duration_days:
        won = _winner(results)
        if won is not None:
            return decided(WINNER, f"{won[1]}, {sample}, {duration}", winner=won[0])
    confidence = _no_winner_yet(results)
    if days >= experiment.maximum_duration_days:
        return decided(
            STOP,
            f"inconclusive at the maximum duration ({days:.0f} days >= {experiment.maximum_duration_days}): "
            f"{confidence}; {sample}",
        )
    planned = experiment.planned_duration_days or experiment.minimum_duration_days
    if days >= planned:
        extended = min(planned + EXTENSION_DAYS, experiment.maximum_duration_days)
        return decided(
            EXTEND,
            f"confidence low at the planned end (day {days:.0f} of {planned}): {confidence}; {sample}; "
            f"extended to {extended} days (maximum {experiment.maximum_duration_days})",
            planned=extended,
        )
    return decided(
        CONTINUE, f"no decision before the planned end (day {days:.0f} of {planned}): {confidence}; {sample}"
    )


def evaluate(experiment: Experiment, *, at: datetime | None = None) -> Decision:
    """The decision for ``experiment`` as of ``at`` (now). Never raises: a failure defers."""
    at = at or timezone.now()
    try:
        results = compute_results(experiment, at=at)
    except Exception as error:  # the data could not be read: defer (recovery rule)
        logger.warning(
            "experiments.decision.deferred", extra={"experiment_id": experiment.pk, "error": str(error)}
        )
        return Decision(DEFER, "", f"analysis deferred: {type(error).__name__}: {error}", at, None)
    if results.error:
        return Decision(DEFER, "", f"analysis deferred: {results.error}", at, results)
    try:
        return _judge(experiment, results, at)
    except Exception as error:  # a rule failed on odd numbers: never declare on them
        logger.warning(
            "experiments.decision.deferred", extra={"experiment_id": experiment.pk, "error": str(error)}
        )
        return Decision(DEFER, "", f"analysis deferred: {type(error).__name__}: {error}", at, results)


def decision_with_results(decision: Decision) -> dict[str, Any]:
    """The decision and its results, JSON-ready (for an API or a page)."""
    return {**decision.as_dict(), "results": results_as_dict(decision.results) if decision.results else None}


def experiments_to_evaluate() -> list[int]:
    """The ids of every running experiment, all workspaces, oldest first (the job's work list)."""
    return list(
        Experiment.objects.filter(status=Experiment.Status.RUNNING)
        .order_by("started_at", "pk")
        .values_list("pk", flat=True)
    )
