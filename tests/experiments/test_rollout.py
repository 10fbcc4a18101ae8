"""Rolling out a winner: one admin action publishes the winning path version (or activates the
winning template version), is audited, and concludes the experiment with its results frozen."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from experiments import results, services, template_results
from experiments.models import Assignment
from tenancy.models import AuditLog, EndUser
from tests.experiments.populate import assign, refresh_facts
from tests.factories import AdminUserFactory
from tests.nudges.factories import (
    NudgeSettingsFactory,
    NudgeTemplateFactory,
    TemplateVersionFactory,
    TriggerFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def admin_user():
    return AdminUserFactory()


@pytest.fixture
def running(make_experiment, now):
    experiment = make_experiment(start=False, minimum_sample_per_arm=100)
    return services.experiment_start(experiment=experiment, at=now - timedelta(days=10))


def refused(error: pytest.ExceptionInfo) -> tuple[str, str]:
    [(field, [message])] = error.value.message_dict.items()
    return field, message


def test_an_archived_winner_is_published_again_and_the_experiment_concluded(
    running, now, admin_user, old_version, live_version
):
    # A (v1, archived since v2 was published) clearly beats B (v2, the published one).
    assign(running, "A", users=300, activated=90, enrolled_at=now - timedelta(days=9))
    assign(running, "B", users=300, activated=20, enrolled_at=now - timedelta(days=9))
    refresh_facts(running)

    concluded = services.experiment_rollout(experiment=running, actor=admin_user)

    old_version.refresh_from_db()
    live_version.refresh_from_db()
    assert (old_version.status, live_version.status) == ("published", "archived")
    assert concluded.status == "concluded" and concluded.concluded_at is not None
    frozen = results.experiment_results(concluded)
    assert frozen.frozen and [(arm.key, arm.users, arm.conversions) for arm in frozen.arms] == [
        ("A", 300, 90),
        ("B", 300, 20),
    ]
    audit = AuditLog.objects.get(action="experiment.rollout")
    assert audit.actor == admin_user
    assert audit.changes["after"] == {"winner": "A", "path_version": 1, "published": True}
    assert audit.changes["reason"].startswith("A (control): every variant's chance to win <= 5%")


def test_a_winner_already_published_has_nothing_to_publish(
    running, now, admin_user, old_version, live_version
):
    assign(running, "A", users=300, activated=30, enrolled_at=now - timedelta(days=9))
    assign(running, "B", users=300, activated=75, enrolled_at=now - timedelta(days=9))
    refresh_facts(running)
    published_at = live_version.published_at

    concluded = services.experiment_rollout(experiment=running, actor=admin_user)

    live_version.refresh_from_db()
    old_version.refresh_from_db()
    assert (live_version.status, live_version.published_at, old_version.status) == (
        "published",
        published_at,
        "archived",
    )
    assert concluded.status == "concluded" and concluded.final_results["arms"][1]["key"] == "B"
    audit = AuditLog.objects.get(action="experiment.rollout")
    assert audit.changes["after"] == {"winner": "B", "path_version": 2, "published": False}


def test_no_winner_is_refused_with_the_reason_and_nothing_changes(running, now, admin_user, live_version):
    assign(running, "A", users=300, activated=30, enrolled_at=now - timedelta(days=9))
    assign(running, "B", users=300, activated=31, enrolled_at=now - timedelta(days=9))
    refresh_facts(running)

    with pytest.raises(ValidationError) as error:
        services.experiment_rollout(experiment=running, actor=admin_user)

    field, message = refused(error)
    assert field == "winner"
    assert message.startswith(
        "no winner to roll out (extend): confidence low at the planned end (day 10 of 7)"
    )
    running.refresh_from_db()
    assert running.status == "running" and running.final_results is None
    assert not AuditLog.objects.filter(action="experiment.rollout").exists()


def test_an_experiment_without_data_is_refused(running, admin_user):
    with pytest.raises(ValidationError) as error:
        services.experiment_rollout(experiment=running, actor=admin_user)

    assert refused(error) == ("status", "no user was assigned: there is no data to pick a winner from")
    running.refresh_from_db()
    assert running.status == "running"


def test_a_concluded_experiment_is_refused(running, now, admin_user):
    assign(running, "A", users=5, enrolled_at=now - timedelta(days=9))
    concluded = services.experiment_conclude(experiment=running)

    with pytest.raises(ValidationError) as error:
        services.experiment_rollout(experiment=concluded, actor=admin_user)

    assert refused(error) == ("status", "a concluded experiment has nothing to roll out")


def test_a_template_winner_is_activated(workspace, now, admin_user, monkeypatch):
    NudgeSettingsFactory(workspace=workspace)  # what the activation checks ask of an email
    template = NudgeTemplateFactory(trigger=TriggerFactory(workspace=workspace), name="Welcome email")
    control = TemplateVersionFactory(template=template, variant="A")
    challenger = TemplateVersionFactory(
        template=template, variant="B", status="approved", activated_at=None, cta_url="{{ step_link }}"
    )
    experiment = services.experiment_create(
        workspace=workspace,
        key="welcome-copy",
        name="Welcome copy",
        kind="template",
        minimum_sample_per_arm=100,
        variants=[
            {"key": "A", "weight": 50, "template_version": control},
            {"key": "B", "weight": 50, "template_version": challenger},
        ],
    )
    experiment = services.experiment_start(experiment=experiment, at=now - timedelta(days=10))
    variants = {variant.key: variant for variant in experiment.variants.all()}
    person = EndUser.objects.create(workspace=workspace, external_id="someone")
    Assignment.objects.create(
        workspace=workspace, experiment=experiment, end_user=person, variant=variants["A"], assigned_at=now
    )
    # The nudge counts (template_results, helper T's) are the input here: B converts 25 % vs 10 %.
    monkeypatch.setattr(
        template_results,
        "arm_counts",
        lambda experiment: {variants["A"].pk: (300, 30), variants["B"].pk: (300, 75)},
    )

    concluded = services.experiment_rollout(experiment=experiment, actor=admin_user)

    challenger.refresh_from_db()
    assert challenger.status == "active" and challenger.activated_at is not None
    assert concluded.status == "concluded"
    assert concluded.final_results["metric"] == "nudge_conversion_rate"
    audit = AuditLog.objects.get(action="experiment.rollout")
    assert audit.changes["after"] == {"winner": "B", "template_version": challenger.number, "activated": True}
