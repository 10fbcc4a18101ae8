"""A path classifier's answer for one person: every eligible path scored in one matrix and one
predict call (num_threads=1, ml/registry/artifacts.Predictor), the best one, and the explanation
of that row; plus the logging policy's propensity that training weighs by (inverse propensity).

Pure over a loaded predictor: no database, no settings; the decider (ml/serving/decider.py) times
it against the budget and falls back to the rules.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from core.latency import ML_INFERENCE_LATENCY
from ml.serving import explain
from ml.serving.loaded import Loaded
from paths.models import PathVersion

PATH_COLUMN = "path"


@dataclass(frozen=True, slots=True)
class Scored:
    """One model's scores of the eligible paths, in the planner's order."""

    loaded: Loaded
    keys: tuple[str, ...]
    probabilities: tuple[float, ...]
    best: int  # index of the chosen path in `keys` (ties: the planner's order)
    elapsed_ms: float
    explanation: list = field(default_factory=list)  # [[feature=value, contribution], ...]

    @property
    def path_key(self) -> str:
        return self.keys[self.best]

    @property
    def scores(self) -> dict[str, float]:
        return {key: round(value, 4) for key, value in zip(self.keys, self.probabilities, strict=True)}

    def probability_of(self, path_key: str) -> float | None:
        return self.scores.get(path_key)


def rows_for(features: dict, eligible: Sequence[PathVersion]) -> list[dict]:
    """The model's input rows: the person's raw features with each eligible path in turn."""
    return [{**features, PATH_COLUMN: version.path.key} for version in eligible]


def score(loaded: Loaded, features: dict, eligible: Sequence[PathVersion], *, explained: bool) -> Scored:
    """Score every eligible path with this model; `explained` adds the chosen row's contributions.
    Observes ml_inference_latency_p95_ms; raises whatever the model raises."""
    started = perf_counter()
    rows = rows_for(features, eligible)
    matrix = loaded.predictor.matrix(rows)
    probabilities = np.asarray(loaded.predictor.predict(matrix), dtype=float).reshape(-1)
    if probabilities.shape[0] != len(rows):
        raise ValueError(f"the model answered {probabilities.shape[0]} scores for {len(rows)} paths")
    best = int(np.argmax(probabilities))
    explanation = (
        explain.top_contributions(loaded.predictor, matrix[best : best + 1], rows[best]) if explained else []
    )
    elapsed_ms = (perf_counter() - started) * 1000
    ML_INFERENCE_LATENCY.observe(elapsed_ms)
    return Scored(
        loaded,
        tuple(row[PATH_COLUMN] for row in rows),
        tuple(float(value) for value in probabilities),
        best,
        elapsed_ms,
        explanation,
    )


def propensity(*, share: float, eligible_count: int, chosen_is_own: bool) -> float:
    """The probability that the logging policy chose this path: exploration picks uniformly among
    the k eligible paths with probability `share`, else the policy takes its own choice."""
    if eligible_count <= 1:
        return 1.0
    return share / eligible_count + (1 - share) * (1.0 if chosen_is_own else 0.0)
