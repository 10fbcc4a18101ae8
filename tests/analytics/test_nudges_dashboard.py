"""The nudges dashboard: rates per channel, template and variant per day, against the nudges of
tests/analytics/nudges_data.py (expected numbers counted by hand in its docstring)."""

import pytest

from analytics.nudges.breakdown import nudge_breakdown
from analytics.nudges.metrics import NudgeQuery
from analytics.nudges.over_time import nudge_rates_over_time
from tenancy import services as tenancy_services
from tests.analytics import nudges_data
from tests.analytics.nudges_data import FIRST, LAST


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
