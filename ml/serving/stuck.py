"""The stuck detector in use: onboarding's stuck pass asks this risk provider how likely each
enrollment past half its step's limit is to abandon the step (onboarding/stuck/risk.py flags the
high-risk ones early). Registered from ml/apps.py.

Rows are the person's features now (ml.features.store, the planner's read) with the step, its
index (its place among the path version's steps ordered as training walks them: by order, then
id, from 0) and the hours on it. Without an active stuck_detector, or when it cannot be loaded,
the answer is empty and the time-based detection stands; an error propagates to the registry,
which logs it and keeps the time-based result. These batch scores are not observed in
ml_inference_latency_p95_ms, which times the planner's one-row decisions.
"""

from collections.abc import Sequence
from datetime import datetime

from ml.features import store
from ml.serving import loaded
from onboarding.models import Enrollment
from onboarding.stuck.risk import Risk
from paths.models import Step

NAME = "stuck_detector"


def step_indices(path_version_ids: set[int]) -> dict[tuple[int, str], int]:
    """{(path version id, step key): its index from 0}."""
    indices: dict[tuple[int, str], int] = {}
    counts: dict[int, int] = {}
    rows = (
        Step.objects.filter(path_version_id__in=path_version_ids)
        .order_by("path_version_id", "order", "pk")
        .values_list("path_version_id", "key")
    )
    for path_version_id, key in rows:
        indices[(path_version_id, key)] = counts.get(path_version_id, 0)
        counts[path_version_id] = indices[(path_version_id, key)] + 1
    return indices


def rows_for(*, workspace_id: int, enrollments: Sequence[Enrollment], now: datetime) -> list[dict]:
    """The model's raw rows, one per enrollment, in order."""
    read = store.features_for(
        workspace_id=workspace_id, end_users=[each.end_user for each in enrollments], now=now
    )
    indices = step_indices({each.path_version_id for each in enrollments})
    return [
        {
            **read.rows.get(each.end_user_id, {}),
            "step": each.current_step_key,
            "step_index": indices.get((each.path_version_id, each.current_step_key)),
            "hours_on_step": max(0.0, (now - each.step_entered_at).total_seconds() / 3600),
        }
        for each in enrollments
    ]


def stuck_risks(*, workspace_id: int, enrollments: Sequence[Enrollment], now: datetime) -> dict[int, Risk]:
    """{enrollment id: Risk} from the active stuck detector; {} without one."""
    serving = loaded.active(workspace_id, NAME)
    if serving is None or not enrollments:
        return {}
    rows = rows_for(workspace_id=workspace_id, enrollments=enrollments, now=now)
    probabilities = serving.predictor.predict(serving.predictor.matrix(rows))
    source = f"stuck detector {serving.model_version.version}"
    return {
        each.pk: Risk(round(float(probability), 4), source)
        for each, probability in zip(enrollments, probabilities, strict=True)
    }
