"""Time to activation with censoring: users not activated yet are censored at the time they have
been in the flow so far, never dropped.

- Kaplan-Meier (1958) estimate of "not yet activated" per arm, S(t) = prod_{t_i <= t} (1 - d_i / n_i)
  with d_i activations at t_i and n_i users still at risk just before t_i (scipy.stats.ecdf on
  right-censored data), and its pointwise 95 % interval by Greenwood's variance on the
  log(-log S) scale (Kalbfleisch & Prentice 2002; scipy's method="log-log"). Where S(t) = 0 the
  interval is [0, 0]. The share activated by t is 1 - S(t).
- Median time to activation: the first t with S(t) <= 0.5; its 95 % interval by Brookmeyer &
  Crowley (1982), the times whose pointwise interval contains 0.5: from the first t with the
  lower band <= 0.5 to the first t with the upper band <= 0.5 (None when never reached).
- Log-rank test (Mantel 1966) of each arm against control, two-sided (scipy.stats.logrank).
"""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from experiments.stats.effects import StatsInputError


@dataclass(frozen=True)
class KaplanMeierCurve:
    """The step function S(t) at each distinct activation or censoring time."""

    times: tuple[float, ...]
    survival: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


@dataclass(frozen=True)
class MedianTime:
    """The median time to activation and its interval; None where the curve never reaches 0.5."""

    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class LogRankResult:
    statistic: float
    p_value: float


def censored_data(
    durations: Sequence[float], activated: Sequence[bool], *, field: str = "arm"
) -> stats.CensoredData:
    """Right-censored observations, checked: one flag per duration, none negative or missing."""
    times = np.asarray(durations, dtype=float)
    flags = np.asarray(activated, dtype=bool)
    if times.ndim != 1 or times.size == 0:
        raise StatsInputError(f"{field}.durations", "needs at least one user")
    if flags.shape != times.shape:
        raise StatsInputError(f"{field}.activated", "needs one flag per duration")
    if np.any(~np.isfinite(times)) or np.any(times < 0):
        raise StatsInputError(f"{field}.durations", "must be finite and not negative")
    return stats.CensoredData.right_censored(times, ~flags)


def kaplan_meier(
    durations: Sequence[float], activated: Sequence[bool], *, confidence: float = 0.95
) -> KaplanMeierCurve:
    """The Kaplan-Meier curve of one arm with its pointwise interval."""
    result = stats.ecdf(censored_data(durations, activated)).sf
    survival = np.asarray(result.probabilities, dtype=float)
    with warnings.catch_warnings():
        # Undefined where S is 0 or 1 on the log-log scale: those are set just below.
        warnings.simplefilter("ignore", RuntimeWarning)
        band = result.confidence_interval(confidence, method="log-log")
    low = np.where(survival == 0, 0.0, np.nan_to_num(band.low.probabilities, nan=survival))
    high = np.where(survival == 0, 0.0, np.nan_to_num(band.high.probabilities, nan=survival))
    return KaplanMeierCurve(
        times=tuple(result.quantiles.tolist()),
        survival=tuple(survival.tolist()),
        low=tuple(low.tolist()),
        high=tuple(high.tolist()),
    )


def survival_at(curve: KaplanMeierCurve, times: Sequence[float]) -> list[float]:
    """S(t) at the given times (1 before the first event), e.g. one point per day for a chart
    instead of one per distinct duration (a million users give hundreds of thousands)."""
    index = np.searchsorted(np.asarray(curve.times), np.asarray(times, dtype=float), side="right") - 1
    values = np.concatenate([[1.0], np.asarray(curve.survival)])
    return values[index + 1].tolist()


def _first_time_at_or_below(times: Sequence[float], values: Sequence[float]) -> float | None:
    for time, value in zip(times, values, strict=True):
        if value <= 0.5:
            return float(time)
    return None


def median_time(curve: KaplanMeierCurve) -> MedianTime:
    """The median time to activation with its Brookmeyer-Crowley interval."""
    return MedianTime(
        estimate=_first_time_at_or_below(curve.times, curve.survival),
        low=_first_time_at_or_below(curve.times, curve.low),
        high=_first_time_at_or_below(curve.times, curve.high),
    )


def log_rank(
    control: tuple[Sequence[float], Sequence[bool]],
    variant: tuple[Sequence[float], Sequence[bool]],
) -> LogRankResult:
    """Two-sided log-rank test of (durations, activated) of a variant against control."""
    result = stats.logrank(censored_data(*control, field="control"), censored_data(*variant, field="variant"))
    return LogRankResult(statistic=float(result.statistic), p_value=float(result.pvalue))
