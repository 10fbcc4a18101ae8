"""Jobs: sent after commit, run in-process without Redis, through RQ with it; the periodic pass."""

import uuid
from datetime import timedelta

import django_rq
import pytest
from django.db import transaction
from django.utils import timezone
from django_rq.cron import DjangoCronScheduler
from rq import SimpleWorker

from core import jobs
from onboarding import jobs as onboarding_jobs
from onboarding.models import AnswerSnapshot, Enrollment, EnrollmentSignal
from tests.factories import WorkspaceFactory
from tests.onboarding.enrollment_rows import enrollment, published_version

pytestmark = pytest.mark.django_db

CALLS: list[tuple] = []


def remember(*args, **kwargs):
    CALLS.append((args, kwargs))


def explode():
    raise RuntimeError("job failed")


@pytest.fixture(autouse=True)
def _no_calls():
    CALLS.clear()


@pytest.fixture
def inline(settings):
    settings.JOBS_RUN_INLINE = True


@pytest.fixture
def queue(settings, redis_url):
    """A queue of this test's own, so parallel runs sharing the Redis never take each other's jobs."""
    settings.JOBS_RUN_INLINE = False
    name = f"test-{uuid.uuid4().hex}"
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, name: {"URL": redis_url, "DEFAULT_TIMEOUT": 60}}
    queue = django_rq.get_queue(name)
    yield queue
    queue.delete(delete_jobs=True)


@pytest.fixture
def stuck_enrollment():
    acme = WorkspaceFactory(name="Acme", slug="acme")
    version = published_version(acme, [{"key": "invite", "expected_duration": timedelta(days=1)}])
    return enrollment(
        version, user_id="late", current_step_key="invite", step_entered_at=timezone.now() - timedelta(days=2)
    )


def test_inline_jobs_run_after_commit(inline, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(remember, 1, queue="low", size=2)
        assert CALLS == []

    assert CALLS == [((1,), {"size": 2})]


def test_a_rolled_back_transaction_sends_no_job(inline, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        jobs.enqueue(remember, 1)
        raise RuntimeError("rolled back")

    assert CALLS == []


def test_a_failing_inline_job_is_logged_not_raised(inline, django_capture_on_commit_callbacks, caplog):
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(explode)
        jobs.enqueue(remember, "after")

    assert [record.message for record in caplog.records if record.name == "core.jobs"] == [
        "jobs.inline.failed"
    ]
    assert CALLS == [(("after",), {})]


def test_detect_stuck_job_inline(inline, stuck_enrollment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(onboarding_jobs.detect_stuck_job, workspace_id=stuck_enrollment.workspace_id)

    assert list(EnrollmentSignal.objects.values_list("kind", "step_key", "reason")) == [
        ("stuck", "invite", "on 'invite' for 2 days; expected 1 day")
    ]


def test_detect_stuck_job_over_every_workspace_returns_totals(stuck_enrollment):
    assert onboarding_jobs.detect_stuck_job() == {
        "workspaces": 1,
        "flagged": 1,
        "resolved": 0,
        "not_judged": 0,
    }
    assert onboarding_jobs.detect_stuck_job() == {
        "workspaces": 1,
        "flagged": 0,
        "resolved": 0,
        "not_judged": 0,
    }


@pytest.mark.redis
def test_with_redis_the_job_waits_on_the_queue_for_a_worker(
    queue, stuck_enrollment, django_capture_on_commit_callbacks
):
    Enrollment.objects.filter(pk=stuck_enrollment.pk).update(
        status=Enrollment.Status.COMPLETED, answers={"invite": {}}, completed_at=timezone.now()
    )
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(onboarding_jobs.answers_snapshot_job, stuck_enrollment.pk, queue=queue.name)
        jobs.enqueue(
            onboarding_jobs.detect_stuck_job, workspace_id=stuck_enrollment.workspace_id, queue=queue.name
        )
        assert queue.count == 0  # nothing is sent before the commit

    assert [job.func_name for job in queue.get_jobs()] == [
        "onboarding.jobs.answers_snapshot_job",
        "onboarding.jobs.detect_stuck_job",
    ]
    assert AnswerSnapshot.objects.count() == 0

    # The worker shares this test's connection, so it sees the test's uncommitted rows.
    SimpleWorker([queue], connection=queue.connection).work(burst=True)

    assert queue.count == 0
    assert AnswerSnapshot.objects.get().enrollment_id == stuck_enrollment.pk


@pytest.mark.redis
def test_when_redis_refuses_the_job_it_runs_inline(queue, django_capture_on_commit_callbacks, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    def refuse(*args, **kwargs):
        raise RedisConnectionError("down")

    monkeypatch.setattr(type(queue), "enqueue", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(remember, 7, queue=queue.name)

    assert CALLS == [((7,), {})]


def test_the_cron_config_schedules_the_stuck_pass():
    scheduler = DjangoCronScheduler()
    scheduler.load_config_from_file("config.cron")

    [cron_job] = [job for job in scheduler.get_jobs() if job.func_name.startswith("onboarding.")]
    assert (cron_job.func_name, cron_job.queue_name, cron_job.interval) == (
        "onboarding.jobs.detect_stuck_job",
        "low",
        900,
    )
