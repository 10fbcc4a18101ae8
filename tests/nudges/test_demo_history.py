"""seed_demo's simulated nudge history: the Nudges dashboard and the Overview have numbers at once,
and those numbers obey the product's own rules (conversion within the window, nothing after the
simulated clock, the bandit's counters)."""

import io
import json
from datetime import datetime

import pytest
from django.core.management import call_command
from django.db.models import Sum

from nudges.delivery.conversion import conversion_window
from nudges.models import Nudge, NudgeEvent, TemplateVersion
from nudges.selectors import nudge_outcome_counts
from onboarding.models import StepCompletion
from tenancy.models import Workspace

pytestmark = pytest.mark.django_db

PEOPLE = 150


@pytest.fixture
def demo(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", users=PEOPLE, stdout=out)
    credentials = json.loads((tmp_path / "demo-credentials.json").read_text())
    return Workspace.objects.get(pk=credentials["workspace_id"]), credentials, out.getvalue()


def test_the_demo_has_sent_opened_clicked_and_converted_nudges_from_each_trigger(demo):
    workspace, _, output = demo
    [counts] = nudge_outcome_counts(workspace=workspace)
    assert counts.sent > PEOPLE / 2
    assert 0 < counts.converted < counts.sent
    assert 0 < counts.clicked < counts.opened < counts.sent
    kinds = set(Nudge.objects.filter(workspace=workspace).values_list("trigger__kind", flat=True))
    assert kinds == {"welcome", "stuck", "milestone"}
    assert f"{counts.created:,} in-app nudges" in output


def test_a_nudge_converts_only_when_its_step_was_completed_within_the_window_after_it_was_sent(demo):
    workspace, _, _ = demo
    window = conversion_window(workspace_id=workspace.pk)
    completed = {
        (enrollment_id, step_key): at
        for enrollment_id, step_key, at in StepCompletion.objects.filter(
            enrollment__workspace=workspace, reverted_at__isnull=True
        ).values_list("enrollment_id", "step_key", "completed_at")
    }
    for nudge in Nudge.objects.filter(workspace=workspace):
        at = completed.get((nudge.enrollment_id, nudge.target_step_key))
        in_window = at is not None and nudge.sent_at <= at <= nudge.sent_at + window
        assert (nudge.status == Nudge.Status.CONVERTED) == in_window, nudge.pk
        if in_window:
            assert nudge.converted_at == at


def test_history_stays_before_the_simulated_clock_with_an_event_per_status(demo):
    workspace, credentials, _ = demo
    clock = datetime.fromisoformat(credentials["simulation"]["clock"])
    nudges = Nudge.objects.filter(workspace=workspace)
    assert not nudges.filter(sent_at__gt=clock).exists()
    assert not nudges.filter(created_at__gt=clock).exists()
    for nudge in nudges.filter(status=Nudge.Status.CLICKED)[:20]:
        statuses = list(NudgeEvent.objects.filter(nudge=nudge).values_list("status", flat=True))
        assert sorted(statuses) == sorted(["queued", "sent", "delivered", "opened", "clicked"])


def test_the_template_versions_count_the_history_s_sends_and_rewards(demo):
    workspace, _, _ = demo
    nudges = Nudge.objects.filter(workspace=workspace)
    versions = TemplateVersion.objects.filter(template__workspace=workspace)
    totals = versions.aggregate(Sum("sends"), Sum("rewards"))
    assert totals["sends__sum"] == nudges.count()
    # A click or a conversion rewards the version once (nudges.services.nudge_status_advance).
    rewarded = nudges.exclude(clicked_at__isnull=True, converted_at__isnull=True).count()
    assert 0 < totals["rewards__sum"] == rewarded


def test_seeding_again_writes_no_second_history(demo, settings):
    workspace, _, _ = demo
    before = Nudge.objects.filter(workspace=workspace).count()
    call_command("seed_demo", users=PEOPLE, stdout=io.StringIO())
    assert Nudge.objects.filter(workspace=workspace).count() == before
