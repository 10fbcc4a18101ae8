"""GET /api/v1/analytics/stuck: the stuck per path version and step, as the stuck list and the
Overview show them (onboarding.stuck.selectors), on the known people of test_stuck_by_step."""

import statistics

import pytest
from django.utils import timezone

from onboarding.stuck import selectors as stuck_selectors
from tests.conftest import key_client
from tests.onboarding.test_stuck_by_step import STUCK_HOURS, expected_rows, now, stuck_people  # noqa: F401

pytestmark = pytest.mark.django_db

STUCK = "/api/v1/analytics/stuck"
HOUR = 3600


@pytest.fixture
def acme(tenant):
    """The keyed workspace, as the acme of stuck_people."""
    return tenant[0]


@pytest.fixture
def client(tenant, stuck_people):  # noqa: F811
    return key_client(tenant[2])


def _rows(body) -> list[tuple]:
    return [
        (step["path"], step["position"], step["step"], step["stuck"], step["share_of_stuck"])
        for step in body["steps"]
    ]


def test_stuck_per_step_with_share_position_and_median(client):
    response = client.get(STUCK)

    assert response.status_code == 200
    body = response.json()
    assert body["total_stuck"] == 8  # Acme's 4 + 3 + 1; Globex's 5 and the completed one never count
    keys = {"Developer setup": "developer-setup", "Sales demo": "sales-demo"}
    assert _rows(body) == [
        (keys[path], position, step, stuck, share)
        for path, position, step, stuck, share, _ in expected_rows()
    ]
    assert _rows(body)[0] == ("developer-setup", 3, "first-event", 4, 0.5)
    assert body["steps"][0]["title"] == "first-event"
    assert body["steps"][0]["on_step"] == 6  # 4 stuck, 2 not
    for step in body["steps"]:
        hours = statistics.median(STUCK_HOURS[(step["path"], step["step"])])
        # measured from the request's now, a few seconds after the fixture's
        assert step["median_seconds_in_step"] == pytest.approx(hours * HOUR, abs=120)


def test_the_same_numbers_as_the_selector_the_overview_reads(client, acme):
    body = client.get(STUCK).json()

    shares = [
        s for s in stuck_selectors.stuck_shares_by_step(workspaces=[acme], now=timezone.now()) if s.stuck
    ]
    assert [
        (step["version"], step["step"], step["stuck"], step["share_of_stuck"]) for step in body["steps"]
    ] == [(share.path_version_number, share.step_key, share.stuck, share.share_of_stuck) for share in shares]


def test_one_path_and_one_version(client):
    body = client.get(STUCK, {"path": "sales-demo"}).json()
    assert body["path"] == "sales-demo"
    assert _rows(body) == [("sales-demo", 2, "attend", 1, 1 / 8)]  # still a share of all the stuck
    assert body["total_stuck"] == 8

    body = client.get(STUCK, {"path": "developer-setup", "version": 1}).json()
    assert (body["path"], body["version"]) == ("developer-setup", 1)
    assert [step["step"] for step in body["steps"]] == ["first-event", "api-key"]


@pytest.mark.parametrize(
    ("params", "status", "field_or_detail"),
    [
        ({"version": 1}, 400, "version"),
        ({"path": "developer-setup", "version": 0}, 400, "version"),
        ({"path": "nope"}, 404, "No such path: 'nope'."),
        ({"path": "sales-demo", "version": 2}, 404, "Path 'sales-demo' has no version 2."),
    ],
)
def test_bad_input_and_unknown_paths(client, params, status, field_or_detail):
    response = client.get(STUCK, params)

    assert response.status_code == status
    if status == 400:
        assert field_or_detail in {error["field"] for error in response.json()["errors"]}
    else:
        assert response.json()["detail"] == field_or_detail


def test_another_workspaces_key_sees_only_its_own(client, other_tenant):
    body = key_client(other_tenant[2]).get(STUCK).json()

    assert body == {"total_stuck": 0, "steps": []}
