"""The ops dashboard's queries: is the platform keeping up?

Ingestion and the nudge pipeline are per workspace (through onboarding's and nudges' selectors);
API latency, the error rate and the job queues are the whole instance's (one process group serves
every workspace), and are said to be on the page.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import django_rq
from django.conf import settings
from django.utils import timezone
from prometheus_client.core import Metric
from redis import RedisError
from rq.registry import FailedJobRegistry, StartedJobRegistry

from analytics.models import RollupCursor
from core import latency
from nudges import selectors as nudge_selectors
from onboarding.ingestion import selectors as ingestion_selectors
from tenancy.models import Workspace

# The rollups refresh every 5 minutes: three missed runs are worth a look.
ROLLUPS_STALE_AFTER = timedelta(minutes=15)
INGESTION_WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    # bucket -> (window, bucket width): bounded, so the scan stays within the recent blocks.
    "minute": (timedelta(hours=1), timedelta(minutes=1)),
    "hour": (timedelta(hours=24), timedelta(hours=1)),
}
# Statuses still moving through the pipeline (not a final outcome).
PIPELINE_PENDING = ("queued", "deferred", "in_flight", "in_doubt")


@dataclass(frozen=True)
class IngestionBucket:
    start: datetime
    events: int
    events_per_minute: float


def _window(bucket: str, now: datetime | None) -> tuple[datetime, datetime]:
    """[first bucket's start, end) of the bucket's window: the current, partial bucket last."""
    window, width = INGESTION_WINDOWS[bucket]
    now = (now or timezone.now()).astimezone(UTC)
    current = now.replace(second=0, microsecond=0)
    if bucket == "hour":
        current = current.replace(minute=0)
    return current - window + width, current + width


def _buckets(bucket: str, first: datetime, counts: dict[datetime, int]) -> list[IngestionBucket]:
    window, width = INGESTION_WINDOWS[bucket]
    minutes = width.total_seconds() / 60
    starts = [first + width * index for index in range(int(window / width))]
    return [
        IngestionBucket(
            start=start, events=counts.get(start, 0), events_per_minute=counts.get(start, 0) / minutes
        )
        for start in starts
    ]


def ingestion_rate(
    *, workspace: Workspace, bucket: Literal["minute", "hour"], now: datetime | None = None
) -> list[IngestionBucket]:
    """Events received per minute over the last hour, or per hour over the last 24 hours (the
    current, partial bucket last), every bucket present (0 when none arrived)."""
    first, end = _window(bucket, now)
    counts = ingestion_selectors.events_received_per_bucket(
        workspace=workspace, start=first, end=end, bucket=bucket
    )
    return _buckets(bucket, first, counts)


def ingestion_rates(*, workspace: Workspace, now: datetime | None = None) -> dict[str, list[IngestionBucket]]:
    """Both of ingestion_rate's answers, {"minute": ..., "hour": ...}, from one scan of the 24
    hours per minute (the hours summed from their minutes) instead of a scan each."""
    now = now or timezone.now()
    first_minute, _ = _window("minute", now)
    first_hour, end = _window("hour", now)  # the minutes' window lies within the hours'
    per_minute = ingestion_selectors.events_received_per_bucket(
        workspace=workspace, start=first_hour, end=end, bucket="minute"
    )
    per_hour: dict[datetime, int] = {}
    for minute, events in per_minute.items():
        per_hour[minute.replace(minute=0)] = per_hour.get(minute.replace(minute=0), 0) + events
    return {
        "minute": _buckets("minute", first_minute, per_minute),
        "hour": _buckets("hour", first_hour, per_hour),
    }


@dataclass(frozen=True)
class RouteLatency:
    route: str
    requests: int
    errors: int
    p95_ms: float | None
    error_rate_percent: float | None


def _totals_by_route(families: list[Metric], name: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for family in families:
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_total":
                route = sample.labels.get("route", "")
                totals[route] = totals.get(route, 0.0) + sample.value
    return totals


def api_latency_by_route(families: list[Metric] | None = None) -> tuple[RouteLatency, list[RouteLatency]]:
    """(all routes, each route busiest first): requests, 5xx answers, p95 (ms, from the
    histogram's buckets) and error rate, as core.latency reads them for /metrics and the metrics
    API: cumulative since the metric files began, for the whole instance."""
    families = latency.read_families() if families is None else families
    requests = _totals_by_route(families, "api_requests")
    errors = _totals_by_route(families, "api_errors")

    def row(route: str | None) -> RouteLatency:
        labels = {"route": route} if route is not None else None
        return RouteLatency(
            route=route or "all routes",
            requests=int(requests.get(route, 0) if route is not None else sum(requests.values())),
            errors=int(errors.get(route, 0) if route is not None else sum(errors.values())),
            p95_ms=latency.latency_quantile("api_latency_p95_ms", 0.95, labels=labels, families=families),
            error_rate_percent=latency.error_rate_percent(families, labels=labels),
        )

    routes = sorted(requests, key=lambda route: (-requests[route], route))
    return row(None), [row(route) for route in routes]


@dataclass(frozen=True)
class QueueState:
    name: str
    queued: int | None
    started: int | None
    failed: int | None
    error: str = ""


def queue_states() -> list[QueueState] | None:
    """Per RQ queue: jobs waiting, running and failed (RQ's FailedJobRegistry). None when jobs run
    in-process (JOBS_RUN_INLINE, the embedded default): there are no queues. A queue whose
    Redis does not answer is listed with its error, not left out."""
    if settings.JOBS_RUN_INLINE:
        return None
    states = []
    for name in settings.RQ_QUEUES:
        try:
            queue = django_rq.get_queue(name)
            states.append(
                QueueState(
                    name=name,
                    queued=queue.count,
                    started=StartedJobRegistry(queue=queue).count,
                    failed=FailedJobRegistry(queue=queue).count,
                )
            )
        except RedisError as error:
            states.append(
                QueueState(name=name, queued=None, started=None, failed=None, error=str(error)[:200])
            )
    return states


@dataclass(frozen=True)
class NudgePipeline:
    by_status: dict[str, int]  # nudges created in range, by their status now
    in_pipeline: int  # of those, still queued, deferred, in flight or in doubt
    dead_letters: int  # status failed, whenever created: the dead-letter list
    in_doubt: int  # whenever created: waiting for a person in the admin


def nudge_pipeline(*, workspace: Workspace, date_from: date, date_to: date) -> NudgePipeline:
    by_status = nudge_selectors.nudge_status_counts(
        workspace=workspace, created_from=date_from, created_to=date_to
    )
    # Only the two statuses shown for all time: counting every status would read the whole table.
    every = nudge_selectors.nudge_status_counts(workspace=workspace, statuses=("failed", "in_doubt"))
    return NudgePipeline(
        by_status=by_status,
        in_pipeline=sum(by_status[status] for status in PIPELINE_PENDING),
        dead_letters=every["failed"],
        in_doubt=every["in_doubt"],
    )


@dataclass(frozen=True)
class RollupFreshness:
    workspace: Workspace
    refreshed_at: datetime | None
    age: timedelta | None
    stale: bool


def rollup_freshness(*, workspaces: list[Workspace], now: datetime | None = None) -> list[RollupFreshness]:
    """When each workspace's rollups were last refreshed (RollupCursor.refreshed_at) and how long
    ago; stale beyond ROLLUPS_STALE_AFTER, or when they never were. One query."""
    now = now or timezone.now()
    refreshed = dict(
        RollupCursor.objects.filter(workspace__in=workspaces).values_list("workspace_id", "refreshed_at")
    )
    rows = []
    for workspace in workspaces:
        refreshed_at = refreshed.get(workspace.pk)
        age = now - refreshed_at if refreshed_at is not None else None
        rows.append(
            RollupFreshness(
                workspace=workspace,
                refreshed_at=refreshed_at,
                age=age,
                stale=age is None or age > ROLLUPS_STALE_AFTER,
            )
        )
    return rows
