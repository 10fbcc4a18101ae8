"""Triggers: each kind fires once per occasion, with the reason it fired, and the hooks from
ingestion send one job per transaction."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from nudges.delivery import dispatch
from nudges.models import CustomTriggerStart, Nudge, Trigger
from nudges.triggers import engine as triggers
from nudges.triggers import receivers as hooks
from onboarding.ingestion import services as ingestion_services
from onboarding.models import Enrollment, EnrollmentSignal
from tenancy import services as tenancy_services
from tests.factories import EventFactory, WorkspaceFactory
from tests.nudges.factories import TriggerFactory
from tests.onboarding.progress_setup import enrol, published_path, track

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace():
    hooks.forget()
    workspace, write_key, _ = tenancy_services.workspace_create(name="Acme")
    published_path(workspace)
    workspace.refresh_from_db()
    workspace.write_key = write_key.key
    yield workspace
    hooks.forget()


@pytest.fixture
def queued(monkeypatch):
    """Jobs the triggers send to the pipeline, instead of running it."""
    sent = []
    monkeypatch.setattr(dispatch, "enqueue", lambda job, *args, **kwargs: sent.append((_job_name(job), args)))
    return sent


def _job_name(job) -> str:
    """A job given as a function or by its dotted name, as its bare name."""
    return job.rpartition(".")[2] if isinstance(job, str) else job.__name__


def _nudges(trigger):
    return list(Nudge.objects.filter(trigger=trigger).order_by("pk"))


def test_welcome_fires_once_per_enrollment_and_says_why(workspace, queued):
    trigger = TriggerFactory(workspace=workspace, kind=Trigger.Kind.WELCOME, channels=["in_app"])
    enrollment = enrol(workspace.write_key, "u-1", workspace)

    triggers.on_progress(enrollment_id=enrollment.pk, created=True, step_keys=[])
    triggers.on_progress(enrollment_id=enrollment.pk, created=True, step_keys=[])

    [nudge] = _nudges(trigger)
    assert nudge.end_user == enrollment.end_user
    assert nudge.idempotency_key == f"{trigger.pk}:{enrollment.end_user_id}:enrollment:{enrollment.pk}"
    assert nudge.status == Nudge.Status.QUEUED
    assert nudge.target_step_key == "create-project"
    assert nudge.trace[0]["stage"] == "trigger"
    assert nudge.trace[0]["message"].startswith("welcome: enrolled on Main path")
    assert queued == [("nudges_process_job", ([nudge.pk],))]


def test_milestone_on_a_step_fires_for_that_step_only(workspace, queued):
    trigger = TriggerFactory(
        workspace=workspace,
        kind=Trigger.Kind.MILESTONE,
        config={"step": "create-project"},
        channels=["email"],
    )
    enrollment = enrol(workspace.write_key, "u-1", workspace)

    triggers.on_progress(enrollment_id=enrollment.pk, created=False, step_keys=["profile"])
    assert _nudges(trigger) == []

    track(workspace.write_key, "u-1", "Project Created")
    triggers.on_progress(enrollment_id=enrollment.pk, created=False, step_keys=["create-project"])
    [nudge] = _nudges(trigger)
    assert nudge.trace[0]["message"] == "milestone: step 'create-project' completed"
    # The next step is what the nudge aims at (its conversion).
    assert nudge.target_step_key == "profile"


def test_milestone_on_a_percent_fires_once_it_is_reached(workspace, queued):
    trigger = TriggerFactory(workspace=workspace, kind=Trigger.Kind.MILESTONE, config={"percent": 30})
    enrollment = enrol(workspace.write_key, "u-1", workspace)
    triggers.on_progress(enrollment_id=enrollment.pk, created=False, step_keys=["invite"])  # optional step
    assert _nudges(trigger) == []  # 0% of the required steps

    track(workspace.write_key, "u-1", "Project Created")  # 1 of 3 required steps: 33%
    triggers.on_progress(enrollment_id=enrollment.pk, created=False, step_keys=["create-project"])
    triggers.on_progress(enrollment_id=enrollment.pk, created=False, step_keys=["create-project"])
    [nudge] = _nudges(trigger)
    assert "33% of the path done (trigger at 30%)" in nudge.trace[0]["message"]


def test_inactive_trigger_never_fires(workspace, queued):
    trigger = TriggerFactory(workspace=workspace, kind=Trigger.Kind.WELCOME, is_active=False)
    enrollment = enrol(workspace.write_key, "u-1", workspace)
    triggers.on_progress(enrollment_id=enrollment.pk, created=True, step_keys=[])
    assert _nudges(trigger) == [] and queued == []


def _idle(enrollment, days):
    """Move the user's events `days` into the past."""
    moment = timezone.now() - timedelta(days=days)
    enrollment.end_user.events.update(timestamp=moment)
    return moment


def test_inactivity_fires_once_per_absence_and_again_after_the_user_came_back(workspace, queued):
    trigger = TriggerFactory(workspace=workspace, kind=Trigger.Kind.INACTIVITY, config={"days": 3})
    enrollment = enrol(workspace.write_key, "u-1", workspace)
    enrol(workspace.write_key, "u-2", workspace)  # active today: not idle
    _idle(enrollment, 10)

    report = triggers.scan(workspace=workspace)
    assert (report.created, report.duplicates) == (1, 0)
    [nudge] = _nudges(trigger)
    assert nudge.end_user.external_id == "u-1"
    assert nudge.target_step_key == "create-project"
    assert nudge.trace[0]["message"].startswith("inactivity: no events for 10 days")
    assert triggers.scan(workspace=workspace).created == 0  # the same absence

    # Back the day after the nudge, then away again for 5 days: a new absence, a new nudge.
    Nudge.objects.filter(pk=nudge.pk).update(created_at=timezone.now() - timedelta(days=7))
    EventFactory(end_user=enrollment.end_user, timestamp=timezone.now() - timedelta(days=5))
    assert triggers.scan(workspace=workspace).created == 1
    assert len(_nudges(trigger)) == 2


def test_reengagement_reaches_abandoned_enrollments(workspace, queued):
    trigger = TriggerFactory(workspace=workspace, kind=Trigger.Kind.REENGAGEMENT, config={"days": 14})
    enrollment = enrol(workspace.write_key, "u-1", workspace)
    Enrollment.objects.filter(pk=enrollment.pk).update(status=Enrollment.Status.ABANDONED)
    _idle(enrollment, 10)
    assert triggers.scan(workspace=workspace).created == 0
    _idle(enrollment, 15)
    assert triggers.scan(workspace=workspace).created == 1
    assert _nudges(trigger)[0].trace[0]["message"].startswith("reengagement: no events for 15 days")


def test_stuck_signal_is_taken_once_by_every_stuck_trigger(workspace, queued):
    email = TriggerFactory(workspace=workspace, kind=Trigger.Kind.STUCK, channels=["email"])
    in_app = TriggerFactory(workspace=workspace, kind=Trigger.Kind.STUCK, channels=["in_app"])
    enrollment = enrol(workspace.write_key, "u-1", workspace)
    signal = EnrollmentSignal.objects.create(
        enrollment=enrollment,
        kind=EnrollmentSignal.Kind.STUCK,
        step_key="create-project",
        reason="2 h on step",
    )

    assert triggers.scan(workspace=workspace).created == 2
    for trigger in (email, in_app):
        [nudge] = _nudges(trigger)
        assert (nudge.occasion, nudge.target_step_key) == (f"signal:{signal.pk}", "create-project")
        assert nudge.trace[0]["message"] == "stuck: 2 h on step"
    signal.refresh_from_db()
    assert signal.consumed_at is not None and signal.resolved_at is None
    assert triggers.scan(workspace=workspace).created == 0


def _custom(workspace, **config):
    return TriggerFactory(
        workspace=workspace,
        kind=Trigger.Kind.CUSTOM,
        config={
            "event_a": "Cart Viewed",
            "event_b": "Order Completed",
            "window_hours": 24,
            **config,
        },
    )


def _stored(workspace, user_id, name, moment, **properties):
    end_user = workspace.end_users.get(external_id=user_id)
    event = EventFactory(end_user=end_user, name=name, timestamp=moment, properties=properties)
    return (workspace.pk, end_user.pk, name, event.message_id, moment.isoformat())


def test_custom_a_without_b_fires_after_the_window(workspace, queued):
    trigger = _custom(workspace, conditions_a=[{"property": "value", "operator": "gt", "value": 50}])
    for user in ("buyer", "browser", "cheap"):
        enrol(workspace.write_key, user, workspace)
    start = timezone.now() - timedelta(hours=30)
    triggers.on_events(
        [
            _stored(workspace, "buyer", "Cart Viewed", start, value=80),
            _stored(workspace, "buyer", "Order Completed", start + timedelta(hours=2)),
            _stored(workspace, "browser", "Cart Viewed", start, value=120),
            _stored(workspace, "cheap", "Cart Viewed", start, value=10),  # fails the condition
        ]
    )
    assert CustomTriggerStart.objects.filter(trigger=trigger).count() == 2

    report = triggers.scan(workspace=workspace)
    assert report.created == 1
    [nudge] = _nudges(trigger)
    assert nudge.end_user.external_id == "browser"
    assert (
        "'Cart Viewed'" in nudge.trace[0]["message"]
        and "without 'Order Completed' within 24 h" in (nudge.trace[0]["message"])
    )
    assert triggers.scan(workspace=workspace).created == 0


def test_custom_start_waits_for_its_deadline(workspace, queued):
    trigger = _custom(workspace)
    enrol(workspace.write_key, "u-1", workspace)
    triggers.on_events([_stored(workspace, "u-1", "Cart Viewed", timezone.now() - timedelta(hours=1))])
    assert triggers.scan(workspace=workspace).created == 0
    assert triggers.scan(workspace=workspace, now=timezone.now() + timedelta(hours=24)).created == 1
    assert _nudges(trigger)[0].status == Nudge.Status.QUEUED


@pytest.mark.parametrize(
    ("kind", "config", "errors"),
    [
        (Trigger.Kind.MILESTONE, {}, {"config": "give either a step key or a percent"}),
        (Trigger.Kind.MILESTONE, {"percent": 150}, {"percent": "a whole number from 1 to 100"}),
        (Trigger.Kind.MILESTONE, {"step": "create-project"}, {}),
        (Trigger.Kind.INACTIVITY, {"days": 0}, {"days": "a whole number of days from 1 to 365"}),
        (Trigger.Kind.REENGAGEMENT, {}, {}),
        (
            Trigger.Kind.CUSTOM,
            {"event_a": "A", "window_hours": 0, "conditions_a": [{"property": "x", "operator": "near"}]},
            {
                "event_b": "an event name",
                "window_hours": "a number of hours, more than 0 and at most 2160 (90 days)",
                "conditions_a": "condition 1: unknown operator 'near' (one of eq, neq, in, not_in, exists, "
                "not_exists, gt, gte, lt, lte, contains)",
            },
        ),
    ],
)
def test_configuration_errors_name_the_field(kind, config, errors):
    assert triggers.config_errors(kind, config) == errors


def test_ingestion_sends_one_progress_job_per_batch(
    workspace, monkeypatch, django_capture_on_commit_callbacks
):
    TriggerFactory(workspace=workspace, kind=Trigger.Kind.MILESTONE, config={"step": "create-project"})
    jobs = []
    monkeypatch.setattr(hooks, "enqueue", lambda func, items, **kwargs: jobs.append((_job_name(func), items)))
    with django_capture_on_commit_callbacks(execute=True):
        for user in ("u-1", "u-2", "u-3"):
            enrol(workspace.write_key, user, workspace)
    # Three identify requests (three transactions): a welcome job each.
    assert [(name, len(items)) for name, items in jobs] == [("progress_changed_job", 1)] * 3
    jobs.clear()
    batch = [{"type": "track", "userId": user, "event": "Project Created"} for user in ("u-1", "u-2", "u-3")]

    with django_capture_on_commit_callbacks(execute=True):
        ingestion_services.events_ingest(workspace=workspace, raw_events=batch, received_at=timezone.now())

    progress = [items for name, items in jobs if name == "progress_changed_job"]
    assert len(progress) == 1
    assert sorted(item[2] for item in progress[0]) == [["create-project"]] * 3
    assert [name for name, _ in jobs].count("events_stored_job") == 1


def test_workspace_without_triggers_sends_no_job(monkeypatch, django_capture_on_commit_callbacks):
    hooks.forget()
    workspace, write_key, _ = tenancy_services.workspace_create(name="Quiet")
    published_path(workspace)
    jobs = []
    monkeypatch.setattr(hooks, "enqueue", lambda *args, **kwargs: jobs.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        enrol(write_key.key, "u-1", workspace)
        track(write_key.key, "u-1", "Project Created")
    assert jobs == []


def test_run_triggers_command_reports_what_it_did(workspace, queued, capsys):
    TriggerFactory(workspace=workspace, kind=Trigger.Kind.INACTIVITY, config={"days": 3})
    _idle(enrol(workspace.write_key, "u-1", workspace), 4)
    other = WorkspaceFactory()
    TriggerFactory(workspace=other, kind=Trigger.Kind.INACTIVITY)

    call_command("run_triggers")
    output = capsys.readouterr().out
    assert f"{workspace.slug}: 1 nudges triggered, 0 already sent" in output
    assert "Done: 1 nudges triggered (0 occasions had theirs already) in" in output
