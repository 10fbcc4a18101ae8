"""Why the model chose a path, in words: LightGBM's per-feature contributions (pred_contrib, in
log-odds) of the chosen path's row, the largest first, each named by its feature and the person's
value ("persona=developer +0.21"), and the reason the enrollment carries.

The contributions are additive: the bias plus all of them is the row's log-odds, so a feature's
number says how far it moved this person's predicted activation on that path, up or down.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from ml.features import schema
from ml.registry.artifacts import Predictor

TOP = 3
MIN_CONTRIBUTION = 0.005  # smaller moves say nothing worth reading


def top_contributions(
    predictor: Predictor, matrix_row: np.ndarray, row: Mapping, *, limit: int = TOP
) -> list:
    """[[feature=value, contribution], ...] of the row, largest magnitude first (the bias left out)."""
    contributions = np.asarray(predictor.contributions(matrix_row), dtype=float).reshape(-1)
    named = [
        (schema.describe(predictor.model_name, row, name), float(value))
        for name, value in zip(
            predictor.feature_names, contributions[: len(predictor.feature_names)], strict=True
        )
        if abs(value) >= MIN_CONTRIBUTION
    ]
    named.sort(key=lambda item: -abs(item[1]))
    return [[label, round(value, 3)] for label, value in named[:limit]]


def contributions_text(explanation: Sequence) -> str:
    """ "persona=developer +0.21, company_size=51-200 +0.05"."""
    return ", ".join(f"{label} {value:+.2f}" for label, value in explanation)


def percent(probability: float | None) -> str:
    return "?" if probability is None else f"{probability:.0%}"


def model_reason(
    *,
    label: str,
    chosen_probability: float,
    rules_name: str,
    rules_probability: float | None,
    same_as_rules: bool,
    explanation: Sequence,
    features: str,
) -> str:
    """ "model path_classifier 1.2.0: 62% vs 48% for Get started; persona=developer +0.21; features
    from redis" (the rules' choice named by its path's name)."""
    if same_as_rules:
        compared = f"{percent(chosen_probability)}, the rules' choice too"
    else:
        compared = f"{percent(chosen_probability)} vs {percent(rules_probability)} for {rules_name}"
    parts = [f"model {label}: {compared}"]
    if explanation:
        parts.append(contributions_text(explanation))
    parts.append(features)
    return "; ".join(parts)
