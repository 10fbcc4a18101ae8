"""The periodic jobs in the server's own process: the embedded default's RQ cron scheduler.

Production enqueues config.cron.SCHEDULE with `manage.py rqcron config.cron` and RQ workers run
it. The embedded default (`make run`: SQLite, no Redis, JOBS_RUN_INLINE) has neither, so without
this, stuck detection and the time-based triggers only ran when someone typed the commands. Here
one background thread runs the same schedule as RQ's cron does: every job at start, then each
again once its interval has passed since its previous run began. Jobs run one after another, as
one worker would take them; a job that fails is logged and the others go on.

Started and stopped by the ASGI lifespan (`lifespan`, served by config.asgi) when the setting
PERIODIC_JOBS_IN_PROCESS is on (default: JOBS_RUN_INLINE). Production's web servers
(config.serve) run with the lifespan off and never start it; neither do the tests' servers.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import close_old_connections, connections

from config.cron import SCHEDULE, Periodic

logger = logging.getLogger(__name__)

# The longest wait between two looks at the schedule (a stop request ends the wait at once).
MAX_WAIT_SECONDS = 60.0
# How long shutting down waits for a job that is running to finish.
STOP_TIMEOUT_SECONDS = 30.0


class PeriodicJobs:
    """Runs a schedule of `Periodic` jobs; `run_due` is one look at it, `start` loops in a thread."""

    def __init__(
        self, schedule: Iterable[Periodic] | None = None, *, clock: Callable[[], float] = time.monotonic
    ):
        self.schedule = tuple(SCHEDULE if schedule is None else schedule)
        self.clock = clock
        self._next_run: dict[str, float] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_due(self) -> list[str]:
        """Run every job that is due (all of them the first time); their names, in order."""
        ran = []
        for periodic in self.schedule:
            if self._stopping.is_set():
                break
            started = self.clock()
            if self._next_run.get(periodic.name, started) > started:
                continue
            self._next_run[periodic.name] = started + periodic.interval_seconds
            _run(periodic)
            ran.append(periodic.name)
        return ran

    def seconds_until_due(self) -> float:
        if not self._next_run:
            return 0.0
        return max(0.0, min(self._next_run.values()) - self.clock())

    def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                # This thread's own database connections, renewed as a request's would be.
                close_old_connections()
                self.run_due()
                close_old_connections()
                self._stopping.wait(min(self.seconds_until_due(), MAX_WAIT_SECONDS))
        finally:
            connections.close_all()

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.is_running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="periodic-jobs", daemon=True)
        self._thread.start()
        logger.info("periodic.started", extra={"jobs": [periodic.name for periodic in self.schedule]})

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
        """Ask the loop to stop and wait for the job running now; False when it did not end in
        time (the thread is a daemon: the process still exits)."""
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        logger.info("periodic.stopped", extra={"stopped": stopped})
        return stopped


def _run(periodic: Periodic) -> None:
    started = time.monotonic()
    try:
        result = periodic.func()
    except Exception:
        logger.exception("periodic.job.failed", extra={"job": periodic.name})
    else:
        logger.info(
            "periodic.job.done",
            extra={
                "job": periodic.name,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                "result": result,
            },
        )


async def lifespan(scope, receive, send) -> None:
    """The ASGI lifespan protocol: the periodic jobs start with the server and stop with it."""
    runner = PeriodicJobs() if settings.PERIODIC_JOBS_IN_PROCESS else None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if runner is not None:
                runner.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if runner is not None:
                await _stopped(runner)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _stopped(runner: PeriodicJobs) -> None:
    # Joined in a thread of its own: the event loop stays free while a long job finishes.
    await asyncio.to_thread(runner.stop)
