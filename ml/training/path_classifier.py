"""The path classifier's training set and its offline policy evaluation.

Rows are the planner's logged path choices (ml.models.PathChoice) whose outcome has matured: taken
more than ML_ACTIVATION_DAYS ago. Choices taken since are left out even when already activated:
keeping only their early successes would fill the newest rows (the validation window) with
positives. Features are the ones logged at decision time (what the planner served on) plus the
chosen path; the label is the enrollment completing within ML_ACTIVATION_DAYS of its enrolment.

The rules chose most paths, so the data are confounded. Training weights each row by
1 / propensity, clipped at IPS_WEIGHT_CLIP (a row explored with probability 1% would otherwise
weigh as much as 100 others and make the trees chase its noise); once there are at least
EXPLORED_ONLY_MIN_ROWS matured explored rows, it trains on them alone, unweighted (exploration is
uniform among the eligible paths, so they are not confounded). The metrics' "training_data" says
which.
"""

from datetime import datetime, timedelta

import numpy as np
from django.conf import settings

from ml.models import PathChoice
from ml.training import evaluation
from ml.training.datasets import Dataset

NAME = "path_classifier"
IPS_WEIGHT_CLIP = 20.0
EXPLORED_ONLY_MIN_ROWS = 10_000
_MIN_PROPENSITY = 1e-6


def _label(enrolled_at: datetime, completed_at: datetime | None, days: int) -> int:
    return int(completed_at is not None and completed_at <= enrolled_at + timedelta(days=days))


def dataset(*, workspace_id: int, now: datetime, progress=None) -> Dataset:
    """The matured path choices of the workspace (see the module's docstring); their features
    were logged, so nothing is recomputed and `progress` has nothing to report."""
    days = settings.ML_ACTIVATION_DAYS
    choices = (
        PathChoice.objects.filter(
            workspace_id=workspace_id, enrollment__isnull=False, decided_at__lte=now - timedelta(days=days)
        )
        .exclude(features={})  # erased people (ml/gdpr.py): their choices keep no features to learn from
        .order_by("decided_at", "pk")
        .values_list(
            "decided_at",
            "policy",
            "path_key",
            "rules_path_key",
            "eligible",
            "propensity",
            "features",
            "enrollment__enrolled_at",
            "enrollment__completed_at",
        )
    )
    rows, labels, moments, extra = [], [], [], []
    for (
        decided_at,
        policy,
        path_key,
        rules_key,
        eligible,
        propensity,
        features,
        enrolled,
        completed,
    ) in choices.iterator(chunk_size=20000):
        rows.append({**(features or {}), "path": path_key})
        labels.append(_label(enrolled, completed, days))
        moments.append(decided_at)
        extra.append(
            {
                "policy": policy,
                "path_key": path_key,
                "rules_path_key": rules_key or (path_key if policy == PathChoice.Policy.RULES else ""),
                "eligible": list(eligible or [path_key]),
                "propensity": max(float(propensity or 0), _MIN_PROPENSITY),
            }
        )
    found = Dataset(NAME, rows, np.asarray(labels, dtype=float), moments, extra=extra)
    return _weighted(found)


def _weighted(found: Dataset) -> Dataset:
    explored = np.array([each["policy"] == PathChoice.Policy.EXPLORE for each in found.extra], dtype=bool)
    if explored.sum() >= EXPLORED_ONLY_MIN_ROWS:
        only = found.subset(np.flatnonzero(explored))
        only.notes = {
            "training_data": "explored rows only, unweighted",
            "explored_rows": int(explored.sum()),
            "explored_only_min_rows": EXPLORED_ONLY_MIN_ROWS,
        }
        return only
    propensities = np.array([each["propensity"] for each in found.extra], dtype=float)
    found.weights = np.minimum(1.0 / propensities, IPS_WEIGHT_CLIP) if len(found) else np.array([])
    found.notes = {
        "training_data": "all rows, weighted by 1/propensity",
        "weight_clip": IPS_WEIGHT_CLIP,
        "explored_rows": int(explored.sum()),
        "explored_only_min_rows": EXPLORED_ONLY_MIN_ROWS,
    }
    return found


def paths_seen(found: Dataset) -> int:
    return len({row.get("path") for row in found.rows})


def policy_choices(predict, validation: Dataset) -> list[str]:
    """The model's policy on each row: the eligible path with the highest predicted activation
    (`predict` takes raw rows and returns probabilities)."""
    candidates, owners = [], []
    for index, row in enumerate(validation.rows):
        for key in validation.extra[index]["eligible"]:
            candidates.append({**row, "path": key})
            owners.append(index)
    if not candidates:
        return []
    scores = predict(candidates)
    best: dict[int, tuple[float, str]] = {}
    for owner, candidate, score in zip(owners, candidates, scores, strict=True):
        if owner not in best or score > best[owner][0]:
            best[owner] = (float(score), candidate["path"])
    return [best[index][1] for index in range(len(validation.rows))]


def policy_metrics(predict, validation: Dataset, *, seed: int) -> dict:
    """The offline estimate of the model's policy against the rules' on the validation rows
    (ml/training/evaluation.policy_estimate), and how often the two agree."""
    chosen = policy_choices(predict, validation)
    rules = [each["rules_path_key"] for each in validation.extra]
    estimate = evaluation.policy_estimate(
        rewards=validation.labels,
        logged=[each["path_key"] for each in validation.extra],
        propensities=[each["propensity"] for each in validation.extra],
        policies={"rules": rules, "model": chosen},
        baseline="rules",
        seed=seed,
    )
    agreement = float(np.mean([a == b for a, b in zip(chosen, rules, strict=True)])) if chosen else None
    return {
        "method": "self-normalised IPS on the validation rows, 95% Poisson bootstrap percentile intervals",
        "rows": len(validation),
        "rules": estimate["rules"],
        "model": estimate["model"],
        "agreement_with_rules": None if agreement is None else round(agreement, 4),
    }
