"""API latency and errors (core.middleware.request_metrics, core.latency): what /metrics shows
after requests, bounded labels, the error rate, and p95 read back as histogram_quantile would.

The metric files are shared with every process of this checkout (other test runs included), so
exact counts are this process's own values (prometheus_client's REGISTRY) before and after the
requests, and /metrics is checked for the names, labels and its own arithmetic."""

import math
import uuid

import pytest
from django.http import HttpResponse
from django.test import AsyncClient, Client
from django.urls import include, path
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from core import latency
from tests.conftest import key_client


def _boom(request):
    raise RuntimeError("a view that fails")


def _ok(request):
    return HttpResponse("ok")


# The project's URLs plus two of these tests' own, under the API's prefix.
urlpatterns = [
    path("api/v1/test-metrics/ok", _ok, name="test-metrics-ok"),
    path("api/v1/test-metrics/boom", _boom, name="test-metrics-boom"),
    path("", include("config.urls")),
]
TEST_URLS = pytest.mark.urls(__name__)
SERIES = ("api_latency_p95_ms_count", "api_requests_total", "api_errors_total")


def scrape() -> dict[tuple[str, frozenset], float]:
    """(sample name, labels) -> value, from /metrics."""
    text = Client().get("/metrics").content.decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def own(route: str, method: str) -> dict[str, float]:
    """This process's latency count, requests and errors of one route and method."""
    labels = {"route": route, "method": method}
    return {name: REGISTRY.get_sample_value(name, labels) or 0.0 for name in SERIES}


def added(before: dict[str, float], route: str, method: str) -> dict[str, float]:
    after = own(route, method)
    return {name: after[name] - before[name] for name in SERIES}


def routes_in(samples) -> set[str]:
    return {dict(labels)["route"] for name, labels in samples if name == "api_requests_total"}


@TEST_URLS
def test_a_request_is_timed_and_counted_under_its_route_name(db):
    get_before, post_before = own("test-metrics-ok", "GET"), own("test-metrics-ok", "POST")

    assert Client().get("/api/v1/test-metrics/ok").status_code == 200
    assert Client().post("/api/v1/test-metrics/ok").status_code == 200
    shown = scrape()

    one_request = {"api_latency_p95_ms_count": 1, "api_requests_total": 1, "api_errors_total": 0}
    assert added(get_before, "test-metrics-ok", "GET") == one_request
    assert added(post_before, "test-metrics-ok", "POST") == one_request
    # /metrics shows the series under these names, with every bucket of the 1 ms ... 10 s range.
    series = frozenset({"route": "test-metrics-ok", "method": "GET"}.items())
    assert shown[("api_requests_total", series)] >= 1
    assert shown[("api_latency_p95_ms_count", series)] >= 1
    bounds = {dict(labels)["le"] for name, labels in shown if name == "api_latency_p95_ms_bucket"}
    assert {"1.0", "10000.0", "+Inf"} <= bounds


@TEST_URLS
@pytest.mark.asyncio
async def test_an_asgi_request_is_counted_the_same_way():
    before = own("test-metrics-ok", "GET")

    response = await AsyncClient().get("/api/v1/test-metrics/ok")

    assert response.status_code == 200
    assert added(before, "test-metrics-ok", "GET")["api_latency_p95_ms_count"] == 1


def test_a_project_api_is_labelled_with_its_url_name(tenant):
    _, _, secret_key = tenant
    before = own("enrollment-detail", "GET")

    response = key_client(secret_key).get("/api/v1/users/nobody/onboarding")

    assert response.status_code == 404
    assert added(before, "enrollment-detail", "GET")["api_requests_total"] == 1
    assert "enrollment-detail" in routes_in(scrape())


def test_unknown_urls_share_one_unmatched_series(db):
    get_before, other_before = own("unmatched", "GET"), own("unmatched", "other")
    random_paths = [f"/api/v1/{uuid.uuid4().hex}" for _ in range(12)]

    for random_path in random_paths:
        assert Client().get(random_path).status_code == 404
    Client().generic("BREW", random_paths[0])
    shown = scrape()

    assert added(get_before, "unmatched", "GET")["api_requests_total"] == 12
    assert added(other_before, "unmatched", "other")["api_requests_total"] == 1
    assert "unmatched" in routes_in(shown)
    assert not any(random_path.rsplit("/", 1)[1] in str(shown) for random_path in random_paths)


@TEST_URLS
def test_pages_outside_the_api_are_not_timed(db):
    Client().get("/healthz")
    Client().get("/metrics")

    assert not {"healthz", "metrics"} & routes_in(scrape())


@TEST_URLS
def test_a_500_counts_as_an_error_and_moves_the_error_rate(db):
    before = own("test-metrics-boom", "GET")

    assert Client(raise_request_exception=False).get("/api/v1/test-metrics/boom").status_code == 500
    shown = scrape()

    assert added(before, "test-metrics-boom", "GET") == {
        "api_latency_p95_ms_count": 1,
        "api_requests_total": 1,
        "api_errors_total": 1,
    }
    # The gauge is the scrape's own counters: 5xx / all x 100, recomputed here by hand.
    requests = sum(count for (name, _), count in shown.items() if name == "api_requests_total")
    errors = sum(count for (name, _), count in shown.items() if name == "api_errors_total")
    assert errors >= 1
    assert shown[("error_rate_percent", frozenset())] == pytest.approx(100 * errors / requests)


# --- Reading quantiles and the error rate back -------------------------------------------------

INF = math.inf
# 20 requests: 4 of 3 ms, 10 of 40 ms, 4 of 200 ms, 2 of 700 ms, as cumulative buckets.
BUCKETS = [(1, 0), (2.5, 0), (5, 4), (10, 4), (25, 4), (50, 14), (100, 14), (250, 18), (500, 18)]
BUCKETS += [(1000, 20), (2500, 20), (5000, 20), (10000, 20), (INF, 20)]


def test_quantiles_interpolate_inside_their_bucket_as_prometheus_does():
    # p95: rank 19 falls in (500, 1000], which holds 2 (the 19th and 20th): 500 + 500 x 1/2.
    assert latency.histogram_quantile(0.95, BUCKETS) == 750
    # p50: rank 10 falls in (25, 50], which holds 10 from the 5th: 25 + 25 x 6/10.
    assert latency.histogram_quantile(0.5, BUCKETS) == 40
    # In the first bucket the lower bound is 0: rank 2 of 4 in (0, 10].
    assert latency.histogram_quantile(0.5, [(10, 4), (INF, 4)]) == 5


def test_a_rank_in_the_inf_bucket_is_the_highest_finite_bound():
    assert latency.histogram_quantile(0.95, [(1, 0), (10, 1), (INF, 10)]) == 10


def test_no_observations_give_no_quantile():
    assert latency.histogram_quantile(0.95, [(10, 0), (INF, 0)]) is None
    assert latency.histogram_quantile(0.95, [(10, 3)]) is None  # no +Inf bucket
    with pytest.raises(ValueError):
        latency.histogram_quantile(1.5, BUCKETS)


def histogram(buckets_by_route: dict[str, list]) -> HistogramMetricFamily:
    family = HistogramMetricFamily("api_latency_p95_ms", "test", labels=["route", "method"])
    for route, buckets in buckets_by_route.items():
        family.add_metric([route, "GET"], [(str(bound), count) for bound, count in buckets], sum_value=0)
    return family


def test_latency_quantile_filters_series_by_label_and_sums_the_rest():
    families = [histogram({"a": BUCKETS, "b": [(bound, 0 if bound < 5000 else 20) for bound, _ in BUCKETS]})]

    assert latency.latency_quantile("api_latency_p95_ms", labels={"route": "a"}, families=families) == 750
    # Summed: 40 requests; rank 38 falls in (2500, 5000], which holds b's 20 from the 21st.
    assert latency.latency_quantile("api_latency_p95_ms", families=families) == 2500 + 2500 * 18 / 20
    assert latency.latency_quantile("api_latency_p95_ms", labels={"route": "c"}, families=families) is None


def test_error_rate_is_errors_over_requests_and_none_without_requests():
    requests = CounterMetricFamily("api_requests", "test", labels=["route"])
    requests.add_metric(["a"], 30)
    requests.add_metric(["b"], 10)
    errors = CounterMetricFamily("api_errors", "test", labels=["route"])
    errors.add_metric(["b"], 3)

    assert latency.error_rate_percent([requests, errors]) == 7.5
    assert latency.error_rate_percent([requests, errors], labels={"route": "b"}) == 30
    assert latency.error_rate_percent([requests, errors], labels={"route": "a"}) == 0
    assert latency.error_rate_percent([requests, errors], labels={"route": "c"}) is None
    assert latency.error_rate_percent([]) is None
    assert math.isnan(latency.error_rate_family([]).samples[0].value)


def test_p95_read_from_the_metric_files_matches_the_hand_computed_value():
    """Observed in this process, read back from every process's files. Each run observes the same
    20 values on this label, so the p95 of all runs together is still 750."""
    child = latency.API_LATENCY.labels("test-metrics-quantile", "GET")
    for milliseconds in [3] * 4 + [40] * 10 + [200] * 4 + [700] * 2:
        child.observe(milliseconds)

    assert latency.latency_quantile("api_latency_p95_ms", labels={"route": "test-metrics-quantile"}) == 750
