"""The trained models find the effects the simulator planted (ml/simulation/world.py): data
analysts activate about twice as often on analyst-insights as on the path the rules give them,
small companies abandon integration steps, nudges convert best at 10:00 local time.

One simulated workspace serves the module (simulating is what costs; each test trains one model).
Its population has more data analysts than the demo's (35% instead of 12%), at the same planted
2x effect: the policy estimate's precision rests on the analysts explored onto their path in the
validation window, and at 12% a test would need some 30,000 people for its interval to exclude
zero reliably. Everyone gets nudges (half of them in the demo's world), for the same reason.

The response predictor is asked for the planted hour within its best window: with a few thousand
sends, 9:00, 10:00 and 11:00 differ by 8% in truth and a tree's curve over hours is a step function
with a plateau on top; the test asserts 10:00 is on the plateau and the plateau centred on it.
"""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from ml.models import ModelVersion
from ml.registry import artifacts
from ml.serving import policy as serving_policy
from ml.serving.loaded import Loaded
from ml.simulation import journey, world
from ml.simulation.ab import simulated_ab
from ml.simulation.writer import simulate
from ml.training import path_classifier, services
from ml.training.datasets import time_split
from onboarding.models import Enrollment
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

PEOPLE = 6000
DAYS = 60
EXPLORATION_SHARE = 0.5
ANALYST_HEAVY = {**world.PERSONAS, world.ANALYST: 55}  # 55 / 155: about 35% data analysts


@pytest.fixture(scope="module")
def simulated(django_db_setup, django_db_blocker):
    """(workspace, end of the simulation), committed for the module, deleted after it."""
    end = timezone.now().replace(microsecond=0)
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(world, "PERSONAS", ANALYST_HEAVY)
        patch.setattr(journey, "NUDGE_SHARE", 1.0)
        workspace = WorkspaceFactory(slug="simulated-effects")
        simulate(
            workspace=workspace,
            people=PEOPLE,
            start=end - timedelta(days=DAYS),
            days=DAYS,
            seed=5,
            exploration_share=EXPLORATION_SHARE,
        )
    yield workspace, end
    with django_db_blocker.unblock():
        Enrollment.objects.filter(workspace=workspace).delete()  # their path versions are protected
        workspace.delete()


def trained(simulated, name: str) -> tuple[ModelVersion, artifacts.Predictor]:
    workspace, end = simulated
    version = services.model_train(workspace=workspace, name=name, now=end, num_threads=1)
    predictor = artifacts.loads(artifacts.read(version.artifact), expected_sha256=version.artifact_sha256)
    return version, predictor


def predict(predictor: artifacts.Predictor, rows: list[dict]) -> np.ndarray:
    return predictor.predict(predictor.matrix(rows))


def test_path_classifier_policy_beats_the_rules_offline_and_in_a_simulated_ab(simulated, monkeypatch):
    version, predictor = trained(simulated, "path_classifier")

    policy = version.metrics["policy"]
    assert policy["model"]["activation"] > policy["rules"]["activation"]
    assert policy["model"]["difference_ci95"][0] > 0
    workspace, end = simulated
    validation = time_split(path_classifier.dataset(workspace_id=workspace.pk, now=end)).validation
    analysts = validation.subset(
        np.array([index for index, row in enumerate(validation.rows) if row["persona"] == world.ANALYST])
    )
    chosen = path_classifier.policy_choices(lambda rows: predict(predictor, rows), analysts)
    assert chosen.count(world.ANALYST_INSIGHTS) / len(chosen) > 0.8

    monkeypatch.setattr(world, "PERSONAS", ANALYST_HEAVY)  # the population the model was trained on
    served = Loaded(version, predictor)
    result = simulated_ab(
        workspace=workspace,
        choose_model=lambda end_user, features, eligible: eligible[
            serving_policy.score(served, features, eligible, explained=False).best
        ],
        people=4000,
        seed=99,
    )
    assert result.rate_model > result.rate_rules
    assert result.ci[0] > 0, result


def test_stuck_detector_ranks_small_companies_on_integration_steps_first(simulated):
    version, predictor = trained(simulated, "stuck_detector")

    assert version.metrics["auc"] > 0.75
    workspace, end = simulated
    validation = time_split(stuck_detector_rows(workspace, end)).validation
    reaching = [row for row in validation.rows if row["hours_on_step"] == 0]
    risk = predict(predictor, reaching)
    planted = np.array(
        [
            row["company_size"] == world.SMALL_COMPANY and world.is_integration_step(row["step"])
            for row in reaching
        ]
    )
    assert risk[planted].mean() > 1.5 * risk[~planted].mean()
    integration = [dict(row) for row in reaching if row["step"] == "connect-integration"][:200]
    by_size = {
        size: predict(predictor, [{**row, "company_size": size} for row in integration]).mean()
        for size in world.COMPANY_SIZES
    }
    assert max(by_size, key=by_size.get) == world.SMALL_COMPANY


def stuck_detector_rows(workspace, end):
    return services.DATASETS["stuck_detector"](workspace_id=workspace.pk, now=end)


def best_window(scores: list[float]) -> list[int]:
    """The hours scoring within a tenth of the curve's range of its best: a tree's answer over
    hours is a step function, its top a plateau of a few hours rather than one."""
    top, bottom = max(scores), min(scores)
    return [hour for hour, score in enumerate(scores) if score >= top - 0.1 * (top - bottom)]


def test_response_predictor_finds_the_best_hour(simulated):
    version, predictor = trained(simulated, "nudge_response_predictor")

    workspace, end = simulated
    rows = services.DATASETS["nudge_response_predictor"](workspace_id=workspace.pk, now=end)
    typical = time_split(rows).validation.rows[:300]
    by_hour = [
        predict(predictor, [{**row, "local_hour": hour} for row in typical]).mean() for hour in range(24)
    ]
    window = best_window(by_hour)
    assert world.BEST_HOUR in window and len(window) <= 5, (window, np.round(by_hour, 3).tolist())
    assert abs(np.mean(window) - world.BEST_HOUR) <= 1
    assert by_hour[world.BEST_HOUR] > 1.3 * min(by_hour)
    assert version.metrics["auc"] > 0.55  # hour and channel are all there is to learn: 0.6-0.67 here
