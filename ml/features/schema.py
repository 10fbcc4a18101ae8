"""The feature schema: every model's input columns, how each is encoded, and the schema's hash.

One list, read by training and serving alike (`encode`), so a column cannot mean one thing when
a model learns and another when it answers. A model's columns are the user's features (the seed's
nine and two more, ml/features/compute.py) followed by its own context (the path it scores, the
step a person is on, the channel and hour of a send). The hash covers the names, kinds and
SCHEMA_REVISION: bump the revision whenever a feature's definition changes, so an artifact trained
on the old meaning is refused at load (ml/registry/artifacts.py).
"""

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SCHEMA_REVISION = 1

CATEGORICAL = "categorical"
NUMERIC = "numeric"


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    kind: str  # CATEGORICAL or NUMERIC
    description: str = ""


USER_FEATURES: tuple[Feature, ...] = (
    Feature("persona", CATEGORICAL, "identify trait"),
    Feature("signup_source", CATEGORICAL, "identify trait"),
    Feature("company_size", CATEGORICAL, "identify trait"),
    Feature("use_case", CATEGORICAL, "identify trait"),
    Feature("engagement_score", NUMERIC, "0-100, ml/features/compute.py"),
    Feature("hours_since_signup", NUMERIC, "since the end user was created"),
    Feature("steps_completed", NUMERIC, "steps completed on the current path"),
    Feature("session_count", NUMERIC, "sessions: runs of events less than 30 min apart"),
    Feature("avg_session_minutes", NUMERIC, "mean session length"),
    Feature("events_7d", NUMERIC, "events in the 7 days before (derived daily)"),
    Feature("hours_since_last_event", NUMERIC, "missing before the first event"),
)

MODEL_CONTEXT: dict[str, tuple[Feature, ...]] = {
    "path_classifier": (Feature("path", CATEGORICAL, "the path scored (its key)"),),
    "stuck_detector": (
        Feature("step", CATEGORICAL, "the current step's key"),
        Feature("step_index", NUMERIC, "its position on the path, from 0"),
        Feature("hours_on_step", NUMERIC, "since the step became current"),
    ),
    "nudge_response_predictor": (
        Feature("channel", CATEGORICAL, "email, sms, push, in_app, intercom"),
        Feature("local_hour", NUMERIC, "hour of the send in the user's time zone"),
        Feature("weekday", NUMERIC, "0 = Monday, in the user's time zone"),
    ),
}


def columns(model_name: str) -> tuple[Feature, ...]:
    """The model's input columns, in order."""
    return USER_FEATURES + MODEL_CONTEXT[model_name]


def schema_hash(model_name: str) -> str:
    """sha256 of the model's columns (names and kinds) and the schema revision."""
    described = [SCHEMA_REVISION, model_name, [[each.name, each.kind] for each in columns(model_name)]]
    return hashlib.sha256(json.dumps(described, separators=(",", ":")).encode()).hexdigest()


def categorical_indices(model_name: str) -> list[int]:
    return [index for index, each in enumerate(columns(model_name)) if each.kind == CATEGORICAL]


def vocabularies(model_name: str, rows: Iterable[Mapping]) -> dict[str, list[str]]:
    """The categorical values seen in training, sorted: a value's code is its index; a value not
    in the list (or blank) is missing at serving, as LightGBM reads NaN."""
    seen: dict[str, set[str]] = {each.name: set() for each in columns(model_name) if each.kind == CATEGORICAL}
    for row in rows:
        for name, values in seen.items():
            value = row.get(name)
            if value not in (None, ""):
                values.add(str(value))
    return {name: sorted(values) for name, values in seen.items()}


def _number(value) -> float:
    if value is None or value == "":
        return math.nan
    number = float(value)
    return number if math.isfinite(number) else math.nan


def encode(model_name: str, rows: Sequence[Mapping], vocabulary: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Rows of raw features (dicts) -> a float64 matrix in the model's column order."""
    features = columns(model_name)
    codes = {
        name: {value: float(code) for code, value in enumerate(values)} for name, values in vocabulary.items()
    }
    matrix = np.full((len(rows), len(features)), np.nan)
    for column, feature in enumerate(features):
        if feature.kind == CATEGORICAL:
            lookup = codes.get(feature.name, {})
            matrix[:, column] = [lookup.get(str(row.get(feature.name)), math.nan) for row in rows]
        else:
            matrix[:, column] = [_number(row.get(feature.name)) for row in rows]
    return matrix


def describe(model_name: str, row: Mapping, feature_name: str) -> str:
    """ "persona=developer", "hours_since_signup=3.5": a column of a row, for explanations."""
    value = row.get(feature_name)
    if isinstance(value, float):
        value = f"{value:.1f}"
    return f"{feature_name}={'(missing)' if value in (None, '') else value}"
