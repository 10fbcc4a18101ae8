"""The nudges dashboard: rates per channel, template and variant per day, against the nudges of
tests/analytics/nudges_data.py (expected numbers counted by hand in its docstring)."""

import pytest

from analytics.nudges.breakdown import nudge_breakdown
from analytics.nudges.metrics import NudgeQuery
from analytics.nudges.over_time import nudge_rates_over_time
from tenancy import services as tenancy_services
from tests.analytics import nudges_data
from tests.analytics.dashboard_pages import assert_csv_equals_page
from tests.analytics.nudges_data import FIRST, LAST
from tests.conftest import verified_client
from tests.factories import AdminUserFactory


@pytest.fixture
def workspaces(db):
    acme, _, _ = tenancy_services.workspace_create(name="Acme")
    globex, _, _ = tenancy_services.workspace_create(name="Globex")
    nudges_data.nudges(acme, globex)
    return acme, globex


def rates(series, rate: str) -> list:
    return [getattr(rates, rate).value for _, rates in series.days]


def test_rates_per_channel_per_day(workspaces):
    acme, _ = workspaces

    series = nudge_rates_over_time(NudgeQuery(workspace=acme, date_from=FIRST, date_to=LAST), "channel")

    assert [each.label for each in series] == ["email", "push", "(none)"]  # none last
    email, push, none = series
    assert [day.isoformat() for day, _ in email.days] == ["2026-03-10", "2026-03-11"]
    assert rates(email, "send_rate") == [1.0, 0.0]
    assert rates(email, "open_rate") == [1.0, 0.0]
    assert rates(email, "conversion_rate") == [0.5, 0.0]
    assert rates(push, "send_rate") == [None, 1.0]
    assert rates(push, "open_rate") == [None, 1.0]  # a click is an open
    assert rates(push, "click_rate") == [None, 1.0]
    assert rates(push, "conversion_rate") == [None, 0.0]
    assert rates(none, "send_rate") == [0.0, None]
    assert rates(none, "open_rate") == [None, None]


def test_rates_per_variant_and_template_per_day(workspaces):
    acme, _ = workspaces
    query = NudgeQuery(workspace=acme, date_from=FIRST, date_to=LAST)

    variants = {
        each.label: rates(each, "conversion_rate") for each in nudge_rates_over_time(query, "variant")
    }
    templates = {
        each.label: rates(each, "conversion_rate") for each in nudge_rates_over_time(query, "template")
    }

    assert variants == {"A": [0.5, 0.0], "B": [None, 0.0], "(none)": [None, None]}
    assert templates == {"Stuck email": [0.5, 0.0], "Welcome push": [None, 0.0], "(none)": [None, None]}


def test_the_series_count_as_the_breakdown_per_day_does(workspaces):
    """Summed over the channels, each day's counts are the breakdown's per day: one rule."""
    acme, _ = workspaces
    query = NudgeQuery(workspace=acme, date_from=FIRST, date_to=LAST)
    series = nudge_rates_over_time(query, "channel")

    for index, day_row in enumerate(nudge_breakdown(query, "day")):
        assert sum(each.days[index][1].sent.converted for each in series) == day_row.sent.converted
        assert sum(each.days[index][1].created.created for each in series) == day_row.created.created


def test_an_unknown_dimension_is_refused(workspaces):
    acme, _ = workspaces
    with pytest.raises(ValueError):
        nudge_rates_over_time(NudgeQuery(workspace=acme, date_from=FIRST, date_to=LAST), "trigger")


# --- The page ----------------------------------------------------------------------------------

PAGE = "/admin/analytics/nudges/"
RANGE = {"from": "2026-03-10", "to": "2026-03-11"}


@pytest.fixture
def grace(workspaces):
    acme, _ = workspaces
    user = AdminUserFactory(username="grace")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=False)
    return verified_client(user)


def table(response, key: str):
    return next(each for each in response.context["tables"] if each.key == key)


def test_the_page_shows_hand_counted_rates(workspaces, grace):
    acme, _ = workspaces

    response = grace.get(PAGE, {"workspace": acme.pk, **RANGE})

    assert response.status_code == 200
    page = response.content.decode()
    # Sent in range: #1, #2, #3, #5 (4); converted #2; opened #1, #2, #5; created 6, sent 4.
    assert 'data-metric="nudge_conversion_rate">25.0%<' in page
    assert 'data-metric="nudge_open_rate">75.0%<' in page
    assert 'data-metric="nudge_send_rate">66.7%<' in page
    per_day = table(response, "per_day")
    # day, created, sent, delivered, opened, clicked, converted, send, delivery, open, click, conversion
    assert per_day.rows == [
        ["2026-03-10", 4, 2, 0, 2, 1, 1, 0.75, None, 1.0, 0.5, 0.5],
        ["2026-03-11", 2, 2, 0, 1, 1, 0, 0.5, None, 0.5, 0.5, 0.0],
    ]
    by_channel = {row[0]: row for row in table(response, "by_channel").rows}
    assert by_channel["email"][1:7] == [4, 3, 0, 2, 1, 1]
    assert by_channel["push"][1:7] == [1, 1, 0, 1, 1, 0]
    assert by_channel["(none)"][1:3] == [1, 0]
    conversion = table(response, "conversion_rate_per_channel_per_day")
    assert [column.label for column in conversion.columns] == ["day", "email", "push", "(none)"]
    assert conversion.rows == [["2026-03-10", 0.5, None, None], ["2026-03-11", 0.0, 0.0, None]]
    variants = table(response, "conversion_rate_per_variant_per_day")
    assert variants.rows == [["2026-03-10", 0.5, None, None], ["2026-03-11", 0.0, 0.0, None]]
    templates = table(response, "open_rate_per_template_per_day")
    assert [column.label for column in templates.columns] == ["day", "Stuck email", "Welcome push", "(none)"]
    assert templates.rows == [["2026-03-10", 1.0, None, None], ["2026-03-11", 0.0, 1.0, None]]


def test_every_series_over_time_has_a_chart_and_every_table_exports_as_shown(workspaces, grace):
    acme, _ = workspaces
    params = {"workspace": acme.pk, **RANGE}
    page = grace.get(PAGE, params)

    over_time = [each for each in page.context["tables"] if "per_day" in each.key]
    assert len(over_time) == 7  # per day, and open and conversion per channel, template, variant
    assert all(each.chart is not None and each.chart.x == "day" for each in over_time)
    assert_csv_equals_page(grace, PAGE, params, page)


def test_another_workspace_is_not_found_and_its_nudges_never_count(workspaces, grace):
    acme, globex = workspaces

    assert grace.get(PAGE, {"workspace": globex.pk, **RANGE}).status_code == 404
    totals = grace.get(PAGE, {"workspace": acme.pk, **RANGE}).context["totals"]
    assert (totals.sent.sent, totals.sent.converted) == (4, 1)  # Globex's converted nudge is not here
