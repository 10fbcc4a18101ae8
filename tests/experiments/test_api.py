"""A client app learns its user's arms: GET /api/v1/users/{id}/experiments, the enrollment state,
and the GDPR export."""

import json
from datetime import UTC, datetime

import pytest

from experiments import services
from onboarding.progress import enrolling
from tests.conftest import end_user_client, key_client
from tests.factories import EndUserFactory, PathFactory, PathVersionFactory, PublishedPathVersionFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def arms(tenant):
    """A running 50/50 experiment on the tenant's default path, seed "seed": user "b" hashes to
    0.2696 (arm A, v1); the enrolled user."""
    workspace = tenant[0]
    path = PathFactory(workspace=workspace, key="onboarding", is_default=True)
    old = PathVersionFactory(path=path, number=1, status="archived", published_at=T0)
    live = PublishedPathVersionFactory(path=path, number=2)
    experiment = services.create_path_experiment(
        path=path, versions=[old, live], key="onboarding-v2", seed="seed"
    )
    services.experiment_start(experiment=experiment)
    end_user = EndUserFactory(workspace=workspace, external_id="b")
    enrolling.enrol(end_user=end_user, enrolled_at=T0)
    return end_user


EXPECTED = {
    "experiment": "onboarding-v2",
    "experiment_status": "running",
    "variant": "A",
    "assigned_at": "2026-03-02T09:00:00+00:00",
    "path_version": {"path": "onboarding", "version": 1},
}


def test_the_secret_key_reads_a_users_arms(server, arms):
    response = server.get("/api/v1/users/b/experiments")

    assert response.status_code == 200
    assert response.json() == {"user_id": "b", "experiments": [EXPECTED]}


def test_the_users_own_token_reads_them_too(arms):
    response = end_user_client(arms).get("/api/v1/users/b/experiments")

    assert response.status_code == 200
    assert response.json()["experiments"][0]["variant"] == "A"


def test_a_user_in_no_experiment_has_an_empty_list(server, tenant):
    EndUserFactory(workspace=tenant[0], external_id="lonely")

    response = server.get("/api/v1/users/lonely/experiments")

    assert response.json() == {"user_id": "lonely", "experiments": []}


def test_unknown_user_is_404_and_write_keys_are_403(server, tenant):
    assert server.get("/api/v1/users/nobody/experiments").status_code == 404
    write = key_client(tenant[1]).get("/api/v1/users/nobody/experiments")
    assert write.status_code == 403


def test_another_workspace_does_not_see_the_user(arms, other_tenant):
    response = key_client(other_tenant[2]).get("/api/v1/users/b/experiments")

    assert response.status_code == 404


def test_the_enrollment_state_carries_the_arms(server, arms):
    state = server.get("/api/v1/users/b/onboarding").json()

    assert state["path"] == {"key": "onboarding", "name": "Onboarding", "version": 1}
    assert state["experiments"] == [EXPECTED]


def test_the_state_of_a_user_outside_experiments_has_no_arms_section(server, tenant):
    workspace = tenant[0]
    PublishedPathVersionFactory(path=PathFactory(workspace=workspace, key="basics", is_default=True))
    enrolling.enrol(end_user=EndUserFactory(workspace=workspace, external_id="plain"), enrolled_at=T0)

    state = server.get("/api/v1/users/plain/onboarding").json()

    assert "experiments" not in state


def test_the_gdpr_export_holds_every_assignment(server, arms):
    response = server.post("/api/v1/users/b/data-export")

    bundle = json.loads(response.content)
    assert "experiments" in bundle["sections"]
    assert bundle["experiments"] == [
        {
            "experiment": "onboarding-v2",
            "experiment_name": "onboarding-v2",
            "variant": "A",
            "assigned_at": "2026-03-02T09:00:00+00:00",
            "hash_value": 0.2696,
            "path_version": "onboarding v1",
        }
    ]
