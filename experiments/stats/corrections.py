"""Multiple-comparison corrections for experiments with several variants against one control.

Holm (1979), "A simple sequentially rejective multiple test procedure" (controls the family-wise
error rate; the default), with p-values sorted ascending p_(1) <= ... <= p_(m):

    adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))

Benjamini & Hochberg (1995), "Controlling the false discovery rate" (controls the FDR):

    adjusted p_(i) = min_{j >= i} min(1, m p_(j) / j)

A hypothesis is rejected at level alpha when its adjusted p-value is below alpha.
"""

from collections.abc import Sequence

import numpy as np

CORRECTIONS: tuple[str, ...] = ("holm", "benjamini-hochberg", "none")


def _check(p_values: Sequence[float]) -> np.ndarray:
    values = np.asarray(p_values, dtype=float)
    if values.ndim != 1 or np.any(~np.isfinite(values)) or np.any((values < 0) | (values > 1)):
        raise ValueError(f"p_values: must be numbers in [0, 1], got {list(p_values)}")
    return values


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given."""
    values = _check(p_values)
    m = len(values)
    order = np.argsort(values, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg-adjusted p-values, in the order given."""
    values = _check(p_values)
    m = len(values)
    order = np.argsort(values, kind="stable")
    scaled = np.minimum(1.0, m * values[order] / np.arange(1, m + 1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return adjusted.tolist()


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    """The p-values adjusted by ``method`` (one of CORRECTIONS)."""
    if method == "holm":
        return holm(p_values)
    if method == "benjamini-hochberg":
        return benjamini_hochberg(p_values)
    if method == "none":
        return _check(p_values).tolist()
    raise ValueError(f"correction: must be one of {', '.join(CORRECTIONS)}, got {method!r}")
