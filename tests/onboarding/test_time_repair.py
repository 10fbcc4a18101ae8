"""`manage.py repair_event_times` (and the data migration that runs the same code): times stored
before ingestion bounded them, which no Python process can read, are found and rewritten in SQL;
progress rebuilt from the repaired events matches again; times in range are left alone."""

import io

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from onboarding.ingestion import time_repair
from onboarding.models import AnswerSnapshot, Enrollment, Event, StepCompletion
from tests.guardrails.gdpr_people import OTTO, ZELDA, build, published_path
from tests.poisoned_times import FUTURE, PAST, poison

pytestmark = pytest.mark.django_db


@pytest.fixture
def poisoned(tenant):
    """Zelda's first event and her progress hold unreadable times; Otto's rows are fine."""
    workspace, write_key, secret_key = tenant
    published_path(workspace)
    build(ZELDA, workspace=workspace, write_key=write_key, secret_key=secret_key)
    build(OTTO, workspace=workspace, write_key=write_key, secret_key=secret_key)
    event = Event.objects.filter(user_id=ZELDA.user_id).order_by("pk").first()
    enrollment = Enrollment.objects.get(end_user__external_id=ZELDA.user_id)
    completion = StepCompletion.objects.filter(enrollment=enrollment).order_by("pk").first()
    poison(Event, event.pk, "timestamp", FUTURE)
    poison(Event, event.pk, "original_timestamp", PAST)
    poison(Event, event.pk, "sent_at", FUTURE)
    poison(Enrollment, enrollment.pk, "enrolled_at", PAST)
    poison(StepCompletion, completion.pk, "completed_at", FUTURE)
    poison(AnswerSnapshot, enrollment.answer_snapshot.pk, "completed_at", FUTURE)
    return event, enrollment, completion


def readable_times(model) -> list[tuple]:
    fields = [
        field.attname for field in model._meta.concrete_fields if field.get_internal_type() == "DateTimeField"
    ]
    return list(model.objects.order_by("pk").values_list("pk", *fields))


def test_check_counts_the_unreadable_times_and_changes_nothing(poisoned):
    stdout = io.StringIO()

    with pytest.raises(SystemExit) as exit_status:
        call_command("repair_event_times", "--check", stdout=stdout)

    assert exit_status.value.code == 1
    assert stdout.getvalue().splitlines() == [
        "Event.timestamp: 1 out of range",
        "Event.original_timestamp: 1 out of range",
        "Event.sent_at: 1 out of range",
        "Enrollment.enrolled_at: 1 out of range",
        "StepCompletion.completed_at: 1 out of range",
        "AnswerSnapshot.completed_at: 1 out of range",
    ]
    assert len(time_repair.out_of_range_counts(apps=django_apps)) == 6  # nothing was rewritten


def test_the_repair_rewrites_them_with_server_times_and_leaves_the_rest(poisoned):
    event, enrollment, completion = poisoned
    otto_events = list(Event.objects.filter(user_id=OTTO.user_id).values_list("pk", "timestamp", "sent_at"))
    stdout = io.StringIO()

    call_command("repair_event_times", stdout=stdout)

    assert "Event.timestamp: 1 rewritten" in stdout.getvalue()
    event.refresh_from_db()
    assert (event.timestamp, event.original_timestamp, event.sent_at) == (event.received_at, None, None)
    enrollment.refresh_from_db()
    assert enrollment.enrolled_at == enrollment.updated_at
    completion.refresh_from_db()
    assert completion.completed_at == completion.recorded_at
    for model in (Event, Enrollment, StepCompletion, AnswerSnapshot):
        assert readable_times(model)  # every row reads again
    assert (
        list(Event.objects.filter(user_id=OTTO.user_id).values_list("pk", "timestamp", "sent_at"))
        == otto_events
    )
    stdout = io.StringIO()
    call_command("repair_event_times", "--check", stdout=stdout)
    assert stdout.getvalue() == "No time out of range.\n"


def test_progress_rebuilt_from_the_repaired_events_checks_clean(poisoned):
    call_command("repair_event_times", stdout=io.StringIO())

    call_command("rebuild_progress", stdout=io.StringIO())
    call_command("rebuild_progress", "--check", stdout=io.StringIO())


def test_the_migration_repairs_through_its_historical_models(poisoned):
    event, _, _ = poisoned
    historical = MigrationExecutor(connection).loader.project_state().apps

    rewritten = time_repair.repair_out_of_range_times(apps=historical)

    assert rewritten == {
        "Event.timestamp": 1,
        "Event.original_timestamp": 1,
        "Event.sent_at": 1,
        "Enrollment.enrolled_at": 1,
        "StepCompletion.completed_at": 1,
        "AnswerSnapshot.completed_at": 1,
    }
    event.refresh_from_db()
    assert event.timestamp == event.received_at
