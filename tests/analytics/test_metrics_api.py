"""GET /api/v1/analytics/paths/{path_key}/funnel and GET /api/v1/analytics/metrics: the numbers of
the definitions over the known history (rollup_data), the key's workspace only, and bad input."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from analytics.metrics import exporter
from analytics.metrics.compute import COMPUTERS
from analytics.metrics.definitions import METRIC_NAMES, METRICS
from analytics.rollups import services
from core import latency
from tests.analytics.rollup_data import build_history
from tests.conftest import key_client

pytestmark = pytest.mark.django_db

FUNNEL = "/api/v1/analytics/paths/setup/funnel"
METRIC = "/api/v1/analytics/metrics"
RANGE = {"from": "2026-01-05", "to": "2026-01-06"}


@pytest.fixture
def server(tenant):
    workspace, _, secret_key = tenant
    build_history(workspace)
    services.rollups_refresh(workspace=workspace)
    return key_client(secret_key)


def errors_of(response) -> dict:
    return {error["field"]: error["reason"] for error in response.json()["errors"]}


def test_the_funnel_per_step_in_order(server):
    response = server.get(FUNNEL, {**RANGE, "version": 1})

    assert response.status_code == 200
    body = response.json()
    assert (body["path"], body["version"]) == ("setup", 1)
    assert [
        (step["key"], step["entered"], step["advanced"], step["completed"]) for step in body["steps"]
    ] == [
        ("s1", 7, 5, 5),
        ("s2", 5, 3, 2),
        ("s3", 4, 2, 2),
    ]
    assert [step["drop_off_rate"] for step in body["steps"]] == [2 / 7, 2 / 5, 2 / 4]
    assert [step["conversion_from_start"] for step in body["steps"]] == [5 / 7, 3 / 7, 2 / 7]
    assert body["steps"][0]["median_seconds_to_complete"] == pytest.approx(100, rel=0.045)
    assert body["steps"][0]["title"] == "Step s1"
    assert body["rollups_refreshed_at"] is not None


def test_the_funnel_of_a_segment_and_the_published_version_by_default(server):
    response = server.get(FUNNEL, {**RANGE, "persona": "pm", "company_size": ""})

    assert response.status_code == 200
    assert response.json()["version"] == 1
    # e3 (s1 only), e4 (nothing), e7 (s2 without s1, so s3 entered).
    assert [(step["entered"], step["advanced"]) for step in response.json()["steps"]] == [
        (3, 1),
        (1, 0),
        (1, 0),
    ]


@pytest.mark.parametrize(
    ("url", "params", "reason"),
    [
        ("/api/v1/analytics/paths/nope/funnel", {}, "No such path: 'nope'."),
        (FUNNEL, {"version": 7}, "Path 'setup' has no version 7."),
    ],
)
def test_unknown_path_or_version_is_404(server, url, params, reason):
    response = server.get(url, params)

    assert response.status_code == 404
    assert response.json()["detail"] == reason


@pytest.mark.parametrize("url", [FUNNEL, METRIC])
def test_inverted_and_too_long_ranges_are_400(server, url):
    inverted = server.get(url, {"name": "activation_rate", "from": "2026-01-06", "to": "2026-01-05"})
    too_long = server.get(url, {"name": "activation_rate", "from": "2024-01-01", "to": "2026-01-05"})

    assert inverted.status_code == 400
    assert errors_of(inverted) == {"to": "2026-01-05 is before from (2026-01-06)."}
    assert too_long.status_code == 400
    assert "more than 400 days" in errors_of(too_long)["from"]


def test_another_workspace_sees_neither_the_path_nor_the_numbers(server, other_tenant):
    other = key_client(other_tenant[2])

    assert other.get(FUNNEL, RANGE).status_code == 404
    body = other.get(METRIC, {**RANGE, "name": "onboarding_start_rate"}).json()
    assert (body["value"], body["denominator"]) == (None, 0)


def test_a_secret_key_is_required(server, tenant):
    assert key_client(tenant[1]).get(FUNNEL, RANGE).status_code == 403  # the write key
    server.credentials()
    assert server.get(METRIC, {"name": "activation_rate"}).status_code == 401


def test_activation_rate_with_pending_and_its_definition(server):
    response = server.get(METRIC, {**RANGE, "name": "activation_rate", "path": "setup", "version": 1})

    assert response.status_code == 200
    body = response.json()
    # Every window of January 2026 has closed: e1 activated, e6 took 20 days.
    assert (body["value"], body["numerator"], body["denominator"], body["pending"]) == (1 / 7, 1, 7, 0)
    assert body["activation_window_days"] == 14
    assert body["definition"] == METRICS["activation_rate"].as_dict()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "onboarding_start_rate"}, (6 / 7, 6, 7)),
        ({"name": "onboarding_start_rate", "persona": "pm"}, (2 / 3, 2, 3)),
        ({"name": "step_completion_rate", "path": "setup", "step": "s2"}, (2 / 5, 2, 5)),
        ({"name": "step_completion_rate", "path": "setup"}, (9 / 16, 9, 16)),
        ({"name": "drop_off_rate_by_step", "path": "setup", "step": "s3"}, (2 / 4, 2, 4)),
    ],
)
def test_rates(server, params, expected):
    body = server.get(METRIC, {**RANGE, **params}).json()

    assert (body["value"], body["numerator"], body["denominator"]) == expected


def test_time_to_activation_in_hours(server):
    body = server.get(METRIC, {**RANGE, "name": "time_to_activation_p90_hours"}).json()

    assert body["value"] == pytest.approx(4700 / 3600, rel=0.045)
    assert body["unit"] == "hours"


def test_an_unknown_metric_is_400_listing_the_valid_names(server):
    response = server.get(METRIC, {"name": "happiness"})

    assert response.status_code == 400
    reason = errors_of(response)["name"]
    assert reason.startswith('"happiness" is not a metric')
    assert all(name in reason for name in METRIC_NAMES)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"name": "activation_rate", "channel": "email"}, "channel"),
        ({"name": "step_completion_rate", "step": "s1"}, "step"),
        ({"name": "activation_rate", "version": "1"}, "version"),
        ({"name": "activation_rate", "version": "one", "path": "setup"}, "version"),
        ({"name": "error_rate_percent", "persona": "dev"}, "persona"),
        ({"name": "nudge_send_rate", "step": "s1", "path": "setup"}, "step"),
    ],
)
def test_filters_the_metric_cannot_take_are_400(server, params, field):
    response = server.get(METRIC, params)

    assert response.status_code == 400
    assert field in errors_of(response)


def test_an_unknown_step_or_path_of_a_metric_is_404(server):
    assert (
        server.get(METRIC, {"name": "step_completion_rate", "path": "setup", "step": "nope"}).status_code
        == 404
    )
    assert server.get(METRIC, {"name": "activation_rate", "path": "nope"}).status_code == 404


def test_the_ml_inference_latency_is_read_from_its_histogram(server):
    for milliseconds in (0.05, 0.07, 3.0):
        latency.ML_INFERENCE_LATENCY.observe(milliseconds)

    response = server.get(METRIC, {"name": "ml_inference_latency_p95_ms"})

    assert response.status_code == 200
    assert response.json()["value"] > 0
    assert "does not apply" in response.json()["window"]


def test_nudge_and_latency_metrics_answer_through_their_own_computers(server):
    nudges = server.get(METRIC, {**RANGE, "name": "nudge_send_rate", "channel": "email"})
    latency = server.get(METRIC, {"name": "api_latency_p95_ms"})
    errors = server.get(METRIC, {"name": "error_rate_percent", "route": "analytics-metrics", "method": "GET"})

    assert nudges.status_code == 200
    assert (nudges.json()["value"], nudges.json()["denominator"]) == (None, 0)  # no nudges: no rate
    assert latency.status_code == 200
    assert "does not apply" in latency.json()["window"]
    assert errors.status_code == 200
    assert errors.json()["value"] in (None, 0.0)  # the metrics API answered every request of this test


def test_every_defined_metric_has_one_computer():
    assert set(COMPUTERS) == set(METRIC_NAMES)


def test_both_endpoints_are_in_the_openapi_schema(server):
    schema = server.get("/api/schema", {"format": "json"}).json()

    assert "/api/v1/analytics/paths/{path_key}/funnel" in schema["paths"]
    assert "/api/v1/analytics/metrics" in schema["paths"]


def test_metrics_exports_the_rollup_gauges_with_the_api_numbers(server, tenant, monkeypatch):
    monkeypatch.setattr(exporter, "EXPORT_DAYS", 10_000)  # the history is of January 2026
    workspace = tenant[0]

    text = Client().get("/metrics").content.decode()

    samples = {
        (sample.name, sample.labels.get("workspace"), sample.labels.get("path")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for name in exporter.EXPORTED:
        api = server.get(
            METRIC, {"name": name, "path": "setup", "from": "2026-01-01", "to": "2026-02-01"}
        ).json()
        assert samples[(name, workspace.slug, "setup")] == pytest.approx(api["value"]), name
    assert samples[("activation_rate", workspace.slug, "setup")] == 1 / 7
