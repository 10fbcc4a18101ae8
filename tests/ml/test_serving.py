"""Serving the path classifier in the planner (ml/serving/decider.py): what a new user gets and
what is logged when there is no model, an active model, a failing, slow or refused one, no
features, exploration, a shadow version, a model experiment, and a promotion."""

import hashlib
import json
import re
from datetime import UTC, datetime

import pytest
from django.core.files.storage import storages
from django.test import Client
from prometheus_client import REGISTRY

from experiments import allocation
from experiments.models import Assignment, Experiment, Variant
from ml.features import store
from ml.models import ModelAlert, ModelVersion, PathChoice
from ml.registry import artifacts
from ml.serving import decider, loaded
from onboarding.models import Enrollment
from onboarding.progress import enrolling
from paths import services as path_services
from paths.models import PathVersion
from tenancy.models import EndUser
from tests.conftest import basic_auth
from tests.ml.conftest import feature_source, register_preferring

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RULES_REASON = "matched everyone (path 'get-started' has no audience), priority 10"
STEPS = [{"key": "create", "title": "Create", "completion": "event", "event_name": "Project Created"}]


def publish(workspace, key: str, name: str, *, audience=None, priority: int = 0) -> PathVersion:
    path = path_services.path_create(
        workspace=workspace, key=key, name=name, audience=audience, priority=priority
    )
    draft = path.versions.get()
    path_services.path_version_replace_steps(path_version=draft, steps=STEPS)
    return path_services.path_version_publish(path_version=draft)


@pytest.fixture(autouse=True)
def _serving(settings, fresh_serving):
    """No exploration unless a test asks; repeatable draws; nothing loaded from another test."""
    settings.ML_EXPLORATION_SHARE = 0.0
    settings.ML_LATENCY_BUDGET_MS = 20.0
    decider.DECIDER.seed(0)


@pytest.fixture
def workspace(tenant):
    """Rules put everyone on 'get-started' (priority 10); developers may also take 'developer'."""
    workspace = tenant[0]
    publish(workspace, "get-started", "Get started", priority=10)
    publish(workspace, "developer", "Developer path", audience={"persona": ["developer"]})
    return workspace


def enrol(workspace, external_id: str, persona: str = "developer") -> Enrollment:
    end_user = EndUser.objects.create(workspace=workspace, external_id=external_id, persona=persona)
    return enrolling.enrol(end_user=end_user, enrolled_at=T0)


def logged(enrollment: Enrollment) -> PathChoice:
    return PathChoice.objects.get(enrollment=enrollment)


def test_without_a_model_identify_takes_the_rules_choice_and_logs_it_with_its_propensity(
    tenant, workspace, settings
):
    settings.ML_EXPLORATION_SHARE = 0.2  # the seeded first draw (0.84) does not explore
    _, write_key, _ = tenant

    response = Client().post(
        "/v1/identify",
        {"userId": "ada", "traits": {"persona": "developer", "company_size": "51-200"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )

    assert response.status_code == 200, response.content
    enrollment = Enrollment.objects.get(workspace=workspace, end_user__external_id="ada")
    assert enrollment.path_version.path.key == "get-started"
    assert enrollment.decision_reason == RULES_REASON
    choice = logged(enrollment)
    assert (choice.policy, choice.path_key, choice.rules_path_key) == ("rules", "get-started", "get-started")
    assert choice.eligible == ["get-started", "developer"]
    assert choice.propensity == pytest.approx(0.2 / 2 + 0.8)
    assert choice.model_version is None
    assert choice.features["persona"] == "developer"
    assert choice.features["company_size"] == "51-200"
    assert choice.feature_source == feature_source()


def test_nothing_to_serve_or_explore_leaves_the_rules_and_logs_nothing(workspace):
    enrollment = enrol(workspace, "ada")

    assert enrollment.path_version.path.key == "get-started"
    assert enrollment.decision_reason == RULES_REASON
    assert not PathChoice.objects.exists()


def test_the_active_model_chooses_the_eligible_path_it_predicts_best(workspace):
    version = register_preferring(workspace, persona="developer", preferred="developer", other="get-started")

    developer = enrol(workspace, "ada", "developer")
    marketer = enrol(workspace, "bob", "marketer")

    assert developer.path_version.path.key == "developer"
    choice = logged(developer)
    assert (choice.policy, choice.model_version, choice.propensity) == ("model", version, 1.0)
    assert set(choice.scores) == {"get-started", "developer"}
    assert choice.scores["developer"] > choice.scores["get-started"] + 0.3
    assert re.fullmatch(
        r"model path_classifier 1\.0\.0: \d+% vs \d+% for Get started; .*persona=developer \+\d\.\d\d.*; "
        rf"features from {feature_source()}",
        developer.decision_reason,
    ), developer.decision_reason
    assert choice.explanation[0][0] in {"persona=developer", "path=developer"}
    # The marketer may only take get-started: the model scores nothing else.
    assert marketer.path_version.path.key == "get-started"
    assert logged(marketer).scores.keys() == {"get-started"}


def test_a_model_that_raises_leaves_the_rules_choice_with_the_reason(workspace, monkeypatch):
    version = register_preferring(workspace)

    def broken(self, matrix):
        raise RuntimeError("booster exploded")

    monkeypatch.setattr(artifacts.Predictor, "predict", broken)
    enrollment = enrol(workspace, "ada")

    assert enrollment.path_version.path.key == "get-started"
    assert enrollment.decision_reason == (
        f"model path_classifier 1.0.0 failed (RuntimeError: booster exploded); {RULES_REASON}"
    )
    choice = logged(enrollment)
    assert (choice.policy, choice.model_version) == ("rules", version)


def test_a_model_over_its_budget_leaves_the_rules_choice_with_the_reason(workspace, settings):
    register_preferring(workspace)
    settings.ML_LATENCY_BUDGET_MS = 0.0001

    enrollment = enrol(workspace, "ada")

    assert enrollment.path_version.path.key == "get-started"
    assert re.fullmatch(
        r"model path_classifier 1\.0\.0 over its 0\.0001 ms budget \(\d+\.\d ms\); "
        + re.escape(RULES_REASON),
        enrollment.decision_reason,
    ), enrollment.decision_reason
    assert logged(enrollment).policy == "rules"


def test_a_feature_store_failure_leaves_the_rules_choice_with_the_reason(workspace, monkeypatch):
    register_preferring(workspace)

    def down(**kwargs):
        raise ConnectionError("postgres and redis down")

    monkeypatch.setattr(store, "features_for", down)
    enrollment = enrol(workspace, "ada")

    assert enrollment.path_version.path.key == "get-started"
    assert enrollment.decision_reason == (
        "model path_classifier 1.0.0 not asked: feature store failed "
        f"(ConnectionError: postgres and redis down); {RULES_REASON}"
    )
    assert logged(enrollment).feature_source == ""


def test_an_artifact_of_another_feature_schema_is_refused_alerted_and_the_rules_stand(workspace):
    version = register_preferring(workspace)
    stored = storages[artifacts.STORAGE_ALIAS]
    envelope = json.loads(stored.open(version.artifact, "rb").read())
    envelope["schema_hash"] = "0" * 64
    content = json.dumps(envelope).encode()
    with open(stored.path(version.artifact), "wb") as handle:
        handle.write(content)
    ModelVersion.objects.filter(pk=version.pk).update(artifact_sha256=hashlib.sha256(content).hexdigest())
    loaded.forget()

    first, second = enrol(workspace, "ada"), enrol(workspace, "bea")

    assert first.path_version.path.key == second.path_version.path.key == "get-started"
    assert first.decision_reason == RULES_REASON
    alert = ModelAlert.objects.get(model_version=version)
    assert alert.kind == ModelAlert.Kind.SCHEMA_MISMATCH
    assert "refused at load, the rules stand" in alert.message
    assert not PathChoice.objects.exists()  # nothing served: as without a model


def test_full_exploration_draws_uniformly_among_the_eligible_paths(workspace, settings):
    publish(workspace, "self-serve", "Self serve", priority=5)
    settings.ML_EXPLORATION_SHARE = 1.0

    chosen = [enrol(workspace, f"person-{index}").path_version.path.key for index in range(60)]

    choices = PathChoice.objects.all()
    assert {choice.policy for choice in choices} == {"explore"}
    assert [choice.propensity for choice in choices] == [pytest.approx(1 / 3)] * 60
    assert {key: chosen.count(key) for key in set(chosen)}.keys() == {
        "get-started",
        "self-serve",
        "developer",
    }
    assert all(10 <= chosen.count(key) <= 30 for key in set(chosen))
    # Marketers may not take the developer path: the draw is among their two eligible paths only.
    marketers = [enrol(workspace, f"marketer-{index}", "marketer") for index in range(20)]
    assert {each.path_version.path.key for each in marketers} == {"get-started", "self-serve"}
    assert [logged(each).propensity for each in marketers] == [pytest.approx(1 / 2)] * 20


def test_a_shadow_version_scores_without_acting_and_its_agreement_is_logged(workspace):
    register_preferring(workspace, preferred="developer", other="get-started")
    shadow = register_preferring(
        workspace, preferred="get-started", other="developer", status=ModelVersion.Status.SHADOW
    )

    developer = enrol(workspace, "ada", "developer")
    analyst = enrol(workspace, "cy", "analyst")

    assert developer.path_version.path.key == "developer"
    assert logged(developer).shadow == [
        {
            "version": "1.1.0",
            "model_version_id": shadow.pk,
            "path_key": "get-started",
            "probability": logged(developer).shadow[0]["probability"],
            "agrees": False,
        }
    ]
    assert logged(analyst).shadow[0]["path_key"] == "get-started"
    assert logged(analyst).shadow[0]["agrees"] is True


def _external_ids_by_arm(seed: str) -> tuple[list[str], list[str]]:
    """External ids that GrowthBook's hash puts in the first half (control) and the second."""
    control, candidate = [], []
    for index in range(40):
        value = f"person-{index}"
        (control if allocation.gb_hash(seed, value) < 0.5 else candidate).append(value)
    return control, candidate


def test_a_model_experiment_serves_each_arm_by_its_policy_and_assignments_stick(workspace):
    version = register_preferring(workspace, status=ModelVersion.Status.AB)
    experiment = Experiment.objects.create(
        workspace=workspace,
        key="model-ab",
        name="Model A/B",
        kind=Experiment.Kind.MODEL,
        status=Experiment.Status.RUNNING,
        started_at=T0,
    )
    rules_arm = Variant.objects.create(
        experiment=experiment, key="rules", position=0, weight=50, model_version="rules"
    )
    model_arm = Variant.objects.create(
        experiment=experiment, key="candidate", position=1, weight=50, model_version=version.label
    )
    control_ids, candidate_ids = _external_ids_by_arm("model-ab")
    # Stored earlier on the candidate arm although the hash now says control: the stored arm wins.
    sticky = EndUser.objects.create(workspace=workspace, external_id=control_ids[1], persona="developer")
    Assignment.objects.create(
        workspace=workspace,
        experiment=experiment,
        end_user=sticky,
        variant=model_arm,
        assigned_at=T0,
        hash_value=0.1,
    )

    on_rules = enrol(workspace, control_ids[0])
    on_model = enrol(workspace, candidate_ids[0])
    kept = enrolling.enrol(end_user=sticky, enrolled_at=T0)

    assert on_rules.path_version.path.key == "get-started"
    assert on_rules.decision_reason.startswith("experiment model-ab, variant rules (rules), hash 0.")
    assert on_rules.decision_reason.endswith(RULES_REASON)
    assert on_model.path_version.path.key == "developer"
    assert on_model.decision_reason.startswith(
        "experiment model-ab, variant candidate (path_classifier@1.0.0)"
    )
    assert "model path_classifier 1.0.0: " in on_model.decision_reason
    assert kept.path_version.path.key == "developer"
    assert "(stored assignment)" in kept.decision_reason
    assert {
        (row.end_user.external_id, row.variant_id, row.enrollment_id) for row in Assignment.objects.all()
    } == {
        (control_ids[0], rules_arm.pk, on_rules.pk),
        (candidate_ids[0], model_arm.pk, on_model.pk),
        (control_ids[1], model_arm.pk, None),
    }
    assert {logged(each).policy for each in (on_rules, on_model, kept)} == {"experiment"}
    assert logged(on_model).model_version == version


def test_a_promotion_in_the_database_changes_the_next_decision(workspace):
    first = register_preferring(workspace, preferred="developer", other="get-started")
    second = register_preferring(
        workspace, preferred="get-started", other="developer", status=ModelVersion.Status.CANDIDATE
    )
    assert enrol(workspace, "ada").path_version.path.key == "developer"

    ModelVersion.objects.filter(pk=first.pk).update(status=ModelVersion.Status.RETIRED)
    ModelVersion.objects.filter(pk=second.pk).update(status=ModelVersion.Status.ACTIVE)
    loaded.forget()
    after = enrol(workspace, "bea")

    assert after.path_version.path.key == "get-started"
    assert after.decision_reason.startswith("model path_classifier 1.1.0: ")
    assert logged(after).model_version == second


def _count(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0


def test_a_model_decision_is_timed_as_an_inference_and_as_a_model_path_selection(workspace, settings):
    register_preferring(workspace)
    inferences, model_selections = (
        _count("ml_inference_latency_p95_ms"),
        _count("path_selection_latency_p95_ms", outcome="model"),
    )
    rules_selections = _count("path_selection_latency_p95_ms", outcome="rules")
    settings.ML_LATENCY_BUDGET_MS = 20.0

    enrol(workspace, "ada", "developer")
    enrol(workspace, "bob", "marketer")

    assert _count("ml_inference_latency_p95_ms") - inferences == 2
    assert _count("path_selection_latency_p95_ms", outcome="model") - model_selections == 2
    assert _count("path_selection_latency_p95_ms", outcome="rules") == rules_selections
