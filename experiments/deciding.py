"""The planner's experiment decider (paths.deciders): at path entry, a running path experiment
whose path's audience and own audience match the user, and whose traffic covers them, assigns
an arm; the enrollment starts on that arm's path version.

Sticky: a user already assigned in the experiment keeps the stored arm, whatever the weights
and traffic say now. If allocation fails, the user gets control (position 0) and the reason
names the failure; no assignment is written for them (they were not randomised). Users outside
the coverage go on to the model, the rules and the default.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Prefetch, prefetch_related_objects

from core.db.prepared import PreparedQuery
from experiments import allocation
from experiments.models import Assignment, Experiment, Variant
from paths import deciders, planner
from paths.models import PathVersion
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

SOURCE = "experiment"
ORDER = 10  # before the model (20) and the rules


@dataclass(slots=True)
class Prepared:
    """A workspace's running path experiments (oldest first) and the batch users' stored arms."""

    experiments: list[Experiment]
    stored: dict[tuple[int, int], Variant] = field(default_factory=dict)  # (experiment, user) -> arm


@dataclass(frozen=True, slots=True)
class AssignmentDraft:
    experiment_id: int
    variant_id: int
    hash_value: float


_RUNNING = PreparedQuery(
    lambda workspace_id, kind, status: (
        Experiment.objects.filter(workspace_id=workspace_id, kind=kind, status=status)
        .select_related("path")
        .order_by("started_at", "pk")
    ),
    -1,
    "-kind",
    "-status",
)


def assignments_record(*, chosen: Sequence[tuple[object, AssignmentDraft]]) -> None:
    """One INSERT for the batch's assignments (path experiments here, model experiments in the ML
    layer), assigned at the enrolment; a row already there (same user, same experiment) wins: an
    assignment is never rewritten."""
    Assignment.objects.bulk_create(
        [
            Assignment(
                workspace_id=enrollment.workspace_id,
                experiment_id=draft.experiment_id,
                end_user_id=enrollment.end_user_id,
                variant_id=draft.variant_id,
                enrollment_id=enrollment.pk,
                assigned_at=enrollment.enrolled_at,
                hash_value=draft.hash_value,
            )
            for enrollment, draft in chosen
        ],
        ignore_conflicts=True,
    )


def running_path_experiments(*, workspace_id: int) -> list[Experiment]:
    """Compiled once per process (every identify asks); the arms are read only when one runs."""
    experiments = _RUNNING.all(workspace_id, Experiment.Kind.PATH.value, Experiment.Status.RUNNING.value)
    if experiments:
        variants = Prefetch("variants", queryset=Variant.objects.select_related("path_version__path"))
        prefetch_related_objects(experiments, variants)
    return experiments


def _weights(experiment: Experiment) -> str:
    return "/".join(str(variant.weight) for variant in experiment.variants.all())


def _arm_reason(experiment: Experiment, variant: Variant, hash_value: float | None, how: str) -> str:
    hashed = f", hash {hash_value:.4f}" if hash_value is not None else ""
    return f"experiment {experiment.key}, variant {variant.key}, {_weights(experiment)}{hashed}{how}"


class PathExperimentDecider:
    source = SOURCE

    def prepare(self, *, workspace_id: int, end_user_ids: Sequence[int]) -> Prepared:
        experiments = running_path_experiments(workspace_id=workspace_id)
        prepared = Prepared(experiments)
        if experiments and end_user_ids:
            stored = Assignment.objects.filter(
                workspace_id=workspace_id, experiment__in=experiments, end_user_id__in=list(end_user_ids)
            ).select_related("variant__path_version__path")
            prepared.stored = {(row.experiment_id, row.end_user_id): row.variant for row in stored}
        return prepared

    def decide(
        self, *, end_user: EndUser, published: list[PathVersion], prepared: Prepared | None
    ) -> deciders.Choice | None:
        if prepared is None:
            return None
        for experiment in prepared.experiments:
            if not (
                planner.audience_matches(experiment.path, end_user)
                and planner.audience_matches(experiment, end_user)
            ):
                continue
            stored = prepared.stored.get((experiment.pk, end_user.pk))
            if stored is not None:
                return deciders.Choice(
                    stored.path_version, _arm_reason(experiment, stored, None, " (stored assignment)")
                )
            choice = self._allocate(experiment, end_user)
            if choice is not None:
                return choice
        return None

    def _allocate(self, experiment: Experiment, end_user: EndUser) -> deciders.Choice | None:
        variants = list(experiment.variants.all())
        try:
            allocated = allocation.allocate(
                seed=experiment.hash_seed,
                user_value=end_user.external_id or "",
                weights_percent=[variant.weight for variant in variants],
                traffic_share=experiment.traffic_share,
            )
        except Exception as error:  # any failure of allocation gives control (recovery rule)
            return self._control(experiment, variants, error)
        if allocated.index < 0:
            return None  # outside the traffic coverage: the next decider, the rules, the default
        variant = variants[allocated.index]
        draft = AssignmentDraft(experiment.pk, variant.pk, allocated.hash_value)
        return deciders.Choice(
            variant.path_version, _arm_reason(experiment, variant, allocated.hash_value, ""), draft
        )

    def _control(
        self, experiment: Experiment, variants: list[Variant], error: Exception
    ) -> deciders.Choice | None:
        logger.warning(
            "experiments.allocation.failed",
            extra={"experiment_id": experiment.pk, "error": f"{type(error).__name__}: {error}"},
        )
        control = next((variant for variant in variants if variant.is_control), None)
        if control is None or control.path_version is None:
            raise allocation.AllocationError(
                f"experiment {experiment.key} has no control arm to fall back on"
            )
        reason = (
            f"experiment {experiment.key}: allocation failed ({error}); control {control.key}, not assigned"
        )
        return deciders.Choice(control.path_version, reason)

    def record(self, *, chosen: list[tuple[object, AssignmentDraft]]) -> None:
        assignments_record(chosen=chosen)


DECIDER = PathExperimentDecider()
