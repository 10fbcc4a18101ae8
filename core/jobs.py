"""Send a job after the current transaction commits: to RQ, or in-process without Redis.

A job queued inside a transaction must never run on data that was rolled back, nor before the
data it reads is visible to the worker, so every job is sent from `transaction.on_commit`.

With JOBS_RUN_INLINE (the default without REDIS_URL) the job runs in this process right after the
commit. Otherwise it goes to the named RQ queue; when Redis cannot take it, the job runs inline
instead of being lost (PostgreSQL is the source of truth, and jobs are idempotent).
"""

import logging
from collections.abc import Callable
from typing import Any

import django_rq
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from redis import RedisError

logger = logging.getLogger(__name__)


Job = Callable[..., Any] | str
"""A job: a module-level function, or its dotted name ("nudges.jobs.deliver") where the sender
sits below the jobs module and must not import it."""


def _name(func: Job) -> str:
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def _run_inline(func: Job, args: tuple, kwargs: dict) -> None:
    # Like a worker: a failing job is logged, it does not fail the request that committed.
    try:
        (import_string(func) if isinstance(func, str) else func)(*args, **kwargs)
    except Exception:
        logger.exception("jobs.inline.failed", extra={"job": _name(func)})


def _send(func: Job, args: tuple, kwargs: dict, queue: str, options: dict) -> None:
    if settings.JOBS_RUN_INLINE:
        _run_inline(func, args, kwargs)
        return
    try:
        django_rq.get_queue(queue).enqueue(func, args=args, kwargs=kwargs, **options)
    except RedisError:
        logger.warning("jobs.enqueue.failed", extra={"job": _name(func), "queue": queue}, exc_info=True)
        _run_inline(func, args, kwargs)


def enqueue(
    func: Job,
    *args: Any,
    queue: str = "default",
    job_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Run `func(*args, **kwargs)` once the current transaction commits (at once outside one).

    `func` must be importable by name (a module-level function, or that name as a string: RQ
    takes either, and the inline run imports it then) and its arguments picklable:
    pass ids, not model instances, so the worker loads fresh rows. `job_options` go to RQ's
    enqueue (e.g. result_ttl=0 for jobs whose result nobody reads).
    """
    options = job_options or {}
    transaction.on_commit(lambda: _send(func, args, kwargs, queue, options))
