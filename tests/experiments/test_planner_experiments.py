"""The planner at path entry: experiment first, sticky, control when allocation fails.

Hash values are GrowthBook's own test cases (fixtures/growthbook_cases.json): with seed "seed",
user "b" hashes to 0.2696; with seed "90850943850283058242805", user "123" hashes to 0.7516.
"""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments import allocation, services
from experiments.models import Assignment
from onboarding.progress import enrolling
from paths import deciders, planner
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_user_in_the_coverage_starts_on_their_arm_with_the_reason(workspace, make_experiment, old_version):
    experiment = make_experiment(seed="seed")
    end_user = EndUserFactory(workspace=workspace, external_id="b")

    enrollment = enrolling.enrol(end_user=end_user, enrolled_at=T0)

    assert enrollment.path_version == old_version
    assert enrollment.decision_reason == "experiment onboarding-v2, variant A, 50/50, hash 0.2696"
    assignment = Assignment.objects.get(experiment=experiment, end_user=end_user)
    assert (assignment.variant.key, assignment.hash_value, assignment.enrollment_id) == (
        "A",
        0.2696,
        enrollment.pk,
    )
    assert assignment.assigned_at == T0


def test_the_second_arm(workspace, make_experiment, live_version):
    make_experiment(seed="90850943850283058242805")
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    enrollment = enrolling.enrol(end_user=end_user, enrolled_at=T0)

    assert enrollment.path_version == live_version
    assert enrollment.decision_reason == "experiment onboarding-v2, variant B, 50/50, hash 0.7516"


def test_a_user_outside_the_traffic_goes_to_the_rules(workspace, make_experiment, live_version):
    make_experiment(seed="seed", traffic_share=0.2)  # 0.2696 is past arm A's covered 0..0.1
    end_user = EndUserFactory(workspace=workspace, external_id="b")

    enrollment = enrolling.enrol(end_user=end_user, enrolled_at=T0)

    assert enrollment.path_version == live_version
    assert enrollment.decision_reason == "no audience matched; workspace default path 'onboarding'"
    assert not Assignment.objects.exists()


def test_the_experiments_audience_must_match_too(workspace, make_experiment, live_version):
    make_experiment(seed="seed", audience={"persona": ["admin"]})
    end_user = EndUserFactory(workspace=workspace, external_id="b", persona="developer")

    enrollment = enrolling.enrol(end_user=end_user, enrolled_at=T0)

    assert enrollment.path_version == live_version
    assert not Assignment.objects.exists()


def test_an_assigned_user_keeps_the_stored_arm_whatever_the_weights_say(
    workspace, make_experiment, old_version
):
    experiment = make_experiment(seed="seed")
    end_user = EndUserFactory(workspace=workspace, external_id="b")
    enrolling.enrol(end_user=end_user, enrolled_at=T0)
    services.experiment_allocation_update(
        experiment=experiment, weights={"A": 0, "B": 100}, traffic_share=0.5
    )

    decision = planner.choose_path(end_user=end_user)

    assert decision.path_version == old_version
    assert decision.reason == "experiment onboarding-v2, variant A, 0/100 (stored assignment)"
    assert decision.record is None  # nothing new to write
    assert Assignment.objects.get().variant.key == "A"


def test_allocation_failure_gives_control_with_the_reason(
    workspace, make_experiment, old_version, monkeypatch
):
    experiment = make_experiment(seed="seed")

    def broken(**kwargs):
        raise allocation.AllocationError("hash service on fire")

    monkeypatch.setattr(allocation, "allocate", broken)
    end_user = EndUserFactory(workspace=workspace, external_id="b")

    enrollment = enrolling.enrol(end_user=end_user, enrolled_at=T0)

    assert enrollment.path_version == old_version
    assert enrollment.decision_reason == (
        "experiment onboarding-v2: allocation failed (hash service on fire); control A, not assigned"
    )
    assert not Assignment.objects.filter(experiment=experiment).exists()


def test_a_user_without_an_external_id_gets_control(workspace, make_experiment, old_version):
    make_experiment(seed="seed")
    end_user = EndUserFactory(workspace=workspace, external_id="")

    decision = planner.choose_path(end_user=end_user)

    assert decision.path_version == old_version
    assert "allocation failed (the user has no external id to hash)" in decision.reason


def test_a_stopped_experiment_no_longer_assigns(workspace, make_experiment, live_version):
    experiment = make_experiment(seed="seed")
    services.experiment_stop(experiment=experiment)

    enrollment = enrolling.enrol(
        end_user=EndUserFactory(workspace=workspace, external_id="b"), enrolled_at=T0
    )

    assert enrollment.path_version == live_version
    assert not Assignment.objects.exists()


def test_a_batch_writes_its_assignments_in_one_insert(workspace, make_experiment, live_version):
    make_experiment()
    end_users = [EndUserFactory(workspace=workspace, external_id=f"person-{number}") for number in range(30)]

    with CaptureQueriesContext(connection) as queries:
        enrollments = enrolling.enrol_many(
            end_users=end_users,
            enrolled_at={end_user.pk: T0 for end_user in end_users},
            published=planner.published_versions(workspace_id=workspace.pk),
        )

    inserts = [
        query
        for query in queries
        if query["sql"].startswith("INSERT") and '"experiments_assignment"' in query["sql"]
    ]
    assert len(inserts) == 1
    assignments = {row.end_user_id: row for row in Assignment.objects.select_related("variant")}
    assert len(enrollments) == len(assignments) == 30
    for enrollment in enrollments:
        assert assignments[enrollment.end_user_id].variant.path_version_id == enrollment.path_version_id
        assert assignments[enrollment.end_user_id].enrollment_id == enrollment.pk
    assert {row.variant.key for row in assignments.values()} == {"A", "B"}


class _Broken:
    source = "broken"

    def prepare(self, **kwargs):
        return None

    def decide(self, **kwargs):
        raise RuntimeError("no luck")

    def record(self, **kwargs):
        raise AssertionError("never called")


def test_a_failing_decider_leaves_the_choice_to_the_rules_and_says_so(workspace, live_version):
    deciders.decider_register(_Broken(), order=1)
    try:
        decision = planner.choose_path(end_user=EndUserFactory(workspace=workspace))
    finally:
        deciders.decider_unregister("broken")

    assert decision.path_version == live_version
    assert (
        decision.reason
        == "broken failed (RuntimeError: no luck); no audience matched; workspace default path 'onboarding'"
    )
