"""Nudge-template experiments: arms are template versions, allocated when a nudge is composed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments import services, template_results
from experiments.models import Assignment
from nudges.models import Nudge
from tests.factories import EndUserFactory
from tests.nudges.factories import NudgeFactory, NudgeTemplateFactory, TemplateVersionFactory, TriggerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(workspace):
    return NudgeTemplateFactory(trigger=TriggerFactory(workspace=workspace), name="Welcome email")


@pytest.fixture
def arms(template):
    control = TemplateVersionFactory(template=template, variant="A")
    challenger = TemplateVersionFactory(template=template, variant="B", status="approved", activated_at=None)
    return control, challenger


def _template_experiment(workspace, arms, *, start=True, key="welcome-copy", weights=(50, 50), **options):
    experiment = services.experiment_create(
        workspace=workspace,
        key=key,
        name=key,
        kind="template",
        variants=[
            {"key": key_, "weight": weight, "template_version": version}
            for key_, weight, version in zip("AB", weights, arms, strict=True)
        ],
        **options,
    )
    return services.experiment_start(experiment=experiment) if start else experiment


def test_arm_counts_count_users_assigned_and_converted_after_a_nudge_of_their_arm(workspace, template, arms):
    experiment = _template_experiment(workspace, arms)
    control, challenger = experiment.variants.all()
    now = timezone.now()
    users = EndUserFactory.create_batch(5, workspace=workspace)
    for end_user, variant in zip(users, [control, control, challenger, challenger, challenger], strict=True):
        Assignment.objects.create(
            workspace=workspace, experiment=experiment, end_user=end_user, variant=variant, assigned_at=now
        )

    def nudge(end_user, version, **fields):
        NudgeFactory(trigger=template.trigger, end_user=end_user, template_version=version, **fields)

    nudge(users[0], arms[0], sent_at=now + timedelta(minutes=1), converted_at=now + timedelta(hours=1))
    nudge(users[0], arms[0], sent_at=now + timedelta(minutes=2), converted_at=now + timedelta(hours=2))
    nudge(users[1], arms[0], sent_at=now - timedelta(days=1), converted_at=now - timedelta(hours=20))
    nudge(users[2], arms[1], sent_at=now + timedelta(minutes=1), converted_at=now + timedelta(hours=1))
    nudge(users[3], arms[0], sent_at=now + timedelta(minutes=1), converted_at=now + timedelta(hours=1))
    nudge(users[4], arms[1], sent_at=now + timedelta(minutes=1), status=Nudge.Status.DELIVERED)

    counts = template_results.arm_counts(experiment)

    # users[0] twice counts once; users[1] converted before the experiment; users[3] after the
    # other arm's version; users[4] did not convert.
    assert counts == {control.pk: (2, 1), challenger.pk: (3, 1)}
