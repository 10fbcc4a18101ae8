"""The ops and nudges dashboards in a real browser, signed in with password and TOTP: the numbers
shown equal their definitions computed here in SQL, the charts are drawn, and screenshots of both
pages are kept as artefacts (ops-dashboard.png, nudges-dashboard.png)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from selenium.webdriver.common.by import By

from analytics.models import RollupCursor
from tenancy import services as tenancy_services
from tests.analytics import nudges_data, ops_data
from tests.e2e.conftest import admin_user, screenshot, sign_in, wait_for
from tests.factories import EndUserFactory, EventFactory

pytestmark = pytest.mark.browser


def _sql_one(query: str, params: list) -> tuple:
    """One row of plain SQL; datetimes are passed as the backend stores them."""
    adapted = [
        connection.ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value
        for value in params
    ]
    with connection.cursor() as cursor:
        cursor.execute(query, adapted)
        return cursor.fetchone()


def _day(day: int) -> datetime:
    return datetime(2026, 3, day, tzinfo=UTC)


def _full_page_screenshot(browser, name: str) -> None:
    """The whole page, not only the window: the window grows to the page's height for the shot."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(height + 100, 6000))
    screenshot(browser, name)
    browser.set_window_size(1280, 1400)


def _shown(browser, metric: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f'[data-metric="{metric}"]').text


def _cell(browser, table: str, row: int, column: int) -> str:
    selector = f'table[data-table="{table}"] tbody tr:nth-child({row}) td:nth-child({column})'
    return browser.find_element(By.CSS_SELECTOR, selector).text


def test_the_nudges_dashboard_shows_the_sql_definitions(browser, live_server):
    acme, _, _ = tenancy_services.workspace_create(name="Acme")
    globex, _, _ = tenancy_services.workspace_create(name="Globex")
    nudges_data.nudges(acme, globex)
    user, device = admin_user("grace")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=False)
    sign_in(browser, live_server, user, device)

    browser.get(
        f"{live_server.url}/admin/analytics/nudges/?workspace={acme.pk}&from=2026-03-10&to=2026-03-11"
    )
    wait_for(browser, "canvas[data-drawn]")

    # nudge_conversion_rate: nudges sent in range (by sent_at) with converted_at set / sent in range.
    converted, sent = _sql_one(
        "SELECT SUM(CASE WHEN converted_at IS NOT NULL THEN 1 ELSE 0 END), COUNT(*) FROM nudges_nudge"
        " WHERE workspace_id = %s AND sent_at >= %s AND sent_at < %s",
        [acme.pk, _day(10), _day(12)],
    )
    assert (converted, sent) == (1, 4)
    assert _shown(browser, "nudge_conversion_rate") == f"{100 * converted / sent:.1f}%"
    # The email channel's conversion on 2026-03-10, as the per-channel-per-day table shows it.
    email_converted, email_sent = _sql_one(
        "SELECT SUM(CASE WHEN converted_at IS NOT NULL THEN 1 ELSE 0 END), COUNT(*) FROM nudges_nudge"
        " WHERE workspace_id = %s AND channel = 'email' AND sent_at >= %s AND sent_at < %s",
        [acme.pk, _day(10), _day(11)],
    )
    headers = [
        cell.get_attribute("textContent")
        for cell in browser.find_elements(
            By.CSS_SELECTOR, 'table[data-table="conversion_rate_per_channel_per_day"] thead th'
        )
    ]
    assert headers == ["day", "email", "push", "(none)"]
    assert (
        _cell(browser, "conversion_rate_per_channel_per_day", 1, 2)
        == f"{100 * email_converted / email_sent:.1f}%"
    )
    drawn = browser.find_elements(By.CSS_SELECTOR, "canvas[data-drawn]")
    assert len(drawn) == len(browser.find_elements(By.CSS_SELECTOR, "canvas[data-chart-source]")) >= 7
    assert all(canvas.get_attribute("aria-label") for canvas in drawn)
    screenshot(browser, "nudges-dashboard-top")
    _full_page_screenshot(browser, "nudges-dashboard")


def test_the_ops_dashboard_shows_the_sql_definitions(browser, live_server):
    acme, _, _ = tenancy_services.workspace_create(name="Acme")
    globex, _, _ = tenancy_services.workspace_create(name="Globex")
    ops_data.pipeline_nudges(acme, globex)
    now = timezone.now()
    end_user = EndUserFactory(workspace=acme)
    for minutes in (2, 2, 2, 15, 40, 90, 180, 600):
        EventFactory(end_user=end_user, received_at=now - timedelta(minutes=minutes))
    EventFactory(end_user=EndUserFactory(workspace=globex), received_at=now - timedelta(minutes=2))
    RollupCursor.objects.create(workspace=acme, refreshed_at=now - timedelta(minutes=40))
    user, device = admin_user("grace")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=False)
    sign_in(browser, live_server, user, device)

    browser.get(f"{live_server.url}/admin/analytics/ops/?workspace={acme.pk}&from=2026-03-10&to=2026-03-12")
    wait_for(browser, "canvas[data-drawn]")

    # Events received in the last hour: from the start of the minute 59 minutes before this one.
    first_minute = now.replace(second=0, microsecond=0) - timedelta(minutes=59)
    [received] = _sql_one(
        "SELECT COUNT(*) FROM onboarding_event WHERE workspace_id = %s AND received_at >= %s",
        [acme.pk, first_minute],
    )
    assert received == 5
    assert _shown(browser, "events_last_hour") == str(received)
    # Dead letters: the workspace's nudges in status failed, whenever created.
    [dead_letters] = _sql_one(
        "SELECT COUNT(*) FROM nudges_nudge WHERE workspace_id = %s AND status = 'failed'", [acme.pk]
    )
    assert _shown(browser, "dead_letters") == str(dead_letters) == str(ops_data.DEAD_LETTERS)
    assert _cell(browser, "rollup_freshness", 1, 4) == "stale"
    screenshot(browser, "ops-dashboard-top")
    _full_page_screenshot(browser, "ops-dashboard")
    browser.find_element(By.CSS_SELECTOR, '[data-metric="dead_letters"] a').click()
    wait_for(browser, "#result_list")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == ops_data.DEAD_LETTERS
