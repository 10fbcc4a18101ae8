"""Rebuild: a simulated workspace's live progress equals its rebuilt progress, whatever the
order its events arrived in; `rebuild_progress --check` reports differences, a run repairs them."""

import random
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from onboarding.demo import journeys
from onboarding.ingestion import services as ingestion_services
from onboarding.models import Enrollment, StepCompletion
from onboarding.progress import selectors as progress_selectors
from tenancy import services
from tests.factories import PathFactory, PublishedPathVersionFactory, StepFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def funnel_paths(workspace):
    """The demo funnel as a default path, and a shorter one for developers."""
    path = PathFactory(workspace=workspace, key="activation", is_default=True)
    default = PublishedPathVersionFactory(path=path)
    StepFactory(path_version=default, key="signed-up", order=1, event_name="Signed Up")
    StepFactory(
        path_version=default,
        key="project",
        order=2,
        event_name="Project Created",
        conditions=[{"property": "template", "operator": "neq", "value": "blank"}],
    )
    StepFactory(
        path_version=default,
        key="invite",
        order=3,
        optional=True,
        event_name="Teammate Invited",
        window=timedelta(days=2),
        conditions=[{"property": "invites", "operator": "gte", "value": 2}],
    )
    StepFactory(path_version=default, key="integration", order=4, event_name="Integration Connected")
    StepFactory(path_version=default, key="reports", order=5, event_name="Report Viewed", count=2)
    StepFactory(path_version=default, key="share", order=6, optional=True, event_name="Dashboard Shared")
    developers = PublishedPathVersionFactory(
        path=PathFactory(workspace=workspace, key="developers", audience_personas=["Developer"], priority=5)
    )
    StepFactory(path_version=developers, key="integration", order=1, event_name="Integration Connected")
    StepFactory(
        path_version=developers,
        key="report",
        order=2,
        event_name="Report Viewed",
        window=timedelta(days=3),
        window_anchor="enrollment",
        conditions=[{"property": "seconds_on_report", "operator": "gt", "value": "60"}],
    )


def ingest(workspace, calls, *, batch_size):
    for start in range(0, len(calls), batch_size):
        batch = calls[start : start + batch_size]
        result = ingestion_services.events_ingest(workspace=workspace, raw_events=batch, received_at=NOW)
        assert result.rejected == []


def simulated_calls():
    return [call for _, call in journeys.calls_in_time_order(people=120, seed=11, now=NOW, days=10)]


def progress_by_user(workspace):
    found = {}
    for enrollment in Enrollment.objects.filter(workspace=workspace).select_related(
        "end_user", "path_version"
    ):
        state = progress_selectors.enrollment_state(enrollment=enrollment)
        steps = [
            (step["key"], step["status"], step["method"], step["completed_at"]) for step in state["steps"]
        ]
        found[enrollment.end_user.external_id] = (
            enrollment.path_version.path.key,
            state["status"],
            state["current_step"],
            state["percent_complete"],
            enrollment.step_entered_at,
            state["completed_at"],
            steps,
        )
    return found


def check(workspace=None):
    out = StringIO()
    arguments = ["rebuild_progress", "--check"] + (["--workspace", workspace.slug] if workspace else [])
    call_command(*arguments, stdout=out)
    return out.getvalue()


def test_live_progress_equals_rebuilt_progress_in_any_arrival_order():
    calls = simulated_calls()
    in_order, _, _ = services.workspace_create(name="In order")
    shuffled, _, _ = services.workspace_create(name="Shuffled")
    funnel_paths(in_order)
    funnel_paths(shuffled)

    ingest(in_order, calls, batch_size=200)
    mixed = list(calls)
    random.Random(3).shuffle(mixed)
    ingest(shuffled, mixed, batch_size=37)

    live = progress_by_user(in_order)
    assert live == progress_by_user(shuffled)
    statuses = {state[1] for state in live.values()}
    assert len(live) == sum(1 for call in calls if call["type"] == "identify")
    assert statuses == {"active", "completed"}
    assert {state[0] for state in live.values()} == {"activation", "developers"}
    assert StepCompletion.objects.filter(enrollment__workspace=in_order).count() > len(live)
    assert check() == f"Checked {2 * len(live)} enrollments: 0 differ from their rebuilt state.\n"


def test_check_reports_differences_and_a_run_repairs_them():
    workspace, _, _ = services.workspace_create(name="Simulated")
    funnel_paths(workspace)
    ingest(workspace, simulated_calls(), batch_size=500)
    before = progress_by_user(workspace)
    broken = Enrollment.objects.filter(workspace=workspace, status="completed").order_by("pk").first()
    deleted = StepCompletion.objects.filter(enrollment=broken).order_by("completed_at").first()
    deleted.delete()
    Enrollment.objects.filter(pk=broken.pk).update(status="active", current_step_key=deleted.step_key)
    revision = broken.revision

    with pytest.raises(CommandError, match=r"1 enrollments differ; run without --check to repair them\."):
        check(workspace)
    out = StringIO()
    call_command("rebuild_progress", "--workspace", workspace.slug, stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == f"enrollment {broken.pk}:"
    assert lines[1].startswith(f"  step {deleted.step_key}: live none, rebuilt event at ")
    assert lines[-1] == f"Rebuilt {len(before)} enrollments: 1 repaired."
    assert "  status: live active, rebuilt completed" in lines
    assert progress_by_user(workspace) == before
    broken.refresh_from_db()
    assert broken.revision == revision + 1
    assert check(workspace).endswith("0 differ from their rebuilt state.\n")


def test_unknown_workspace():
    with pytest.raises(CommandError, match=r"No workspace with the slug 'nope'\."):
        call_command("rebuild_progress", "--workspace", "nope")
