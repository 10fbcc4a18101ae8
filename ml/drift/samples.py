"""What the drift check compares, per model: its inputs in its training window and in the last
week (PSI), and the rows decided after its training window whose outcome has matured, with that
outcome (AUC). Labels and maturity are training's own (ml/training), so "accuracy now" means what
the stored validation AUC meant.

* path_classifier: PathChoice rows, the features each decision was taken on and its chosen path;
  outcome: the enrollment completed within ML_ACTIVATION_DAYS of its enrolment, judged once the
  choice is that old (early successes alone would fill the sample with positives).
* stuck_detector and nudge_response_predictor: their inputs are not logged, so training's own
  dataset builder is run as of now + its maturity delay (ML_ACTIVATION_DAYS; the workspace's
  conversion window): its rows then reach up to now. Rows of the last week are those whose
  outcome may not be known yet: they count for PSI only; rows after the training window and
  before now - the delay count for AUC. The builder's selection applies to both PSI samples alike
  (the stuck detector's: spells that ended), so PSI compares like with like. It reads the
  workspace's whole history, as training does: a weekly job on the "low" queue.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from ml.models import ModelVersion, PathChoice
from ml.training import response_predictor, stuck_detector
from ml.training.datasets import Dataset
from nudges.models import NudgeSettings

RECENT = timedelta(days=7)
MAX_ROWS = 20_000  # rows read a side at most (the most recent)


@dataclass
class Samples:
    """A model's inputs at training and lately, and its matured outcomes since training."""

    training: list[dict] = field(default_factory=list)
    recent: list[dict] = field(default_factory=list)
    matured: list[dict] = field(default_factory=list)  # rows as the model reads them
    labels: list[int] = field(default_factory=list)


def _choice_row(features: dict, path_key: str) -> dict:
    return {**(features or {}), "path": path_key}


def _activated(enrolled_at: datetime, completed_at: datetime | None, days: int) -> int:
    return int(completed_at is not None and completed_at <= enrolled_at + timedelta(days=days))


def path_classifier_samples(model_version: ModelVersion, now: datetime) -> Samples:
    choices = PathChoice.objects.filter(workspace_id=model_version.workspace_id)
    columns = ("features", "path_key")
    training = choices.filter(
        decided_at__gte=model_version.training_window_start, decided_at__lte=model_version.training_window_end
    ).order_by("-decided_at")[:MAX_ROWS]
    recent = choices.filter(decided_at__gt=now - RECENT, decided_at__lte=now).order_by("-decided_at")
    samples = Samples(
        training=[_choice_row(*row) for row in training.values_list(*columns)],
        recent=[_choice_row(*row) for row in recent[:MAX_ROWS].values_list(*columns)],
    )
    days = settings.ML_ACTIVATION_DAYS
    matured = (
        choices.filter(
            decided_at__gt=model_version.training_window_end,
            decided_at__lte=now - timedelta(days=days),
            enrollment__isnull=False,
        )
        .order_by("-decided_at")
        .values_list(*columns, "enrollment__enrolled_at", "enrollment__completed_at")
    )
    for features, path_key, enrolled_at, completed_at in matured[:MAX_ROWS]:
        samples.matured.append(_choice_row(features, path_key))
        samples.labels.append(_activated(enrolled_at, completed_at, days))
    return samples


def _split(found: Dataset, model_version: ModelVersion, now: datetime, delay: timedelta) -> Samples:
    """A training set built as of now + delay, cut into the drift check's samples (newest kept)."""
    samples = Samples()
    for row, label, moment in zip(found.rows, found.labels, found.moments, strict=True):
        if model_version.training_window_start <= moment <= model_version.training_window_end:
            samples.training.append(row)
        if now - RECENT < moment <= now:
            samples.recent.append(row)
        if model_version.training_window_end < moment <= now - delay:
            samples.matured.append(row)
            samples.labels.append(int(label))
    samples.training = samples.training[-MAX_ROWS:]
    samples.recent = samples.recent[-MAX_ROWS:]
    samples.matured, samples.labels = samples.matured[-MAX_ROWS:], samples.labels[-MAX_ROWS:]
    return samples


def stuck_detector_samples(model_version: ModelVersion, now: datetime) -> Samples:
    delay = timedelta(days=settings.ML_ACTIVATION_DAYS)
    found = stuck_detector.dataset(workspace_id=model_version.workspace_id, now=now + delay)
    return _split(found, model_version, now, delay)


def response_predictor_samples(model_version: ModelVersion, now: datetime) -> Samples:
    hours = (
        NudgeSettings.objects.filter(workspace_id=model_version.workspace_id)
        .values_list("conversion_window_hours", flat=True)
        .first()
    )
    delay = timedelta(hours=hours or response_predictor.DEFAULT_CONVERSION_WINDOW_HOURS)
    found = response_predictor.dataset(workspace_id=model_version.workspace_id, now=now + delay)
    return _split(found, model_version, now, delay)


SAMPLES: dict[str, Callable[[ModelVersion, datetime], Samples]] = {
    "path_classifier": path_classifier_samples,
    "stuck_detector": stuck_detector_samples,
    "nudge_response_predictor": response_predictor_samples,
}
