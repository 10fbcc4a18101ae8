"""Enrollment services: state, complete, skip, back, answers, complete the path, patch,
revisions (stale and concurrent), push after commit."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from onboarding.models import Enrollment, StepCompletion
from onboarding.progress import answers
from onboarding.progress import selectors as progress_selectors
from onboarding.progress import services as progress_services
from onboarding.progress.services import (
    EnrollmentNotActive,
    IncompleteEnrollment,
    InvalidAnswers,
    StaleRevision,
    StepNotSkippable,
    UnknownStep,
)
from tests.factories import EndUserFactory, EventFactory
from tests.onboarding.engine_paths import T0, onboarding_path

pytestmark = pytest.mark.django_db

VALID_PROFILE = {"role": "dev", "team_size": 4, "topics": ["api"], "note": "hi", "newsletter": False}


@pytest.fixture
def workspace(tenant):
    return tenant[0]


@pytest.fixture
def enrollment(workspace):
    onboarding_path(workspace)
    end_user = EndUserFactory(workspace=workspace, external_id="u-1", persona="admin")
    return progress_services.enrollment_start(end_user=end_user, enrolled_at=T0)


def rows(enrollment):
    return {
        row.step_key: (row.method, row.reverted_at is not None)
        for row in StepCompletion.objects.filter(enrollment=enrollment)
    }


def statuses(state):
    return {step["key"]: step["status"] for step in state["steps"]}


def test_state_of_a_new_enrollment(enrollment):
    state = progress_selectors.enrollment_state(enrollment=enrollment)

    first_step = state["steps"][0]
    assert {key: value for key, value in state.items() if key != "steps"} == {
        "user_id": "u-1",
        "enrollment_id": enrollment.pk,
        "path": {"key": "basics", "name": "Basics", "version": enrollment.path_version.number},
        "status": "active",
        "current_step": "create",
        "revision": 1,
        "percent_complete": 0,
        "answers": {},
        "enrolled_at": T0.isoformat(),
        "completed_at": None,
    }
    assert first_step == {
        "key": "create",
        "title": "Create",
        "body": "",
        "order": 1,
        "optional": False,
        "ui_component": "checklist",
        "deep_link": "",
        "completion": "event",
        "questions": [],
        "status": "current",
        "completed_at": None,
        "method": None,
    }
    assert statuses(state) == {
        "create": "current",
        "profile": "pending",
        "invite": "pending",
        "connect": "pending",
        "share": "pending",
    }


def test_get_for_user_prefers_the_active_enrollment(enrollment, workspace, other_tenant):
    older = Enrollment.objects.create(
        workspace=workspace,
        end_user=enrollment.end_user,
        path_version=enrollment.path_version,
        status="completed",
        enrolled_at=T0 + timedelta(days=1),
        step_entered_at=T0,
    )

    assert progress_selectors.enrollment_get_for_user(workspace=workspace, user_id="u-1") == enrollment
    Enrollment.objects.filter(pk=enrollment.pk).update(status="abandoned")
    assert progress_selectors.enrollment_get_for_user(workspace=workspace, user_id="u-1") == older
    assert progress_selectors.enrollment_get_for_user(workspace=workspace, user_id="nobody") is None
    assert progress_selectors.enrollment_get_for_user(workspace=other_tenant[0], user_id="u-1") is None


def test_events_already_stored_count_when_enrolled(workspace):
    onboarding_path(workspace)
    end_user = EndUserFactory(workspace=workspace)
    EventFactory(end_user=end_user, name="Project Created", properties={"template": "blank"}, timestamp=T0)

    enrollment = progress_services.enrollment_start(end_user=end_user, enrolled_at=T0 + timedelta(hours=1))

    assert (rows(enrollment), enrollment.current_step_key, enrollment.revision) == (
        {"create": ("event", False)},
        "profile",
        1,
    )
    assert progress_services.enrollment_start(end_user=end_user) == enrollment


def test_step_complete(enrollment):
    updated = progress_services.step_complete(enrollment=enrollment, step_key="create", expected_revision=1)

    assert (updated.revision, updated.current_step_key, rows(updated)) == (
        2,
        "profile",
        {"create": ("api", False)},
    )
    state = progress_selectors.enrollment_state(enrollment=updated)
    assert (state["percent_complete"], statuses(state)["create"], state["steps"][0]["method"]) == (
        33,
        "completed",
        "api",
    )

    again = progress_services.step_complete(
        enrollment=updated, step_key="create", expected_revision=None, method="admin"
    )
    assert (again.revision, rows(again)) == (3, {"create": ("api", False)})


def test_step_complete_errors_change_nothing(enrollment):
    with pytest.raises(UnknownStep) as unknown:
        progress_services.step_complete(enrollment=enrollment, step_key="nope", expected_revision=1)
    with pytest.raises(InvalidAnswers) as invalid:
        progress_services.step_complete(enrollment=enrollment, step_key="profile", expected_revision=1)

    assert unknown.value.step_key == "nope"
    assert invalid.value.errors == [
        {"step": "profile", "field": "role", "reason": "required answer missing"},
        {"step": "profile", "field": "team_size", "reason": "required answer missing"},
    ]
    enrollment.refresh_from_db()
    assert (enrollment.revision, rows(enrollment)) == (1, {})


def test_a_stale_revision_gets_the_current_state_and_changes_nothing(enrollment):
    progress_services.step_complete(enrollment=enrollment, step_key="create", expected_revision=1)

    with pytest.raises(StaleRevision) as stale:
        progress_services.step_skip(enrollment=enrollment, step_key="invite", expected_revision=1)

    assert (stale.value.state["revision"], stale.value.state["current_step"]) == (2, "profile")
    enrollment.refresh_from_db()
    assert (enrollment.revision, rows(enrollment)) == (2, {"create": ("api", False)})


def test_skip_only_optional_steps(enrollment):
    skipped = progress_services.step_skip(enrollment=enrollment, step_key="invite", expected_revision=1)

    assert (skipped.revision, rows(skipped)) == (2, {"invite": ("skip", False)})
    assert statuses(progress_selectors.enrollment_state(enrollment=skipped))["invite"] == "skipped"
    with pytest.raises(StepNotSkippable) as refused:
        progress_services.step_skip(enrollment=skipped, step_key="connect", expected_revision=2)
    assert refused.value.step_key == "connect"
    skipped.refresh_from_db()
    assert skipped.revision == 2


def test_back_reverts_the_previous_step_and_only_a_newer_event_completes_it_again(enrollment):
    end_user = enrollment.end_user
    EventFactory(end_user=end_user, name="Project Created", properties={"template": "x"}, timestamp=T0)
    enrollment = progress_services.step_skip(enrollment=enrollment, step_key="share", expected_revision=None)
    assert (enrollment.current_step_key, rows(enrollment)) == (
        "profile",
        {"create": ("event", False), "share": ("skip", False)},
    )

    back = progress_services.step_back(enrollment=enrollment, expected_revision=enrollment.revision)

    assert (back.current_step_key, rows(back)) == (
        "create",
        {"create": ("event", True), "share": ("skip", False)},
    )
    assert back.step_entered_at > T0
    # The old event does not count again; a new one does.
    back = progress_services.step_skip(enrollment=back, step_key="invite", expected_revision=None)
    assert back.current_step_key == "create"
    EventFactory(end_user=end_user, name="Project Created", properties={"template": "y"})
    again = progress_services.step_skip(enrollment=back, step_key="invite", expected_revision=None)
    assert (again.current_step_key, rows(again)["create"]) == ("profile", ("event", True))
    assert statuses(progress_selectors.enrollment_state(enrollment=again))["create"] == "completed"


def test_back_at_the_first_step_changes_no_step(enrollment):
    back = progress_services.step_back(enrollment=enrollment, expected_revision=1)

    assert (back.current_step_key, rows(back), back.revision) == ("create", {}, 2)


def test_valid_answers_complete_a_form_step(enrollment):
    saved = progress_services.answers_save(
        enrollment=enrollment, step_key="profile", answers=VALID_PROFILE, expected_revision=1
    )

    assert saved.answers == {"profile": VALID_PROFILE}
    assert rows(saved) == {"profile": ("answers", False)}
    assert saved.current_step_key == "create"  # still the first incomplete step

    updated = progress_services.answers_save(
        enrollment=saved, step_key="profile", answers={"note": None, "team_size": 5.5}, expected_revision=2
    )
    assert updated.answers == {
        "profile": {"role": "dev", "team_size": 5.5, "topics": ["api"], "newsletter": False}
    }


def test_invalid_answers_list_each_problem_and_change_nothing(enrollment):
    with pytest.raises(InvalidAnswers) as invalid:
        progress_services.answers_save(
            enrollment=enrollment,
            step_key="profile",
            answers={
                "role": "ceo",
                "team_size": "4",
                "topics": ["api", "cli"],
                "newsletter": "yes",
                "age": 3,
            },
            expected_revision=1,
        )
    with pytest.raises(InvalidAnswers) as missing:
        progress_services.answers_save(
            enrollment=enrollment, step_key="profile", answers={"note": 3.5, "role": ""}, expected_revision=1
        )

    assert invalid.value.errors == [
        {"step": "profile", "field": "role", "reason": "'ceo' is not one of the choices ['admin', 'dev']"},
        {"step": "profile", "field": "team_size", "reason": "must be a number"},
        {"step": "profile", "field": "topics", "reason": "['cli'] not among the choices ['api', 'ui']"},
        {"step": "profile", "field": "newsletter", "reason": "must be true or false"},
        {"step": "profile", "field": "age", "reason": "unknown question"},
    ]
    assert missing.value.errors == [{"step": "profile", "field": "note", "reason": "must be a string"}]
    with pytest.raises(InvalidAnswers) as required:
        progress_services.answers_save(
            enrollment=enrollment, step_key="profile", answers={"role": ""}, expected_revision=1
        )
    assert required.value.errors == [
        {"step": "profile", "field": "role", "reason": "required answer missing"},
        {"step": "profile", "field": "team_size", "reason": "required answer missing"},
    ]
    with pytest.raises(UnknownStep):
        progress_services.answers_save(
            enrollment=enrollment, step_key="nope", answers={}, expected_revision=1
        )
    enrollment.refresh_from_db()
    assert (enrollment.revision, enrollment.answers, rows(enrollment)) == (1, {}, {})


@pytest.fixture
def snapshots(monkeypatch):
    """Records each answers snapshot taken (the real one still runs)."""
    recorded = []
    record = answers.answers_snapshot_record

    def spy(*, enrollment):
        recorded.append(enrollment.pk)
        return record(enrollment=enrollment)

    monkeypatch.setattr(answers, "answers_snapshot_record", spy)
    return recorded


def test_complete_lists_each_missing_step_and_answer(enrollment, snapshots):
    with pytest.raises(IncompleteEnrollment) as incomplete:
        progress_services.enrollment_complete(enrollment=enrollment, expected_revision=1)

    assert incomplete.value.errors == [
        {"step": "create", "field": None, "reason": "required step not completed"},
        {"step": "profile", "field": None, "reason": "required step not completed"},
        {"step": "profile", "field": "role", "reason": "required answer missing"},
        {"step": "profile", "field": "team_size", "reason": "required answer missing"},
        {"step": "connect", "field": None, "reason": "required step not completed"},
    ]
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.revision, snapshots) == ("active", 1, [])


def test_complete_the_path(enrollment, snapshots):
    enrollment = progress_services.step_complete(
        enrollment=enrollment, step_key="create", expected_revision=None
    )
    enrollment = progress_services.answers_save(
        enrollment=enrollment, step_key="profile", answers=VALID_PROFILE, expected_revision=None
    )
    assert (enrollment.status, snapshots) == ("active", [])
    # The api step completes the path: every required step is done.
    enrollment = progress_services.step_complete(
        enrollment=enrollment, step_key="connect", expected_revision=None
    )
    assert (enrollment.status, enrollment.current_step_key, snapshots) == ("completed", "", [enrollment.pk])

    completed = progress_services.enrollment_complete(
        enrollment=enrollment, expected_revision=enrollment.revision
    )

    assert (completed.status, snapshots) == ("completed", [enrollment.pk, enrollment.pk])
    state = progress_selectors.enrollment_state(enrollment=completed)
    assert (state["percent_complete"], state["current_step"], state["completed_at"]) == (
        100,
        None,
        completed.completed_at.isoformat(),
    )
    assert statuses(state) == {
        "create": "completed",
        "profile": "completed",
        "invite": "pending",
        "connect": "completed",
        "share": "pending",
    }


def test_patch_answers_and_move_forward_over_optional_steps(enrollment):
    enrollment = progress_services.step_complete(
        enrollment=enrollment, step_key="create", expected_revision=1
    )

    patched = progress_services.enrollment_patch(
        enrollment=enrollment,
        expected_revision=2,
        answers={"profile": VALID_PROFILE},
        current_step_key="connect",
    )

    assert (patched.revision, patched.current_step_key, patched.answers) == (
        3,
        "connect",
        {"profile": VALID_PROFILE},
    )
    assert rows(patched) == {
        "create": ("api", False),
        "profile": ("answers", False),
        "invite": ("skip", False),
    }

    backward = progress_services.enrollment_patch(
        enrollment=patched, expected_revision=3, current_step_key="profile"
    )
    assert (backward.current_step_key, rows(backward)) == (
        "profile",
        {"create": ("api", False), "profile": ("answers", True), "invite": ("skip", True)},
    )


def test_patch_errors_change_nothing(enrollment):
    with pytest.raises(StepNotSkippable) as required:
        progress_services.enrollment_patch(
            enrollment=enrollment, expected_revision=1, current_step_key="connect"
        )
    with pytest.raises(UnknownStep):
        progress_services.enrollment_patch(
            enrollment=enrollment, expected_revision=1, current_step_key="nope"
        )
    with pytest.raises(InvalidAnswers) as invalid:
        progress_services.enrollment_patch(
            enrollment=enrollment,
            expected_revision=1,
            answers={"profile": {"role": 1}},
            current_step_key="create",
        )

    assert required.value.step_key == "create"
    assert invalid.value.errors == [
        {"step": "profile", "field": "role", "reason": "must be a string, one of the choices"}
    ]
    enrollment.refresh_from_db()
    assert (enrollment.revision, enrollment.answers, rows(enrollment)) == (1, {}, {})


def test_an_abandoned_enrollment_does_not_change(enrollment):
    Enrollment.objects.filter(pk=enrollment.pk).update(status="abandoned")

    with pytest.raises(EnrollmentNotActive):
        progress_services.step_complete(enrollment=enrollment, step_key="create", expected_revision=1)

    enrollment.refresh_from_db()
    assert (enrollment.revision, rows(enrollment)) == (1, {})


def test_each_write_pushes_the_state_after_commit(
    enrollment, monkeypatch, django_capture_on_commit_callbacks
):
    pushed = []
    monkeypatch.setattr(
        "onboarding.progress.push.push", lambda *, end_user_id, state: pushed.append((end_user_id, state))
    )

    with django_capture_on_commit_callbacks(execute=True):
        progress_services.step_complete(enrollment=enrollment, step_key="create", expected_revision=1)
        with pytest.raises(StaleRevision):
            progress_services.step_complete(enrollment=enrollment, step_key="create", expected_revision=1)

    enrollment.refresh_from_db()
    assert pushed == [(enrollment.end_user_id, progress_selectors.enrollment_state(enrollment=enrollment))]
    assert pushed[0][1]["revision"] == 2


def run_concurrently(calls):
    """Run each call in its own thread (and database connection), released together."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_writers_with_the_same_revision_one_wins(postgres, tenant):
    onboarding_path(tenant[0])
    enrollment = progress_services.enrollment_start(
        end_user=EndUserFactory(workspace=tenant[0], external_id="u-1"), enrolled_at=T0
    )

    for _ in range(5):
        revision = Enrollment.objects.get(pk=enrollment.pk).revision
        outcomes = run_concurrently(
            [
                lambda revision=revision: progress_services.step_skip(
                    enrollment=enrollment, step_key="invite", expected_revision=revision
                ),
                lambda revision=revision: progress_services.answers_save(
                    enrollment=enrollment,
                    step_key="profile",
                    answers=VALID_PROFILE,
                    expected_revision=revision,
                ),
            ]
        )
        winners = [outcome for outcome in outcomes if isinstance(outcome, Enrollment)]
        losers = [outcome for outcome in outcomes if isinstance(outcome, StaleRevision)]
        assert (len(winners), len(losers)) == (1, 1), outcomes
        assert losers[0].state["revision"] == revision + 1
        assert Enrollment.objects.get(pk=enrollment.pk).revision == revision + 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_without_a_revision_lose_no_update(postgres, tenant):
    onboarding_path(tenant[0])
    enrollment = progress_services.enrollment_start(
        end_user=EndUserFactory(workspace=tenant[0], external_id="u-1"), enrolled_at=T0
    )

    outcomes = run_concurrently(
        [
            lambda: progress_services.step_complete(
                enrollment=enrollment, step_key="create", expected_revision=None
            ),
            lambda: progress_services.step_skip(
                enrollment=enrollment, step_key="invite", expected_revision=None
            ),
            lambda: progress_services.step_complete(
                enrollment=enrollment, step_key="connect", expected_revision=None
            ),
            lambda: progress_services.answers_save(
                enrollment=enrollment, step_key="profile", answers=VALID_PROFILE, expected_revision=None
            ),
        ]
    )

    assert all(isinstance(outcome, Enrollment) for outcome in outcomes), outcomes
    enrollment.refresh_from_db()
    assert (enrollment.revision, enrollment.status, enrollment.answers) == (
        5,
        "completed",
        {"profile": VALID_PROFILE},
    )
    assert rows(enrollment) == {
        "create": ("api", False),
        "invite": ("skip", False),
        "connect": ("api", False),
        "profile": ("answers", False),
    }
