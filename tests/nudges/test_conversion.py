"""Conversion attribution: the nudge's step completed within the window converts it, once."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from nudges.delivery.conversion import conversions_record
from nudges.models import Nudge, NudgeEvent
from nudges.triggers import receivers as hooks
from tests.conftest import basic_auth
from tests.factories import EnrollmentFactory
from tests.nudges.factories import NudgeFactory, NudgeSettingsFactory, TemplateVersionFactory, TriggerFactory
from tests.onboarding.progress_setup import enrol, published_path

pytestmark = pytest.mark.django_db

STEP = "create-project"


@pytest.fixture
def enrollment():
    return EnrollmentFactory()


@pytest.fixture
def completed_at():
    return timezone.now()


def _nudge(enrollment, completed_at, *, hours_before: float, **fields) -> Nudge:
    trigger = TriggerFactory(workspace=enrollment.workspace)
    values = {
        "trigger": trigger,
        "end_user": enrollment.end_user,
        "enrollment": enrollment,
        "target_step_key": STEP,
        "sent_at": completed_at - timedelta(hours=hours_before),
        **fields,
    }
    return NudgeFactory(**values)


def _record(enrollment, completed_at, step_keys=(STEP,)) -> int:
    return conversions_record(
        enrollment_id=enrollment.pk, step_keys=list(step_keys), completed_at=completed_at
    )


def test_a_nudge_sent_within_the_window_converts_and_rewards_its_variant(enrollment, completed_at):
    version = TemplateVersionFactory(template__trigger__workspace=enrollment.workspace)
    nudge = _nudge(enrollment, completed_at, hours_before=47.9, template_version=version, status="opened")

    assert _record(enrollment, completed_at) == 1

    nudge.refresh_from_db()
    assert (nudge.status, nudge.converted_at) == ("converted", completed_at)
    [event] = nudge.events.filter(status="converted")
    assert (event.source, event.detail) == (
        "progress",
        {"enrollment_id": enrollment.pk, "step_key": STEP, "window_hours": 48},
    )
    version.refresh_from_db()
    assert version.rewards == 1


def test_recording_twice_converts_nothing_more(enrollment, completed_at):
    nudge = _nudge(enrollment, completed_at, hours_before=1)

    assert _record(enrollment, completed_at) == 1
    assert _record(enrollment, completed_at + timedelta(minutes=5)) == 0

    assert nudge.events.filter(status="converted").count() == 1


def test_a_nudge_sent_before_the_window_does_not_convert(enrollment, completed_at):
    nudge = _nudge(enrollment, completed_at, hours_before=48.01)

    assert _record(enrollment, completed_at) == 0

    nudge.refresh_from_db()
    assert nudge.status == "sent"
    assert not NudgeEvent.objects.filter(status="converted").exists()


def test_the_workspaces_window_is_used(enrollment, completed_at):
    NudgeSettingsFactory(workspace=enrollment.workspace, conversion_window_hours=72)
    nudge = _nudge(enrollment, completed_at, hours_before=71)

    assert _record(enrollment, completed_at) == 1

    nudge.refresh_from_db()
    assert nudge.status == "converted"
    assert nudge.events.get(status="converted").detail["window_hours"] == 72


def test_a_click_then_a_conversion_rewards_the_variant_once(enrollment, completed_at):
    version = TemplateVersionFactory(template__trigger__workspace=enrollment.workspace, rewards=1)
    _nudge(
        enrollment,
        completed_at,
        hours_before=2,
        template_version=version,
        status="clicked",
        clicked_at=completed_at - timedelta(hours=1),
    )

    assert _record(enrollment, completed_at) == 1

    version.refresh_from_db()
    assert version.rewards == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"target_step_key": "another-step"},
        {"status": "failed"},
        {"status": "bounced"},
        {"status": "suppressed", "sent_at": None},
        {"status": "queued", "sent_at": None},
        {"status": "converted"},
    ],
    ids=["another step", "failed", "bounced", "suppressed", "queued", "converted already"],
)
def test_nudges_that_did_not_reach_the_user_or_aimed_elsewhere_do_not_convert(
    enrollment, completed_at, fields
):
    nudge = _nudge(enrollment, completed_at, hours_before=1, **fields)

    assert _record(enrollment, completed_at) == 0

    assert not nudge.events.filter(status="converted").exists()


def test_a_nudge_sent_after_the_completion_does_not_convert(enrollment, completed_at):
    _nudge(enrollment, completed_at, hours_before=-0.1)

    assert _record(enrollment, completed_at) == 0


def test_another_users_nudge_for_the_same_step_does_not_convert(enrollment, completed_at):
    other = EnrollmentFactory(end_user__workspace=enrollment.workspace)
    theirs = _nudge(other, completed_at, hours_before=1)

    assert _record(enrollment, completed_at) == 0

    theirs.refresh_from_db()
    assert theirs.status == "sent"


def test_only_the_completed_steps_convert(enrollment, completed_at):
    aimed = _nudge(enrollment, completed_at, hours_before=1)
    other = _nudge(enrollment, completed_at, hours_before=1, target_step_key="invite")

    assert _record(enrollment, completed_at, step_keys=[STEP, "profile"]) == 1

    aimed.refresh_from_db()
    other.refresh_from_db()
    assert (aimed.status, other.status) == ("converted", "sent")


def test_an_unknown_enrollment_or_no_steps_convert_nothing(enrollment, completed_at):
    _nudge(enrollment, completed_at, hours_before=1)

    assert conversions_record(enrollment_id=999_999, step_keys=[STEP], completed_at=completed_at) == 0
    assert _record(enrollment, completed_at, step_keys=[]) == 0


def test_completing_the_step_through_the_api_converts_the_nudge(
    tenant, settings, django_capture_on_commit_callbacks
):
    settings.JOBS_RUN_INLINE = True
    workspace, write_key, secret_key = tenant
    published_path(workspace)
    enrollment = enrol(write_key, "ada", workspace)
    trigger = TriggerFactory(workspace=workspace, kind="stuck")
    hooks.forget()
    nudge = NudgeFactory(
        trigger=trigger,
        end_user=enrollment.end_user,
        enrollment=enrollment,
        target_step_key="invite",
        sent_at=timezone.now() - timedelta(hours=3),
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(
            "/api/v1/users/ada/onboarding/steps/invite/complete", HTTP_AUTHORIZATION=basic_auth(secret_key)
        )

    assert response.status_code == 200
    nudge.refresh_from_db()
    assert nudge.status == "converted"
    assert nudge.events.get(status="converted").detail["step_key"] == "invite"
