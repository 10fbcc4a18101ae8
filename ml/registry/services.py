"""The model registry's writes: registering a trained version (ml/training calls this), and the
status transitions with their rules and audit (candidate -> shadow -> A/B -> active -> retired).
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ml.features import schema
from ml.models import ModelVersion
from ml.registry import artifacts
from tenancy.audit import audit_record
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

BUMPS = ("major", "minor", "patch")


def next_version(*, workspace: Workspace, name: str, bump: str = "minor") -> tuple[int, int, int]:
    """The next semantic version of this model: `bump` the highest one (a new schema is a major
    bump, a retraining a minor one); 1.0.0 for the first."""
    if bump not in BUMPS:
        raise ValueError(f"bump must be one of {BUMPS}")
    latest = (
        ModelVersion.objects.filter(workspace=workspace, name=name)
        .order_by("-major", "-minor", "-patch")
        .first()
    )
    if latest is None:
        return 1, 0, 0
    if latest.feature_schema_hash != schema.schema_hash(name) and bump != "major":
        bump = "major"  # another feature schema: not comparable with what came before
    if bump == "major":
        return latest.major + 1, 0, 0
    if bump == "minor":
        return latest.major, latest.minor + 1, 0
    return latest.major, latest.minor, latest.patch + 1


def version_register(
    *,
    workspace: Workspace,
    name: str,
    booster,
    vocabulary: dict,
    metrics: dict,
    params: dict,
    window_start: datetime,
    window_end: datetime,
    training_rows: int,
    validation_rows: int,
    trained_seconds: float,
    actor=None,
    bump: str = "minor",
) -> ModelVersion:
    """Store the artifact and register the version as a candidate, audited."""
    with transaction.atomic():
        # One writer at a time per workspace and model, so two trainings never take the same number.
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
        major, minor, patch = next_version(workspace=workspace, name=name, bump=bump)
        version = f"{major}.{minor}.{patch}"
        content = artifacts.dumps(
            model_name=name,
            version=version,
            booster=booster,
            vocabulary=vocabulary,
            meta={"metrics": metrics},
        )
        stored, digest = artifacts.save(
            workspace_id=workspace.pk, model_name=name, version=version, content=content
        )
        model_version = ModelVersion.objects.create(
            workspace=workspace,
            name=name,
            version=version,
            major=major,
            minor=minor,
            patch=patch,
            artifact=stored,
            artifact_sha256=digest,
            artifact_bytes=len(content),
            feature_schema_hash=schema.schema_hash(name),
            features=[each.name for each in schema.columns(name)],
            training_window_start=window_start,
            training_window_end=window_end,
            training_rows=training_rows,
            validation_rows=validation_rows,
            metrics=metrics,
            params=params,
            trained_seconds=trained_seconds,
            created_by=actor if getattr(actor, "pk", None) else None,
            status_changed_at=timezone.now(),
        )
        audit_record(
            workspace=workspace,
            action="ml.model_registered",
            actor=actor if getattr(actor, "pk", None) else None,
            actor_label="" if getattr(actor, "pk", None) else "training job",
            obj=model_version,
            after={"version": version, "status": model_version.status, "metrics": metrics},
        )
    logger.info(
        "ml.model_registered", extra={"model": name, "version": version, "workspace_id": workspace.pk}
    )
    return model_version
