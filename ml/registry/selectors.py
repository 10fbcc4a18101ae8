"""The model registry's reads, each scoped to a workspace: a version's model experiment, whether
it may be promoted (and why not), its transitions, and the models an admin can roll back.

Promotion (issue 16, "Registry and promotion") needs the candidate's model experiment to either
- name the candidate the winner (experiments.decisions: chance to win >= 95 %, risk under the
  threshold, every arm at its minimum sample and the minimum duration passed), or
- show it non-inferior on activation: every arm has the experiment's minimum sample per arm, the
  results are healthy (no sample ratio mismatch, no guardrail harmed), and the lower bound of the
  95 % confidence interval of (candidate - control) activation rate, in absolute terms (Welch,
  experiments.results' ci_absolute), lies above -NON_INFERIORITY_MARGIN (1 percentage point):
  the candidate may be no better, but is shown to lose at most a point of activation.
The A/B must also still compare against what is active now: after a rollback or another promotion
its control is stale.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from experiments import decisions
from experiments.models import Experiment, Variant
from experiments.results import ExperimentResults
from ml.models import ModelAlert, ModelVersion
from tenancy.models import AuditLog, Workspace

RULES = "rules"  # a model experiment's arm when no version is active: the planner's rules
# Models whose experiments the planner serves (ml/serving/arms.py): the stuck detector and the
# response predictor act on nudges, not on path entry, so an A/B of theirs would never assign anyone.
AB_SERVED_MODELS = ("path_classifier",)
NON_INFERIORITY_MARGIN = 0.01  # absolute activation rate: 1 percentage point


@dataclass(frozen=True)
class PromotionCheck:
    allowed: bool
    reason: str  # a sentence a person reads: why it may, or may not, be promoted
    experiment: Experiment | None = None
    decision: decisions.Decision | None = None


def versions(*, workspace: Workspace, name: str) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(workspace=workspace, name=name).order_by("-major", "-minor", "-patch")


def active_version(*, workspace: Workspace, name: str) -> ModelVersion | None:
    return versions(workspace=workspace, name=name).filter(status=ModelVersion.Status.ACTIVE).first()


def model_experiment(*, workspace: Workspace, model_version: ModelVersion) -> Experiment | None:
    """The latest model experiment with this version as its treatment arm."""
    return (
        Experiment.objects.filter(
            workspace=workspace,
            kind=Experiment.Kind.MODEL,
            variants__position__gt=0,
            variants__model_version=model_version.label,
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def free_experiment_key(*, workspace: Workspace, model_version: ModelVersion) -> str:
    """model-path-classifier-1-2-0, with -2, -3 ... when an A/B of the version ran before."""
    base = f"model-{model_version.name}-{model_version.version}".replace("_", "-").replace(".", "-")
    taken = set(
        Experiment.objects.filter(workspace=workspace, key__startswith=base).values_list("key", flat=True)
    )
    key, number = base, 1
    while key in taken:
        number += 1
        key = f"{base}-{number}"
    return key


def _points(value: float) -> str:
    return f"{value * 100:+.2f} pp"


def non_inferiority(
    experiment: Experiment, results: ExperimentResults | None, arm_key: str
) -> tuple[bool, str]:
    """(non-inferior?, why): see the module's docstring."""
    if results is None or results.control is None:
        return False, "no results yet"
    arm = next((each for each in results.arms if each.key == arm_key), None)
    if arm is None:
        return False, f"no arm {arm_key!r} in the results"
    users = f"{results.control.users:,}/{arm.users:,} users"
    if min(arm.users, results.control.users) < experiment.minimum_sample_per_arm:
        return False, f"{users}, fewer than the minimum {experiment.minimum_sample_per_arm:,} per arm"
    unhealthy = [check.detail for check in results.health if check.name == "srm" and not check.ok]
    unhealthy += [row.detail for row in results.guardrails if row.harmed]
    if unhealthy:
        return False, "the results cannot be trusted: " + "; ".join(unhealthy)
    if arm.ci_absolute is None or arm.uplift_absolute is None:
        return False, arm.message or "no comparison yet"
    low, high = arm.ci_absolute
    shown = (
        f"candidate - control {_points(arm.uplift_absolute)}, 95% CI [{_points(low)}, {_points(high)}], "
        f"margin -{NON_INFERIORITY_MARGIN * 100:.2f} pp, {users}"
    )
    if low > -NON_INFERIORITY_MARGIN:
        return True, f"non-inferior on activation: {shown}"
    return False, f"not shown non-inferior on activation: {shown}"


def promotion_check(
    *, workspace: Workspace, model_version: ModelVersion, at: datetime | None = None
) -> PromotionCheck:
    """May the version be promoted without an override, and why (or why not)."""
    label = model_version.label
    experiment = model_experiment(workspace=workspace, model_version=model_version)
    if experiment is None and model_version.name not in AB_SERVED_MODELS:
        return PromotionCheck(False, f"{label} has no A/B result: {model_version.name} is not A/B tested")
    if experiment is None:
        return PromotionCheck(False, f"{label} has no A/B result: start an A/B first")
    arms = list(Variant.objects.filter(experiment=experiment).order_by("position"))
    control, treatment = arms[0], arms[-1]
    active = active_version(workspace=workspace, name=model_version.name)
    now_active = active.label if active is not None and active.pk != model_version.pk else RULES
    if control.model_version != now_active:
        return PromotionCheck(
            False,
            f"the A/B {experiment.key} compared {label} with {control.model_version}, but {now_active} "
            "is active now: start a new A/B",
            experiment,
        )
    decision = decisions.evaluate(experiment, at=at)
    if decision.action == decisions.DEFER:
        return PromotionCheck(False, f"the A/B {experiment.key}: {decision.reason}", experiment, decision)
    if decision.action == decisions.WINNER and decision.winner == treatment.key:
        return PromotionCheck(
            True,
            f"the A/B {experiment.key} names {label} the winner: {decision.reason}",
            experiment,
            decision,
        )
    ok, why = non_inferiority(experiment, decision.results, treatment.key)
    if ok:
        return PromotionCheck(True, f"the A/B {experiment.key}: {why}", experiment, decision)
    return PromotionCheck(
        False,
        f"the A/B {experiment.key} names no winning {label} ({decision.action}: {decision.reason}) and {why}",
        experiment,
        decision,
    )


def transitions(*, workspace: Workspace, model_version: ModelVersion) -> QuerySet[AuditLog]:
    """The version's audited transitions (ml.model_*), oldest first."""
    return AuditLog.objects.filter(
        workspace=workspace,
        object_type=ModelVersion._meta.label,
        object_id=str(model_version.pk),
        action__startswith="ml.model_",
    ).order_by("created_at", "pk")


def alerts(*, workspace: Workspace, model_version: ModelVersion) -> QuerySet[ModelAlert]:
    return ModelAlert.objects.filter(workspace=workspace, model_version=model_version).order_by("-created_at")


def rollbacks(*, workspaces: QuerySet[Workspace]) -> list[ModelVersion]:
    """Active versions that replaced another: each offers "Roll back <name>"."""
    return list(
        ModelVersion.objects.filter(
            workspace__in=workspaces, status=ModelVersion.Status.ACTIVE, replaced__isnull=False
        )
        .select_related("workspace", "replaced")
        .order_by("workspace__name", "name")
    )
