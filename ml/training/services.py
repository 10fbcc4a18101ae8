"""Training a model of a workspace: its data set, a time-based split, a LightGBM fit, its metrics,
and its registration as a candidate version (ml/registry/services.version_register).

Too little data is refused, with the counts, rather than registering a model that learnt noise:
at least MIN_TRAINING_ROWS training rows with MIN_POSITIVES positives and MIN_NEGATIVES negatives
among them, and for the path classifier MIN_PATHS distinct paths (one path gives it nothing to
choose between).
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from ml.models import ModelName, ModelVersion
from ml.registry.services import version_register
from ml.training import path_classifier, response_predictor, stuck_detector, trainer
from ml.training.datasets import Dataset, Split, time_split
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

MIN_TRAINING_ROWS = 500
MIN_POSITIVES = 50
MIN_NEGATIVES = 50
MIN_PATHS = 2

Progress = Callable[[int, int, str], None]

DATASETS = {
    ModelName.PATH_CLASSIFIER: path_classifier.dataset,
    ModelName.STUCK_DETECTOR: stuck_detector.dataset,
    ModelName.NUDGE_RESPONSE: response_predictor.dataset,
}
MODEL_NAMES: tuple[str, ...] = tuple(str(name) for name in DATASETS)


class TrainingRefused(ValueError):
    """Too little data to train; `counts` holds what there was."""

    def __init__(self, message: str, counts: dict):
        super().__init__(message)
        self.counts = counts


def model_name_check(name: str) -> str:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}: the models are {', '.join(MODEL_NAMES)}")
    return name


def _enough(name: str, split: Split | None) -> None:
    train = split.train if split is not None else None
    positives = int(train.labels.sum()) if train is not None else 0
    counts = {
        "training_rows": len(train) if train is not None else 0,
        "positives": positives,
        "negatives": (len(train) - positives) if train is not None else 0,
    }
    needed = {"training_rows": MIN_TRAINING_ROWS, "positives": MIN_POSITIVES, "negatives": MIN_NEGATIVES}
    if name == ModelName.PATH_CLASSIFIER:
        counts["paths"] = path_classifier.paths_seen(train) if train is not None else 0
        needed["paths"] = MIN_PATHS
    if all(counts[key] >= needed[key] for key in needed):
        return
    described = ", ".join(f"{counts[key]} {key.replace('_', ' ')} (at least {needed[key]})" for key in needed)
    raise TrainingRefused(f"{name} not trained, too little data: {described}", counts)


def _window(moments: tuple) -> list[str | None]:
    return [moment.isoformat() if moment is not None else None for moment in moments]


def _metrics(dataset: Dataset, split: Split, fitted: trainer.Trained) -> dict:
    metrics = dict(fitted.metrics)
    metrics["ece"] = metrics.get("calibration", {}).get("ece")
    metrics["rows"] = {
        "training": len(split.train),
        "validation": len(split.validation),
        "training_positives": int(split.train.labels.sum()),
        "validation_positives": int(split.validation.labels.sum()),
    }
    metrics["train_window"] = _window(split.train_window)
    metrics["validation_window"] = _window(split.validation_window)
    metrics["data"] = dataset.notes
    if dataset.model_name == ModelName.PATH_CLASSIFIER and len(split.validation):
        metrics["policy"] = path_classifier.policy_metrics(
            fitted.predict, split.validation, seed=trainer.SEED
        )
    return metrics


def model_train(
    *,
    workspace: Workspace,
    name: str,
    now: datetime | None = None,
    actor=None,
    progress: Progress | None = None,
    num_threads: int = trainer.DEFAULT_NUM_THREADS,
) -> ModelVersion:
    """Train `name` on the workspace's data up to `now` and register it as a candidate; raises
    TrainingRefused (with the counts) when there is too little data."""
    model_name_check(name)
    now = now or timezone.now()
    report = progress or (lambda done, total, stage: None)
    started = time.monotonic()
    report(0, 1, "reading")
    dataset = DATASETS[name](
        workspace_id=workspace.pk, now=now, progress=lambda done, total: report(done, total, "features")
    )
    split = time_split(dataset) if len(dataset) else None
    _enough(name, split)
    report(0, 1, "training")
    fitted = trainer.fit(split, num_threads=num_threads)
    report(0, 1, "evaluating")
    metrics = _metrics(dataset, split, fitted)
    seconds = time.monotonic() - started
    metrics["seconds"] = round(seconds, 2)
    report(0, 1, "registering")
    model_version = version_register(
        workspace=workspace,
        name=name,
        booster=fitted.booster,
        vocabulary=fitted.vocabulary,
        metrics=metrics,
        params=fitted.params,
        window_start=split.train_window[0],
        window_end=split.train_window[1],
        training_rows=len(split.train),
        validation_rows=len(split.validation),
        trained_seconds=seconds,
        actor=actor,
    )
    report(1, 1, "done")
    logger.info(
        "ml.model_trained",
        extra={
            "model": name,
            "version": model_version.version,
            "workspace_id": workspace.pk,
            "seconds": seconds,
        },
    )
    return model_version
