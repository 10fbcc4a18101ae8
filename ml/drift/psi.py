"""The population stability index (PSI) of a feature between a model's training data (expected)
and recent inputs (actual), pure.

PSI = sum over bins of (actual% - expected%) x ln(actual% / expected%). Numeric features are
binned by the training values' deciles (so each training bin holds about a tenth), categorical
ones by value; a missing value (None, "", NaN) is a bin of its own in both. A bin empty on one
side would make the logarithm infinite: every share is floored at EPSILON (1e-4) first.

Reading it (the usual credit-scoring convention, and the thresholds of ml/drift/services.py):

* PSI < 0.1: stable, nothing to do;
* 0.1 <= PSI <= 0.25: a moderate shift, shown on the ML dashboard;
* PSI > 0.25: a significant shift: a `drift` ModelAlert.

Two samples drawn from one distribution score close to 0 (sampling noise only: about
(bins - 1) / n for n rows a side); a decile's worth of mass moved across the whole range scores
well above 0.25.
"""

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ml.features import schema

EPSILON = 1e-4
MODERATE = 0.1
SIGNIFICANT = 0.25
MISSING = "(missing)"


def _index(expected: Sequence[float], actual: Sequence[float]) -> float:
    expected_shares = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    actual_shares = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    return float(np.sum((actual_shares - expected_shares) * np.log(actual_shares / expected_shares)))


def _shares(counts: Sequence[int]) -> np.ndarray:
    total = sum(counts)
    return np.asarray(counts, dtype=float) / total if total else np.zeros(len(counts))


def _number(value) -> float:
    if value is None or value == "":
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def decile_edges(values: Iterable) -> np.ndarray:
    """The distinct inner edges (10th ... 90th percentile) of the finite values."""
    numbers = np.asarray([number for number in map(_number, values) if not math.isnan(number)])
    if numbers.size == 0:
        return np.asarray([])
    return np.unique(np.quantile(numbers, np.linspace(0.1, 0.9, 9)))


def _numeric_counts(values: Iterable, edges: np.ndarray) -> list[int]:
    """Counts per bin: (-inf, e1], (e1, e2], ..., (e9, inf), then missing."""
    numbers = np.asarray([_number(value) for value in values], dtype=float)
    missing = int(np.isnan(numbers).sum())
    present = numbers[~np.isnan(numbers)]
    bins = np.searchsorted(edges, present, side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1).tolist()
    return [*counts, missing]


def psi_numeric(expected: Sequence, actual: Sequence) -> float:
    edges = decile_edges(expected)
    return _index(_shares(_numeric_counts(expected, edges)), _shares(_numeric_counts(actual, edges)))


def _category(value) -> str:
    return MISSING if value is None or value == "" else str(value)


def psi_categorical(expected: Sequence, actual: Sequence) -> float:
    expected_counts, actual_counts = Counter(map(_category, expected)), Counter(map(_category, actual))
    categories = sorted(set(expected_counts) | set(actual_counts))
    return _index(
        _shares([expected_counts[each] for each in categories]),
        _shares([actual_counts[each] for each in categories]),
    )


def psi_per_feature(
    model_name: str, expected: Sequence[Mapping], actual: Sequence[Mapping]
) -> dict[str, float]:
    """{feature: PSI} over the model's columns present in either sample, rounded to 4 places."""
    found = {}
    for feature in schema.columns(model_name):
        if not any(feature.name in row for rows in (expected, actual) for row in rows):
            continue
        before = [row.get(feature.name) for row in expected]
        after = [row.get(feature.name) for row in actual]
        if feature.kind == schema.CATEGORICAL:
            value = psi_categorical(before, after)
        else:
            value = psi_numeric(before, after)
        found[feature.name] = round(value, 4)
    return found


def level(value: float) -> str:
    """ "stable", "moderate" or "significant" (see the module's docstring)."""
    if value > SIGNIFICANT:
        return "significant"
    if value >= MODERATE:
        return "moderate"
    return "stable"
