"""The nudge log, the dead-letter list and its retry action, the in-doubt list, the queue view,
and the end user's timeline."""

import time
import uuid
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from nudges import jobs
from nudges.models import Nudge, NudgeEvent
from nudges.services import trace_line
from onboarding.models import StepCompletion
from tenancy.models import AuditLog
from tests.conftest import listed, post_action, verified_client
from tests.factories import (
    PII_CANARIES,
    AdminUserFactory,
    ContactFactory,
    EndUserFactory,
    EnrollmentFactory,
    EventFactory,
)
from tests.nudges import test_admin
from tests.nudges.factories import (
    FailedNudgeFactory,
    NudgeEventFactory,
    NudgeFactory,
    TriggerFactory,
)

pytestmark = pytest.mark.django_db

# The admin fixtures (Acme with its admin alice, Globex).
acme, globex, alice, client = test_admin.acme, test_admin.globex, test_admin.alice, test_admin.client
LOG = "/admin/nudges/nudge/"


@pytest.fixture
def log(acme):
    """Nudges of two users, two triggers, three channels and several statuses and days."""
    ada = EndUserFactory(workspace=acme, external_id="ada")
    linus = EndUserFactory(workspace=acme, external_id="linus")
    stuck = TriggerFactory(workspace=acme, name="Stuck")
    idle = TriggerFactory(workspace=acme, name="Idle", kind="inactivity")
    rows = {
        "ada_email": NudgeFactory(trigger=stuck, end_user=ada, channel="email"),
        "ada_sms_failed": FailedNudgeFactory(trigger=stuck, end_user=ada, channel="sms"),
        "linus_in_app": NudgeFactory(trigger=idle, end_user=linus, channel="in_app", status="clicked"),
        "linus_old": NudgeFactory(trigger=idle, end_user=linus, channel="email", status="suppressed"),
    }
    Nudge.objects.filter(pk=rows["linus_old"].pk).update(created_at=timezone.now() - timedelta(days=30))
    return rows, stuck


def pks(response) -> set[int]:
    return {nudge.pk for nudge in listed(response)}


def test_the_log_filters_by_user_trigger_channel_status_and_date(log, client):
    rows, stuck = log
    since = (timezone.now() - timedelta(days=2)).date().isoformat()

    assert pks(client.get(f"{LOG}?user=ada")) == {rows["ada_email"].pk, rows["ada_sms_failed"].pk}
    assert pks(client.get(f"{LOG}?trigger={stuck.pk}")) == {rows["ada_email"].pk, rows["ada_sms_failed"].pk}
    assert pks(client.get(f"{LOG}?channel__exact=in_app")) == {rows["linus_in_app"].pk}
    assert pks(client.get(f"{LOG}?status__exact=suppressed")) == {rows["linus_old"].pk}
    assert pks(
        client.get(f"{LOG}?user=linus&created_at__range__gte_0={since}&created_at__range__gte_1=00:00:00")
    ) == {rows["linus_in_app"].pk}


def test_the_trigger_filter_lists_only_the_admins_workspaces(log, globex, client):
    TriggerFactory(workspace=globex, name="Globex secret trigger")

    page = client.get(LOG).content.decode()

    assert "Stuck (Acme)" in page
    assert "Globex secret trigger" not in page


def test_the_nudge_page_shows_the_content_the_status_trail_and_the_decision_trace(acme, client):
    nudge = NudgeFactory(
        trigger=TriggerFactory(workspace=acme, name="Stuck"),
        subject="Finish your setup",
        body="You are almost there.",
        trace=[
            trace_line("trigger", "stuck on connect for 2 h"),
            trace_line("policy", "email denied: daily_cap: daily cap of 1 reached at 09:12 Europe/Paris"),
        ],
    )
    NudgeEventFactory(nudge=nudge, status="queued", source="trigger")
    NudgeEventFactory(
        nudge=nudge, status="bounced", source="sendgrid", detail={"email": "x@y.test", "reason": "550"}
    )

    page = client.get(f"{LOG}{nudge.pk}/change/").content.decode()

    assert "Finish your setup" in page and "You are almost there." in page
    assert "<td>queued</td><td>trigger</td>" in page
    assert "email: [redacted], reason: 550" in page and "x@y.test" not in page
    assert "policy: email denied: daily_cap: daily cap of 1 reached at 09:12 Europe/Paris" in page
    assert "trigger: stuck on connect for 2 h" in page


def test_the_log_is_read_only(acme, client):
    nudge = NudgeFactory(trigger=TriggerFactory(workspace=acme))

    response = client.post(f"{LOG}{nudge.pk}/change/", {"status": "converted"})

    assert response.status_code == 403
    assert client.get(f"{LOG}add/").status_code == 403
    nudge.refresh_from_db()
    assert nudge.status == "sent"


# --- Dead letters ------------------------------------------------------------------------------------


def test_the_dead_letter_list_is_the_failed_nudges(log, client):
    rows, _ = log

    response = client.get(f"{LOG}dead-letters/", follow=True)

    assert response.redirect_chain == [(f"{LOG}?status__exact=failed", 302)]
    assert pks(response) == {rows["ada_sms_failed"].pk}
    assert "Dead letters: failed nudges" in response.content.decode()
    assert f'<a href="{LOG}dead-letters/">Dead letters</a>' in client.get(LOG).content.decode()


def test_retry_queues_a_dead_letter_again(
    log, client, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.JOBS_RUN_INLINE = True  # the job runs in this process after the commit, patched here
    rows, _ = log
    dead, sent = rows["ada_sms_failed"], rows["ada_email"]
    processed = []
    monkeypatch.setattr(jobs, "nudge_process_job", lambda nudge_id: processed.append(nudge_id))

    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(client, LOG, "retry", [dead, sent])

    assert response.status_code == 302
    dead.refresh_from_db()
    sent.refresh_from_db()
    assert (dead.status, dead.failed_at, sent.status) == ("queued", None, "sent")
    assert processed == [dead.pk]
    assert NudgeEvent.objects.filter(nudge=dead, status="queued", source="retry").count() == 1
    assert dead.trace[-1]["message"] == "sent again from the dead-letter list by alice"
    assert AuditLog.objects.filter(action="nudge.retry", object_id=str(dead.pk), actor_label="alice").exists()
    messages = [str(message) for message in client.get(LOG).context["messages"]]
    assert messages == ["Queued 1 nudge(s) again. 1 skipped: only failed nudges are retried."]


def test_retry_never_touches_another_workspaces_dead_letters(acme, globex, client, monkeypatch, settings):
    settings.JOBS_RUN_INLINE = True
    theirs = FailedNudgeFactory(trigger=TriggerFactory(workspace=globex))
    monkeypatch.setattr(jobs, "nudge_process_job", lambda nudge_id: None)

    post_action(client, LOG, "retry", [theirs])

    theirs.refresh_from_db()
    assert theirs.status == "failed"


# --- The end user's timeline -------------------------------------------------------------------------


def test_the_end_user_page_shows_a_timeline_with_each_nudges_trace(acme, client):
    ada = EndUserFactory(workspace=acme, external_id="ada")
    ContactFactory(end_user=ada)
    now = timezone.now()
    EventFactory(end_user=ada, name="Signed Up", timestamp=now - timedelta(hours=3))
    enrollment = EnrollmentFactory(end_user=ada, decision_reason="path B: rules (persona developer)")
    StepCompletion.objects.create(
        enrollment=enrollment, step_key="connect", method="event", completed_at=now - timedelta(hours=2)
    )
    NudgeFactory(
        trigger=TriggerFactory(workspace=acme, name="Stuck on connect"),
        end_user=ada,
        status="suppressed",
        channel="",
        trace=[
            trace_line("trigger", "stuck on connect"),
            trace_line("suppressed", "daily cap reached at 09:12 Europe/Paris"),
        ],
    )

    page = client.get(f"/admin/onboarding/enduser/{ada.pk}/change/").content.decode()

    assert "nudge “Stuck on connect”: suppressed" in page
    assert "suppressed: daily cap reached at 09:12 Europe/Paris" in page
    assert "step connect completed (event)" in page
    assert "path B: rules (persona developer)" in page
    assert "track Signed Up" in page
    for canary in PII_CANARIES:
        assert canary.lower() not in page.lower()
    newest_first = [page.index(text) for text in ("Stuck on connect", "step connect", "track Signed Up")]
    assert newest_first == sorted(newest_first)


def test_the_timeline_is_limited_to_the_last_items(acme):
    from nudges.timeline import end_user_timeline

    ada = EndUserFactory(workspace=acme, external_id="ada")
    for number in range(5):
        EventFactory(
            end_user=ada, name=f"Event {number}", timestamp=timezone.now() - timedelta(minutes=number)
        )

    items = end_user_timeline(workspace=acme, end_user=ada, limit=3)

    assert [item.title for item in items] == ["track Event 0", "track Event 1", "track Event 2"]


# --- In doubt, and the queue view ----------------------------------------------------------------


def test_the_in_doubt_list_marks_a_nudge_delivered_with_an_audit_row(acme, client):
    doubtful = NudgeFactory(trigger=TriggerFactory(workspace=acme), status="in_doubt", sent_at=None)
    sent = NudgeFactory(trigger=TriggerFactory(workspace=acme))
    page = client.get(LOG).content.decode()
    assert f'<a href="{LOG}?status__exact=in_doubt">In doubt</a>' in page
    assert pks(client.get(f"{LOG}?status__exact=in_doubt")) == {doubtful.pk}

    post_action(client, LOG, "mark_delivered", [doubtful, sent])

    doubtful.refresh_from_db()
    sent.refresh_from_db()
    assert (doubtful.status, sent.status) == ("delivered", "sent")
    assert doubtful.trace[-1]["message"] == "marked as delivered by alice"
    assert AuditLog.objects.filter(
        action="nudge.mark_delivered", object_id=str(doubtful.pk), actor_label="alice"
    ).exists()
    messages = [str(message) for message in client.get(LOG).context["messages"]]
    assert messages == ["Marked as delivered: 1 nudge(s). 1 skipped: only nudges in doubt are."]


def test_a_job_whose_worker_died_shows_in_the_queue_view_and_rerunning_it_sends_nothing_twice(
    acme, redis_url, settings
):
    """rq moves a job whose worker died (its execution expired while started) to the failed jobs
    with AbandonedJobError; the admin's queue view lists it; requeued, the nudge job finds its
    nudge sent already and does nothing."""
    admin_client = verified_client(AdminUserFactory(is_superuser=True))  # the queue view is the operators'
    name = f"test-{uuid.uuid4().hex}"
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, name: {"URL": redis_url, "DEFAULT_TIMEOUT": 60}}
    queue = Queue(name, connection=django_rq.get_connection(name))  # plain rq: enqueued at once
    sent = NudgeFactory(trigger=TriggerFactory(workspace=acme), attempts=1)
    try:
        job = queue.enqueue(jobs.nudges_process_job, [sent.pk])
        queue.remove(job.id)
        job.set_status(JobStatus.STARTED)
        with queue.connection.pipeline() as pipe:
            Execution.create(job, ttl=1, pipeline=pipe)
            pipe.execute()
        StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 60)  # the worker died

        failed = FailedJobRegistry(queue=queue)
        assert failed.get_job_ids() == [job.id]
        index = list(settings.RQ_QUEUES).index(name)
        assert 'href="/admin/django_rq/dashboard/"' in admin_client.get(LOG).content.decode()
        page = admin_client.get(f"/admin/django_rq/dashboard/queues/{index}/failed/").content.decode()
        assert job.id in page
        result = job.latest_result()
        assert result.type == result.Type.FAILED
        detail = admin_client.get(f"/admin/django_rq/dashboard/queues/{index}/{job.id}/results/{result.id}/")
        assert "AbandonedJobError" in detail.content.decode()

        failed.requeue(job.id)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        queue.delete(delete_jobs=True)

    assert job.get_status(refresh=True) == JobStatus.FINISHED
    sent.refresh_from_db()
    assert (sent.status, sent.attempts) == ("sent", 1)
