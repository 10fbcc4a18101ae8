"""Training: refusal with the counts, the time split, the stored metrics, the artifact that serving
loads, the bulk as-of features equal to the serving code's, the command and the job."""

from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ml.features import history
from ml.models import ModelVersion, PathChoice
from ml.registry import artifacts
from ml.training import asof, evaluation, jobs, services, stuck_detector
from ml.training.datasets import Dataset, time_split
from tenancy.models import EndUser
from tests.factories import WorkspaceFactory
from tests.ml.training_rows import populate

pytestmark = pytest.mark.django_db

DAYS = 40


@pytest.fixture
def workspace():
    return WorkspaceFactory(slug="acme")


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def populated(workspace, now):
    populate(workspace, people=1500, start=now - timedelta(days=DAYS + 15), days=DAYS, seed=3)
    return workspace


def train(workspace, name, now, **options):
    return services.model_train(workspace=workspace, name=name, now=now, num_threads=1, **options)


def test_too_little_data_is_refused_with_the_counts(workspace, now):
    populate(workspace, people=120, start=now - timedelta(days=DAYS + 15), days=DAYS)

    with pytest.raises(services.TrainingRefused) as refused:
        train(workspace, "path_classifier", now)

    counts = refused.value.counts
    assert counts["training_rows"] < 120
    assert counts["paths"] == 2
    message = str(refused.value)
    assert f"{counts['training_rows']} training rows (at least 500)" in message
    assert f"{counts['positives']} positives (at least 50)" in message
    assert "2 paths (at least 2)" in message
    assert not ModelVersion.objects.filter(workspace=workspace).exists()


def test_one_path_only_is_refused(populated, now):
    PathChoice.objects.filter(workspace=populated).update(path_key="get-started")

    with pytest.raises(services.TrainingRefused, match=r"1 paths \(at least 2\)"):
        train(populated, "path_classifier", now)


def test_unknown_model_name_is_a_clear_error(workspace):
    with pytest.raises(
        ValueError, match="unknown model 'churn': the models are path_classifier, stuck_detector"
    ):
        services.model_train(workspace=workspace, name="churn")


def test_validation_rows_are_all_later_than_training_rows():
    base = timezone.now()
    moments = [base + timedelta(hours=index // 3) for index in range(100)]  # three rows per moment
    dataset = Dataset("stuck_detector", [{} for _ in moments], np.zeros(100), moments[::-1])

    split = time_split(dataset)

    assert max(split.train.moments) < min(split.validation.moments)
    assert len(split.train) + len(split.validation) == 100
    assert 18 <= len(split.validation) <= 21


def test_path_classifier_metrics_and_windows_are_stored(populated, now):
    version = train(populated, "path_classifier", now)

    version.refresh_from_db()
    metrics = version.metrics
    assert version.status == ModelVersion.Status.CANDIDATE
    assert version.training_rows == metrics["rows"]["training"] > 500
    assert version.validation_rows == metrics["rows"]["validation"] > 100
    assert 0 < metrics["auc"] <= 1 and metrics["log_loss"] > 0 and 0 <= metrics["ece"] < 1
    assert len(metrics["calibration"]["bins"]) == 10
    assert sum(each["count"] for each in metrics["calibration"]["bins"]) == version.validation_rows
    assert metrics["data"]["training_data"] == "all rows, weighted by 1/propensity"
    assert version.training_window_end.isoformat() == metrics["train_window"][1]
    assert metrics["validation_window"][0] > metrics["train_window"][1]
    assert metrics["validation_window"][1] <= (now - timedelta(days=14)).isoformat()
    policy = metrics["policy"]
    assert set(policy) >= {"rules", "model", "agreement_with_rules", "method"}
    low, high = policy["model"]["difference_ci95"]
    assert low <= policy["model"]["difference"] <= high


def test_the_artifact_loads_and_predicts(populated, now):
    version = train(populated, "stuck_detector", now)

    predictor = artifacts.loads(
        artifacts.read(version.artifact),
        expected_sha256=version.artifact_sha256,
        expected_model_name="stuck_detector",
    )
    typical = {
        "persona": "developer",
        "signup_source": "organic",
        "use_case": "product_analytics",
        "engagement_score": 20.0,
        "hours_since_signup": 10.0,
        "steps_completed": 1,
        "session_count": 2,
        "avg_session_minutes": 5.0,
        "events_7d": 4,
        "hours_since_last_event": 8.0,
        "step": "connect-integration",
        "step_index": 1,
        "hours_on_step": 0.0,
    }
    rows = [{**typical, "company_size": size} for size in ("1-10", "51-200")]
    small, large = predictor.predict(predictor.matrix(rows))
    assert small > large


def test_response_predictor_trains_on_sent_nudges(populated, now):
    version = train(populated, "nudge_response_predictor", now)

    assert version.metrics["auc"] > 0.7  # the planted hour is learnable
    assert version.metrics["data"]["conversion_window_hours"] == 48


def test_bulk_as_of_features_equal_the_serving_codes(populated, now):
    people = list(EndUser.objects.filter(workspace=populated).order_by("pk")[:40])
    moments = [
        (person, person.created_at + timedelta(hours=hours)) for person in people for hours in (0.5, 3, 30)
    ]

    loaded = asof.history_load(
        workspace_id=populated.pk, end_user_ids={each.pk for each in people}, until=now
    )
    bulk = [loaded.features(person.pk, moment) for person, moment in moments]

    assert bulk == history.features_as_of(populated.pk, moments)
    assert {row["steps_completed"] for row in bulk} != {0}


def test_stuck_spells_follow_the_steps():
    start = timezone.now()
    steps = [("a", False), ("b", True), ("c", False), ("d", False)]
    completed = {"a": start + timedelta(hours=2), "c": start + timedelta(hours=5)}

    found = stuck_detector.spells(steps=steps, enrolled_at=start, completed=completed, abandoned_on="d")

    assert found == [
        (0, "a", start, start + timedelta(hours=2), 0),
        (2, "c", start + timedelta(hours=2), start + timedelta(hours=5), 0),
        (3, "d", start + timedelta(hours=5), None, 1),
    ]
    assert stuck_detector.spells(steps=steps, enrolled_at=start, completed={}, abandoned_on=None) == []


def test_auc_log_loss_and_calibration_by_hand():
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.6, 0.8, 0.9])

    assert evaluation.auc(labels, scores) == pytest.approx((1 + 0.5 + 1 + 1 + 1 + 1) / 6)  # pairs: one tie
    assert evaluation.log_loss(np.array([1, 0]), np.array([0.8, 0.2])) == pytest.approx(-np.log(0.8))
    calibration = evaluation.calibration(np.array([1, 0, 1, 1]), np.array([0.05, 0.05, 0.95, 0.95]))
    assert calibration["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert evaluation.auc(np.array([1, 1]), np.array([0.2, 0.3])) is None


def test_policy_estimate_reweights_by_propensity():
    # Path "b" was logged rarely (propensity 0.1) and always activated; "a" half the time.
    logged = ["a"] * 90 + ["b"] * 10
    rewards = [index % 2 for index in range(90)] + [1] * 10
    propensities = [0.9] * 90 + [0.1] * 10

    estimate = evaluation.policy_estimate(
        rewards=rewards,
        logged=logged,
        propensities=propensities,
        policies={"rules": ["a"] * 100, "model": ["b"] * 100},
        baseline="rules",
    )

    assert estimate["rules"]["activation"] == pytest.approx(0.5)
    assert estimate["model"]["activation"] == 1.0
    assert estimate["model"]["difference"] == pytest.approx(0.5)
    assert estimate["model"]["difference_ci95"][0] > 0


def test_command_prints_metrics_and_refusals(populated, now, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: now)
    out, err = StringIO(), StringIO()

    call_command(
        "train_models",
        "--workspace",
        "acme",
        "--model",
        "stuck_detector",
        "--threads",
        "1",
        stdout=out,
        stderr=err,
    )

    assert "acme: stuck_detector 1.0.0: AUC " in out.getvalue()
    assert "Done: 1 model(s) trained, 0 refused." in out.getvalue()
    assert "stuck_detector: training" in err.getvalue()


def test_command_refuses_unknown_names(populated):
    with pytest.raises(CommandError, match="unknown model 'churn'"):
        call_command("train_models", "--model", "churn", stdout=StringIO())
    with pytest.raises(CommandError, match="No workspace with slug or id 'nowhere'"):
        call_command("train_models", "--workspace", "nowhere", stdout=StringIO())


def test_job_reports_refusals_and_progress(workspace, now, monkeypatch):
    populate(workspace, people=60, start=now - timedelta(days=DAYS + 15), days=DAYS)
    seen = []

    class FakeJob:
        meta: dict = {}

        def save_meta(self):
            seen.append(dict(self.meta["progress"]))

    monkeypatch.setattr(jobs, "get_current_job", lambda: FakeJob())

    result = jobs.train_models_job(workspace.pk, names=["stuck_detector"])

    assert "too little data" in result["stuck_detector"]["refused"]
    assert result["stuck_detector"]["counts"]["training_rows"] < 500
    assert seen[0]["model"] == "stuck_detector" and seen[0]["models_total"] == 1
    with pytest.raises(ValueError, match="unknown model"):
        jobs.train_models_job(workspace.pk, names=["churn"])
