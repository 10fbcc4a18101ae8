"""The weekly drift check: PSI on known distributions, an accuracy drop over 5% starts a retraining
and alerts, a smaller one does not, too few matured outcomes judge nothing, drifted features alert."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from core import jobs
from ml.drift import jobs as drift_jobs
from ml.drift import psi, services
from ml.models import DriftReport, ModelAlert, PathChoice
from onboarding.models import Enrollment
from tenancy.models import EndUser
from tests.factories import PublishedPathVersionFactory
from tests.ml.conftest import register_active
from tests.onboarding.enrollment_rows import complete, enrollment, published_version

pytestmark = pytest.mark.django_db
STEP = "connect-integration"

# --- PSI -----------------------------------------------------------------------------------------


def test_psi_of_identical_distributions_is_about_zero():
    generator = np.random.default_rng(1)
    before, after = generator.normal(50, 10, 5000), generator.normal(50, 10, 5000)

    assert psi.psi_numeric(before, before) == pytest.approx(0, abs=1e-9)
    assert psi.psi_numeric(before, after) < 0.01
    assert psi.level(psi.psi_numeric(before, after)) == "stable"


def test_psi_of_a_shifted_distribution_is_significant():
    generator = np.random.default_rng(2)
    before, after = generator.normal(50, 10, 5000), generator.normal(62, 10, 5000)

    value = psi.psi_numeric(before, after)

    assert value > psi.SIGNIFICANT
    assert psi.level(value) == "significant"


def test_psi_of_categories_counts_new_and_missing_values():
    before = ["developer"] * 50 + ["analyst"] * 50
    same = ["analyst"] * 50 + ["developer"] * 50
    shifted = ["developer"] * 20 + ["analyst"] * 30 + [""] * 50

    assert psi.psi_categorical(before, same) == pytest.approx(0, abs=1e-9)
    # 50% of rows now missing against EPSILON before: ln(0.5 / 1e-4) alone weighs 0.5 x 8.5.
    assert psi.psi_categorical(before, shifted) > 4


def test_psi_per_feature_bins_numbers_by_training_deciles_and_skips_absent_columns():
    training = [{"persona": "developer", "engagement_score": float(value)} for value in range(100)]
    recent = [{"persona": "developer", "engagement_score": float(value) + 50} for value in range(100)]

    found = psi.psi_per_feature("path_classifier", training, recent)

    assert set(found) == {"persona", "engagement_score"}
    assert found["persona"] == 0
    assert found["engagement_score"] > psi.SIGNIFICANT


# --- The check -----------------------------------------------------------------------------------


def _features(persona: str, engagement: float) -> dict:
    return {"persona": persona, "company_size": "11-50", "engagement_score": engagement, "events_7d": 3}


def _planted(count: int, start: int = 0, flipped: int = 0) -> list[tuple[dict, bool]]:
    """Analysts activate, developers do not; the first `flipped` rows have the outcome reversed."""
    rows = []
    for index in range(start, start + count):
        persona = "analyst" if index % 2 else "developer"
        rows.append(
            (_features(persona, float(index % 50)), (persona == "analyst") != (index - start < flipped))
        )
    return rows


def _record(workspace, path_version, moment, rows, *, prefix: str, complete: bool = True) -> None:
    """One end user, enrollment and path choice per (features, activated) at `moment`."""
    users = EndUser.objects.bulk_create(
        EndUser(workspace=workspace, external_id=f"{prefix}-{index}") for index in range(len(rows))
    )
    enrollments = Enrollment.objects.bulk_create(
        Enrollment(
            workspace=workspace,
            end_user=user,
            path_version=path_version,
            status=Enrollment.Status.COMPLETED if activated and complete else Enrollment.Status.ACTIVE,
            enrolled_at=moment,
            step_entered_at=moment,
            completed_at=moment + timedelta(days=2) if activated and complete else None,
        )
        for user, (_, activated) in zip(users, rows, strict=True)
    )
    PathChoice.objects.bulk_create(
        PathChoice(
            workspace=workspace,
            end_user=user,
            enrollment=enrollment,
            decided_at=moment,
            policy=PathChoice.Policy.MODEL,
            path_key="get-started",
            eligible=["get-started"],
            propensity=1.0,
            features=features,
        )
        for user, enrollment, (features, _) in zip(users, enrollments, rows, strict=True)
    )


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def world(ml_workspace, now, fresh_serving):
    """A path classifier trained 60-40 days ago on the planted rule (AUC 1.0 at training), and
    its training window's choices recorded."""
    path_version = PublishedPathVersionFactory(path__workspace=ml_workspace)
    start, end = now - timedelta(days=60), now - timedelta(days=40)
    training = _planted(200)
    _record(ml_workspace, path_version, start + timedelta(days=5), training, prefix="train")
    version = register_active(
        ml_workspace,
        "path_classifier",
        [{**features, "path": "get-started"} for features, _ in training],
        [activated for _, activated in training],
        metrics={"auc": 1.0, "log_loss": 0.1},
        window_start=start,
        window_end=end,
    )
    return ml_workspace, path_version, version


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr(jobs, "enqueue", lambda func, *args, **kwargs: sent.append((func, args, kwargs)))
    return sent


def test_an_accuracy_drop_over_5_percent_starts_a_retraining_and_alerts(world, now, enqueued):
    workspace, path_version, version = world
    # 20 of 240 outcomes reversed: AUC about 0.92, 8% below the 1.0 of training.
    _record(workspace, path_version, now - timedelta(days=20), _planted(240, flipped=20), prefix="late")

    report = services.drift_check(model_version=version, now=now)

    assert report.matured_rows == 240
    assert report.auc_at_training == 1.0
    assert 0.85 < report.auc_now < 0.95
    assert report.accuracy_drop == pytest.approx((1.0 - report.auc_now) / 1.0, abs=1e-4)
    assert report.retraining_started
    assert enqueued == [
        ("ml.training.jobs.train_models_job", (workspace.pk,), {"names": ["path_classifier"], "queue": "low"})
    ]
    alert = ModelAlert.objects.get(kind=ModelAlert.Kind.ACCURACY_DROP)
    assert alert.model_version == version
    assert "240 outcomes matured since training" in alert.message
    assert "retraining started" in alert.message
    assert "retraining started" in services.describe(report)


def test_a_drop_under_5_percent_neither_retrains_nor_alerts(world, now, enqueued):
    workspace, path_version, version = world
    # 3 of 240 reversed: AUC about 0.99.
    _record(workspace, path_version, now - timedelta(days=20), _planted(240, flipped=3), prefix="late")

    report = services.drift_check(model_version=version, now=now)

    assert 0 < report.accuracy_drop < services.MAX_ACCURACY_DROP
    assert not report.retraining_started
    assert enqueued == []
    assert not ModelAlert.objects.filter(kind=ModelAlert.Kind.ACCURACY_DROP).exists()


def test_a_second_check_within_the_cooldown_does_not_retrain_again(world, now, enqueued):
    workspace, path_version, version = world
    _record(workspace, path_version, now - timedelta(days=20), _planted(240, flipped=40), prefix="late")

    first = services.drift_check(model_version=version, now=now)
    second = services.drift_check(model_version=version, now=now + timedelta(hours=1))

    assert first.retraining_started and not second.retraining_started
    assert len(enqueued) == 1
    assert (
        "less than 6 days ago"
        in ModelAlert.objects.filter(kind=ModelAlert.Kind.ACCURACY_DROP).first().message
    )


def test_too_few_matured_outcomes_judge_nothing(world, now, enqueued):
    workspace, path_version, version = world
    _record(workspace, path_version, now - timedelta(days=20), _planted(50, flipped=40), prefix="late")
    # Decided 3 days ago: not matured yet, even when already activated.
    _record(workspace, path_version, now - timedelta(days=3), _planted(300, flipped=150), prefix="young")

    report = services.drift_check(model_version=version, now=now)

    assert report.matured_rows == 50
    assert report.auc_now is None and report.accuracy_drop is None
    assert not report.retraining_started and enqueued == []
    assert "AUC not judged: 50 matured outcome(s), 200 needed" in services.describe(report)


def test_a_drifted_feature_alerts_and_a_stable_one_does_not(world, now, enqueued):
    workspace, path_version, version = world
    # Last week: analysts only, and far more engaged than at training.
    recent = [(_features("analyst", 80.0 + index % 10), True) for index in range(100)]
    _record(workspace, path_version, now - timedelta(days=2), recent, prefix="recent", complete=False)

    report = services.drift_check(model_version=version, now=now)

    assert report.psi["persona"] > psi.SIGNIFICANT
    assert report.psi["engagement_score"] > psi.SIGNIFICANT
    assert report.psi["company_size"] == 0
    assert report.max_psi == max(report.psi.values())
    alert = ModelAlert.objects.get(kind=ModelAlert.Kind.DRIFT)
    assert "engagement_score" in alert.message and "persona" in alert.message
    assert "company_size" not in alert.message


def test_the_weekly_job_checks_every_active_version(world, now, enqueued):
    version = world[2]

    totals = drift_jobs.check_drift_job()

    assert totals == {"workspaces": 1, "versions": 1, "retrainings": 0, "failures": 0}
    assert DriftReport.objects.get().model_version == version


def _spells(version, moment, count: int, *, size: str, abandoned: bool, prefix: str) -> None:
    """Enrollments that reached the first step at `moment` and abandoned it, or completed it an
    hour later."""
    for number in range(count):
        row = enrollment(
            version,
            user_id=f"{prefix}-{number}",
            current_step_key=STEP,
            enrolled_at=moment,
            status=Enrollment.Status.ABANDONED if abandoned else Enrollment.Status.ACTIVE,
        )
        EndUser.objects.filter(pk=row.end_user_id).update(company_size=size)
        if not abandoned:
            complete(row, STEP, moment + timedelta(hours=1))


def test_the_stuck_detector_is_checked_on_its_own_training_set(ml_workspace, now, enqueued, fresh_serving):
    version = published_version(ml_workspace, [{"key": STEP}, {"key": "invite"}])
    for moment, count, prefix in (
        (now - timedelta(days=50), 30, "train"),
        (now - timedelta(days=25), 110, "late"),
    ):
        _spells(version, moment, count, size="1-10", abandoned=True, prefix=f"{prefix}-small")
        _spells(version, moment, count, size="51-200", abandoned=False, prefix=f"{prefix}-large")
    # Last week: small companies only, spells already ended (not yet matured: PSI only).
    _spells(version, now - timedelta(days=3), 60, size="1-10", abandoned=True, prefix="recent")
    rows = [
        {"company_size": size, "step": STEP, "step_index": 0, "hours_on_step": 0.0}
        for size in ("1-10", "51-200")
    ]
    model = register_active(
        ml_workspace,
        "stuck_detector",
        rows * 50,
        [1, 0] * 50,
        metrics={"auc": 1.0},
        window_start=now - timedelta(days=60),
        window_end=now - timedelta(days=40),
    )

    report = services.drift_check(model_version=model, now=now)

    assert report.matured_rows >= 220  # a row per spell at least (training's builder decides)
    assert report.auc_now == 1.0 and report.accuracy_drop == 0
    assert report.psi["company_size"] > psi.SIGNIFICANT
    assert report.psi["step"] == 0
    assert not report.retraining_started and enqueued == []
    assert ModelAlert.objects.get().kind == ModelAlert.Kind.DRIFT
