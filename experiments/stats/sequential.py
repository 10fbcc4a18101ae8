"""Sequential testing that is safe to peek at: gbstats' SequentialTwoSidedTTest, the
asymptotic confidence sequence of Waudby-Smith et al. (2023), "Time-uniform central limit
theory and asymptotic confidence sequences", arXiv:2103.06476v7, a normal-mixture mSPRT.

With N = n_a + n_b, the effect d and its variance V (effects.py), s^2 = V N, and the tuning
parameter eta (the total sample at which the sequence is tightest, constants.py):

    rho^2    = (-2 log alpha + log(-2 log alpha + 1)) / eta                     (eq. 161)
    interval = d -/+ s sqrt( 2 (N rho^2 + 1) / (N rho)^2 * log( sqrt(N rho^2 + 1) / alpha ) )  (eq. 9)
    e-value  = exp( rho^2 (d^2 N / V) / (2 (N rho^2 + 1)) ) / sqrt(N rho^2 + 1) (eq. 155)
    p-value  = min(1, 1 / e-value)

Looking after every batch of data keeps the chance of a false "significant" below alpha
(the interval is valid uniformly over time), at the price of wider intervals.
"""

import numpy as np

from experiments.stats.constants import ALPHA, SEQUENTIAL_TUNING_PARAMETER
from experiments.stats.effects import (
    Moments,
    check_difference,
    effect,
    effect_variance,
    undefined_reason,
)
from experiments.stats.frequentist import FrequentistResult, empty_frequentist


def mixture_rho(alpha: float, tuning_parameter: float) -> float:
    """The normal mixture's spread rho, chosen so the sequence is tightest at N = tuning."""
    if tuning_parameter <= 0:
        raise ValueError(f"sequential_tuning: must be positive, got {tuning_parameter}")
    return float(np.sqrt((-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning_parameter))


def sequential_half_width(variance, total_n, alpha: float, tuning_parameter: float):
    """Half-width of the always-valid interval (eq. 9); numpy arrays welcome."""
    rho = mixture_rho(alpha, tuning_parameter)
    spread = total_n * rho**2 + 1
    return np.sqrt(variance * total_n) * np.sqrt(
        2 * spread * np.log(np.sqrt(spread) / alpha) / (total_n * rho) ** 2
    )


def sequential_p_value(estimate, variance, total_n, alpha: float, tuning_parameter: float):
    """Always-valid p-value, the inverse of the mixture e-value (eq. 155); arrays welcome."""
    rho = mixture_rho(alpha, tuning_parameter)
    spread = total_n * rho**2 + 1
    statistic = estimate**2 * total_n / variance
    e_value = np.exp(rho**2 * statistic / (2 * spread)) / np.sqrt(spread)
    return np.minimum(1 / e_value, 1.0)


def sequential_t_test(
    control: Moments,
    variant: Moments,
    *,
    difference: str = "relative",
    alpha: float = ALPHA,
    tuning_parameter: float = SEQUENTIAL_TUNING_PARAMETER,
) -> FrequentistResult:
    """The always-valid interval and p-value of variant against control."""
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
    total_n = control.n + variant.n
    width = sequential_half_width(variance, total_n, alpha, tuning_parameter)
    return FrequentistResult(
        expected=float(estimate),
        ci=(float(estimate - width), float(estimate + width)),
        p_value=float(sequential_p_value(estimate, variance, total_n, alpha, tuning_parameter)),
        stddev=float(np.sqrt(variance)),
    )
