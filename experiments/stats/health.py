"""Health checks of an experiment's data: sample ratio mismatch, multiple exposures, too little
data. Each returns a HealthCheck saying whether it passed, the figure judged and why.

Sample ratio mismatch (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online
Controlled Experiments"; gbstats' ``check_srm``): Pearson's chi-square of the observed units per
arm against the counts the configured weights expect,

    X^2 = sum_i (o_i - e_i)^2 / e_i,  e_i = w_i / sum(w) x sum(o),  p = P(chi2_{k-1} > X^2),

flagged when p < SRM_P_VALUE_THRESHOLD (0.001).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from experiments.stats.constants import (
    MINIMUM_CONVERSIONS_PER_ARM,
    MINIMUM_UNITS_PER_ARM,
    MULTIPLE_EXPOSURE_SHARE_THRESHOLD,
    SRM_P_VALUE_THRESHOLD,
)
from experiments.stats.effects import StatsInputError


@dataclass(frozen=True)
class HealthCheck:
    name: str
    passed: bool
    value: float
    message: str


def check_weights(weights: Sequence[float], arms: int) -> np.ndarray:
    """Weights as fractions: one per arm, none negative, summing to 1 (or to 100, percent)."""
    values = np.asarray(weights, dtype=float)
    if values.ndim != 1 or len(values) != arms:
        raise StatsInputError("weights", f"needs one weight per arm ({arms}), got {len(values)}")
    if np.any(~np.isfinite(values)) or np.any(values < 0):
        raise StatsInputError("weights", f"must be non-negative numbers, got {list(weights)}")
    total = values.sum()
    if np.isclose(total, 100.0, rtol=0, atol=1e-6):
        return values / 100.0
    if np.isclose(total, 1.0, rtol=0, atol=1e-9):
        return values
    raise StatsInputError("weights", f"must sum to 100 (or to 1), got {total:g}")


def srm_p_value(users: Sequence[int], weights: Sequence[float]):
    """The chi-square p-value of the units per arm against the weights. ``users`` may be a
    2-D array (experiments x arms) for simulation; then weights must already be fractions."""
    observed = np.asarray(users, dtype=float)
    fractions = np.asarray(weights, dtype=float)
    if observed.ndim == 1:
        fractions = check_weights(weights, len(observed))
        if np.any(observed < 0):
            raise StatsInputError("arms.n", "units per arm must not be negative")
    total = observed.sum(axis=-1, keepdims=True)
    keep = fractions > 0
    expected = fractions[keep] * total
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(total > 0, (observed[..., keep] - expected) ** 2 / expected, 0.0)
    return stats.chi2.sf(statistic.sum(axis=-1), observed.shape[-1] - 1)


def srm_check(users: Sequence[int], weights: Sequence[float]) -> HealthCheck:
    """Sample ratio mismatch, flagged at p < 0.001."""
    p_value = float(srm_p_value(users, weights))
    passed = p_value >= SRM_P_VALUE_THRESHOLD
    message = (
        "units per arm match the weights"
        if passed
        else f"sample ratio mismatch: p = {p_value:.2g} < {SRM_P_VALUE_THRESHOLD} "
        "(assignment or tracking is broken; the results cannot be trusted)"
    )
    return HealthCheck(name="srm", passed=passed, value=p_value, message=message)


def multiple_exposures_check(users_in_several_arms: int, users: int) -> HealthCheck:
    """Users exposed to more than one arm, flagged above 1 % of the users."""
    if users < 0 or users_in_several_arms < 0 or users_in_several_arms > users:
        raise StatsInputError("users", "counts must be non-negative and the part within the whole")
    share = users_in_several_arms / users if users else 0.0
    passed = share <= MULTIPLE_EXPOSURE_SHARE_THRESHOLD
    message = (
        f"{share:.2%} of users saw more than one arm"
        if passed
        else f"{share:.2%} of users saw more than one arm (over "
        f"{MULTIPLE_EXPOSURE_SHARE_THRESHOLD:.0%}): the arms are contaminated"
    )
    return HealthCheck(name="multiple_exposures", passed=passed, value=share, message=message)


def too_little_data_check(units: Sequence[int], conversions: Sequence[float] | None = None) -> HealthCheck:
    """Too few units (or conversions, for a proportion) in the smallest arm to judge."""
    smallest = min(units) if len(units) else 0
    fewest = min(conversions) if conversions is not None and len(conversions) else None
    if smallest < MINIMUM_UNITS_PER_ARM:
        message = f"the smallest arm has {smallest} units (< {MINIMUM_UNITS_PER_ARM})"
        return HealthCheck("too_little_data", False, float(smallest), message)
    if fewest is not None and fewest < MINIMUM_CONVERSIONS_PER_ARM:
        message = f"an arm has {fewest:g} conversions (< {MINIMUM_CONVERSIONS_PER_ARM})"
        return HealthCheck("too_little_data", False, float(fewest), message)
    return HealthCheck("too_little_data", True, float(smallest), "enough data in every arm")
