"""Bad input is refused with the field and the reason, and nothing changes."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from experiments import services
from experiments.models import Assignment, Experiment
from tests.factories import EndUserFactory, PathFactory, PathVersionFactory, PublishedPathVersionFactory

pytestmark = pytest.mark.django_db


def refused(error: pytest.ExceptionInfo, field: str) -> str:
    assert list(error.value.message_dict) == [field]
    return error.value.message_dict[field][0]


def test_weights_must_sum_to_100(path, old_version, live_version):
    with pytest.raises(ValidationError) as error:
        services.create_path_experiment(
            path=path, versions=[old_version, live_version], key="x", weights=[50, 40]
        )

    assert refused(error, "variants") == "weights must sum to 100, not 90"
    assert not Experiment.objects.exists()


def test_a_version_of_another_path_is_refused(workspace, path, live_version):
    other = PublishedPathVersionFactory(path=PathFactory(workspace=workspace, key="other"))

    with pytest.raises(ValidationError) as error:
        services.create_path_experiment(path=path, versions=[live_version, other], key="x")

    assert (
        refused(error, "variants") == f"variant B: v{other.number} is a version of 'other', not 'onboarding'"
    )
    assert not Experiment.objects.exists()


def test_a_version_of_another_workspace_is_refused(path, live_version):
    foreign = PublishedPathVersionFactory()  # its own workspace

    with pytest.raises(ValidationError) as error:
        services.experiment_create(
            workspace=path.workspace,
            key="x",
            name="x",
            path=path,
            variants=[
                {"key": "A", "weight": 50, "path_version": live_version},
                {"key": "B", "weight": 50, "path_version": foreign},
            ],
        )

    assert refused(error, "variants") == "variant B: the path version belongs to another workspace"


def test_starting_on_a_draft_version_is_refused(path, live_version):
    draft = PathVersionFactory(path=path, number=3)
    experiment = services.create_path_experiment(path=path, versions=[live_version, draft], key="x")

    with pytest.raises(ValidationError) as error:
        services.experiment_start(experiment=experiment)

    assert refused(error, "variants").startswith("variant B: v3 was never published")
    experiment.refresh_from_db()
    assert (experiment.status, experiment.started_at) == ("draft", None)


def test_two_running_experiments_on_one_path_for_an_overlapping_audience(make_experiment):
    make_experiment(key="first", audience={"persona": ["admin", "developer"]})
    second = make_experiment(key="second", start=False, audience={"persona": ["Developer"]})

    with pytest.raises(ValidationError) as error:
        services.experiment_start(experiment=second)

    assert (
        refused(error, "audience")
        == "experiment first is running on path 'onboarding' for an overlapping audience"
    )
    assert Experiment.objects.get(key="second").status == "draft"


def test_disjoint_audiences_may_run_side_by_side(make_experiment):
    make_experiment(key="admins", audience={"persona": ["admin"]})
    developers = make_experiment(key="developers", audience={"persona": ["developer"]})

    assert developers.status == "running"


def test_status_only_moves_forward(make_experiment):
    experiment = make_experiment()
    services.experiment_stop(experiment=experiment)

    with pytest.raises(ValidationError) as error:
        services.experiment_start(experiment=experiment)

    assert refused(error, "status") == "a stopped experiment cannot become running: status only moves forward"


def test_concluding_without_any_assignment_is_refused(make_experiment):
    experiment = make_experiment()
    services.experiment_stop(experiment=experiment)

    with pytest.raises(ValidationError) as error:
        services.experiment_conclude(experiment=experiment)

    assert refused(error, "status") == "no user was assigned: there is nothing to conclude from"
    assert Experiment.objects.get().status == "stopped"


def test_concluding_with_assignments_stamps_the_time(workspace, make_experiment):
    experiment = make_experiment()
    variant = experiment.variants.first()
    Assignment.objects.create(
        workspace=workspace,
        experiment=experiment,
        end_user=EndUserFactory(workspace=workspace),
        variant=variant,
        assigned_at=timezone.now(),
        hash_value=0.1,
    )

    concluded = services.experiment_conclude(experiment=experiment)

    assert concluded.status == "concluded"
    assert concluded.concluded_at is not None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"traffic_share": 1.5}, "traffic_share"),
        ({"primary_metric": "happiness"}, "primary_metric"),
        ({"guardrail_metrics": ["error_rate_percent", "vibes"]}, "guardrail_metrics"),
        ({"minimum_duration_days": 40, "maximum_duration_days": 30}, "minimum_duration_days"),
        ({"audience": {"shoe_size": ["42"]}}, "audience"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(make_experiment, options, field):
    with pytest.raises(ValidationError) as error:
        make_experiment(start=False, **options)

    assert refused(error, field)
    assert not Experiment.objects.exists()


def test_a_duplicate_key_is_refused(make_experiment):
    make_experiment(start=False)

    with pytest.raises(ValidationError) as error:
        make_experiment(start=False)

    assert refused(error, "key") == "an experiment 'onboarding-v2' exists already in this workspace"


def test_new_weights_must_name_every_arm_and_sum_to_100(make_experiment):
    experiment = make_experiment()

    with pytest.raises(ValidationError) as error:
        services.experiment_allocation_update(experiment=experiment, weights={"A": 70, "B": 20})

    assert refused(error, "variants") == "weights must sum to 100, not 90"
    assert [variant.weight for variant in experiment.variants.all()] == [50, 50]
