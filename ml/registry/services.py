"""The model registry's writes: registering a trained version (ml/training calls this), and the
status transitions with their rules and audit (candidate -> shadow -> A/B -> active -> retired).
"""

import logging
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from experiments import services as experiment_services
from experiments.models import Experiment
from ml.features import schema
from ml.models import ModelAlert, ModelVersion
from ml.registry import artifacts, selectors
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


def _store_artifact(workspace, name, version, booster, vocabulary, metrics) -> tuple[str, str, int]:
    """(the file's name in the storage, its sha256, its size in bytes)."""
    content = artifacts.dumps(
        model_name=name, version=version, booster=booster, vocabulary=vocabulary, meta={"metrics": metrics}
    )
    stored, digest = artifacts.save(
        workspace_id=workspace.pk, model_name=name, version=version, content=content
    )
    return stored, digest, len(content)


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
        stored, digest, size = _store_artifact(workspace, name, version, booster, vocabulary, metrics)
        model_version = ModelVersion.objects.create(
            workspace=workspace,
            name=name,
            version=version,
            major=major,
            minor=minor,
            patch=patch,
            artifact=stored,
            artifact_sha256=digest,
            artifact_bytes=size,
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


# --- Transitions ------------------------------------------------------------------------------
# candidate -> shadow -> ab -> active -> retired; retire from any status but retired; promotion
# from ab (from candidate or shadow only with an override); rollback: active -> retired and the
# version it replaced retired -> active. Each one audited ("ml.model_<transition>") and followed by
# `status_changed` (ml/apps.py connects ml.serving.loaded.forget to it: this process serves the new
# status at once, the others within loaded.CHECK_SECONDS; the registry does not import serving).

Status = ModelVersion.Status
REGISTRY_LABEL = "model registry"
# A/B defaults: half of new users in the experiment, split evenly (a quarter get the candidate),
# at least 1000 users per arm and a week before the decision rules may name a winner.
AB_TRAFFIC_SHARE = 0.5
AB_MINIMUM_SAMPLE_PER_ARM = 1000
AB_MINIMUM_DURATION_DAYS = 7
AB_MAXIMUM_DURATION_DAYS = 30
AB_GUARDRAILS = ("onboarding_start_rate",)
CONTROL_ARM, TREATMENT_ARM = "control", "candidate"


def _refuse(field: str, reason: str) -> None:
    raise ValidationError({field: reason})


def _locked_versions(workspace_id: int, name: str) -> dict[int, ModelVersion]:
    """Every version of this model, row-locked: one transition of a model at a time."""
    rows = (
        ModelVersion.objects.select_for_update().filter(workspace_id=workspace_id, name=name).order_by("pk")
    )
    return {row.pk: row for row in rows}


def _audit(model_version: ModelVersion, transition: str, actor, before: str, reason: str = "", **after):
    audit_record(
        workspace=model_version.workspace,
        action=f"ml.model_{transition}",
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label="" if getattr(actor, "pk", None) else REGISTRY_LABEL,
        obj=model_version,
        before={"status": before},
        after={"status": model_version.status, **after},
        reason=reason,
    )


def _move(model_version: ModelVersion, to: str, at: datetime, **fields) -> str:
    before = model_version.status
    model_version.status, model_version.status_changed_at = to, at
    for name, value in fields.items():
        setattr(model_version, name, value)
    model_version.save(update_fields=["status", "status_changed_at", *fields])
    return before


# Sent after every transition, at once and again once the transaction commits (sender: ModelVersion).
status_changed = Signal()


def _swapped() -> None:
    status_changed.send(sender=ModelVersion)
    transaction.on_commit(lambda: status_changed.send(sender=ModelVersion))


def _stop_experiment(experiment: Experiment | None) -> None:
    if experiment is not None and experiment.status == Experiment.Status.RUNNING:
        experiment_services.experiment_stop(experiment=experiment)


def model_to_shadow(*, model_version: ModelVersion, actor=None, reason: str = "") -> ModelVersion:
    """Score live decisions without acting on them (the planner records the agreement)."""
    with transaction.atomic():
        locked = _locked_versions(model_version.workspace_id, model_version.name)[model_version.pk]
        if locked.status != Status.CANDIDATE:
            _refuse("status", f"{locked.label} is {locked.status}: only a candidate goes to shadow")
        before = _move(locked, Status.SHADOW, timezone.now())
        _audit(locked, "shadow", actor, before, reason)
    _swapped()
    return locked


def model_retire(*, model_version: ModelVersion, actor=None, reason: str = "") -> ModelVersion:
    """Take the version out of service; retiring the active one leaves the rules; an A/B's
    experiment is stopped."""
    with transaction.atomic():
        locked = _locked_versions(model_version.workspace_id, model_version.name)[model_version.pk]
        if locked.status == Status.RETIRED:
            _refuse("status", f"{locked.label} is retired already")
        if locked.status == Status.AB:
            _stop_experiment(selectors.model_experiment(workspace=locked.workspace, model_version=locked))
        before = _move(locked, Status.RETIRED, timezone.now())
        _audit(locked, "retire", actor, before, reason)
    _swapped()
    return locked


def model_ab_start(
    *,
    model_version: ModelVersion,
    actor=None,
    traffic_share: float = AB_TRAFFIC_SHARE,
    minimum_sample_per_arm: int = AB_MINIMUM_SAMPLE_PER_ARM,
    minimum_duration_days: int = AB_MINIMUM_DURATION_DAYS,
    maximum_duration_days: int = AB_MAXIMUM_DURATION_DAYS,
) -> Experiment:
    """A running model experiment: control is the active version ("rules" when none is active),
    the candidate the treatment, 50/50, on activation; the version goes to A/B."""
    with transaction.atomic():
        versions = _locked_versions(model_version.workspace_id, model_version.name)
        locked = versions[model_version.pk]
        if locked.status not in (Status.CANDIDATE, Status.SHADOW):
            _refuse(
                "status", f"{locked.label} is {locked.status}: only a candidate or a shadow starts an A/B"
            )
        if locked.name not in selectors.AB_SERVED_MODELS:
            _refuse(
                "name",
                f"the planner serves model experiments of {', '.join(selectors.AB_SERVED_MODELS)} only: "
                f"{locked.name} goes from shadow to active by a promotion with an override reason",
            )
        other = next((each for each in versions.values() if each.status == Status.AB), None)
        if other is not None:
            _refuse("status", f"{other.label} is in A/B already: promote or retire it first")
        active = next((each for each in versions.values() if each.status == Status.ACTIVE), None)
        control = active.label if active is not None else selectors.RULES
        experiment = experiment_services.experiment_create(
            workspace=locked.workspace,
            key=selectors.free_experiment_key(workspace=locked.workspace, model_version=locked),
            name=f"{locked.label} against {control}",
            kind=Experiment.Kind.MODEL,
            variants=[
                {"key": CONTROL_ARM, "weight": 50, "model_version": control},
                {"key": TREATMENT_ARM, "weight": 50, "model_version": locked.label},
            ],
            traffic_share=traffic_share,
            hypothesis=f"{locked.label} activates at least as many users as {control}",
            primary_metric="activation_rate",
            guardrail_metrics=AB_GUARDRAILS,
            minimum_sample_per_arm=minimum_sample_per_arm,
            minimum_duration_days=minimum_duration_days,
            maximum_duration_days=maximum_duration_days,
            owner=actor if getattr(actor, "pk", None) else None,
        )
        experiment = experiment_services.experiment_start(experiment=experiment)
        before = _move(locked, Status.AB, timezone.now())
        _audit(locked, "ab_start", actor, before, experiment=experiment.key, control=control)
    _swapped()
    return experiment


def _conclude(check: "selectors.PromotionCheck") -> None:
    """The promoted version's experiment ends: concluded with the results the promotion was
    judged on, or stopped when nobody was assigned (nothing to conclude from)."""
    experiment = check.experiment
    if experiment is None or experiment.status == Experiment.Status.CONCLUDED:
        return
    if experiment.assignments.exists():
        results = check.decision.results if check.decision is not None else None
        experiment_services.experiment_conclude(experiment=experiment, results=results)
    else:
        _stop_experiment(experiment)


def model_promote(*, model_version: ModelVersion, actor=None, override_reason: str = "") -> ModelVersion:
    """Make the version active, the previous active retired (recorded in `replaced`, what a rollback
    returns to), and conclude its experiment. Allowed when the A/B names it the winner or shows it
    non-inferior (selectors.promotion_check); otherwise only with an override reason, audited as
    "ml.model_promote_override" with the reason."""
    override_reason = (override_reason or "").strip()
    check = selectors.promotion_check(workspace=model_version.workspace, model_version=model_version)
    if not check.allowed and not override_reason:
        _refuse("promotion", f"{check.reason}; promoting anyway needs an override reason, which is audited")
    with transaction.atomic():
        versions = _locked_versions(model_version.workspace_id, model_version.name)
        locked = versions[model_version.pk]
        if locked.status not in (Status.CANDIDATE, Status.SHADOW, Status.AB):
            _refuse(
                "status", f"{locked.label} is {locked.status}: only a candidate, shadow or A/B is promoted"
            )
        now = timezone.now()
        previous = next((each for each in versions.values() if each.status == Status.ACTIVE), None)
        if previous is not None:
            before = _move(previous, Status.RETIRED, now)
            _audit(previous, "retire", actor, before, f"replaced by {locked.label}", replaced_by=locked.label)
        before = _move(locked, Status.ACTIVE, now, activated_at=now, replaced=previous)
        experiment_key = check.experiment.key if check.experiment is not None else ""
        replaced = previous.label if previous is not None else selectors.RULES
        if check.allowed:
            _audit(
                locked,
                "promote",
                actor,
                before,
                replaced=replaced,
                experiment=experiment_key,
                verdict=check.reason,
            )
        else:
            _audit(
                locked,
                "promote_override",
                actor,
                before,
                override_reason,
                replaced=replaced,
                experiment=experiment_key,
                verdict=check.reason,
                override_reason=override_reason,
            )
        _conclude(check)
    _swapped()
    logger.info("ml.model_promoted", extra={"model": locked.label, "override": not check.allowed})
    return locked


def model_rollback(*, workspace: Workspace, name: str, actor=None, reason: str = "") -> ModelVersion:
    """In one step: the active version retired, the one it replaced active again (returned)."""
    with transaction.atomic():
        versions = _locked_versions(workspace.pk, name)
        active = next((each for each in versions.values() if each.status == Status.ACTIVE), None)
        if active is None:
            _refuse("name", f"no version of {name} is active: there is nothing to roll back")
        previous = versions.get(active.replaced_id)
        if previous is None:
            _refuse(
                "name",
                f"{active.label} replaced no version: there is nothing to roll back to "
                "(retire it to return to the rules)",
            )
        now = timezone.now()
        before = _move(active, Status.RETIRED, now)
        _audit(active, "rollback", actor, before, reason, restored=previous.label)
        before = _move(previous, Status.ACTIVE, now, activated_at=now)
        _audit(previous, "rollback", actor, before, reason, rolled_back=active.label)
    _swapped()
    logger.info("ml.model_rolled_back", extra={"model": active.label, "restored": previous.label})
    return previous


def alerts_acknowledge(*, workspace: Workspace, alert_ids, actor=None) -> int:
    """Mark the workspace's alerts seen (those not acknowledged yet); how many were."""
    alerts = list(
        ModelAlert.objects.filter(workspace=workspace, pk__in=list(alert_ids), acknowledged_at=None)
    )
    now = timezone.now()
    for alert in alerts:
        alert.acknowledged_at = now
        alert.save(update_fields=["acknowledged_at"])
        audit_record(
            workspace=workspace,
            action="ml.alert_acknowledge",
            actor=actor if getattr(actor, "pk", None) else None,
            obj=alert,
            after={"acknowledged_at": now.isoformat()},
        )
    return len(alerts)
