"""Event funnels over known events: counts, conversions and times computed by hand below."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from analytics.events import funnels as funnels_module
from analytics.events import raw
from tests.conftest import key_client
from tests.factories import EndUserFactory, EventFactory

URL = "/api/v1/analytics/funnels/events"
START = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # inside the range below
RANGE = {"from": "2026-11-02", "to": "2026-11-08"}
A, B, C = "Signed Up", "Project Created", "Invited Teammate"


def _user(workspace, **traits):
    return EndUserFactory(workspace=workspace, **traits)


def _event(end_user, name: str, seconds: float, **properties):
    return EventFactory(
        end_user=end_user, name=name, timestamp=START + timedelta(seconds=seconds), properties=properties
    )


def _sequence(end_user, *events):
    for name, seconds in events:
        _event(end_user, name, seconds)


@pytest.fixture
def crafted(tenant):
    """Six users whose paths through A, B, C tell the three orders apart."""
    workspace = tenant[0]
    _sequence(_user(workspace, persona="dev"), (A, 0), (B, 60), (C, 180))  # u1: A B C
    _sequence(_user(workspace, persona="dev"), (A, 0), (C, 30), (B, 60))  # u2: A C B
    _sequence(_user(workspace, persona="pm"), (A, 0), (B, 100), (A, 150), (C, 200))  # u3: A B A C
    _sequence(_user(workspace, persona="pm"), (A, 0), (B, 15 * 86400))  # u4: B after the window
    _sequence(_user(workspace), (B, 0))  # u5: no A
    _sequence(_user(workspace), (A, -2 * 86400), (B, 0))  # u6: A before the range
    _sequence(_user(workspace), (A, 10 * 86400))  # u7: A after the range
    return tenant


def _funnel(client, **body):
    return client.post(
        URL, {"steps": [{"event": A}, {"event": B}, {"event": C}], **RANGE, **body}, format="json"
    )


def _counts(payload_steps) -> list[int]:
    return [step["count"] for step in payload_steps]


def test_ordered_counts_each_step_after_the_previous_within_the_window(crafted):
    response = _funnel(key_client(crafted[2]), order="ordered")

    assert response.status_code == 200, response.json()
    body = response.json()
    # A: u1-u4; B after A within 14 days: u1, u2, u3; C after that B: u1, u3.
    assert _counts(body["steps"]) == [4, 3, 2]
    second, third = body["steps"][1], body["steps"][2]
    assert second["conversion_from_first"] == 0.75
    assert third["conversion_from_previous"] == round(2 / 3, 4)
    assert third["conversion_from_first"] == 0.5
    # A→B seconds: 60, 60, 100 (nearest rank: median 60, p90 100); B→C: 120, 100.
    assert (second["median_seconds_from_previous"], second["p90_seconds_from_previous"]) == (60, 100)
    assert (third["median_seconds_from_previous"], third["p90_seconds_from_previous"]) == (100, 120)
    assert body["steps"][0]["median_seconds_from_previous"] is None
    assert body["stale"] is False


def test_strict_breaks_on_any_other_funnel_event_in_between(crafted):
    body = _funnel(key_client(crafted[2]), order="strict").json()

    # u2's next event after A is C; u3's after B is A again; u4's B is too late.
    assert _counts(body["steps"]) == [4, 2, 1]


def test_any_order_counts_users_by_how_many_steps_they_did(crafted):
    body = _funnel(key_client(crafted[2]), order="any").json()

    # Anchored on any step in range: u1-u6 (u5 and u6 on their B); u1, u2, u3 did all three.
    assert _counts(body["steps"]) == [6, 3, 3]
    # u2: A then C after 30 s; u1 and u3: 60 and 100 s to their second.
    assert body["steps"][1]["median_seconds_from_previous"] == 60


def test_the_window_excludes_late_conversions(tenant):
    workspace = tenant[0]
    _sequence(_user(workspace), (A, 0), (B, 3000))
    _sequence(_user(workspace), (A, 0), (B, 3601))
    _sequence(_user(workspace), (A, 0), (B, 3600))

    body = (
        key_client(tenant[2])
        .post(URL, {"steps": [{"event": A}, {"event": B}], "window_seconds": 3600, **RANGE}, format="json")
        .json()
    )

    assert _counts(body["steps"]) == [3, 2]


def test_property_filters_match_equal_values_or_one_of_a_list(tenant):
    workspace = tenant[0]
    for plan in ("pro", "free", "team"):
        end_user = _user(workspace)
        _event(end_user, A, 0)
        _event(end_user, B, 60, plan=plan)
    client = key_client(tenant[2])

    def counts(where):
        steps = [{"event": A}, {"event": B, "where": where}]
        return _counts(client.post(URL, {"steps": steps, **RANGE}, format="json").json()["steps"])

    assert counts({"plan": "pro"}) == [3, 1]
    assert counts({"plan": ["pro", "team"]}) == [3, 2]
    assert counts({"plan": "enterprise"}) == [3, 0]


def test_segment_filters_and_workspace_scope(crafted, other_tenant):
    _sequence(_user(other_tenant[0], persona="dev"), (A, 0), (B, 10), (C, 20))

    body = _funnel(key_client(crafted[2]), persona="dev").json()

    assert _counts(body["steps"]) == [2, 2, 1]  # u1 (A B C) and u2 (A C B)


def test_breakdown_gives_each_value_the_same_table(crafted):
    body = _funnel(key_client(crafted[2]), breakdown="persona").json()

    values = {row["value"]: _counts(row["steps"]) for row in body["breakdown"]["values"]}
    assert values == {"dev": [2, 2, 1], "pm": [2, 1, 1]}
    assert _counts(body["steps"]) == [4, 3, 2]


def test_breakdown_keeps_the_top_ten_values_and_groups_the_rest_as_other(tenant):
    workspace = tenant[0]
    sizes = {"p0": 3, "p1": 2, **{f"p{number}": 1 for number in range(2, 12)}}
    for persona, size in sizes.items():
        for _ in range(size):
            _sequence(_user(workspace, persona=persona), (A, 0), (B, 60))

    body = (
        key_client(tenant[2])
        .post(URL, {"steps": [{"event": A}, {"event": B}], "breakdown": "persona", **RANGE}, format="json")
        .json()
    )

    rows = body["breakdown"]["values"]
    # By first-step users, then by value: p0, p1, then p10, p11, p2 ... p7; p8 and p9 are "other".
    assert [row["value"] for row in rows] == [
        "p0",
        "p1",
        "p10",
        "p11",
        "p2",
        "p3",
        "p4",
        "p5",
        "p6",
        "p7",
        "other",
    ]
    assert _counts(rows[0]["steps"]) == [3, 3]
    assert _counts(rows[-1]["steps"]) == [2, 2]


def test_a_shareable_get_url_gives_the_same_funnel(crafted):
    client = key_client(crafted[2])
    posted = _funnel(client, order="strict").json()

    shared = client.get(URL, {"steps": f"{A},{B},{C}", "order": "strict", **RANGE}).json()

    assert shared["steps"] == posted["steps"]


def _slow_statement(query):
    """A statement that runs for seconds: the real timeout stops it."""
    if connection.vendor == "postgresql":
        return "SELECT 'x', 1, 1, 1, 1 FROM (SELECT pg_sleep(2)) s", []
    return (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
        "SELECT 'x', 1, COUNT(*), 1, 1 FROM c",
        [],
    )


def test_a_timed_out_funnel_returns_the_last_result_marked_stale(crafted, settings, monkeypatch):
    client = key_client(crafted[2])
    fresh = _funnel(client).json()
    settings.ANALYTICS_RAW_QUERY_TIMEOUT_MS = 50
    monkeypatch.setattr(funnels_module, "funnel_statement", _slow_statement)

    response = _funnel(client)

    assert response.status_code == 200
    body = response.json()
    assert body["stale"] is True
    assert body["stale_age_seconds"] >= 0
    assert body["steps"] == fresh["steps"]


def test_a_timeout_with_nothing_cached_is_a_503(crafted, settings, monkeypatch):
    settings.ANALYTICS_RAW_QUERY_TIMEOUT_MS = 50
    monkeypatch.setattr(funnels_module, "funnel_statement", _slow_statement)

    response = _funnel(key_client(crafted[2]), order="any")

    assert response.status_code == 503
    assert "no earlier result" in response.json()["detail"]


def test_a_timeout_raised_by_the_executor_also_falls_back(crafted, monkeypatch):
    client = key_client(crafted[2])
    fresh = _funnel(client).json()

    def timed_out(compute):
        raise raw.QueryTimedOut("canceling statement due to statement timeout")

    monkeypatch.setattr(raw, "execute_with_timeout", timed_out)
    stale = _funnel(client).json()
    other_parameters = _funnel(client, window_seconds=60)

    assert stale["stale"] is True and stale["steps"] == fresh["steps"]
    assert other_parameters.status_code == 503  # another key: nothing cached for it


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": [{"event": A}]}, "steps"),
        ({"steps": [{"event": f"e{number}"} for number in range(11)]}, "steps"),
        ({"order": "sideways"}, "order"),
        ({"breakdown": "email"}, "breakdown"),
        ({"from": "2026-11-09", "to": "2026-11-08"}, "to"),
        ({"from": "2025-01-01", "to": "2026-11-08"}, "from"),
        ({"window_seconds": 0}, "window_seconds"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(tenant, body, field):
    payload = {"steps": [{"event": A}, {"event": B}], **RANGE, **body}

    response = key_client(tenant[2]).post(URL, payload, format="json")

    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]


def test_only_a_secret_key_may_read_funnels(tenant):
    steps = [{"event": A}, {"event": B}]

    assert key_client(tenant[1]).post(URL, {"steps": steps}, format="json").status_code == 403
    assert key_client("sk_nonsense").post(URL, {"steps": steps}, format="json").status_code in (401, 403)


def test_property_filters_compare_numbers_and_keys_named_like_lookups(tenant):
    workspace = tenant[0]
    for seats, contains in ((5, "x"), (6, "x"), (5, "y")):
        end_user = _user(workspace)
        _event(end_user, A, 0)
        _event(end_user, B, 60, seats=seats, contains=contains)
    steps = [{"event": A}, {"event": B, "where": {"seats": 5, "contains": "x"}}]

    body = key_client(tenant[2]).post(URL, {"steps": steps, **RANGE}, format="json").json()

    assert _counts(body["steps"]) == [3, 1]
