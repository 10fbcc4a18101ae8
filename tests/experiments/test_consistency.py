"""experiment_allocation_consistency: 1.0 when every stored arm is what the hash gives, lower
when a stored row disagrees; on the metrics API and /metrics."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from experiments import consistency, services
from experiments.models import Assignment
from onboarding.progress import enrolling
from paths import planner
from tests.conftest import key_client
from tests.factories import EndUserFactory, PathFactory, PathVersionFactory, PublishedPathVersionFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now()
WIDE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def enrolled(workspace, make_experiment):
    make_experiment()
    end_users = [EndUserFactory(workspace=workspace, external_id=f"person-{number}") for number in range(40)]
    enrolling.enrol_many(
        end_users=end_users,
        enrolled_at={end_user.pk: NOW for end_user in end_users},
        published=planner.published_versions(workspace_id=workspace.pk),
    )
    return end_users


def test_every_assignment_made_by_the_planner_is_consistent(workspace, enrolled):
    assert consistency.consistency_counts(workspace=workspace, start=WIDE[0], end=WIDE[1]) == {
        "onboarding-v2": (40, 40)
    }


def test_a_stored_arm_the_hash_does_not_give_counts_against(workspace, enrolled):
    row = Assignment.objects.select_related("variant").first()
    other = row.experiment.variants.exclude(pk=row.variant_id).get()
    Assignment.objects.filter(pk=row.pk).update(variant=other)  # as a bug or a hand edit would

    assert consistency.consistency_counts(workspace=workspace, start=WIDE[0], end=WIDE[1]) == {
        "onboarding-v2": (39, 40)
    }


def test_erased_people_are_not_counted(workspace, enrolled):
    enrolled[0].external_id = "erased:0123"
    enrolled[0].save(update_fields=["external_id"])

    assert consistency.consistency_counts(workspace=workspace, start=WIDE[0], end=WIDE[1]) == {
        "onboarding-v2": (39, 39)
    }


def test_the_metrics_api_answers_it(tenant):
    workspace, _, secret_key = tenant  # the API key's workspace: the experiment is built there
    path = PathFactory(workspace=workspace, key="onboarding", is_default=True)
    old = PathVersionFactory(path=path, number=1, status="archived", published_at=NOW)
    live = PublishedPathVersionFactory(path=path, number=2)
    services.experiment_start(
        experiment=services.create_path_experiment(path=path, versions=[old, live], key="e")
    )
    for number in range(10):
        enrolling.enrol(
            end_user=EndUserFactory(workspace=workspace, external_id=f"p{number}"), enrolled_at=NOW
        )

    response = key_client(secret_key).get(
        "/api/v1/analytics/metrics", {"name": "experiment_allocation_consistency"}
    )

    assert response.status_code == 200
    assert (response.json()["value"], response.json()["numerator"], response.json()["denominator"]) == (
        1.0,
        10,
        10,
    )


def test_it_is_exported_to_prometheus(workspace, enrolled, client):
    body = client.get("/metrics").content.decode()

    line = f'experiment_allocation_consistency{{experiment="onboarding-v2",workspace="{workspace.slug}"}} 1.0'
    assert line in body
