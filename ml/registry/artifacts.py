"""A model's artifact: its LightGBM booster and what is needed to feed it, in one JSON file of
the `ml_artifacts` storage (a directory under VAR_DIR by default; any Django storage in
production), and how it is loaded.

Loading checks, in order, that the bytes are the ones registered (sha256) and that the artifact
was trained on the feature schema this code has (ml/features/schema.py): a mismatch raises
SchemaMismatch and the caller keeps the rules (ml/serving/loaded.py raises the alert).
"""

import hashlib
import json
from dataclasses import dataclass

import lightgbm
import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from ml.features import schema

FORMAT = 1
STORAGE_ALIAS = "ml_artifacts"


class ArtifactError(Exception):
    """The artifact cannot be used: missing, altered, or not an artifact of this format."""


class SchemaMismatch(ArtifactError):
    """The artifact was trained on other feature columns than this code's schema."""


@dataclass(frozen=True)
class Predictor:
    """A loaded model, ready to answer: probabilities and per-feature contributions (log-odds)."""

    model_name: str
    version: str
    booster: lightgbm.Booster
    vocabulary: dict
    feature_names: tuple[str, ...]

    def matrix(self, rows) -> np.ndarray:
        return schema.encode(self.model_name, rows, self.vocabulary)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, num_threads=1)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """One row per input: each column's contribution in log-odds, then the bias."""
        return self.booster.predict(matrix, pred_contrib=True, num_threads=1)


def dumps(*, model_name: str, version: str, booster: lightgbm.Booster, vocabulary: dict, meta: dict) -> bytes:
    envelope = {
        "format": FORMAT,
        "model_name": model_name,
        "version": version,
        "schema_hash": schema.schema_hash(model_name),
        "features": [each.name for each in schema.columns(model_name)],
        "vocabulary": vocabulary,
        "meta": meta,
        "booster": booster.model_to_string(),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def save(*, workspace_id: int, model_name: str, version: str, content: bytes) -> tuple[str, str]:
    """Store the bytes; (the file's name in the storage, their sha256)."""
    digest = hashlib.sha256(content).hexdigest()
    name = storages[STORAGE_ALIAS].save(
        f"{workspace_id}/{model_name}-{version}-{digest[:12]}.json", ContentFile(content)
    )
    return name, digest


def read(name: str) -> bytes:
    try:
        with storages[STORAGE_ALIAS].open(name, "rb") as handle:
            return handle.read()
    except (OSError, ValueError) as error:
        raise ArtifactError(f"artifact {name} cannot be read: {error}") from error


def loads(content: bytes, *, expected_sha256: str = "", expected_model_name: str = "") -> Predictor:
    """The artifact's predictor, after its checks (see the module's docstring)."""
    if expected_sha256 and hashlib.sha256(content).hexdigest() != expected_sha256:
        raise ArtifactError("the artifact's sha256 differs from the registered one: it was altered")
    try:
        envelope = json.loads(content)
    except ValueError as error:
        raise ArtifactError(f"not a JSON artifact: {error}") from error
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        found = envelope.get("format") if isinstance(envelope, dict) else "?"
        raise ArtifactError(f"artifact format {found}, expected {FORMAT}")
    model_name = envelope.get("model_name", "")
    if model_name not in schema.MODEL_CONTEXT or (expected_model_name and model_name != expected_model_name):
        raise ArtifactError(
            f"artifact of model {model_name!r}, expected {expected_model_name or 'a known model'}"
        )
    expected = [each.name for each in schema.columns(model_name)]
    if envelope.get("schema_hash") != schema.schema_hash(model_name) or envelope.get("features") != expected:
        found_columns = len(envelope.get("features") or [])
        raise SchemaMismatch(
            f"trained on feature schema {str(envelope.get('schema_hash'))[:12]} ({found_columns} columns), "
            f"this code has {schema.schema_hash(model_name)[:12]} ({len(expected)} columns)"
        )
    try:
        booster = lightgbm.Booster(model_str=envelope["booster"])
    except (lightgbm.basic.LightGBMError, KeyError, TypeError) as error:
        raise ArtifactError(f"the booster cannot be loaded: {error}") from error
    if booster.num_feature() != len(expected):
        raise SchemaMismatch(
            f"the booster takes {booster.num_feature()} columns, the schema has {len(expected)}"
        )
    return Predictor(
        model_name,
        str(envelope.get("version", "")),
        booster,
        envelope.get("vocabulary") or {},
        tuple(expected),
    )
