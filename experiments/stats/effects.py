"""Sufficient statistics of one arm and the effect between two arms (absolute, or relative by the
delta method). Plain numbers in, frozen dataclasses out; the formula functions also take numpy
arrays, so the simulation in bench/experiments.py runs the very same code over many experiments.

Formulas (GrowthBook's gbstats 0.8.0, ``models/statistics.py`` and ``frequentist/tests.py``):

- proportion: mean p = conversions / n, variance p (1 - p) (the Bernoulli variance, no n - 1);
- mean: mean = sum / n, variance (sum_squares - sum^2 / n) / (n - 1);
- ratio m / d per unit (delta method, Deng et al. 2018, "Applying the Delta Method in Metric
  Analytics"): mean = sum_m / sum_d, variance
  var_m / mu_d^2 - 2 cov_md mu_m / mu_d^3 + mu_m^2 var_d / mu_d^4;
- absolute effect mu_b - mu_a with variance var_b / n_b + var_a / n_a;
- relative effect (mu_b - mu_a) / mu_a with the delta-method variance
  var_b / (mu_a^2 n_b) + var_a mu_b^2 / (mu_a^4 n_a).
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

Difference = Literal["relative", "absolute"]
DIFFERENCES: tuple[str, ...] = ("relative", "absolute")


class StatsInputError(ValueError):
    """Bad input, naming the field at fault and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Moments:
    """What every test needs of one arm: its size, mean and per-unit variance. The unadjusted
    mean differs from the mean only after CUPED, and is the denominator of relative effects."""

    n: int
    mean: float
    variance: float
    unadjusted_mean: float


def _check_count(value: float, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise StatsInputError(field, f"must be a finite number, got {value!r}")
    if value < 0:
        raise StatsInputError(field, f"must not be negative, got {value}")


def _check_n(n: int, field: str) -> None:
    _check_count(n, f"{field}.n")
    if n == 0:
        raise StatsInputError(f"{field}.n", "must be at least 1 (an arm without units)")
    if n != int(n):
        raise StatsInputError(f"{field}.n", f"must be a whole number of units, got {n}")


def proportion(n: int, conversions: float, *, field: str = "arm") -> Moments:
    """A conversion rate: ``conversions`` of ``n`` units converted."""
    _check_n(n, field)
    _check_count(conversions, f"{field}.conversions")
    if conversions > n:
        raise StatsInputError(f"{field}.conversions", f"{conversions} conversions exceed n={n}")
    mean = conversions / n
    return Moments(n=int(n), mean=mean, variance=mean * (1 - mean), unadjusted_mean=mean)


def sample_mean(n: int, total: float, sum_squares: float, *, field: str = "arm") -> Moments:
    """A mean per unit from the sum and the sum of squares of the per-unit values."""
    _check_n(n, field)
    for name, value in (("sum", total), ("sum_squares", sum_squares)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise StatsInputError(f"{field}.{name}", f"must be a finite number, got {value!r}")
    variance = (sum_squares - total**2 / n) / (n - 1) if n > 1 else 0.0
    # Rounding may leave a tiny negative for constant values; anything larger is impossible data.
    if variance < -1e-9 * max(1.0, sum_squares / n):
        raise StatsInputError(
            f"{field}.sum_squares",
            f"negative variance ({variance:.6g}): sum_squares is below sum^2 / n",
        )
    mean = total / n
    return Moments(n=int(n), mean=mean, variance=max(variance, 0.0), unadjusted_mean=mean)


def ratio(numerator: Moments, denominator: Moments, sum_of_products: float) -> Moments:
    """A ratio of two per-unit sums (e.g. events per active day) by the delta method.

    ``sum_of_products`` is the sum over units of numerator x denominator."""
    n = numerator.n
    if denominator.n != n:
        raise StatsInputError("denominator.n", "numerator and denominator count different units")
    if denominator.mean == 0:
        raise StatsInputError("denominator.sum", "is zero: the ratio is undefined")
    sum_m, sum_d = numerator.mean * n, denominator.mean * n
    covariance = (sum_of_products - sum_m * sum_d / n) / (n - 1) if n > 1 else 0.0
    mu_m, mu_d = numerator.mean, denominator.mean
    variance = (
        numerator.variance / mu_d**2
        - 2 * covariance * mu_m / mu_d**3
        + mu_m**2 * denominator.variance / mu_d**4
    )
    mean = sum_m / sum_d
    return Moments(n=n, mean=mean, variance=variance if n > 1 else 0.0, unadjusted_mean=mean)


def effect(mean_a, mean_b, unadjusted_mean_a, relative: bool):
    """The point estimate: mu_b - mu_a, divided by control's unadjusted mean when relative."""
    if relative:
        return (mean_b - mean_a) / unadjusted_mean_a
    return mean_b - mean_a


def effect_variance(var_a, mean_a, n_a, var_b, mean_b, n_b, relative: bool):
    """The variance of the effect; the delta method's for a relative one (means unadjusted)."""
    if relative:
        return var_b / (mean_a**2 * n_b) + var_a * mean_b**2 / (mean_a**4 * n_a)
    return var_b / n_b + var_a / n_a


def welch_dof(var_a, n_a, var_b, n_b):
    """Welch-Satterthwaite degrees of freedom."""
    return (var_b / n_b + var_a / n_a) ** 2 / (
        var_b**2 / (n_b**2 * (n_b - 1)) + var_a**2 / (n_a**2 * (n_a - 1))
    )


def check_difference(difference: str, field: str = "difference") -> bool:
    """True for a relative difference; a StatsInputError for anything but the two known."""
    if difference not in DIFFERENCES:
        raise StatsInputError(field, f"must be one of {', '.join(DIFFERENCES)}, got {difference!r}")
    return difference == "relative"


def undefined_reason(a: Moments, b: Moments, relative: bool) -> str | None:
    """Why no effect can be estimated from these two arms, or None when one can."""
    if relative and (a.mean == 0 or a.unadjusted_mean == 0):
        return "control's mean is zero: a relative effect is undefined"
    if a.variance <= 0 or b.variance <= 0:
        return "an arm has zero variance (every unit has the same value)"
    return None
