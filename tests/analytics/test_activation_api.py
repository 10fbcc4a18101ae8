"""GET /api/v1/analytics/activation: activation per enrolment day and the time-to-activation
distribution over the known history (rollup_data), numbers checked by hand; the same numbers as
the metrics endpoint and the Product dashboard; bad input; the key's workspace only."""

import math

import pytest

from analytics.dashboards.tables import SECONDS
from analytics.dashboards.tables import shown as shown_as
from analytics.rollups import services
from tenancy import services as tenancy_services
from tests.analytics.dashboard_pages import page_tables
from tests.analytics.rollup_data import DAY_1, DAY_2, build_history
from tests.conftest import key_client, verified_client
from tests.factories import AdminUserFactory

pytestmark = pytest.mark.django_db

ACTIVATION = "/api/v1/analytics/activation"
METRIC = "/api/v1/analytics/metrics"
RANGE = {"from": DAY_1.isoformat(), "to": DAY_2.isoformat()}
# Only e1 activated within the 14-day window: 4700 s after enrolment (e6 took 20 days). 4700 s
# falls in log bucket floor(8 x log2 4700) = 97: [2^(97/8), 2^(98/8)) s; quantiles read its middle.
E1_BUCKET = 97
HOUR = 3600


@pytest.fixture
def acme(tenant):
    workspace, _, secret_key = tenant
    build_history(workspace)
    services.rollups_refresh(workspace=workspace)
    return workspace, key_client(secret_key)


def errors_of(response) -> dict:
    return {error["field"]: error["reason"] for error in response.json()["errors"]}


def test_activation_per_enrolment_day(acme):
    _, client = acme
    response = client.get(ACTIVATION, RANGE)

    assert response.status_code == 200
    body = response.json()
    assert body["activation_window_days"] == 14
    days = [
        (day["day"], day["enrolled"], day["mature"], day["activated"], day["pending"], day["activation_rate"])
        for day in body["days"]
    ]
    # Day 1: e1..e5, e1 activated; day 2: e6 (20 days: too late) and e7. Every window has closed.
    assert days == [("2026-01-05", 5, 5, 1, 0, 1 / 5), ("2026-01-06", 2, 2, 0, 0, 0.0)]
    middle_hours = 2 ** ((E1_BUCKET + 0.5) / 8) / HOUR
    assert body["days"][0]["time_to_activation_p50_hours"] == pytest.approx(middle_hours)
    assert body["days"][0]["time_to_activation_p90_hours"] == pytest.approx(middle_hours)
    assert body["days"][0]["time_to_activation_p50_hours"] == pytest.approx(4700 / HOUR, rel=0.045)
    assert body["days"][1]["time_to_activation_p50_hours"] is None


def test_the_time_to_activation_distribution_over_the_range(acme):
    _, client = acme
    distribution = client.get(ACTIVATION, RANGE).json()["time_to_activation"]

    assert distribution["activated"] == 1
    assert distribution["buckets"] == [
        {
            "lower_hours": pytest.approx(2 ** (E1_BUCKET / 8) / HOUR),
            "upper_hours": pytest.approx(2 ** ((E1_BUCKET + 1) / 8) / HOUR),
            "count": 1,
        }
    ]
    bucket = distribution["buckets"][0]
    assert bucket["lower_hours"] <= 4700 / HOUR < bucket["upper_hours"]
    assert math.floor(8 * math.log2(4700)) == E1_BUCKET
    assert distribution["p50_hours"] == distribution["p90_hours"] == pytest.approx(4700 / HOUR, rel=0.045)


def test_a_segment_and_a_path_version(acme):
    _, client = acme
    response = client.get(ACTIVATION, {**RANGE, "persona": "dev", "path": "setup", "version": 1})

    body = response.json()
    assert (body["path"], body["version"], body["segments"]) == ("setup", 1, {"persona": "dev"})
    # dev: e1, e2, e5 on day 1 (e1 activated); nobody on day 2 (e6 has no persona).
    assert [(day["enrolled"], day["activated"]) for day in body["days"]] == [(3, 1), (0, 0)]
    assert body["days"][1]["activation_rate"] is None


def test_the_same_numbers_as_the_metrics_endpoint(acme):
    _, client = acme
    body = client.get(ACTIVATION, {**RANGE, "path": "setup"}).json()

    rate = client.get(METRIC, {**RANGE, "path": "setup", "name": "activation_rate"}).json()
    assert sum(day["activated"] for day in body["days"]) == rate["numerator"]
    assert sum(day["mature"] for day in body["days"]) == rate["denominator"]
    assert sum(day["pending"] for day in body["days"]) == rate["pending"]
    for quantile in ("p50", "p90"):
        metric = client.get(METRIC, {**RANGE, "name": f"time_to_activation_{quantile}_hours"}).json()
        assert body["time_to_activation"][f"{quantile}_hours"] == metric["value"]
        assert body["time_to_activation"]["activated"] == metric["denominator"]


def test_the_same_numbers_as_the_product_dashboard(acme):
    workspace, client = acme
    admin = AdminUserFactory(username="grace")
    tenancy_services.workspace_grant(workspace=workspace, user=admin, can_change=False)
    page = verified_client(admin).get("/admin/analytics/product/", RANGE)
    body = client.get(ACTIVATION, RANGE).json()

    tables = {table.key: table for table in page.context["tables"]}
    assert [row[1:4] for row in tables["activation_trend"].rows] == [
        [day["enrolled"], day["activated"], day["activation_rate"]] for day in body["days"]
    ]
    assert [row[1:] for row in tables["tta_trend"].rows] == [
        [day["time_to_activation_p50_hours"], day["time_to_activation_p90_hours"]] for day in body["days"]
    ]
    buckets = body["time_to_activation"]["buckets"]
    assert [row[1:] for row in tables["tta_distribution"].rows] == [
        [pytest.approx(b["lower_hours"] * HOUR), pytest.approx(b["upper_hours"] * HOUR), b["count"]]
        for b in buckets
    ]
    low, high = buckets[0]["lower_hours"] * HOUR, buckets[0]["upper_hours"] * HOUR
    # 2^(97/8) s = 4466 s = 1.24 h, 2^(98/8) s = 4871 s = 1.35 h: the bucket and its one enrollment.
    assert page_tables(page.content.decode())["tta_distribution"] == [
        [f"{shown_as(low, SECONDS)} to {shown_as(high, SECONDS)}", "1.2 h", "1.4 h", "1"]
    ]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"from": "2026-01-06", "to": "2026-01-05"}, "to", "2026-01-05 is before from (2026-01-06)."),
        (
            {"from": "2025-01-01", "to": "2026-02-05"},
            "from",
            "The range spans more than 400 days (the longest range kept).",
        ),
        ({**RANGE, "version": 1}, "version", "A version needs its path (path=)."),
        ({**RANGE, "path": "setup", "version": "one"}, "version", "A valid integer is required."),
        ({"from": "yesterday"}, "from", None),
    ],
)
def test_bad_input_is_400_naming_the_field(acme, params, field, reason):
    _, client = acme
    response = client.get(ACTIVATION, params)

    assert response.status_code == 400
    assert field in errors_of(response)
    if reason is not None:
        assert errors_of(response)[field] == reason


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"path": "nope"}, "No such path: 'nope'."),
        ({"path": "setup", "version": 7}, "Path 'setup' has no version 7."),
    ],
)
def test_unknown_path_or_version_is_404(acme, params, reason):
    _, client = acme
    response = client.get(ACTIVATION, {**RANGE, **params})

    assert response.status_code == 404
    assert response.json()["detail"] == reason


def test_another_workspaces_key_sees_none_of_it(acme, other_tenant):
    _, _, other_secret = other_tenant
    other = key_client(other_secret)

    body = other.get(ACTIVATION, RANGE).json()
    assert [day["enrolled"] for day in body["days"]] == [0, 0]
    assert body["time_to_activation"] == {"activated": 0, "p50_hours": None, "p90_hours": None, "buckets": []}
    assert other.get(ACTIVATION, {**RANGE, "path": "setup"}).status_code == 404


def test_a_write_key_or_no_key_is_refused(tenant, acme):
    _, write_key, _ = tenant
    assert key_client(write_key).get(ACTIVATION, RANGE).status_code == 403
    assert key_client("sk_nope").get(ACTIVATION, RANGE).status_code in (401, 403)
