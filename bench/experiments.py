"""Experiments statistics simulation: does the engine keep its promises? Pure numpy over
sufficient statistics (no Django, no database), seeded, a few seconds.

    .venv/bin/python bench/experiments.py [--experiments 1000] [--days 28] [--seed 15]

1. A/A with daily peeking: --experiments experiments with no true difference (activation 10 %,
   the daily traffic that reaches the planned sample of 2. on the last day), looked at every day.
   Share that ever declares a winner: with the sequential test (always-valid p < 0.05; must stay
   under 5 %), and for contrast with a fixed-horizon Welch test peeked at daily, the Bayesian
   rule (chance to win >= 95 % and risk under the threshold) peeked at daily, and the Welch test
   read once at the end (the honest fixed-horizon use, ~5 %).
2. A/B with a planted 10 % relative lift in activation (10 % -> 11 %): power at the planned
   sample (80 % design, experiments.stats.planned_sample_per_arm): fixed-horizon at the end,
   sequential by the end while peeking daily, and the Bayesian rule at the end.
   Then the sequential test's power, peeking daily, by 1x to 3x the planned sample.
3. SRM: share of 20,000-user experiments split 52/48 against 50/50 weights that the chi-square
   check flags (p < 0.001; must be >= 99 %), and the false alarms on true 50/50 splits.

Every figure comes from the engine's own formula functions (experiments/stats), on arrays.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.stats.bayesian import chance_to_win, expected_losses  # noqa: E402
from experiments.stats.constants import (  # noqa: E402
    ALPHA,
    CHANCE_TO_WIN_THRESHOLD,
    RISK_THRESHOLD,
    SEQUENTIAL_TUNING_PARAMETER,
    SRM_P_VALUE_THRESHOLD,
)
from experiments.stats.effects import effect, effect_variance, welch_dof  # noqa: E402
from experiments.stats.frequentist import planned_sample_per_arm, welch_p_value  # noqa: E402
from experiments.stats.health import srm_p_value  # noqa: E402
from experiments.stats.sequential import sequential_p_value  # noqa: E402

BASELINE_RATE = 0.10
LIFT = 0.10


def simulate(rng, experiments: int, days: int, per_day: int, rates: tuple[float, float]) -> dict:
    """Cumulative users and conversions per day, shape (experiments, days), for both arms."""
    users = np.arange(1, days + 1) * per_day
    control = rng.binomial(per_day, rates[0], (experiments, days)).cumsum(axis=1)
    variant = rng.binomial(per_day, rates[1], (experiments, days)).cumsum(axis=1)
    return {"n": np.broadcast_to(users, control.shape), "control": control, "variant": variant}


def daily_verdicts(data: dict, tuned: float) -> dict[str, np.ndarray]:
    """Each day's verdict of each method, boolean arrays (experiments, days). ``tuned`` is a
    sequential tuning parameter set to the planned total sample, besides the default one."""
    n = data["n"]
    mean_a, mean_b = data["control"] / n, data["variant"] / n
    var_a, var_b = mean_a * (1 - mean_a), mean_b * (1 - mean_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = effect(mean_a, mean_b, mean_a, relative=True)
        variance = effect_variance(var_a, mean_a, n, var_b, mean_b, n, relative=True)
        dof = welch_dof(var_a, n, var_b, n)
        welch = welch_p_value(estimate, variance, dof)
        absolute = effect_variance(var_a, mean_a, n, var_b, mean_b, n, relative=False)
        welch_absolute = welch_p_value(mean_b - mean_a, absolute, dof)
        sequential_tuned = sequential_p_value(estimate, variance, 2 * n, ALPHA, tuned)
        sequential = sequential_p_value(estimate, variance, 2 * n, ALPHA, SEQUENTIAL_TUNING_PARAMETER)
        stddev = np.sqrt(variance)
        chance = chance_to_win(estimate, stddev)
        risk, _ = expected_losses(estimate, stddev)
    return {
        "welch": np.nan_to_num(welch, nan=1.0) < ALPHA,
        "welch_absolute": np.nan_to_num(welch_absolute, nan=1.0) < ALPHA,
        "sequential": np.nan_to_num(sequential, nan=1.0) < ALPHA,
        "sequential_tuned": np.nan_to_num(sequential_tuned, nan=1.0) < ALPHA,
        "bayesian": (np.nan_to_num(chance) >= CHANCE_TO_WIN_THRESHOLD) & (risk < RISK_THRESHOLD),
    }


def aa_test(rng, experiments: int, days: int, per_day: int) -> dict[str, float]:
    data = simulate(rng, experiments, days, per_day, (BASELINE_RATE,) * 2)
    verdicts = daily_verdicts(data, tuned=2.0 * days * per_day)
    return {
        "sequential (tuning 5,000), peeking daily": verdicts["sequential"].any(axis=1).mean(),
        "sequential (tuned to the plan), peeking daily": verdicts["sequential_tuned"].any(axis=1).mean(),
        "Welch, peeking daily": verdicts["welch"].any(axis=1).mean(),
        "Bayesian rule, peeking daily": verdicts["bayesian"].any(axis=1).mean(),
        "Welch, read once at the end": verdicts["welch"][:, -1].mean(),
        "Bayesian rule, read once at the end": verdicts["bayesian"][:, -1].mean(),
    }


def ab_test(rng, experiments: int, days: int, per_day: int) -> dict[str, float]:
    rates = (BASELINE_RATE, BASELINE_RATE * (1 + LIFT))
    verdicts = daily_verdicts(simulate(rng, experiments, days, per_day, rates), tuned=2.0 * days * per_day)
    return {
        "Welch, relative effect, at the planned sample": verdicts["welch"][:, -1].mean(),
        "Welch, absolute effect, at the planned sample": verdicts["welch_absolute"][:, -1].mean(),
        "sequential (tuning 5,000) by the end, peeking daily": verdicts["sequential"].any(axis=1).mean(),
        "sequential (tuned to the plan) by the end, peeking": verdicts["sequential_tuned"].any(axis=1).mean(),
        "Bayesian rule at the planned sample": verdicts["bayesian"][:, -1].mean(),
    }


def sequential_horizon(rng, experiments: int, days: int, per_day: int) -> dict[str, float]:
    """Power of the sequential test (default tuning) by 1x, 1.5x, 2x and 3x the planned sample."""
    rates = (BASELINE_RATE, BASELINE_RATE * (1 + LIFT))
    verdicts = daily_verdicts(
        simulate(rng, experiments, 3 * days, per_day, rates), tuned=2.0 * days * per_day
    )
    ever = np.logical_or.accumulate(verdicts["sequential"], axis=1)
    return {
        f"by {factor:g}x the planned sample": ever[:, int(factor * days) - 1].mean()
        for factor in (1, 1.5, 2, 3)
    }


def srm_test(rng, experiments: int, users: int) -> dict[str, float]:
    weights = np.array([0.5, 0.5])
    figures = {}
    for label, share in (("52/48 split flagged", 0.52), ("50/50 split flagged (false alarm)", 0.50)):
        first = rng.binomial(users, share, experiments)
        p_values = srm_p_value(np.stack([first, users - first], axis=1), weights)
        figures[label] = (p_values < SRM_P_VALUE_THRESHOLD).mean()
    return figures


def _print(title: str, figures: dict[str, float], experiments: int) -> None:
    print(title)
    for label, share in figures.items():
        print(f"  {label:<54} {share:7.1%}  ({round(share * experiments)} of {experiments})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=15)
    options = parser.parse_args()
    rng = np.random.default_rng(options.seed)
    started = time.perf_counter()
    planned = planned_sample_per_arm(BASELINE_RATE, LIFT)
    per_day = -(-planned // options.days)
    print(
        f"activation {BASELINE_RATE:.0%}, planned sample {planned:,} per arm for a {LIFT:.0%} "
        f"relative lift (alpha {ALPHA}, power 80 %): {per_day} users per arm per day for "
        f"{options.days} days, seed {options.seed}"
    )
    _print(
        "A/A, share declaring a winner:",
        aa_test(rng, options.experiments, options.days, per_day),
        options.experiments,
    )
    _print(
        f"A/B, {LIFT:.0%} relative lift, power:",
        ab_test(rng, options.experiments, options.days, per_day),
        options.experiments,
    )
    _print(
        "A/B, sequential test peeking daily, power by:",
        sequential_horizon(rng, options.experiments, options.days, per_day),
        options.experiments,
    )
    srm_runs = 10 * options.experiments
    _print("SRM at 20,000 users, 50/50 weights:", srm_test(rng, srm_runs, 20000), srm_runs)
    print(f"done in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
