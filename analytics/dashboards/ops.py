"""The ops dashboard: is the platform keeping up? Ingestion per minute and hour, API latency p95
and error rate, job queues, the nudge pipeline and its dead letters, rollup freshness.

Queries in analytics.ops.queries. Ingestion, nudges and freshness are the chosen workspace's (and
freshness every granted workspace's); latency, errors and queues are the whole instance's, and
the page says so. The ingestion windows are fixed (the last hour, the last 24 hours), whatever
the date range: the range applies to the nudge states only.
"""

from datetime import timedelta
from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse

from analytics.dashboards import tables as t
from analytics.dashboards.filters import DashboardFilters
from analytics.ops import queries

NUDGE_LOG = "admin:nudges_nudge_changelist"
BUSIEST_ROUTES = 20  # the table's routes; "all routes" counts every one


def _ingestion_tables(filters: DashboardFilters) -> list[t.Table]:
    rates = queries.ingestion_rates(workspace=filters.workspace)
    per_minute, per_hour = rates["minute"], rates["hour"]
    return [
        t.Table(
            "ingestion_per_minute",
            "Events received per minute, last hour (UTC)",
            [t.Column("minute", "minute", t.TEXT), t.Column("events", "events")],
            [[bucket.start.strftime("%H:%M"), bucket.events] for bucket in per_minute],
            chart=t.Chart("minute", ("events",), "bar", "Events received per minute over the last hour"),
            note="By received_at (when the server stored them); the current minute is still filling.",
        ),
        t.Table(
            "ingestion_per_hour",
            "Events received per hour, last 24 hours (UTC)",
            [
                t.Column("hour", "hour", t.TEXT),
                t.Column("events", "events"),
                t.Column("events_per_minute", "events per minute", t.TEXT),
            ],
            [
                [bucket.start.strftime("%Y-%m-%d %H:00"), bucket.events, f"{bucket.events_per_minute:.2f}"]
                for bucket in per_hour
            ],
            chart=t.Chart("hour", ("events",), "line", "Events received per hour over the last 24 hours"),
            note=(
                "Fixed windows (not the date range), both tables from one scan of the last 24 hours:"
                " the BRIN index on received_at keeps it to those hours' blocks."
            ),
        ),
    ]


def _latency_table(overall: queries.RouteLatency, routes: list[queries.RouteLatency]) -> t.Table:
    def row(each: queries.RouteLatency) -> list:
        p95 = round(each.p95_ms, 1) if each.p95_ms is not None else None
        rate = each.error_rate_percent / 100 if each.error_rate_percent is not None else None
        return [each.route, each.requests, each.errors, p95, rate]

    return t.Table(
        "api_latency",
        "API latency and errors per route (cumulative, whole instance)",
        [
            t.Column("route", "route", t.TEXT),
            t.Column("requests", "requests"),
            t.Column("errors", "5xx answers"),
            t.Column("p95_ms", "p95 (ms)", t.TEXT),
            t.Column("error_rate", "error rate", t.RATIO),
        ],
        [row(overall), *(row(each) for each in routes[:BUSIEST_ROUTES])],
        note=(
            f"The {BUSIEST_ROUTES} busiest routes. Since the Prometheus metric files began (they span"
            " restarts), for every workspace: not"
            " the date range. p95 is interpolated within the histogram's buckets. For the last"
            " minutes, ask Prometheus for rate() over the same series."
        ),
    )


def _queue_table(states: list[queries.QueueState]) -> t.Table:
    return t.Table(
        "queues",
        "Job queues (RQ, whole instance)",
        [
            t.Column("queue", "queue", t.TEXT),
            t.Column("queued", "waiting"),
            t.Column("started", "running"),
            t.Column("failed", "failed"),
            t.Column("error", "Redis error", t.TEXT),
        ],
        [[state.name, state.queued, state.started, state.failed, state.error or None] for state in states],
        note="Failed: RQ's failed-job registry of the queue (kept a year by default).",
    )


def _pipeline_table(filters: DashboardFilters, pipeline: queries.NudgePipeline) -> t.Table:
    return t.Table(
        "nudge_states",
        "Nudges created in range, by state now",
        [t.Column("status", "state", t.TEXT), t.Column("nudges", "nudges")],
        [[status, count] for status, count in pipeline.by_status.items()],
        chart=t.Chart("status", ("nudges",), "bar", "Nudges created in the range by their state now"),
        note=(
            "queued, deferred, in_flight and in_doubt are still in the pipeline; failed is a dead letter."
            " Exact counts: these over the date range only; the dead letters and in doubt above over all"
            " time, counted for those two statuses alone (an index range each), never the whole table."
        ),
    )


def _freshness_table(filters: DashboardFilters) -> t.Table:
    rows = queries.rollup_freshness(workspaces=filters.workspaces)
    return t.Table(
        "rollup_freshness",
        "Rollup freshness per workspace",
        [
            t.Column("workspace", "workspace", t.TEXT),
            t.Column("refreshed_at", "last refreshed (UTC)", t.TEXT),
            t.Column("age_seconds", "age", t.SECONDS),
            t.Column("stale", "stale", t.TEXT),
        ],
        [
            [
                row.workspace.name,
                row.refreshed_at.strftime("%Y-%m-%d %H:%M:%S") if row.refreshed_at else "never",
                row.age.total_seconds() if row.age is not None else None,
                "stale" if row.stale else "fresh",
            ]
            for row in rows
        ],
        note=f"Refreshed every 5 minutes; stale beyond {queries.ROLLUPS_STALE_AFTER // timedelta(minutes=1)}"
        " minutes or when never refreshed (python manage.py rebuild_rollups rebuilds them).",
    )


def _nudge_log(filters: DashboardFilters, status: str) -> str:
    query = urlencode({"status__exact": status, "workspace": filters.workspace.pk})
    return f"{reverse(NUDGE_LOG)}?{query}"


def build(request: HttpRequest, filters: DashboardFilters) -> dict:
    ingestion = _ingestion_tables(filters)
    overall, routes = queries.api_latency_by_route()
    states = queries.queue_states()
    pipeline = queries.nudge_pipeline(
        workspace=filters.workspace, date_from=filters.date_from, date_to=filters.date_to
    )
    freshness = _freshness_table(filters)
    queue_tables = [_queue_table(states)] if states is not None else []
    tables = [
        *ingestion,
        _latency_table(overall, routes),
        *queue_tables,
        _pipeline_table(filters, pipeline),
        freshness,
    ]
    return {
        "tables": tables,
        "ingestion_tables": ingestion,
        "latency_table": tables[len(ingestion)],
        "queue_tables": queue_tables,
        "jobs_in_process": states is None,
        "pipeline_table": tables[-2],
        "freshness_table": freshness,
        "headline": {
            "events_last_hour": sum(row[1] for row in ingestion[0].rows),
            "api": overall,
            "pipeline": pipeline,
            "dead_letters_url": _nudge_log(filters, "failed"),
            "in_doubt_url": _nudge_log(filters, "in_doubt"),
            "stale_rollups": sum(1 for row in freshness.rows if row[3] == "stale"),
            "failed_jobs": sum(state.failed or 0 for state in states or []),
        },
    }
