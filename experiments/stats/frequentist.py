"""Fixed-horizon frequentist comparison of a variant with control: Welch's two-sided t-test on
the absolute effect or, by the delta method, on the relative one (gbstats' TwoSidedTTest).

    estimate  d = effect(a, b)                      (see effects.py)
    variance  V = effect_variance(a, b)
    t         = d / sqrt(V),  dof by Welch-Satterthwaite
    p-value   = 2 (1 - F_t(|t|; dof))
    interval  = d -/+ F_t^-1(1 - alpha / 2; dof) sqrt(V)

Source: Welch (1947); the delta method for the ratio of means as in Deng et al. (2018) and
GrowthBook's documentation ("Frequentist", "Statistical details").
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

from experiments.stats.constants import ALPHA
from experiments.stats.effects import (
    Moments,
    check_difference,
    effect,
    effect_variance,
    undefined_reason,
    welch_dof,
)


@dataclass(frozen=True)
class FrequentistResult:
    """The effect with its two-sided interval and p-value; ``message`` says why it is empty."""

    expected: float
    ci: tuple[float, float]
    p_value: float
    stddev: float
    message: str | None = None


def empty_frequentist(message: str) -> FrequentistResult:
    """No estimate (as gbstats: effect 0, interval [0, 0], p-value 1), with the reason."""
    return FrequentistResult(expected=0.0, ci=(0.0, 0.0), p_value=1.0, stddev=0.0, message=message)


def welch_p_value(estimate, variance, dof):
    """Two-sided p-value of Welch's t statistic; numpy arrays welcome."""
    return 2 * stats.t.sf(np.abs(estimate) / np.sqrt(variance), dof)


def welch_t_test(
    control: Moments, variant: Moments, *, difference: str = "relative", alpha: float = ALPHA
) -> FrequentistResult:
    """Welch's two-sided t-test of variant against control, relative or absolute effect."""
    relative = check_difference(difference)
    reason = undefined_reason(control, variant, relative)
    if reason:
        return empty_frequentist(reason)
    estimate = effect(control.mean, variant.mean, control.unadjusted_mean, relative)
    variance = effect_variance(
        control.variance,
        control.unadjusted_mean,
        control.n,
        variant.variance,
        variant.unadjusted_mean,
        variant.n,
        relative,
    )
    dof = welch_dof(control.variance, control.n, variant.variance, variant.n)
    width = stats.t.ppf(1 - alpha / 2, dof) * np.sqrt(variance)
    return FrequentistResult(
        expected=float(estimate),
        ci=(float(estimate - width), float(estimate + width)),
        p_value=float(welch_p_value(estimate, variance, dof)),
        stddev=float(np.sqrt(variance)),
    )


def planned_sample_per_arm(
    baseline_rate: float, relative_lift: float, *, alpha: float = ALPHA, power: float = 0.8
) -> int:
    """Units per arm for a two-sided z-test of two proportions to detect ``relative_lift`` with
    ``power`` (the textbook formula, e.g. Chow, Shao & Wang, "Sample Size Calculations in
    Clinical Research", 4.2): n = (z_{1-alpha/2} + z_{power})^2 (p1 q1 + p2 q2) / (p2 - p1)^2."""
    if not 0 < baseline_rate < 1:
        raise ValueError(f"baseline_rate: must be in (0, 1), got {baseline_rate}")
    treated = baseline_rate * (1 + relative_lift)
    if not 0 < treated < 1 or relative_lift == 0:
        raise ValueError(f"relative_lift: gives an impossible or equal rate ({treated})")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    spread = baseline_rate * (1 - baseline_rate) + treated * (1 - treated)
    return int(np.ceil(z**2 * spread / (treated - baseline_rate) ** 2))
