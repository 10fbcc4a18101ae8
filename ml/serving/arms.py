"""Model experiments (experiments app, kind "model") as the path decider serves them: a running
experiment whose arms name the path classifier ("path_classifier@1.2.0") or "rules", its
audience, and each user's arm: the stored assignment wins (sticky), else GrowthBook allocation
(experiments.allocation, as experiments/deciding.py does for path experiments); a failed
allocation gives control, unassigned. Users outside the traffic coverage go on to the model.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Prefetch

from experiments import allocation
from experiments.models import Assignment, Experiment, Variant
from ml.models import ModelName, ModelVersion
from ml.serving import loaded
from paths import planner
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

RULES = "rules"
MODEL_NAME = ModelName.PATH_CLASSIFIER.value


@dataclass(frozen=True, slots=True)
class Arm:
    experiment: Experiment
    variant: Variant
    hash_value: float | None  # None: stored earlier, or control after a failed allocation
    how: str  # "", " (stored assignment)", " (allocation failed: ...; control, not assigned)"
    assign: bool  # write an Assignment with the enrollment


def _is_path_classifier(experiment: Experiment) -> bool:
    return any(variant.model_version.startswith(f"{MODEL_NAME}@") for variant in experiment.variants.all())


def running(*, workspace_id: int) -> list[Experiment]:
    """Running model experiments on the path classifier, oldest first; looked up at most every
    loaded.CHECK_SECONDS per process, as the serving versions are (a started or stopped experiment
    reaches every process within that time)."""
    return loaded.looked_up(("model_experiments", workspace_id), lambda: _running(workspace_id))


def _running(workspace_id: int) -> list[Experiment]:
    found = Experiment.objects.filter(
        workspace_id=workspace_id, kind=Experiment.Kind.MODEL, status=Experiment.Status.RUNNING
    ).prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("position")))
    ordered = found.order_by("started_at", "pk")
    return [experiment for experiment in ordered if _is_path_classifier(experiment)]


def policies(*, workspace_id: int, experiments: Sequence[Experiment]) -> dict[int, object]:
    """Each arm's policy by variant id: RULES, a loaded version, or None (unknown or refused)."""
    labels = {
        variant.pk: variant.model_version.strip()
        for experiment in experiments
        for variant in experiment.variants.all()
    }
    versions = {
        version.label: version
        for version in ModelVersion.objects.filter(
            workspace_id=workspace_id,
            name=MODEL_NAME,
            version__in=[label.partition("@")[2] for label in labels.values() if label != RULES],
        )
    }
    found: dict[int, object] = {}
    for variant_id, label in labels.items():
        if label == RULES:
            found[variant_id] = RULES
        else:
            version = versions.get(label)
            found[variant_id] = loaded.version(version) if version is not None else None
    return found


def stored(*, workspace_id: int, experiments: Sequence[Experiment], end_user_ids: Sequence[int]) -> dict:
    """(experiment id, end user id) -> the stored Variant."""
    if not experiments or not end_user_ids:
        return {}
    rows = Assignment.objects.filter(
        workspace_id=workspace_id, experiment__in=list(experiments), end_user_id__in=list(end_user_ids)
    ).select_related("variant")
    return {(row.experiment_id, row.end_user_id): row.variant for row in rows}


def arm_for(*, experiments: Sequence[Experiment], stored_arms: dict, end_user: EndUser) -> Arm | None:
    """The user's arm in the first experiment covering them, else None."""
    for experiment in experiments:
        if not planner.audience_matches(experiment, end_user):
            continue
        if experiment.path_id is not None and not planner.audience_matches(experiment.path, end_user):
            continue
        known = stored_arms.get((experiment.pk, end_user.pk))
        if known is not None:
            return Arm(experiment, known, None, " (stored assignment)", False)
        arm = _allocate(experiment, end_user)
        if arm is not None:
            return arm
    return None


def _allocate(experiment: Experiment, end_user: EndUser) -> Arm | None:
    variants = list(experiment.variants.all())
    try:
        allocated = allocation.allocate(
            seed=experiment.hash_seed,
            user_value=end_user.external_id or "",
            weights_percent=[variant.weight for variant in variants],
            traffic_share=experiment.traffic_share,
        )
    except Exception as error:  # any failure of allocation gives control (recovery rule)
        logger.warning(
            "ml.model_experiment.allocation_failed",
            extra={"experiment_id": experiment.pk, "error": f"{type(error).__name__}: {error}"},
        )
        control = next((variant for variant in variants if variant.is_control), None)
        if control is None:
            return None
        return Arm(experiment, control, None, f" (allocation failed: {error}; control, not assigned)", False)
    if allocated.index < 0:
        return None
    return Arm(experiment, variants[allocated.index], allocated.hash_value, "", True)


def arm_reason(arm: Arm) -> str:
    """ "experiment model-ab, variant candidate (path_classifier@1.3.0), hash 0.2696" (the shape
    experiments/selectors.enrollment_arms recognises, so the enrollment's state lists the arm)."""
    hashed = f", hash {arm.hash_value:.4f}" if arm.hash_value is not None else ""
    return (
        f"experiment {arm.experiment.key}, variant {arm.variant.key} ({arm.variant.model_version})"
        f"{hashed}{arm.how}"
    )
