"""How good a trained model is, written with numpy and scipy only (scikit-learn is not a
dependency): AUC, log loss, calibration, and the offline estimate of a path policy's activation.

The policy estimate is self-normalised inverse propensity scoring (SNIPS) over the logged path
choices: a row counts for a policy when the policy would have chosen the path the logging policy
actually took, weighted by 1 / its logged propensity; the estimate is the weighted activation rate
of those rows. Propensities are not clipped here (clipping biases the estimate; self-normalising
already bounds it). Its 95% confidence intervals, and the difference's, come from a Poisson
bootstrap (BOOTSTRAP_REPLICATES resamples, each row weighted by a Poisson(1) count, the same
resample for both policies so the difference's interval accounts for their correlation),
percentile intervals, seeded.
"""

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

CALIBRATION_BINS = 10
BOOTSTRAP_REPLICATES = 1000
_BOOTSTRAP_CHUNK = 100
_EPSILON = 1e-15


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); None with a single class."""
    labels = np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    if len(labels) == 0:
        return None
    clipped = np.clip(np.asarray(probabilities, dtype=float), _EPSILON, 1 - _EPSILON)
    labels = np.asarray(labels, dtype=float)
    return float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))


def calibration(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Expected calibration error over CALIBRATION_BINS equal-width bins of the predicted
    probability (the bins' |mean predicted - observed rate| weighted by their share of rows), and
    the bins themselves."""
    labels = np.asarray(labels, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    which = np.minimum((probabilities * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    bins, error = [], 0.0
    for index in range(CALIBRATION_BINS):
        inside = which == index
        count = int(inside.sum())
        predicted = float(probabilities[inside].mean()) if count else None
        observed = float(labels[inside].mean()) if count else None
        if count:
            error += count / len(labels) * abs(predicted - observed)
        bins.append(
            {
                "lower": index / CALIBRATION_BINS,
                "upper": (index + 1) / CALIBRATION_BINS,
                "count": count,
                "mean_predicted": _rounded(predicted),
                "observed_rate": _rounded(observed),
            }
        )
    return {"ece": _rounded(error if len(labels) else None), "bins": bins}


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """The metrics stored with every version (on the validation rows, unweighted)."""
    return {
        "auc": _rounded(auc(labels, probabilities)),
        "log_loss": _rounded(log_loss(labels, probabilities)),
        "calibration": calibration(labels, probabilities),
        "base_rate": _rounded(float(np.mean(labels)) if len(labels) else None),
        "mean_predicted": _rounded(float(np.mean(probabilities)) if len(labels) else None),
    }


def _rounded(value: float | None, digits: int = 5) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _snips(weights: np.ndarray, terms: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """SNIPS of each bootstrap resample (rows of `weights`): sum(w r m / p) / sum(w m / p)."""
    numerator = weights @ terms
    denominator = weights @ mass
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _interval(values: np.ndarray) -> list[float | None]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return [None, None]
    low, high = np.percentile(finite, [2.5, 97.5])
    return [_rounded(float(low)), _rounded(float(high))]


def policy_estimate(
    *,
    rewards: Sequence[float],
    logged: Sequence[str],
    propensities: Sequence[float],
    policies: dict[str, Sequence[str]],
    baseline: str,
    seed: int = 0,
) -> dict:
    """Each policy's estimated activation (SNIPS) with its 95% bootstrap interval, and each
    one's difference from `baseline` with its interval. `policies` maps a name to the path each
    row would get; `logged` is the path each row got, with probability `propensities`."""
    rewards_array = np.asarray(rewards, dtype=float)
    inverse = 1.0 / np.asarray(propensities, dtype=float)
    logged_array = np.asarray(logged, dtype=object)
    masses = {
        name: (np.asarray(chosen, dtype=object) == logged_array) * inverse
        for name, chosen in policies.items()
    }
    rng = np.random.default_rng(seed)
    resampled: dict[str, list[np.ndarray]] = {name: [] for name in policies}
    for start in range(0, BOOTSTRAP_REPLICATES, _BOOTSTRAP_CHUNK):
        count = min(_BOOTSTRAP_CHUNK, BOOTSTRAP_REPLICATES - start)
        weights = rng.poisson(1.0, size=(count, len(rewards_array))).astype(float)
        for name, mass in masses.items():
            resampled[name].append(_snips(weights, rewards_array * mass, mass))
    ones = np.ones((1, len(rewards_array)))
    points = {name: float(_snips(ones, rewards_array * mass, mass)[0]) for name, mass in masses.items()}
    replicates = {name: np.concatenate(chunks) for name, chunks in resampled.items()}
    estimates = {}
    for name, mass in masses.items():
        estimates[name] = {
            "activation": _rounded(points[name]),
            "ci95": _interval(replicates[name]),
            "matched_rows": int((mass > 0).sum()),
            "effective_rows": _rounded(float(mass.sum() ** 2 / (mass**2).sum())) if mass.any() else 0,
        }
        if name != baseline:
            estimates[name]["difference"] = _rounded(points[name] - points[baseline])
            estimates[name]["difference_ci95"] = _interval(replicates[name] - replicates[baseline])
    return estimates
