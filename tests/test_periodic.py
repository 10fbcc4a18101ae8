"""The periodic jobs in the embedded server's process (config.periodic): RQ cron's schedule,
started and stopped with the server by the ASGI lifespan."""

import asyncio
import logging
import threading

from django_rq.cron import DjangoCronScheduler

from config import cron, periodic
from config.asgi import application
from config.cron import Periodic


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _recording(name: str, calls: list[str], *, fails: bool = False):
    def job():
        calls.append(name)
        if fails:
            raise RuntimeError("the job broke")
        return {"ran": name}

    job.__qualname__ = name
    return job


def test_the_in_process_schedule_is_the_one_rq_cron_enqueues():
    scheduler = DjangoCronScheduler()
    scheduler.load_config_from_file("config.cron")

    registered = [
        (job.func_name, job.queue_name, job.interval, job.job_options["job_timeout"])
        for job in scheduler.get_jobs()
    ]
    assert registered == [
        (entry.name, entry.queue, entry.interval_seconds, entry.job_timeout_seconds)
        for entry in cron.SCHEDULE
    ]
    assert [entry.name for entry in periodic.PeriodicJobs().schedule] == [
        "onboarding.jobs.detect_stuck_job",
        "guardrails.jobs.detect_abuse_job",
        "nudges.jobs.triggers_scan_job",
        "nudges.jobs.nudges_due_job",
        "analytics.signals.jobs.merge_signals_job",
        "analytics.jobs.refresh_rollups_job",
        "analytics.alerts.jobs.detect_anomalies_job",
        "experiments.jobs.evaluate_experiments_job",
        "ml.features.jobs.derive_features_job",
        "ml.drift.jobs.check_drift_job",
    ]


def test_every_job_runs_at_start_then_each_once_its_interval_has_passed():
    calls: list[str] = []
    clock = Clock()
    runner = periodic.PeriodicJobs(
        [
            Periodic(_recording("stuck", calls), "low", 900, 60),
            Periodic(_recording("due", calls), "default", 60, 60),
        ],
        clock=clock,
    )

    assert [name.rsplit(".", 1)[1] for name in runner.run_due()] == ["stuck", "due"]
    assert runner.seconds_until_due() == 60
    clock.now += 59
    assert runner.run_due() == []
    clock.now += 1
    runner.run_due()
    clock.now += 840
    runner.run_due()

    assert calls == ["stuck", "due", "due", "stuck", "due"]


def test_a_failing_job_is_logged_and_the_next_ones_still_run(caplog):
    calls: list[str] = []
    runner = periodic.PeriodicJobs(
        [
            Periodic(_recording("broken", calls, fails=True), "low", 60, 60),
            Periodic(_recording("due", calls), "default", 60, 60),
        ],
        clock=Clock(),
    )

    with caplog.at_level(logging.ERROR, logger="config.periodic"):
        runner.run_due()

    assert calls == ["broken", "due"]
    assert [(record.getMessage(), record.job.rsplit(".", 1)[1]) for record in caplog.records] == [
        ("periodic.job.failed", "broken")
    ]


def _lifespan(events: list[dict]) -> list[str]:
    """Drive the ASGI application's lifespan: startup, then (once `ready` says so) shutdown."""
    sent: list[str] = []

    async def drive():
        queue: asyncio.Queue = asyncio.Queue()
        for event in events:
            queue.put_nowait(event)

        async def receive():
            message = await queue.get()
            if message.get("wait") is not None:
                await asyncio.to_thread(message["wait"].wait, 10)
                message = {"type": message["type"]}
            return message

        async def send(message):
            sent.append(message["type"])

        await application({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    asyncio.run(drive())
    return sent


def test_the_server_s_lifespan_starts_the_jobs_and_stops_them_cleanly(settings, monkeypatch):
    settings.PERIODIC_JOBS_IN_PROCESS = True
    ran = threading.Event()
    threads: list[threading.Thread] = []

    def stuck_pass():
        threads.append(threading.current_thread())
        ran.set()

    monkeypatch.setattr(periodic, "SCHEDULE", (Periodic(stuck_pass, "low", 900, 60),))

    sent = _lifespan([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown", "wait": ran}])

    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert ran.is_set()
    [thread] = threads
    assert thread.name == "periodic-jobs"
    assert not thread.is_alive()  # stopped with the server, not left running


def test_without_the_setting_the_lifespan_runs_no_job(settings, monkeypatch):
    settings.PERIODIC_JOBS_IN_PROCESS = False
    calls: list[str] = []
    monkeypatch.setattr(periodic, "SCHEDULE", (Periodic(_recording("stuck", calls), "low", 900, 60),))

    sent = _lifespan([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert calls == []
    assert not [thread for thread in threading.enumerate() if thread.name == "periodic-jobs"]
