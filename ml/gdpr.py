"""The ML layer's part of a GDPR export and erasure (guardrails.gdpr).

Export: the person's path choices (policy, paths, propensity, scores, the features they were taken
on, the explanation) and their feature snapshot. Erasure: the snapshot and the real-time counters
in Redis are deleted; a path choice keeps which path was chosen by which policy and with what
propensity (the offline policy estimate and the arms' counts do not move) and loses its features,
scores' explanation and reason, which name traits. Training leaves erased choices out.
"""

import logging

import redis

from guardrails.gdpr.erasers import ErasureScope, eraser
from guardrails.gdpr.export import Subject, exporter
from ml.features import realtime
from ml.features.derived import SNAPSHOT_FIELDS
from ml.models import FeatureSnapshot, PathChoice

logger = logging.getLogger(__name__)


@exporter("ml")
def _ml(subject: Subject) -> dict:
    choices = (
        PathChoice.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .select_related("model_version")
        .order_by("decided_at", "pk")
    )
    snapshot = FeatureSnapshot.objects.filter(workspace=subject.workspace, end_user=subject.end_user).first()
    return {
        "path_choices": [
            {
                "decided_at": choice.decided_at,
                "policy": choice.policy,
                "path": choice.path_key,
                "rules_path": choice.rules_path_key,
                "eligible": choice.eligible,
                "propensity": choice.propensity,
                "model_version": str(choice.model_version) if choice.model_version else None,
                "scores": choice.scores,
                "explanation": choice.explanation,
                "features": choice.features,
                "feature_source": choice.feature_source,
                "reason": choice.reason,
            }
            for choice in choices
        ],
        "features": {name: getattr(snapshot, name) for name in SNAPSHOT_FIELDS} if snapshot else None,
    }


@eraser("ml")
def _erase_ml(scope: ErasureScope) -> int:
    snapshots, _ = FeatureSnapshot.objects.filter(workspace=scope.workspace, end_user=scope.end_user).delete()
    choices = PathChoice.objects.filter(workspace=scope.workspace, end_user=scope.end_user).update(
        features={}, explanation=[], shadow=[], reason=""
    )
    connection = realtime.client()
    if connection is not None:
        keys = (
            realtime.counters_key(scope.workspace.pk, scope.end_user.pk),
            realtime.recent_key(scope.workspace.pk, scope.end_user.pk),
        )
        try:
            connection.delete(*keys)
        except redis.RedisError:  # they expire with ML_FEATURE_STORE_TTL_DAYS; the daily job skips the erased
            logger.warning("ml.gdpr.redis_unavailable", extra={"workspace_id": scope.workspace.pk})
    return snapshots + choices
