"""path_selection_latency_p95_ms: one observation per path decision at enrolment, labelled with
the decision's outcome. Read from this process's own values (prometheus_client's REGISTRY), so
other processes writing the same metric files do not move the numbers."""

import pytest
from prometheus_client import REGISTRY

from onboarding.progress import enrolling
from onboarding.progress import services as progress_services
from paths import planner
from tests.factories import EndUserFactory, PathFactory, PublishedPathVersionFactory
from tests.onboarding.engine_paths import T0

pytestmark = pytest.mark.django_db

OUTCOMES = ("rules", "default", "none")


def observed() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("path_selection_latency_p95_ms_count", {"outcome": outcome}) or 0.0
        for outcome in OUTCOMES
    }


def added(before: dict[str, float]) -> dict[str, float]:
    after = observed()
    return {outcome: after[outcome] - before[outcome] for outcome in OUTCOMES}


@pytest.fixture
def workspace(tenant):
    workspace = tenant[0]
    PublishedPathVersionFactory(
        path=PathFactory(workspace=workspace, key="admins", audience_personas=["admin"])
    )
    return workspace


def test_enrolling_one_user_observes_one_rule_decision(workspace):
    before = observed()

    enrollment = progress_services.enrollment_start(
        end_user=EndUserFactory(workspace=workspace, persona="admin"), enrolled_at=T0
    )

    assert enrollment.path_version.path.key == "admins"
    assert added(before) == {"rules": 1, "default": 0, "none": 0}


def test_a_batch_observes_each_user_once_with_its_outcome(workspace):
    PublishedPathVersionFactory(path=PathFactory(workspace=workspace, key="everyone", is_default=True))
    users = [
        EndUserFactory(workspace=workspace, persona="admin"),
        EndUserFactory(workspace=workspace, persona="admin"),
        EndUserFactory(workspace=workspace, persona="developer"),
    ]
    before = observed()

    enrollments = enrolling.enrol_many(
        end_users=users,
        enrolled_at={user.pk: T0 for user in users},
        published=planner.published_versions(workspace_id=workspace.pk),
    )

    assert sorted(enrollment.path_version.path.key for enrollment in enrollments) == [
        "admins",
        "admins",
        "everyone",
    ]
    assert added(before) == {"rules": 2, "default": 1, "none": 0}


def test_a_user_no_path_fits_is_observed_as_none(workspace):
    before = observed()

    enrollment = progress_services.enrollment_start(
        end_user=EndUserFactory(workspace=workspace, persona="developer"), enrolled_at=T0
    )

    assert enrollment is None
    assert added(before) == {"rules": 0, "default": 0, "none": 1}


def test_an_existing_enrollment_is_not_a_new_decision(workspace):
    end_user = EndUserFactory(workspace=workspace, persona="admin")
    progress_services.enrollment_start(end_user=end_user, enrolled_at=T0)
    before = observed()

    progress_services.enrollment_start(end_user=end_user, enrolled_at=T0)

    assert added(before) == {"rules": 0, "default": 0, "none": 0}
