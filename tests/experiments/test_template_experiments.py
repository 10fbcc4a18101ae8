"""Nudge-template experiments: the arms are template versions, allocated when a nudge is composed
(experiments.template_arms through nudges.content.choosers), sticky, with exposures counted at
the send, and their counts per arm (experiments.template_results).

Hash values are GrowthBook's own test cases (fixtures/growthbook_cases.json): with seed "seed",
user "b" hashes to 0.2696; with seed "90850943850283058242805", user "123" hashes to 0.7516.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from experiments import allocation, services, template_arms, template_results
from experiments.models import Assignment, Experiment, Exposure
from nudges.content import choosers, composer
from nudges.delivery import pipeline
from nudges.gateways import in_app
from nudges.models import ChannelProvider, Nudge, TemplateVersion
from tests.factories import EndUserFactory, WorkspaceFactory
from tests.nudges.factories import (
    ChannelProviderFactory,
    NudgeFactory,
    NudgeSettingsFactory,
    NudgeTemplateFactory,
    TemplateVersionFactory,
    TriggerFactory,
)

pytestmark = pytest.mark.django_db

SEED_A = "seed"  # user "b" -> 0.2696
SEED_B = "90850943850283058242805"  # user "123" -> 0.7516


@pytest.fixture(autouse=True)
def _fresh_nudge_caches():
    pipeline.forget()  # the composer caches templates by id, and ids repeat across tests
    yield
    pipeline.forget()


@pytest.fixture
def template(workspace):
    trigger = TriggerFactory(workspace=workspace, channels=["in_app"])
    return NudgeTemplateFactory(trigger=trigger, channel="in_app", name="Welcome tooltip")


@pytest.fixture
def arms(template):
    """Control is the active version (what the bandit sends); the challenger is approved only."""
    control = TemplateVersionFactory(template=template, variant="A", body="Welcome aboard.")
    challenger = TemplateVersionFactory(
        template=template, variant="B", status="approved", activated_at=None, body="Two minutes to set up."
    )
    return control, challenger


def _experiment(workspace, versions, *, start=True, key="welcome-copy", weights=(50, 50), **options):
    experiment = services.experiment_create(
        workspace=workspace,
        key=key,
        name=key,
        kind=Experiment.Kind.TEMPLATE,
        variants=[
            {"key": arm_key, "weight": weight, "template_version": version}
            for arm_key, weight, version in zip("AB", weights, versions, strict=True)
        ],
        **options,
    )
    return services.experiment_start(experiment=experiment) if start else experiment


def _choose(template, end_user, *, cold_start=False):
    return composer.choose_version(template=template, cold_start=cold_start, end_user=end_user)


# --- Allocation: deterministic, recorded, sticky -------------------------------------------------


def test_a_user_gets_their_arm_with_the_reason_and_an_assignment(workspace, template, arms):
    experiment = _experiment(workspace, arms, seed=SEED_B)
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    choice = _choose(template, end_user)

    assert choice.version == arms[1]
    assert choice.explanation == "experiment welcome-copy, variant B, 50/50, hash 0.7516"
    assignment = Assignment.objects.get(experiment=experiment, end_user=end_user)
    assert (assignment.variant.key, assignment.hash_value, assignment.enrollment_id) == ("B", 0.7516, None)
    assert not Exposure.objects.exists()  # composed, not sent yet


def test_allocation_is_deterministic_and_the_second_choice_reads_the_stored_arm(workspace, template, arms):
    _experiment(workspace, arms, seed=SEED_A)
    end_user = EndUserFactory(workspace=workspace, external_id="b")

    first, second = _choose(template, end_user), _choose(template, end_user)

    assert (first.version, second.version) == (arms[0], arms[0])
    assert first.explanation == "experiment welcome-copy, variant A, 50/50, hash 0.2696"
    assert second.explanation == "experiment welcome-copy, variant A, 50/50 (stored assignment)"
    assert Assignment.objects.count() == 1


def test_the_experiment_decides_before_the_cold_start_rule(workspace, template, arms):
    _experiment(workspace, arms, seed=SEED_B)
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    assert _choose(template, end_user, cold_start=True).version == arms[1]


def test_changing_weights_and_traffic_never_moves_an_assigned_user(workspace, template, arms):
    experiment = _experiment(workspace, arms, seed=SEED_A)
    assigned = EndUserFactory(workspace=workspace, external_id="b")
    _choose(template, assigned)  # arm A

    services.experiment_allocation_update(
        experiment=experiment, weights={"A": 0, "B": 100}, traffic_share=0.1
    )

    choice = _choose(template, assigned)
    assert (choice.version, choice.explanation) == (
        arms[0],
        "experiment welcome-copy, variant A, 0/100 (stored assignment)",
    )
    assert Assignment.objects.get(end_user=assigned).variant.key == "A"


def test_new_weights_apply_to_users_not_yet_assigned(workspace, template, arms):
    experiment = _experiment(workspace, arms, seed=SEED_A)
    services.experiment_allocation_update(experiment=experiment, weights={"A": 0, "B": 100})
    end_user = EndUserFactory(workspace=workspace, external_id="b")

    choice = _choose(template, end_user)

    assert (choice.version, choice.explanation) == (
        arms[1],
        "experiment welcome-copy, variant B, 0/100, hash 0.2696",
    )


def test_an_assigned_user_keeps_the_arm_when_their_traits_leave_the_audience(workspace, template, arms):
    _experiment(workspace, arms, seed=SEED_B, audience={"persona": ["admin"]})
    end_user = EndUserFactory(workspace=workspace, external_id="123", persona="admin")
    _choose(template, end_user)
    end_user.persona = "developer"
    end_user.save(update_fields=["persona"])

    assert _choose(template, end_user).version == arms[1]


# --- Who is in: audience, traffic, status -----------------------------------------------------------


def test_a_user_outside_the_audience_is_left_to_the_bandit(workspace, template, arms):
    _experiment(workspace, arms, seed=SEED_B, audience={"persona": ["admin"]})
    end_user = EndUserFactory(workspace=workspace, external_id="123", persona="developer")

    choice = _choose(template, end_user)

    assert (choice.version, choice.explanation) == (arms[0], "variant A: the only active variant")
    assert not Assignment.objects.exists()


def test_a_user_in_the_audience_is_allocated(workspace, template, arms):
    _experiment(workspace, arms, seed=SEED_B, audience={"persona": ["Admin"]})
    end_user = EndUserFactory(workspace=workspace, external_id="123", persona="admin")

    assert _choose(template, end_user).version == arms[1]


def test_a_user_outside_the_traffic_coverage_is_left_to_the_bandit(workspace, template, arms):
    # 0.2696 falls in arm A's slice (0 to 0.5), past its covered part (0 to 0.1).
    _experiment(workspace, arms, seed=SEED_A, traffic_share=0.2)
    outside = EndUserFactory(workspace=workspace, external_id="b")

    choice = _choose(template, outside)

    assert choice.explanation == "variant A: the only active variant"
    assert not Assignment.objects.exists()


def test_a_user_inside_the_traffic_coverage_is_allocated(workspace, template, arms):
    # 0.7516 falls in arm B's slice (0.5 to 1), inside its covered part (0.5 to 0.9).
    _experiment(workspace, arms, seed=SEED_B, traffic_share=0.8)
    inside = EndUserFactory(workspace=workspace, external_id="123")

    assert _choose(template, inside).explanation == "experiment welcome-copy, variant B, 50/50, hash 0.7516"


@pytest.mark.parametrize("status", ["draft", "stopped", "concluded"])
def test_an_experiment_that_is_not_running_is_not_used(workspace, template, arms, status):
    experiment = _experiment(workspace, arms, seed=SEED_B, start=status != "draft")
    end_user = EndUserFactory(workspace=workspace, external_id="123")
    if status != "draft":
        Assignment.objects.create(
            workspace=workspace,
            experiment=experiment,
            end_user=end_user,
            variant=experiment.variants.get(key="B"),
            assigned_at=timezone.now(),
        )
        services.experiment_stop(experiment=experiment)
    if status == "concluded":
        services.experiment_conclude(experiment=experiment)

    choice = _choose(template, end_user)

    assert (choice.version, choice.explanation) == (arms[0], "variant A: the only active variant")
    assert Assignment.objects.filter(end_user=end_user).count() == (0 if status == "draft" else 1)


def test_an_experiment_on_another_template_is_not_used(workspace, template, arms):
    other = NudgeTemplateFactory(trigger=template.trigger, channel="email", name="Welcome email")
    _experiment(
        workspace,
        [
            TemplateVersionFactory(template=other, variant="A"),
            TemplateVersionFactory(template=other, variant="B"),
        ],
        seed=SEED_B,
    )
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    assert _choose(template, end_user).explanation == "variant A: the only active variant"
    assert not Assignment.objects.exists()


# --- When the experiment breaks: control, else the bandit --------------------------------------------


def test_a_user_without_an_external_id_gets_control_with_the_reason_and_no_assignment(
    workspace, template, arms
):
    _experiment(workspace, arms, seed=SEED_B)
    anonymous = EndUserFactory(workspace=workspace, external_id=None)

    choice = _choose(template, anonymous)

    assert choice.version == arms[0]
    assert choice.explanation == (
        "experiment welcome-copy: allocation failed (the user has no external id to hash); "
        "control A, not assigned"
    )
    assert not Assignment.objects.exists()


def test_an_arm_that_can_no_longer_be_sent_gives_control(workspace, template, arms):
    _experiment(workspace, arms, seed=SEED_B)
    TemplateVersion.objects.filter(pk=arms[1].pk).update(status="retired")
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    choice = _choose(template, end_user)

    assert choice.version == arms[0]
    assert choice.explanation == (
        f"experiment welcome-copy: allocation failed (variant B: v{arms[1].number} is retired, "
        "not approved); control A, not assigned"
    )
    assert not Assignment.objects.exists()


def test_an_assigned_users_arm_retired_mid_experiment_gives_control_and_keeps_the_assignment(
    workspace, template, arms
):
    _experiment(workspace, arms, seed=SEED_B)
    end_user = EndUserFactory(workspace=workspace, external_id="123")
    _choose(template, end_user)
    TemplateVersion.objects.filter(pk=arms[1].pk).update(status="retired")

    choice = _choose(template, end_user)

    assert choice.version == arms[0]
    assert choice.explanation.startswith(
        "experiment welcome-copy: the stored arm cannot be sent (variant B: "
    )
    assert Assignment.objects.get(end_user=end_user).variant.key == "B"


def test_an_arm_of_another_template_gives_control(workspace, template, arms):
    stray = TemplateVersionFactory(template=NudgeTemplateFactory(trigger=template.trigger, channel="email"))
    _experiment(workspace, [arms[0], stray], seed=SEED_B)
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    choice = _choose(template, end_user)

    assert choice.version == arms[0]
    assert "is a version of another template" in choice.explanation
    assert not Assignment.objects.exists()


def test_with_no_usable_control_the_bandit_decides_and_says_why(workspace, template, arms):
    _experiment(workspace, [arms[1], arms[0]], seed=SEED_B)  # control: the approved challenger
    TemplateVersion.objects.filter(pk=arms[1].pk).update(status="retired")
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    choice = _choose(template, end_user)

    assert choice.version == arms[0]
    assert choice.explanation.startswith("experiment failed (AllocationError: experiment welcome-copy: ")
    assert choice.explanation.endswith("; variant A: the only active variant")
    assert not Assignment.objects.exists()


def test_a_chooser_that_raises_is_skipped_and_the_bandit_decides(workspace, template, arms, monkeypatch):
    _experiment(workspace, arms, seed=SEED_B)

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(template_arms, "running_template_experiments", broken)
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    choice = _choose(template, end_user)

    assert (choice.version, choice.explanation) == (
        arms[0],
        "experiment failed (RuntimeError: database went away); variant A: the only active variant",
    )


def test_a_draft_picked_by_a_chooser_is_never_sent(workspace, template, arms, monkeypatch):
    draft = TemplateVersionFactory(template=template, variant="C", status="draft", activated_at=None)
    monkeypatch.setattr(
        template_arms.CHOOSER, "choose", lambda **kwargs: choosers.Pick(draft, "experiment x, variant C")
    )
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    choice = _choose(template, end_user)

    assert choice.version == arms[0]
    assert choice.explanation.startswith(
        f"experiment failed (UnsendablePick: v{draft.number} is draft, not approved)"
    )


# --- Workspaces ----------------------------------------------------------------------------------------


def test_a_template_version_of_another_workspace_is_refused(workspace, arms):
    foreign = TemplateVersionFactory(
        template=NudgeTemplateFactory(trigger=TriggerFactory(workspace=WorkspaceFactory()))
    )

    with pytest.raises(ValidationError) as refused:
        _experiment(workspace, [arms[0], foreign])

    assert refused.value.message_dict == {
        "variants": ["variant B: the template belongs to another workspace"]
    }
    assert not Experiment.objects.exists()


def test_another_workspaces_users_never_get_the_experiment(workspace, template, arms):
    _experiment(workspace, arms, seed=SEED_B)
    stranger = EndUserFactory(workspace=WorkspaceFactory(), external_id="123")

    assert template_arms.CHOOSER.choose(template=template, end_user=stranger) is None
    assert not Assignment.objects.exists()


# --- Exposures: counted when a nudge of the arm is actually sent ---------------------------------------


@pytest.fixture
def in_app_send(workspace, template, monkeypatch):
    """Queue and run one in-app nudge of the template's trigger for a user through the pipeline."""
    monkeypatch.setattr(in_app, "push_frame", lambda **kwargs: None)
    NudgeSettingsFactory(workspace=workspace)
    ChannelProviderFactory(workspace=workspace, channel="in_app", provider="in_app")

    def send(end_user, captured):
        nudge = NudgeFactory(
            trigger=template.trigger, end_user=end_user, status=Nudge.Status.QUEUED, channel="", sent_at=None
        )
        with captured(execute=True):
            outcome = pipeline.nudge_process(nudge_id=nudge.pk)
        nudge.refresh_from_db()
        return outcome, nudge

    return send


def test_a_sent_nudge_of_the_arm_counts_an_exposure_and_traces_the_arm(
    workspace, template, arms, in_app_send, django_capture_on_commit_callbacks
):
    experiment = _experiment(workspace, arms, seed=SEED_B)
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    outcome, first = in_app_send(end_user, django_capture_on_commit_callbacks)
    # The daily cap holds a second nudge through the pipeline: this one was sent a day later.
    second = NudgeFactory(
        trigger=template.trigger,
        end_user=end_user,
        template_version=arms[1],
        sent_at=first.sent_at + timedelta(days=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        choosers.version_sent(nudge=second)

    assert outcome.status == Nudge.Status.SENT
    assert (first.template_version, first.body) == (arms[1], "Two minutes to set up.")
    template_lines = [line["message"] for line in first.trace if line["stage"] == "template"]
    assert template_lines == ["Welcome tooltip: experiment welcome-copy, variant B, 50/50, hash 0.7516"]
    exposure = Exposure.objects.get(assignment__experiment=experiment, assignment__end_user=end_user)
    assert (exposure.count, exposure.first_exposed_at, exposure.last_exposed_at) == (
        2,
        first.sent_at,
        second.sent_at,
    )


def test_a_composed_nudge_that_is_not_sent_exposes_nobody(
    workspace, template, arms, in_app_send, django_capture_on_commit_callbacks
):
    _experiment(workspace, arms, seed=SEED_B)
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    ChannelProvider.objects.filter(workspace=workspace).update(is_active=False)  # switched off

    outcome, nudge = in_app_send(end_user, django_capture_on_commit_callbacks)

    assert (outcome.status, nudge.sent_at) == (Nudge.Status.FAILED, None)
    assert Assignment.objects.filter(end_user=end_user).count() == 1  # allocated when composed
    assert not Exposure.objects.exists()


def test_a_send_of_another_version_or_a_stopped_experiment_counts_no_exposure(
    workspace, template, arms, django_capture_on_commit_callbacks
):
    experiment = _experiment(workspace, arms, seed=SEED_B)
    end_user = EndUserFactory(workspace=workspace, external_id="123")
    _choose(template, end_user)  # arm B

    with django_capture_on_commit_callbacks(execute=True):
        choosers.version_sent(
            nudge=NudgeFactory(trigger=template.trigger, end_user=end_user, template_version=arms[0])
        )
    services.experiment_stop(experiment=experiment)
    with django_capture_on_commit_callbacks(execute=True):
        choosers.version_sent(
            nudge=NudgeFactory(trigger=template.trigger, end_user=end_user, template_version=arms[1])
        )

    assert not Exposure.objects.exists()


def test_a_failing_exposure_never_fails_the_send(
    workspace, template, arms, in_app_send, django_capture_on_commit_callbacks, monkeypatch
):
    _experiment(workspace, arms, seed=SEED_B)
    end_user = EndUserFactory(workspace=workspace, external_id="123")

    def broken(**kwargs):
        raise RuntimeError("exposure table locked")

    monkeypatch.setattr(template_arms, "exposure_record", broken)

    outcome, nudge = in_app_send(end_user, django_capture_on_commit_callbacks)

    assert (outcome.status, nudge.template_version) == (Nudge.Status.SENT, arms[1])
    assert not Exposure.objects.exists()


# --- Counts per arm ------------------------------------------------------------------------------------


def test_arm_counts_count_users_assigned_and_converted_after_a_nudge_of_their_arm(workspace, template, arms):
    experiment = _experiment(workspace, arms)
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

    # users[0] converted twice and counts once; users[1] converted before being assigned;
    # users[3] after a nudge of the other arm's version; users[4] did not convert.
    assert counts == {control.pk: (2, 1), challenger.pk: (3, 1)}


def test_arm_counts_of_users_allocated_by_the_composer_and_converted(workspace, template, arms):
    experiment = _experiment(workspace, arms, seed=SEED_B)
    converted, idle = (EndUserFactory(workspace=workspace, external_id=value) for value in ("123", "b"))
    for end_user in (converted, idle):
        _choose(template, end_user)
    later = timezone.now() + timedelta(minutes=1)
    NudgeFactory(
        trigger=template.trigger,
        end_user=converted,
        template_version=arms[1],
        sent_at=later,
        converted_at=later + timedelta(hours=3),
    )
    by_key = {variant.key: variant.pk for variant in experiment.variants.all()}

    assert template_results.arm_counts(experiment) == {by_key["A"]: (1, 0), by_key["B"]: (1, 1)}


def test_arm_counts_of_an_experiment_without_assignments_are_zeros(workspace, arms):
    experiment = _experiment(workspace, arms, start=False)

    assert set(template_results.arm_counts(experiment).values()) == {(0, 0)}


# --- Two workers composing for one user at once (PostgreSQL) --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_allocating_one_user_at_once_agree_on_one_arm(postgres, monkeypatch):
    """Both read "no assignment", then hash to different arms (as if the weights changed between
    them): one row is written, and both send its arm."""
    workspace = WorkspaceFactory()
    template = NudgeTemplateFactory(trigger=TriggerFactory(workspace=workspace), channel="in_app")
    versions = (
        TemplateVersionFactory(template=template, variant="A"),
        TemplateVersionFactory(template=template, variant="B", status="approved", activated_at=None),
    )
    _experiment(workspace, versions, seed=SEED_B)
    end_user = EndUserFactory(workspace=workspace, external_id="123")
    barrier, lock, indices = threading.Barrier(2), threading.Lock(), [1, 0]

    def racing_allocate(**kwargs):
        barrier.wait(timeout=30)  # both past the read of stored assignments
        with lock:
            return allocation.Allocation(indices.pop(), 0.5)

    monkeypatch.setattr(allocation, "allocate", racing_allocate)

    def choose():
        try:
            return template_arms.CHOOSER.choose(template=template, end_user=end_user)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        picks = list(pool.map(lambda _: choose(), range(2)))

    stored = Assignment.objects.get(end_user=end_user)
    assert {pick.version for pick in picks} == {stored.variant.template_version}
    assert sorted(pick.reason.endswith("(stored assignment)") for pick in picks) == [False, True]


@pytest.mark.parametrize("status", ["draft", "retired"])
def test_starting_with_an_arm_that_may_not_be_sent_is_refused_with_the_reason(
    workspace, template, arms, status
):
    unsendable = TemplateVersionFactory(template=template, variant="C", status=status, activated_at=None)
    experiment = _experiment(workspace, [arms[0], unsendable], start=False)

    with pytest.raises(ValidationError) as refused:
        services.experiment_start(experiment=experiment)

    assert f"is {status}; only an approved or active version may be sent" in str(refused.value.message_dict)
    experiment.refresh_from_db()
    assert experiment.status == "draft"
