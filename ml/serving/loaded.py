"""The models this process serves: each version's booster is loaded once and kept, and the
version that answers for a (workspace, model) is looked up at most every CHECK_SECONDS, so a
promotion or a rollback reaches every process within that time. Swapping is one dict assignment:
a decision in flight keeps the predictor it started with.

A version that cannot be loaded (altered file, another feature schema) is refused: the caller gets
None and keeps the rules, and one ModelAlert per version says why.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ml.models import ModelAlert, ModelVersion
from ml.registry import artifacts

logger = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Loaded:
    model_version: ModelVersion
    predictor: artifacts.Predictor


_predictors: dict[int, Loaded | None] = {}  # version id -> loaded (None: refused)
_looked_up: dict[tuple, tuple[float, object]] = {}  # key -> (checked, value): looked_up()
_lock = threading.Lock()


def _alert(model_version: ModelVersion, error: artifacts.ArtifactError) -> None:
    kind = (
        ModelAlert.Kind.SCHEMA_MISMATCH
        if isinstance(error, artifacts.SchemaMismatch)
        else ModelAlert.Kind.LOAD_FAILED
    )
    logger.error("ml.model_refused", extra={"model": model_version.label, "error": str(error)})
    if not ModelAlert.objects.filter(model_version=model_version, kind=kind).exists():
        ModelAlert.objects.create(
            workspace_id=model_version.workspace_id,
            model_version=model_version,
            kind=kind,
            message=f"{model_version.name} {model_version.version} refused at load, the rules stand: {error}",
        )


def load(model_version: ModelVersion) -> Loaded | None:
    """This version's predictor, loaded once per process; None when it was refused."""
    if model_version.pk in _predictors:
        return _predictors[model_version.pk]
    with _lock:
        if model_version.pk not in _predictors:
            try:
                content = artifacts.read(model_version.artifact)
                predictor = artifacts.loads(
                    content,
                    expected_sha256=model_version.artifact_sha256,
                    expected_model_name=model_version.name,
                )
                _predictors[model_version.pk] = Loaded(model_version, predictor)
            except artifacts.ArtifactError as error:
                _alert(model_version, error)
                _predictors[model_version.pk] = None
    return _predictors[model_version.pk]


def _serving_ids(workspace_id: int, name: str, status: str) -> list[int]:
    return looked_up(
        ("serving", workspace_id, name, status),
        lambda: list(
            ModelVersion.objects.filter(workspace_id=workspace_id, name=name, status=status)
            .order_by("-major", "-minor", "-patch")
            .values_list("pk", flat=True)
        ),
    )


def _loaded(ids: list[int]) -> list[Loaded]:
    found = []
    for version_id in ids:
        known = _predictors.get(version_id, False)
        if known is False:
            model_version = ModelVersion.objects.filter(pk=version_id).first()
            known = load(model_version) if model_version is not None else None
        if known is not None:
            found.append(known)
    return found


def active(workspace_id: int, name: str) -> Loaded | None:
    """The active version of this model, loaded; None when there is none or it was refused."""
    loaded = _loaded(_serving_ids(workspace_id, name, ModelVersion.Status.ACTIVE))
    return loaded[0] if loaded else None


def in_status(workspace_id: int, name: str, status: str) -> list[Loaded]:
    """Every loadable version of this model in `status` (shadow, ab), newest first."""
    return _loaded(_serving_ids(workspace_id, name, status))


def version(model_version: ModelVersion) -> Loaded | None:
    """A given version (a model experiment's arm), loaded."""
    return load(model_version)


def looked_up(key: tuple, read: Callable[[], T]) -> T:
    """`read()`'s answer, kept CHECK_SECONDS under `key` (the serving versions, the running model
    experiments: a decision that serves nothing must not cost a query), dropped by forget()."""
    known = _looked_up.get(key)
    if known is not None and time.monotonic() - known[0] < CHECK_SECONDS:
        return known[1]
    value = read()
    _looked_up[key] = (time.monotonic(), value)
    return value


def forget() -> None:
    """Drop what this process knows (tests; a promotion in this process calls it too)."""
    with _lock:
        _predictors.clear()
        _looked_up.clear()
