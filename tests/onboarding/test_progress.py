"""The progress engine through ingestion: enrolment on identify, completions from /v1/track,
counts, windows, out-of-order and replayed events, push after commit, retries."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import OperationalError
from tenacity import wait_none

from core.db import retry
from onboarding.models import Enrollment, Event, StepCompletion
from onboarding.progress import engine as progress
from onboarding.progress import enrolling, rebuild
from onboarding.progress import push as live_progress
from onboarding.progress import selectors as progress_selectors
from tenancy.models import EndUser
from tests.onboarding.engine_paths import T0, at, event_path, onboarding_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace(tenant):
    return tenant[0]


@pytest.fixture
def send(segment):
    """send(call, call, ...): one /v1/batch request; each call is (type, userId, hours, fields)."""

    def post(*calls):
        batch = []
        for number, (call_type, user_id, hours, fields) in enumerate(calls):
            call = {"type": call_type, "userId": user_id, "timestamp": at(hours), **fields}
            call.setdefault("messageId", f"{user_id}-{call_type}-{hours}-{number}-{fields.get('event', '')}")
            batch.append(call)
        response = segment("batch", {"batch": batch})
        assert response.status_code == 200, response.content
        return response

    return post


def identify(user_id, hours=0, **traits):
    return ("identify", user_id, hours, {"traits": {"persona": "admin", **traits}})


def track(user_id, event, hours, message_id=None, **properties):
    fields = {"event": event, "properties": properties}
    if message_id:
        fields["messageId"] = message_id
    return ("track", user_id, hours, fields)


def completions(enrollment):
    return {
        row.step_key: (row.method, row.event.message_id if row.event else None, row.completed_at)
        for row in StepCompletion.objects.filter(enrollment=enrollment).select_related("event")
    }


def test_identify_of_a_new_user_enrols_them_on_the_planners_path(workspace, segment):
    version = onboarding_path(workspace)

    response = segment("identify", {"userId": "u-1", "traits": {"persona": "admin"}, "timestamp": at(0)})

    assert response.status_code == 200
    enrollment = Enrollment.objects.get(end_user__external_id="u-1")
    assert (enrollment.path_version, enrollment.status, enrollment.current_step_key, enrollment.revision) == (
        version,
        "active",
        "create",
        1,
    )
    assert enrollment.decision_reason == "no audience matched; workspace default path 'basics'"
    assert (enrollment.enrolled_at, enrollment.step_entered_at) == (T0, T0)
    # The identify response carries the enrollment, so the app can show the path at once.
    body = response.json()
    assert body["success"] is True
    assert (body["enrollment"]["enrollment_id"], body["enrollment"]["current_step"]) == (
        enrollment.pk,
        "create",
    )
    assert body["enrollment"]["revision"] == 1


def test_identify_enrols_once_and_track_alone_never_enrols(workspace, send):
    onboarding_path(workspace)

    send(track("u-1", "Project Created", 1, template="blank"), track("u-2", "Project Created", 1))
    assert not Enrollment.objects.exists()

    send(identify("u-1", 2))
    send(identify("u-1", 3, persona="developer"))

    assert Enrollment.objects.get().end_user.external_id == "u-1"


def test_without_any_path_nobody_is_enrolled(workspace, send):
    send(identify("u-1"))

    assert not Enrollment.objects.exists()


def test_events_before_the_identify_count_once_enrolled(workspace, send):
    onboarding_path(workspace)
    send(track("u-1", "Project Created", 1, message_id="create-1", template="blank"))

    send(identify("u-1", 2))

    enrollment = Enrollment.objects.get()
    assert completions(enrollment) == {"create": ("event", "create-1", T0 + timedelta(hours=1))}
    assert (enrollment.current_step_key, enrollment.step_entered_at) == ("profile", T0 + timedelta(hours=2))


def test_a_matching_track_completes_the_step_and_moves_the_current_step(workspace, send):
    onboarding_path(workspace)
    send(identify("u-1", 0))

    send(track("u-1", "Project Created", 1, message_id="no-template"))
    enrollment = Enrollment.objects.get()
    assert (completions(enrollment), enrollment.revision, enrollment.current_step_key) == ({}, 1, "create")

    send(track("u-1", "Project Created", 2, message_id="with-template", template="blank"))

    enrollment.refresh_from_db()
    assert completions(enrollment) == {"create": ("event", "with-template", T0 + timedelta(hours=2))}
    assert (enrollment.current_step_key, enrollment.step_entered_at, enrollment.revision) == (
        "profile",
        T0 + timedelta(hours=2),
        2,
    )


def test_one_batch_enrols_and_moves_many_users_each_at_their_own_revision(workspace, send):
    onboarding_path(workspace)
    send(identify("old", 0))
    send(track("old", "Project Created", 1, template="blank"))  # revision 2

    # New users are enrolled and progressed together with an existing one, in one request.
    send(
        identify("new-1", 2),
        identify("new-2", 2),
        track("new-1", "Project Created", 3, message_id="n1", template="kanban"),
        track("old", "Project Created", 3, message_id="old-again", template="crm"),
        track("new-2", "Project Created", 3, message_id="n2-no-template"),
    )

    state = {
        enrollment.end_user.external_id: (
            enrollment.current_step_key,
            enrollment.revision,
            set(completions(enrollment)),
        )
        for enrollment in Enrollment.objects.select_related("end_user")
    }
    assert state == {
        "old": ("profile", 2, {"create"}),  # already done: a later event changes nothing
        "new-1": ("profile", 1, {"create"}),  # enrolled in this batch: keeps its first revision
        "new-2": ("create", 1, set()),  # no template: the condition does not hold
    }
    assert StepCompletion.objects.get(enrollment__end_user__external_id="new-1").event.message_id == "n1"


def test_enrolling_a_batch_when_one_user_was_enrolled_meanwhile_enrols_the_others(workspace, send):
    onboarding_path(workspace)
    send(track("early", "Page Viewed", 0), identify("taken", 0))
    users = list(EndUser.objects.filter(external_id__in=["early", "taken"]).order_by("external_id"))
    moment = T0 + timedelta(hours=1)

    # "taken" has an active enrollment (as if a concurrent batch had enrolled it): the batch
    # insert conflicts, and each user is enrolled on their own instead.
    created = enrolling.enrol_many(
        end_users=users, enrolled_at={user.pk: moment for user in users}, published=None
    )

    assert [enrollment.end_user.external_id for enrollment in created] == ["early"]
    assert Enrollment.objects.filter(end_user__external_id="taken").count() == 1
    assert Enrollment.objects.get(end_user__external_id="early").enrolled_at == moment


def test_count_within_a_window_of_the_previous_step(workspace, send):
    event_path(workspace)
    send(identify("u-1", 0))
    send(
        track("u-1", "Teammate Invited", 1, message_id="before-create", role="admin"),
        track("u-1", "Project Created", 2, message_id="create"),
        track("u-1", "Teammate Invited", 3, message_id="viewer", role="viewer"),
        track("u-1", "Teammate Invited", 4, message_id="invite-1", role="member"),
    )
    enrollment = Enrollment.objects.get()
    assert set(completions(enrollment)) == {"create"}  # one invite in the window so far

    send(track("u-1", "Teammate Invited", 60, message_id="too-late", role="member"))
    enrollment.refresh_from_db()
    assert set(completions(enrollment)) == {"create"}

    send(track("u-1", "Teammate Invited", 20, message_id="invite-2", role="admin"))

    enrollment.refresh_from_db()
    assert completions(enrollment)["invite"] == ("event", "invite-2", T0 + timedelta(hours=20))
    assert enrollment.current_step_key == "report"


def test_a_late_event_for_the_previous_step_completes_the_windowed_step(workspace, send):
    event_path(workspace)
    send(identify("u-1", 0))
    send(
        track("u-1", "Teammate Invited", 5, message_id="invite-1", role="admin"),
        track("u-1", "Teammate Invited", 6, message_id="invite-2", role="admin"),
    )
    assert set(completions(Enrollment.objects.get())) == set()

    # Only "Project Created" arrives, but the invite step's window is anchored on it.
    send(track("u-1", "Project Created", 4, message_id="create"))

    enrollment = Enrollment.objects.get()
    assert completions(enrollment) == {
        "create": ("event", "create", T0 + timedelta(hours=4)),
        "invite": ("event", "invite-2", T0 + timedelta(hours=6)),
    }


def journey(user_id):
    return [
        identify(user_id, 0),
        track(user_id, "Project Created", 1, message_id=f"{user_id}-create-late"),
        track(user_id, "Project Created", 0.5, message_id=f"{user_id}-create"),
        track(user_id, "Teammate Invited", 2, message_id=f"{user_id}-invite-1", role="admin"),
        track(user_id, "Teammate Invited", 3, message_id=f"{user_id}-invite-2", role="member"),
        track(user_id, "Report Viewed", 4, message_id=f"{user_id}-report-short", seconds=10),
        track(user_id, "Report Viewed", 5, message_id=f"{user_id}-report", seconds="45"),
    ]


def summary(enrollment):
    rows = {
        key: (method, message_id.split("-", 1)[1], completed_at)
        for key, (method, message_id, completed_at) in completions(enrollment).items()
    }
    return rows, enrollment.status, enrollment.current_step_key, enrollment.completed_at


def test_events_out_of_order_give_the_same_state_as_in_order(workspace, send):
    event_path(workspace)
    in_order = sorted(journey("a"), key=lambda call: call[2])
    for call in in_order:
        send(call)
    reversed_calls = journey("b")[1:][::-1]
    for call in reversed_calls:  # every event before the identify, newest first
        send(call)
    send(journey("b")[0])

    first, second = (Enrollment.objects.get(end_user__external_id=user) for user in "ab")
    assert summary(first) == summary(second)
    assert summary(first) == (
        {
            "create": ("event", "create", T0 + timedelta(hours=0.5)),
            "invite": ("event", "invite-2", T0 + timedelta(hours=3)),
            "report": ("event", "report", T0 + timedelta(hours=5)),
        },
        "completed",
        "",
        T0 + timedelta(hours=5),
    )


def test_replaying_the_same_events_changes_nothing(workspace, send):
    event_path(workspace)
    send(*journey("a"))
    enrollment = Enrollment.objects.get()
    state = (summary(enrollment), enrollment.revision)

    send(*journey("a"))
    with_progress = progress.evaluate({enrollment.pk: None}, workspace_id=workspace.pk)

    enrollment.refresh_from_db()
    assert (summary(enrollment), enrollment.revision) == state
    assert rebuild.rebuild(enrollment=enrollment, repair=False) == []
    assert Event.objects.count() == 7
    assert list(with_progress) == [enrollment.pk]


def test_the_new_state_is_pushed_after_commit(
    workspace, send, monkeypatch, django_capture_on_commit_callbacks
):
    onboarding_path(workspace)
    pushed = []
    monkeypatch.setattr(
        "onboarding.progress.push.push", lambda *, end_user_id, state: pushed.append((end_user_id, state))
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send(identify("u-1"))
    assert pushed == []
    for callback in callbacks:
        callback()
    enrollment = Enrollment.objects.get()
    assert pushed == [(enrollment.end_user_id, progress_selectors.enrollment_state(enrollment=enrollment))]

    with django_capture_on_commit_callbacks(execute=True):
        send(track("u-1", "Page", 1), track("u-1", "Project Created", 2, template="blank"))
        send(track("u-1", "Project Created", 3, template="blank"))  # no change: no push

    enrollment.refresh_from_db()
    assert len(pushed) == 2
    assert pushed[1] == (enrollment.end_user_id, progress_selectors.enrollment_state(enrollment=enrollment))


def test_a_failing_progress_write_is_retried(workspace, send, monkeypatch):
    onboarding_path(workspace)
    send(identify("u-1"))
    monkeypatch.setattr(retry, "WAIT", wait_none())
    real, failures = progress._evaluate_batch, []

    def flaky(*args):
        if len(failures) < 3:
            failures.append(1)
            raise OperationalError("deadlock detected")
        return real(*args)

    monkeypatch.setattr(progress, "_evaluate_batch", flaky)

    send(track("u-1", "Project Created", 1, message_id="create", template="blank"))

    assert len(failures) == 3
    assert completions(Enrollment.objects.get()) == {"create": ("event", "create", T0 + timedelta(hours=1))}


def test_when_retries_run_out_the_event_is_kept_and_rebuild_repairs(workspace, send, monkeypatch, caplog):
    onboarding_path(workspace)
    send(identify("u-1"))
    monkeypatch.setattr(retry, "WAIT", wait_none())
    attempts = []

    def broken(*args):
        attempts.append(1)
        StepCompletion.objects.create(
            enrollment=Enrollment.objects.get(), step_key="half-written", method="api", completed_at=T0
        )
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(progress, "_evaluate_batch", broken)

    response = send(track("u-1", "Project Created", 1, message_id="create", template="blank"))

    assert response.json() == {"success": True}
    assert len(attempts) == retry.WRITE_ATTEMPTS == 4
    assert Event.objects.filter(message_id="create").exists()
    enrollment = Enrollment.objects.get()
    assert (completions(enrollment), enrollment.revision) == ({}, 1)  # the savepoint was rolled back
    assert [record.message for record in caplog.records if record.levelname == "ERROR"] == [
        "progress.evaluation_failed"
    ]

    monkeypatch.undo()
    assert rebuild.rebuild(enrollment=enrollment) == [
        f"step create: live none, rebuilt event at {(T0 + timedelta(hours=1)).isoformat()} "
        f"(event {Event.objects.get(message_id='create').pk})",
        "current step: live create, rebuilt profile",
        f"step entered at: live {T0.isoformat()}, rebuilt {(T0 + timedelta(hours=1)).isoformat()}",
    ]
    enrollment.refresh_from_db()
    assert (completions(enrollment), enrollment.current_step_key, enrollment.revision) == (
        {"create": ("event", "create", T0 + timedelta(hours=1))},
        "profile",
        2,
    )


@pytest.fixture
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


def test_push_sends_the_state_to_the_users_group(workspace, send, in_memory_layer):
    onboarding_path(workspace)
    send(identify("u-1"))
    enrollment = Enrollment.objects.get()
    group = live_progress.progress_group(enrollment.end_user_id)
    state = progress_selectors.enrollment_state(enrollment=enrollment)

    async def receive_push():
        channel = await in_memory_layer.new_channel()
        await in_memory_layer.group_add(group, channel)
        await sync_to_async(live_progress.push)(end_user_id=enrollment.end_user_id, state=state)
        return await in_memory_layer.receive(channel)

    message = async_to_sync(receive_push)()

    assert group == f"onboarding.user.{enrollment.end_user_id}"
    assert message == {
        "type": "onboarding.state",
        "state": progress_selectors.enrollment_state(enrollment=enrollment),
    }


def test_a_failed_push_is_logged_not_raised(workspace, send, monkeypatch, caplog):
    onboarding_path(workspace)
    send(identify("u-1"))

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(live_progress, "get_channel_layer", down)

    enrollment = Enrollment.objects.get()
    live_progress.push(
        end_user_id=enrollment.end_user_id, state=progress_selectors.enrollment_state(enrollment=enrollment)
    )

    assert [(record.levelname, record.message) for record in caplog.records][-1] == (
        "WARNING",
        "progress.push_failed",
    )
