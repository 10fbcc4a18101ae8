"""A model's training set (raw feature rows, labels, weights, the moment each row's features are
from) and its time-based split. Each model's builder lives with the model
(ml/training/path_classifier.py, stuck_detector.py, response_predictor.py); every one reads
features through ml/features/compute.py, the code serving reads them with.
"""

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

VALIDATION_SHARE = 0.2
"""The latest ~20% of rows by decision time are the validation set."""


@dataclass
class Dataset:
    model_name: str
    rows: list[dict]
    labels: np.ndarray
    moments: list[datetime]
    weights: np.ndarray | None = None
    extra: list = field(default_factory=list)  # per row, what evaluation needs beyond features
    notes: dict = field(default_factory=dict)  # how the set was chosen, stored in the metrics

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, indices: np.ndarray) -> "Dataset":
        return Dataset(
            model_name=self.model_name,
            rows=[self.rows[index] for index in indices],
            labels=self.labels[indices],
            moments=[self.moments[index] for index in indices],
            weights=None if self.weights is None else self.weights[indices],
            extra=[self.extra[index] for index in indices] if self.extra else [],
            notes=self.notes,
        )


@dataclass
class Split:
    train: Dataset
    validation: Dataset

    @property
    def train_window(self) -> tuple[datetime, datetime]:
        return self.train.moments[0], self.train.moments[-1]

    @property
    def validation_window(self) -> tuple[datetime, datetime] | tuple[None, None]:
        moments = self.validation.moments
        return (moments[0], moments[-1]) if moments else (None, None)


def time_split(dataset: Dataset, *, validation_share: float = VALIDATION_SHARE) -> Split:
    """Rows ordered by moment; the last `validation_share` of them validate. The cut moves
    forward past rows sharing the boundary moment, so every validation row is strictly later than
    every training row."""
    order = np.array(sorted(range(len(dataset)), key=lambda index: dataset.moments[index]), dtype=int)
    cut = max(1, round(len(order) * (1 - validation_share)))
    while cut < len(order) and dataset.moments[order[cut]] == dataset.moments[order[cut - 1]]:
        cut += 1
    return Split(dataset.subset(order[:cut]), dataset.subset(order[cut:]))
