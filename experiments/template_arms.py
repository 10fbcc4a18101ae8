"""The composer's experiment chooser (nudges.content.choosers): when a nudge is composed, a running
template experiment on the chosen template whose audience matches the user, and whose traffic
covers them, picks the arm's template version; the reason lands in the nudge's trace
("experiment welcome-copy, variant B, 50/50, hash 0.7312").

Sticky: the Assignment is written the first time (get_or_create on its unique constraint, so
two workers composing for one user at once agree on one row), and from then on the stored arm
wins whatever the weights, the traffic or the user's traits say now. If allocation fails (no
external id to hash, weights not summing to 100, an arm that cannot be sent), the user gets
control with the reason and no assignment (they were not randomised); with no usable control
either, the chooser raises and the bandit decides. Users outside the coverage or the audience
are left to the bandit. Draft, stopped and concluded experiments are never used.

The Exposure (first, last, count) is counted when a nudge of the arm's version is actually sent
(`sent`, after the send's commit), not when it is composed: a nudge that is composed and then
fails, or is deferred, exposes nobody yet.
"""

import logging
from datetime import datetime

from django.db.models import F, Prefetch, Value
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from experiments import allocation
from experiments.models import Assignment, Experiment, Exposure, Variant
from nudges.content import choosers
from nudges.models import Nudge, NudgeTemplate
from paths import planner
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

SOURCE = "experiment"
CHOOSER_ORDER = 10  # the only chooser so far; lower chooses first


def running_template_experiments(*, workspace_id: int, template_id: int) -> list[Experiment]:
    """The workspace's running template experiments with an arm on the template, oldest first."""
    variants = Prefetch("variants", queryset=Variant.objects.select_related("template_version"))
    return list(
        Experiment.objects.filter(
            workspace_id=workspace_id,
            kind=Experiment.Kind.TEMPLATE,
            status=Experiment.Status.RUNNING,
            variants__template_version__template_id=template_id,
        )
        .distinct()
        .prefetch_related(variants)
        .order_by("started_at", "pk")
    )


def arm_reason(experiment: Experiment, variant: Variant, hash_value: float | None, how: str = "") -> str:
    weights = "/".join(str(arm.weight) for arm in experiment.variants.all())
    hashed = f", hash {hash_value:.4f}" if hash_value is not None else ""
    return f"experiment {experiment.key}, variant {variant.key}, {weights}{hashed}{how}"


def _sendable(variant: Variant, template: NudgeTemplate) -> None:
    """Raises AllocationError naming the arm when its version cannot go out on this template."""
    if variant.template_version is None:
        raise allocation.AllocationError(f"variant {variant.key} has no template version")
    try:
        choosers.check_sendable(template, variant.template_version)
    except choosers.UnsendablePick as error:
        raise allocation.AllocationError(f"variant {variant.key}: {error}") from error


class TemplateExperimentChooser:
    source = SOURCE

    def choose(self, *, template: NudgeTemplate, end_user: EndUser) -> choosers.Pick | None:
        experiments = running_template_experiments(
            workspace_id=end_user.workspace_id, template_id=template.pk
        )
        if not experiments:
            return None
        stored = {
            row.experiment_id: row
            for row in Assignment.objects.filter(
                workspace_id=end_user.workspace_id, experiment__in=experiments, end_user=end_user
            )
        }
        for experiment in experiments:
            assignment = stored.get(experiment.pk)
            if assignment is not None:
                return self._stored(experiment, assignment, template)
            if not planner.audience_matches(experiment, end_user):
                continue
            picked = self._allocate(experiment, template, end_user)
            if picked is not None:
                return picked
        return None

    def _stored(
        self, experiment: Experiment, assignment: Assignment, template: NudgeTemplate
    ) -> choosers.Pick:
        variants = list(experiment.variants.all())
        variant = next(arm for arm in variants if arm.pk == assignment.variant_id)
        try:
            _sendable(variant, template)
        except allocation.AllocationError as error:
            return self._control(experiment, variants, template, error, assigned=True)
        return choosers.Pick(
            variant.template_version, arm_reason(experiment, variant, None, " (stored assignment)")
        )

    def _allocate(
        self, experiment: Experiment, template: NudgeTemplate, end_user: EndUser
    ) -> choosers.Pick | None:
        variants = list(experiment.variants.all())
        try:
            for variant in variants:
                _sendable(variant, template)
            allocated = allocation.allocate(
                seed=experiment.hash_seed,
                user_value=end_user.external_id or "",
                weights_percent=[variant.weight for variant in variants],
                traffic_share=experiment.traffic_share,
            )
            if allocated.index < 0:
                return None  # outside the traffic coverage: the bandit decides
            variant = variants[allocated.index]
            assignment, created = Assignment.objects.get_or_create(
                experiment=experiment,
                end_user=end_user,
                defaults={
                    "workspace_id": end_user.workspace_id,
                    "variant": variant,
                    "assigned_at": timezone.now(),
                    "hash_value": allocated.hash_value,
                },
            )
        except Exception as error:  # any failure of allocation gives control (recovery rule)
            return self._control(experiment, variants, template, error)
        if not created:  # another worker assigned the user meanwhile: theirs is the arm
            return self._stored(experiment, assignment, template)
        return choosers.Pick(variant.template_version, arm_reason(experiment, variant, allocated.hash_value))

    def _control(
        self,
        experiment: Experiment,
        variants: list[Variant],
        template: NudgeTemplate,
        error: Exception,
        *,
        assigned: bool = False,
    ) -> choosers.Pick:
        """Control, when the arm cannot be worked out or sent; `assigned`: the user keeps their
        stored assignment (the analysis counts them in it), this nudge is control's."""
        logger.warning(
            "experiments.allocation.failed",
            extra={"experiment_id": experiment.pk, "error": f"{type(error).__name__}: {error}"},
        )
        control = next((variant for variant in variants if variant.is_control), None)
        if control is None:
            raise allocation.AllocationError(f"experiment {experiment.key} has no control arm") from error
        try:
            _sendable(control, template)
        except allocation.AllocationError as unusable:
            raise allocation.AllocationError(
                f"experiment {experiment.key}: allocation failed ({error}) "
                f"and control cannot be sent ({unusable})"
            ) from error
        if assigned:
            why, outcome = "the stored arm cannot be sent", f"control {control.key}"
        else:
            why, outcome = "allocation failed", f"control {control.key}, not assigned"
        reason = f"experiment {experiment.key}: {why} ({error}); {outcome}"
        return choosers.Pick(control.template_version, reason)

    def sent(self, *, nudge: Nudge) -> None:
        """Count an exposure for each of the user's assignments in a running template experiment
        whose arm is the version just sent."""
        assignments = Assignment.objects.filter(
            workspace_id=nudge.workspace_id,
            end_user_id=nudge.end_user_id,
            experiment__kind=Experiment.Kind.TEMPLATE,
            experiment__status=Experiment.Status.RUNNING,
            variant__template_version_id=nudge.template_version_id,
        ).values_list("pk", flat=True)
        for assignment_id in assignments:
            exposure_record(assignment_id=assignment_id, at=nudge.sent_at or timezone.now())


def exposure_record(*, assignment_id: int, at: datetime) -> None:
    """One more exposure: the row is created the first time (get_or_create on its one-to-one
    key, race-safe), later ones add to its count in the UPDATE, so concurrent sends all count."""
    _, created = Exposure.objects.get_or_create(
        assignment_id=assignment_id, defaults={"first_exposed_at": at, "last_exposed_at": at, "count": 1}
    )
    if not created:
        Exposure.objects.filter(assignment_id=assignment_id).update(
            count=F("count") + 1,
            first_exposed_at=Least(F("first_exposed_at"), Value(at)),
            last_exposed_at=Greatest(F("last_exposed_at"), Value(at)),
        )


CHOOSER = TemplateExperimentChooser()
