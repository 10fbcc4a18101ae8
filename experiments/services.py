"""Writes of experiments: create, start, stop, conclude, reweigh. Each one transaction, each
refusal a ValidationError naming the field and the reason, with nothing changed.

Status only moves forward: draft -> running -> stopped -> concluded (running -> concluded too).
Arms of a path experiment are immutable versions of the experiment's path: the published one or
one that was published before (archived); a draft is editable, so it cannot be an arm.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from string import ascii_uppercase
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments import decisions
from experiments.models import Experiment, Variant
from experiments.results import ExperimentResults, compute_results, results_as_dict
from experiments.validation import (
    audiences_overlap,
    check_audience_and_variants,
    check_metrics,
    check_payloads,
    check_weights,
)
from nudges.content.versions import ActivationRefused, template_version_activate
from nudges.models import TemplateVersion
from paths import services as path_services
from paths.models import Path, PathVersion
from tenancy.audit import audit_record
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

Status = Experiment.Status
FORWARD = {
    Status.DRAFT: {Status.RUNNING},
    Status.RUNNING: {Status.STOPPED, Status.CONCLUDED},
    Status.STOPPED: {Status.CONCLUDED},
    Status.CONCLUDED: set(),
}
STAMPS = {Status.RUNNING: "started_at", Status.STOPPED: "stopped_at", Status.CONCLUDED: "concluded_at"}


def _arms(variants: Sequence[Mapping[str, Any]]) -> list[Variant]:
    return [
        Variant(
            key=variant["key"],
            position=position,
            weight=int(variant["weight"]),
            path_version=variant.get("path_version"),
            template_version=variant.get("template_version"),
            model_version=variant.get("model_version", ""),
        )
        for position, variant in enumerate(variants)
    ]


@transaction.atomic
def experiment_create(
    *,
    workspace: Workspace,
    key: str,
    name: str,
    kind: str = Experiment.Kind.PATH,
    path: Path | None = None,
    variants: Sequence[Mapping[str, Any]],
    traffic_share: float = 1.0,
    seed: str = "",
    hypothesis: str = "",
    audience: Mapping[str, Sequence[str]] | None = None,
    primary_metric: str = "activation_rate",
    guardrail_metrics: Sequence[str] = (),
    minimum_sample_per_arm: int = 1000,
    minimum_duration_days: int = 7,
    maximum_duration_days: int = 30,
    owner: AbstractBaseUser | None = None,
) -> Experiment:
    """A draft experiment with its arms, in order (the first is control). Each variant is
    {"key", "weight", and "path_version" | "template_version" | "model_version"}."""
    if Experiment.objects.filter(workspace=workspace, key=key).exists():
        raise ValidationError({"key": f"an experiment {key!r} exists already in this workspace"})
    if not 0 <= traffic_share <= 1:
        raise ValidationError({"traffic_share": "must be between 0 and 1"})
    if minimum_duration_days > maximum_duration_days:
        raise ValidationError({"minimum_duration_days": "must not exceed maximum_duration_days"})
    check_metrics(primary_metric, guardrail_metrics)
    check_audience_and_variants(audience, variants)
    experiment = Experiment(
        workspace=workspace,
        key=key,
        name=name,
        kind=kind,
        path=path,
        traffic_share=traffic_share,
        seed=seed,
        hypothesis=hypothesis,
        primary_metric=primary_metric,
        guardrail_metrics=list(guardrail_metrics),
        minimum_sample_per_arm=minimum_sample_per_arm,
        minimum_duration_days=minimum_duration_days,
        maximum_duration_days=maximum_duration_days,
        owner=owner,
        **{Experiment.AUDIENCE_FIELDS[feature]: list(values) for feature, values in (audience or {}).items()},
    )
    arms = _arms(variants)
    check_payloads(experiment, arms)
    experiment.save()
    for arm in arms:
        arm.experiment = experiment
    Variant.objects.bulk_create(arms)
    logger.info("experiments.created", extra={"experiment_id": experiment.pk, "kind": kind})
    return experiment


def create_path_experiment(
    *,
    path: Path,
    versions: Sequence[PathVersion],
    key: str,
    name: str = "",
    weights: Sequence[int] | None = None,
    **options: Any,
) -> Experiment:
    """A draft experiment on a path with these versions as arms A, B, C... (A is control),
    equal weights unless given (the remainder of 100 goes to the first arms)."""
    if weights is None:
        count = max(len(versions), 1)
        weights = [100 // count + (1 if index < 100 % count else 0) for index in range(len(versions))]
    if len(weights) != len(versions):
        raise ValidationError({"variants": "one weight per version"})
    variants = [
        {"key": ascii_uppercase[index], "weight": weight, "path_version": version}
        for index, (version, weight) in enumerate(zip(versions, weights, strict=True))
    ]
    return experiment_create(
        workspace=path.workspace, key=key, name=name or key, path=path, variants=variants, **options
    )


def _locked(experiment: Experiment) -> Experiment:
    return (
        Experiment.objects.select_for_update(of=("self",))
        .select_related("workspace", "path")
        .get(pk=experiment.pk)
    )


def _move(locked: Experiment, to: str, at: datetime | None) -> Experiment:
    if to not in FORWARD[locked.status]:
        raise ValidationError(
            {"status": f"a {locked.status} experiment cannot become {to}: status only moves forward"}
        )
    locked.status = to
    setattr(locked, STAMPS[to], at or timezone.now())
    locked.save(update_fields=["status", STAMPS[to]])
    logger.info("experiments.status", extra={"experiment_id": locked.pk, "status": to})
    return locked


def _check_template_arms_sendable(variants: list[Variant]) -> None:
    """A draft is unapproved copy and a retired version is withdrawn: neither may be sent."""
    for variant in variants:
        version = variant.template_version
        if version.status not in (TemplateVersion.Status.APPROVED, TemplateVersion.Status.ACTIVE):
            raise ValidationError(
                {
                    "variants": f"variant {variant.key}: template version {version.number} is "
                    f"{version.status}; only an approved or active version may be sent: approve it first"
                }
            )


def _check_startable(locked: Experiment) -> None:
    variants = list(locked.variants.select_related("path_version__path", "template_version__template"))
    check_weights([variant.weight for variant in variants])
    check_payloads(locked, variants)
    if locked.kind == Experiment.Kind.TEMPLATE:
        _check_template_arms_sendable(variants)
    if locked.kind != Experiment.Kind.PATH:
        return
    for variant in variants:
        version = variant.path_version
        if version.status == PathVersion.Status.DRAFT or version.published_at is None:
            raise ValidationError(
                {
                    "variants": f"variant {variant.key}: v{version.number} was never published; a draft is "
                    "editable, and an arm must not change while it runs: publish it first"
                }
            )
    others = Experiment.objects.filter(path=locked.path, status=Status.RUNNING).exclude(pk=locked.pk)
    for other in others:
        if audiences_overlap(locked, other):
            raise ValidationError(
                {
                    "audience": f"experiment {other.key} is running on path '{locked.path.key}' "
                    "for an overlapping audience"
                }
            )


@transaction.atomic
def experiment_start(*, experiment: Experiment, at: datetime | None = None) -> Experiment:
    locked = _locked(experiment)
    if locked.path_id is not None:
        Path.objects.select_for_update().get(pk=locked.path_id)  # serializes starts on one path
    if locked.status == Status.DRAFT:
        _check_startable(locked)
    return _move(locked, Status.RUNNING, at)


@transaction.atomic
def experiment_stop(*, experiment: Experiment, at: datetime | None = None) -> Experiment:
    return _move(_locked(experiment), Status.STOPPED, at)


@transaction.atomic
def experiment_conclude(
    *, experiment: Experiment, at: datetime | None = None, results: ExperimentResults | None = None
) -> Experiment:
    """Conclude, with the results frozen as they stand (or as given: the ones a rollout judged):
    the experiment's page shows that copy from then on."""
    locked = _locked(experiment)
    if Status.CONCLUDED in FORWARD[locked.status] and not locked.assignments.exists():
        raise ValidationError({"status": "no user was assigned: there is nothing to conclude from"})
    if Status.CONCLUDED in FORWARD[locked.status]:
        at = at or timezone.now()
        frozen = replace(results or compute_results(locked, at=at), status=Status.CONCLUDED)
        locked.final_results = results_as_dict(frozen)
        locked.save(update_fields=["final_results"])
    return _move(locked, Status.CONCLUDED, at)


@transaction.atomic
def experiment_allocation_update(
    *, experiment: Experiment, weights: Mapping[str, int] | None = None, traffic_share: float | None = None
) -> Experiment:
    """New weights (by variant key) or traffic share, for users not yet assigned; an assigned
    user keeps the stored arm."""
    locked = _locked(experiment)
    if locked.status == Status.CONCLUDED:
        raise ValidationError({"status": "a concluded experiment does not change"})
    variants = {variant.key: variant for variant in locked.variants.all()}
    if weights is not None:
        if set(weights) != set(variants):
            raise ValidationError({"variants": f"give a weight for each of {sorted(variants)}"})
        check_weights([int(weight) for weight in weights.values()])
        for key, weight in weights.items():
            variants[key].weight = int(weight)
        Variant.objects.bulk_update(list(variants.values()), ["weight"])
    if traffic_share is not None:
        if not 0 <= traffic_share <= 1:
            raise ValidationError({"traffic_share": "must be between 0 and 1"})
        locked.traffic_share = traffic_share
        locked.save(update_fields=["traffic_share"])
    return locked


# --- Decisions and rollout -------------------------------------------------------------------

DECISION_JOB = "experiment decision job"


def experiment_decide(*, experiment: Experiment, at: datetime | None = None) -> decisions.Decision:
    """Evaluate a running experiment and act: record the decision; on "stop" stop it, on "extend"
    move its planned end, both audited. A winner is recorded, never rolled out here. The analysis
    runs before the lock (it reads for up to a couple of seconds); idempotent for one ``at``."""
    decision = decisions.evaluate(experiment, at=at)
    with transaction.atomic():
        locked = _locked(experiment)
        if locked.status != Status.RUNNING:
            return decision
        locked.last_decision, locked.last_decision_at = decision.as_dict(), decision.evaluated_at
        locked.save(update_fields=["last_decision", "last_decision_at"])
        if decision.action == decisions.EXTEND:
            before = {"planned_duration_days": locked.planned_duration_days or locked.minimum_duration_days}
            locked.planned_duration_days = decision.planned_duration_days
            locked.save(update_fields=["planned_duration_days"])
            after = {"planned_duration_days": locked.planned_duration_days}
            _audit(locked, "experiment.extend", None, before, after, decision.reason)
        elif decision.action == decisions.STOP:
            _move(locked, Status.STOPPED, decision.evaluated_at)
            _audit(
                locked,
                "experiment.stop",
                None,
                {"status": Status.RUNNING},
                {"status": Status.STOPPED},
                decision.reason,
            )
    logger.info(
        "experiments.decided",
        extra={"experiment_id": experiment.pk, "action": decision.action, "winner": decision.winner},
    )
    return decision


def _audit(experiment: Experiment, action: str, actor, before: dict, after: dict, reason: str) -> None:
    audit_record(
        workspace=experiment.workspace,
        action=action,
        actor=actor,
        actor_label="" if getattr(actor, "pk", None) else DECISION_JOB,
        obj=experiment,
        before=before,
        after=after,
        reason=reason,
    )


def _publish_path_arm(variant: Variant, actor) -> dict[str, Any]:
    version = variant.path_version
    if version.status == PathVersion.Status.PUBLISHED:
        return {"path_version": version.number, "published": False}
    try:
        path_services.path_version_republish(path_version=version, published_by=actor)
    except path_services.PathError as error:
        raise ValidationError({"winner": f"variant {variant.key}: {error}"}) from error
    return {"path_version": version.number, "published": True}


def _activate_template_arm(variant: Variant, actor) -> dict[str, Any]:
    version = variant.template_version
    if version.status == TemplateVersion.Status.ACTIVE:
        return {"template_version": version.number, "activated": False}
    try:
        template_version_activate(version=version, actor=actor)
    except ActivationRefused as error:
        raise ValidationError({"winner": f"variant {variant.key}: {error}"}) from error
    return {"template_version": version.number, "activated": True}


def experiment_rollout(*, experiment: Experiment, actor: AbstractBaseUser | None) -> Experiment:
    """Roll out the winner the decision rules name now: publish its path version (re-publish it
    if archived; nothing to do if it is the published one) or activate its template version;
    audited; then conclude with the results the decision was taken on, frozen. Refused, with
    nothing changed, when there is no data, no winner, or the experiment is concluded."""
    if experiment.status in (Status.DRAFT, Status.CONCLUDED):
        raise ValidationError({"status": f"a {experiment.status} experiment has nothing to roll out"})
    if not experiment.assignments.exists():
        raise ValidationError({"status": "no user was assigned: there is no data to pick a winner from"})
    if experiment.kind == Experiment.Kind.MODEL:
        raise ValidationError({"kind": "a model experiment's winner is promoted in the model registry"})
    decision = decisions.evaluate(experiment)
    if decision.action != decisions.WINNER:
        raise ValidationError({"winner": f"no winner to roll out ({decision.action}): {decision.reason}"})
    with transaction.atomic():
        variant = Variant.objects.select_related("path_version", "template_version").get(
            experiment=experiment, key=decision.winner
        )
        if experiment.kind == Experiment.Kind.PATH:
            done = _publish_path_arm(variant, actor)
        else:
            done = _activate_template_arm(variant, actor)
        _audit(
            experiment,
            "experiment.rollout",
            actor,
            {"status": experiment.status},
            {"winner": variant.key, **done},
            decision.reason,
        )
        concluded = experiment_conclude(experiment=experiment, results=decision.results)
    logger.info("experiments.rolled_out", extra={"experiment_id": experiment.pk, "winner": variant.key})
    return concluded
