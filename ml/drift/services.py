"""The weekly drift check of every active model version: PSI per feature between its training
data and the last week's inputs, and its accuracy (AUC) on outcomes that matured since training.

Thresholds (ml/drift/psi.py explains PSI):

* PSI > 0.25 on any feature -> a `drift` ModelAlert (0.1-0.25 is shown on the dashboard only);
* accuracy drop = (auc_then - auc_now) / auc_then, auc_then being the validation AUC stored with
  the version (ModelVersion.metrics["auc"], ml/training) and auc_now the AUC of the loaded model
  on the outcomes matured since training_window_end; a drop over MAX_ACCURACY_DROP (5%) ->
  an `accuracy_drop` ModelAlert and a retraining (ml.training.jobs.train_models_job, queue
  "low"), whose new candidate goes through shadow and A/B like any other. A retraining started
  for the version less than RETRAIN_COOLDOWN ago is not started again (the job is safe to rerun);
* with fewer than MIN_MATURED matured outcomes (or one class only) the AUC is not judged: the
  report says so and nothing is retrained.

Each model's samples (training window, last week, matured since) come from ml/drift/samples.py.
Alerts are logged and stored as
ModelAlert rows (the ML dashboard lists the open ones); analytics' notify() sends only its own
anomaly alerts, so no email or webhook goes out for them.
"""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from core import jobs
from ml.drift import psi
from ml.drift.samples import RECENT, SAMPLES, Samples
from ml.models import DriftReport, ModelAlert, ModelVersion
from ml.serving import loaded
from ml.training import evaluation

logger = logging.getLogger(__name__)

MAX_ACCURACY_DROP = 0.05
MIN_MATURED = 200
MIN_PSI_ROWS = 50  # rows a side below which PSI is not computed (noise of about 9 / n)
RETRAIN_COOLDOWN = timedelta(days=6)
RETRAIN_JOB = "ml.training.jobs.train_models_job"


def _auc_now(model_version: ModelVersion, samples: Samples) -> float | None:
    """The loaded model's AUC on the matured outcomes; None when too few or one class only."""
    if len(samples.labels) < MIN_MATURED:
        return None
    serving = loaded.version(model_version)
    if serving is None:
        return None
    scores = serving.predictor.predict(serving.predictor.matrix(samples.matured))
    return evaluation.auc(samples.labels, scores)


def _stored_auc(model_version: ModelVersion) -> float | None:
    value = (model_version.metrics or {}).get("auc")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _retrained_lately(model_version: ModelVersion, now: datetime) -> bool:
    return DriftReport.objects.filter(
        model_version=model_version, retraining_started=True, computed_at__gt=now - RETRAIN_COOLDOWN
    ).exists()


def drift_check(*, model_version: ModelVersion, now: datetime | None = None) -> DriftReport:
    """Check one version; store its DriftReport, raise its alerts, start a retraining if due."""
    now = now or timezone.now()
    source = SAMPLES.get(model_version.name)
    samples = source(model_version, now) if source else Samples()
    enough = min(len(samples.training), len(samples.recent)) >= MIN_PSI_ROWS
    scores = psi.psi_per_feature(model_version.name, samples.training, samples.recent) if enough else {}
    auc_then, auc_now = _stored_auc(model_version), _auc_now(model_version, samples)
    drop = (auc_then - auc_now) / auc_then if auc_then is not None and auc_now is not None else None
    retrain = drop is not None and drop > MAX_ACCURACY_DROP and not _retrained_lately(model_version, now)
    with transaction.atomic():
        report = DriftReport.objects.create(
            workspace_id=model_version.workspace_id,
            model_version=model_version,
            computed_at=now,
            window_start=now - RECENT,
            window_end=now,
            psi=scores,
            max_psi=max(scores.values(), default=0.0),
            auc_at_training=auc_then,
            auc_now=None if auc_now is None else round(auc_now, 5),
            matured_rows=len(samples.labels),
            accuracy_drop=None if drop is None else round(drop, 5),
            retraining_started=retrain,
        )
        _raise_alerts(report, retrain=retrain)
        if retrain:
            jobs.enqueue(RETRAIN_JOB, model_version.workspace_id, names=[model_version.name], queue="low")
    logger.info(
        "ml.drift.checked",
        extra={
            "model": model_version.label,
            "workspace_id": model_version.workspace_id,
            "max_psi": report.max_psi,
            "auc_now": report.auc_now,
            "matured_rows": report.matured_rows,
            "retraining_started": retrain,
        },
    )
    return report


def _raise_alerts(report: DriftReport, *, retrain: bool) -> None:
    model_version = report.model_version
    drifted = {name: value for name, value in report.psi.items() if value > psi.SIGNIFICANT}
    if drifted:
        worst = max(drifted, key=drifted.get)
        _alert(
            report,
            ModelAlert.Kind.DRIFT,
            f"{model_version.name} {model_version.version}: feature drift over the last week, PSI "
            f"{drifted[worst]:.2f} on {worst} (over {psi.SIGNIFICANT}); "
            f"{len(drifted)} feature(s) drifted: {', '.join(sorted(drifted))}",
            {"psi": drifted},
        )
    if report.accuracy_drop is not None and report.accuracy_drop > MAX_ACCURACY_DROP:
        _alert(
            report,
            ModelAlert.Kind.ACCURACY_DROP,
            f"{model_version.name} {model_version.version}: AUC {report.auc_now:.3f} on "
            f"{report.matured_rows} outcomes matured since training, {report.auc_at_training:.3f} at "
            f"training ({report.accuracy_drop:.1%} lower, over {MAX_ACCURACY_DROP:.0%}); "
            + (
                "retraining started"
                if retrain
                else f"a retraining started less than {RETRAIN_COOLDOWN.days} days ago"
            ),
            {"auc_then": report.auc_at_training, "auc_now": report.auc_now, "drop": report.accuracy_drop},
        )


def _alert(report: DriftReport, kind: str, message: str, details: dict) -> ModelAlert:
    alert = ModelAlert.objects.create(
        workspace_id=report.workspace_id,
        model_version=report.model_version,
        kind=kind,
        message=message,
        details={**details, "drift_report": report.pk},
    )
    logger.warning(
        "ml.alert.raised",
        extra={"alert_id": alert.pk, "kind": kind, "model": report.model_version.label},
    )
    return alert


def describe(report: DriftReport) -> str:
    """One line for the dashboard: what the check found, or why it could not judge."""
    parts = []
    if report.psi:
        worst = max(report.psi, key=report.psi.get)
        parts.append(f"max PSI {report.max_psi:.3f} ({worst}, {psi.level(report.max_psi)})")
    else:
        parts.append(f"PSI not computed: fewer than {MIN_PSI_ROWS} rows in the training window or last week")
    if report.auc_now is None:
        parts.append(
            f"AUC not judged: {report.matured_rows} matured outcome(s), {MIN_MATURED} needed (both classes)"
        )
    elif report.accuracy_drop is None:
        parts.append(f"AUC now {report.auc_now:.3f}, none stored at training")
    else:
        parts.append(
            f"AUC {report.auc_at_training:.3f} -> {report.auc_now:.3f} ({-report.accuracy_drop:+.1%})"
            + ("; retraining started" if report.retraining_started else "")
        )
    return "; ".join(parts)


def drift_check_workspace(*, workspace_id: int, now: datetime | None = None) -> list[DriftReport]:
    """Check every active version of the workspace."""
    versions = ModelVersion.objects.filter(workspace_id=workspace_id, status=ModelVersion.Status.ACTIVE)
    return [drift_check(model_version=each, now=now) for each in versions.order_by("name")]
