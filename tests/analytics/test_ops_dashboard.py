"""The ops dashboard: its queries against known data (tests/analytics/ops_data.py, counted by
hand), and its page as a verified admin sees it."""

import time
from datetime import UTC, datetime, timedelta

import django_rq
import pytest
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from rq.job import Job

from analytics.models import RollupCursor
from analytics.ops import queries
from core import latency
from tenancy import services as tenancy_services
from tests.analytics import ops_data
from tests.analytics.dashboard_pages import assert_csv_equals_page, csv_rows
from tests.analytics.ops_data import NOW
from tests.conftest import verified_client
from tests.factories import AdminUserFactory, EndUserFactory, EventFactory


@pytest.fixture
def workspaces(db):
    acme, _, _ = tenancy_services.workspace_create(name="Acme")
    globex, _, _ = tenancy_services.workspace_create(name="Globex")
    return acme, globex


def test_ingestion_per_minute_covers_the_last_hour_with_every_minute(workspaces):
    acme, globex = workspaces
    ops_data.received_events(acme, globex)

    buckets = queries.ingestion_rate(workspace=acme, bucket="minute", now=NOW)

    assert len(buckets) == 60
    assert buckets[0].start == datetime(2026, 3, 12, 9, 31, tzinfo=UTC)
    assert buckets[-1].start == datetime(2026, 3, 12, 10, 30, tzinfo=UTC)  # the current minute
    shown = {bucket.start.strftime("%H:%M"): bucket.events for bucket in buckets if bucket.events}
    assert shown == ops_data.PER_MINUTE
    assert {bucket.events_per_minute for bucket in buckets if bucket.start.minute == 29} == {4}


def test_ingestion_per_hour_covers_the_last_24_hours(workspaces):
    acme, globex = workspaces
    ops_data.received_events(acme, globex)

    buckets = queries.ingestion_rate(workspace=acme, bucket="hour", now=NOW)

    assert len(buckets) == 24
    assert buckets[0].start == datetime(2026, 3, 11, 11, tzinfo=UTC)
    assert buckets[-1].start == datetime(2026, 3, 12, 10, tzinfo=UTC)
    shown = {(bucket.start.day, bucket.start.hour): bucket.events for bucket in buckets if bucket.events}
    assert shown == ops_data.PER_HOUR
    assert buckets[-1].events_per_minute == pytest.approx(6 / 60)


def test_ingestion_of_an_idle_workspace_is_zero_everywhere(workspaces):
    acme, globex = workspaces
    ops_data.received_events(globex, globex)

    assert {bucket.events for bucket in queries.ingestion_rate(workspace=acme, bucket="hour", now=NOW)} == {0}


def latency_families(buckets_by_route: dict[str, list[tuple[float, int]]], requests: dict, errors: dict):
    histogram = HistogramMetricFamily("api_latency_p95_ms", "test", labels=["route", "method"])
    for route, buckets in buckets_by_route.items():
        histogram.add_metric([route, "GET"], [(str(bound), count) for bound, count in buckets], sum_value=0)
    request_family = CounterMetricFamily("api_requests", "test", labels=["route", "method"])
    for route, count in requests.items():
        request_family.add_metric([route, "GET"], count)
    error_family = CounterMetricFamily("api_errors", "test", labels=["route", "method"])
    for route, count in errors.items():
        error_family.add_metric([route, "GET"], count)
    return [histogram, request_family, error_family]


INF = float("inf")
# 20 requests of "segment-batch": 18 at most 10 ms, 2 in (10, 100]: rank 19 of 20 is the first of
# the two in (10, 100], so p95 = 10 + 90 * 1/2 = 55. 5 of "enrollment-detail", all <= 10 ms: rank
# 4.75 in (0, 10] -> 10 * 4.75/5 = 9.5. Together 25: rank 23.75 in (10, 100] (2 of them, 23 below)
# -> 10 + 90 * 0.75/2 = 43.75.
LATENCY = {
    "segment-batch": [(10, 18), (100, 20), (INF, 20)],
    "enrollment-detail": [(10, 5), (100, 5), (INF, 5)],
}


def test_api_latency_and_error_rate_per_route_and_overall():
    families = latency_families(LATENCY, {"segment-batch": 20, "enrollment-detail": 5}, {"segment-batch": 1})

    overall, routes = queries.api_latency_by_route(families)

    assert (overall.requests, overall.errors, overall.p95_ms) == (25, 1, pytest.approx(43.75))
    assert overall.error_rate_percent == pytest.approx(4.0)
    assert [route.route for route in routes] == ["segment-batch", "enrollment-detail"]  # busiest first
    assert (routes[0].p95_ms, routes[0].error_rate_percent) == (pytest.approx(55), pytest.approx(5.0))
    assert (routes[1].p95_ms, routes[1].error_rate_percent, routes[1].errors) == (pytest.approx(9.5), 0, 0)


def test_without_requests_latency_and_error_rate_are_unknown_not_zero():
    overall, routes = queries.api_latency_by_route([])

    assert (overall.requests, overall.p95_ms, overall.error_rate_percent, routes) == (0, None, None, [])


def test_without_redis_jobs_run_in_process_and_there_are_no_queues(settings):
    settings.JOBS_RUN_INLINE = True

    assert queries.queue_states() is None


def test_queue_depths_and_failed_jobs_are_read_from_redis(settings, redis_url):
    settings.JOBS_RUN_INLINE = False
    low = django_rq.get_queue("low")
    low.empty()
    for job_id in low.failed_job_registry.get_job_ids():
        low.failed_job_registry.remove(job_id, delete_job=True)
    try:
        for number in range(3):
            low.enqueue("analytics.jobs.refresh_rollups_job", job_id=f"ops-test-{number}")
        failed = Job.create(
            "analytics.jobs.refresh_rollups_job", connection=low.connection, id="ops-test-failed"
        )
        failed.save()
        low.failed_job_registry.add(failed, ttl=60)

        states = {state.name: state for state in queries.queue_states()}

        assert set(states) == set(settings.RQ_QUEUES)
        assert (states["low"].queued, states["low"].failed, states["low"].error) == (3, 1, "")
    finally:
        low.empty()
        low.failed_job_registry.remove("ops-test-failed", delete_job=True)


def test_a_queue_whose_redis_does_not_answer_is_listed_with_the_error(settings):
    settings.JOBS_RUN_INLINE = False
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0", "DEFAULT_TIMEOUT": 600}}

    [state] = queries.queue_states()

    assert (state.name, state.queued, state.failed) == ("default", None, None)
    assert "Connection refused" in state.error or "connect" in state.error.lower()


def test_nudge_pipeline_counts_states_in_range_and_dead_letters_of_any_time(workspaces):
    acme, globex = workspaces
    ops_data.pipeline_nudges(acme, globex)

    pipeline = queries.nudge_pipeline(workspace=acme, date_from=ops_data.RANGE[0], date_to=ops_data.RANGE[1])

    assert {
        status: count for status, count in pipeline.by_status.items() if count
    } == ops_data.IN_RANGE_BY_STATUS
    assert pipeline.by_status["bounced"] == 0  # every status is listed
    assert (pipeline.in_pipeline, pipeline.dead_letters, pipeline.in_doubt) == (
        ops_data.IN_PIPELINE,
        ops_data.DEAD_LETTERS,
        ops_data.IN_DOUBT,
    )


def test_rollups_are_stale_after_15_minutes_or_when_never_refreshed(workspaces):
    acme, globex = workspaces
    initech, _, _ = tenancy_services.workspace_create(name="Initech")
    RollupCursor.objects.create(workspace=acme, refreshed_at=NOW - timedelta(minutes=14, seconds=59))
    RollupCursor.objects.create(workspace=globex, refreshed_at=NOW - timedelta(minutes=15, seconds=1))

    rows = {
        row.workspace.name: row
        for row in queries.rollup_freshness(workspaces=[acme, globex, initech], now=NOW)
    }

    assert (rows["Acme"].stale, rows["Acme"].age) == (False, timedelta(minutes=14, seconds=59))
    assert (rows["Globex"].stale, rows["Globex"].age) == (True, timedelta(minutes=15, seconds=1))
    assert (rows["Initech"].stale, rows["Initech"].refreshed_at, rows["Initech"].age) == (True, None, None)


def test_on_postgresql_received_at_has_a_brin_index_for_the_ingestion_window(postgres, db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'event_received_brin'")
        [(definition,)] = cursor.fetchall()
    assert "USING brin (received_at)" in definition


# --- The page ----------------------------------------------------------------------------------

PAGE = "/admin/analytics/ops/"


@pytest.fixture
def grace(workspaces, monkeypatch):
    """An admin granted Acme only (view), verified by TOTP. The instance's request metrics are
    the known ones of LATENCY (the real files change as other tests and processes run)."""
    families = latency_families(LATENCY, {"segment-batch": 20, "enrollment-detail": 5}, {"segment-batch": 1})
    monkeypatch.setattr(latency, "read_families", lambda directory=None: families)
    acme, _ = workspaces
    user = AdminUserFactory(username="grace")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=False)
    return verified_client(user)


def table(response, key: str):
    return next(each for each in response.context["tables"] if each.key == key)


def test_the_page_shows_the_granted_workspace_with_hand_counted_numbers(workspaces, grace, settings):
    settings.JOBS_RUN_INLINE = True
    acme, globex = workspaces
    ops_data.pipeline_nudges(acme, globex)
    now = timezone.now()
    end_user = EndUserFactory(workspace=acme)
    for moment in [now - timedelta(minutes=10)] * 2 + [now - timedelta(hours=2)] * 3:
        EventFactory(end_user=end_user, received_at=moment)
    EventFactory(end_user=EndUserFactory(workspace=globex), received_at=now - timedelta(minutes=10))
    RollupCursor.objects.create(workspace=acme, refreshed_at=now - timedelta(minutes=3))

    response = grace.get(PAGE, {"workspace": acme.pk, "from": "2026-03-10", "to": "2026-03-12"})

    assert response.status_code == 200
    assert response.context["headline"]["events_last_hour"] == 2
    assert sum(row[1] for row in table(response, "ingestion_per_hour").rows) == 5
    states = dict(table(response, "nudge_states").rows)
    assert {status: count for status, count in states.items() if count} == ops_data.IN_RANGE_BY_STATUS
    page = response.content.decode()
    dead_letters = f"/admin/nudges/nudge/?status__exact=failed&amp;workspace={acme.pk}"
    assert f'data-metric="dead_letters"><a href="{dead_letters}">3</a>' in page
    assert "Jobs run in-process" in page
    assert [row[0] for row in table(response, "rollup_freshness").rows] == ["Acme"]  # not Globex
    assert table(response, "rollup_freshness").rows[0][3] == "fresh"
    assert "cumulative" in page and "whole instance" in page
    assert 'data-metric="api_latency_p95_ms">43.8 ms<' in page
    assert 'data-metric="error_rate_percent">4.00%<' in page
    assert [row[0] for row in table(response, "api_latency").rows] == [
        "all routes",
        "segment-batch",
        "enrollment-detail",
    ]


def test_another_workspace_is_not_found(workspaces, grace):
    _, globex = workspaces

    assert grace.get(PAGE, {"workspace": globex.pk}).status_code == 404


def test_queues_are_listed_when_jobs_go_to_redis(workspaces, grace, settings, redis_url):
    settings.JOBS_RUN_INLINE = False
    acme, _ = workspaces

    response = grace.get(PAGE, {"workspace": acme.pk})

    assert [row[0] for row in table(response, "queues").rows] == list(settings.RQ_QUEUES)
    assert "Jobs run in-process" not in response.content.decode()


def _within_one_minute(needed_seconds: int = 15) -> None:
    """Wait for the next minute if this one ends within `needed_seconds`."""
    second = timezone.now().second
    if second > 60 - needed_seconds:
        time.sleep(60 - second + 0.1)


def test_every_table_exports_as_csv_equal_to_the_page(workspaces, grace, settings):
    settings.JOBS_RUN_INLINE = True
    acme, globex = workspaces
    ops_data.pipeline_nudges(acme, globex)
    RollupCursor.objects.create(workspace=acme, refreshed_at=timezone.now() - timedelta(minutes=30))
    params = {"workspace": acme.pk, "from": "2026-03-10", "to": "2026-03-12"}
    _within_one_minute()  # the per-minute ingestion table moves with the clock's minute
    page = grace.get(PAGE, params)

    assert_csv_equals_page(grace, PAGE, params, page)
    states = csv_rows(grace.get(PAGE, {**params, "export": "nudge_states"}))
    assert {status: int(count) for status, count in states[1:] if count != "0"} == ops_data.IN_RANGE_BY_STATUS
    assert csv_rows(grace.get(PAGE, {**params, "export": "rollup_freshness"}))[1][3] == "stale"


def test_both_ingestion_tables_from_one_scan_are_each_table_read_alone(workspaces):
    """The page reads the minutes and the hours in one scan (ingestion_rates): the same buckets
    as reading each window on its own, at a minute boundary and within a minute."""
    acme, globex = workspaces
    ops_data.received_events(acme, globex)

    for now in (NOW, NOW + timedelta(seconds=59), NOW - timedelta(minutes=31)):
        both = queries.ingestion_rates(workspace=acme, now=now)

        assert both["minute"] == queries.ingestion_rate(workspace=acme, bucket="minute", now=now)
        assert both["hour"] == queries.ingestion_rate(workspace=acme, bucket="hour", now=now)
    assert sum(bucket.events for bucket in both["hour"]) > 0
