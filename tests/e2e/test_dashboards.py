"""The Overview home and the Product dashboard in a real browser, on the demo data (seed_demo):
the numbers shown are the metric definitions computed here in plain SQL, every chart drew
something on its canvas, and nothing on the pages broke the Content-Security-Policy."""

import io
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from selenium.webdriver.common.by import By

from analytics.rollups import services as rollup_services
from tenancy import services as tenancy_services
from tenancy.models import Workspace
from tests.e2e.conftest import admin_user, screenshot, sign_in, wait_for
from tests.e2e.test_content_security_policy import RECORD_VIOLATIONS

pytestmark = pytest.mark.browser

DAYS = 40
WINDOW_DAYS = 14  # the default activation window
CANVAS_PAINTED = """
const canvas = arguments[0];
const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
for (let index = 3; index < pixels.length; index += 4) { if (pixels[index] !== 0) return true; }
return false;
"""


def _one(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _within_window() -> str:
    """completed_at - enrolled_at <= N days, in this database's SQL."""
    if connection.vendor == "postgresql":
        return "e.completed_at <= e.enrolled_at + %s * interval '1 day'"
    return "julianday(e.completed_at) - julianday(e.enrolled_at) <= %s"


def _definitions(workspace: Workspace, date_from, date_to) -> dict[str, int]:
    """onboarding_start_rate's and activation_rate's numerators and denominators, and the nudges
    sent and converted, straight from the tables as docs/analytics.md defines them."""
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
    mature_end = min(
        end, datetime.combine(timezone.now().date() - timedelta(days=WINDOW_DAYS), time.min, tzinfo=UTC)
    )
    in_range = (
        "FROM onboarding_enrollment e"
        " WHERE e.workspace_id = %s AND e.enrolled_at >= %s AND e.enrolled_at < %s"
    )
    started = (
        "EXISTS (SELECT 1 FROM onboarding_stepcompletion c"
        " WHERE c.enrollment_id = e.id AND c.reverted_at IS NULL)"
    )
    activated = f"e.status = 'completed' AND e.completed_at IS NOT NULL AND {_within_window()}"
    sent = "FROM nudges_nudge n WHERE n.workspace_id = %s AND n.sent_at >= %s AND n.sent_at < %s"
    ids = [workspace.pk, start, end]
    return {
        "enrolled": _one(f"SELECT COUNT(*) {in_range}", ids),
        "started": _one(f"SELECT COUNT(*) {in_range} AND {started}", ids),
        "mature": _one(f"SELECT COUNT(*) {in_range}", [workspace.pk, start, mature_end]),
        "activated": _one(
            f"SELECT COUNT(*) {in_range} AND {activated}", [workspace.pk, start, mature_end, WINDOW_DAYS]
        ),
        "stuck": _one(
            "SELECT COUNT(*) FROM onboarding_enrollment e WHERE e.workspace_id = %s"
            " AND e.status = 'active' AND e.current_step_key <> '' AND e.stuck_at IS NOT NULL",
            [workspace.pk],
        ),
        "nudges_sent": _one(f"SELECT COUNT(*) {sent}", ids),
        "nudges_converted": _one(f"SELECT COUNT(*) {sent} AND n.converted_at IS NOT NULL", ids),
    }


def _percent(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator * 100:.1f}%" if denominator else "\u2013"


def _metric(browser, name: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f'[data-metric="{name}"]').text


def _assert_every_chart_drew(browser) -> int:
    canvases = browser.find_elements(By.CSS_SELECTOR, "canvas[data-chart-source]")
    assert canvases
    for canvas in canvases:
        assert canvas.get_attribute("data-drawn") == "true", canvas.get_attribute("aria-label")
        assert browser.execute_script(CANVAS_PAINTED, canvas), canvas.get_attribute("aria-label")
    return len(canvases)


@pytest.mark.django_db(transaction=True)
def test_overview_and_product_show_the_definitions_on_the_demo_data(browser, live_server, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", users=120, days=DAYS, stdout=io.StringIO())
    call_command("detect_stuck", stdout=io.StringIO())
    demo = Workspace.objects.get(slug="demo-saas")
    rollup_services.rollups_refresh(workspace=demo)
    user, device = admin_user("grace")
    tenancy_services.workspace_grant(workspace=demo, user=user, can_change=False)
    today = timezone.now().date()
    date_from = today - timedelta(days=DAYS)
    expected = _definitions(demo, date_from, today)
    assert expected["enrolled"] > 0 and expected["mature"] > 0  # the demo data has something to show
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    sign_in(browser, live_server, user, device)
    query = f"?from={date_from}&to={today}"

    browser.get(f"{live_server.url}/admin/{query}")
    wait_for(browser, ".overview-cards")
    assert _metric(browser, "enrolled") == str(expected["enrolled"])
    assert _metric(browser, "started") == str(expected["started"])
    assert _metric(browser, "onboarding_start_rate") == _percent(expected["started"], expected["enrolled"])
    assert _metric(browser, "activation_rate") == _percent(expected["activated"], expected["mature"])
    assert expected["stuck"] > 0
    assert _metric(browser, "stuck") == str(expected["stuck"])
    assert _metric(browser, "nudges_sent") == str(expected["nudges_sent"])
    assert _metric(browser, "nudges_converted") == str(expected["nudges_converted"])
    overview_charts = _assert_every_chart_drew(browser)
    assert overview_charts == 5
    sections = [
        element.text
        for element in browser.find_elements(
            By.CSS_SELECTOR, "#nav-sidebar caption, .app-list caption, #content-main .module caption"
        )
    ]
    assert sections and sections[0].lower().startswith("overview")
    assert browser.execute_script("return window.__violations") == []
    screenshot(browser, "dashboards-overview")

    browser.find_element(By.CSS_SELECTOR, "#card-activation h2 a").click()
    wait_for(browser, "#table-funnel")
    assert _metric(browser, "activation_rate") == _percent(expected["activated"], expected["mature"])
    assert _metric(browser, "onboarding_start_rate") == _percent(expected["started"], expected["enrolled"])
    first_step = browser.find_elements(By.CSS_SELECTOR, '[data-table="funnel"] tbody tr td')
    published = demo_first_step_entered(demo, date_from, today)
    assert first_step[2].text == str(published)
    assert _assert_every_chart_drew(browser) >= 3
    assert browser.execute_script("return window.__violations") == []
    screenshot(browser, "dashboards-product")

    browser.get(
        f"{browser.current_url}&cohort_by=enrollment&cohort_weeks=4&funnel_steps=Signed+Up,Project+Created"
    )
    browser.execute_script("arguments[0].scrollIntoView()", wait_for(browser, "#table-cohorts"))
    assert browser.find_elements(By.CSS_SELECTOR, '[data-table="cohorts"] td[class^="shade-"]')
    assert browser.find_elements(By.CSS_SELECTOR, '[data-table="event_funnel"] tbody tr')
    _assert_every_chart_drew(browser)
    assert browser.execute_script("return window.__violations") == []
    screenshot(browser, "dashboards-product-cohorts-and-event-funnel")


def demo_first_step_entered(workspace: Workspace, date_from, date_to) -> int:
    """Enrollments of the funnel's version (the first path by name, its published version) enrolled
    in range: all of them enter its first step."""
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
    return _one(
        "SELECT COUNT(*) FROM onboarding_enrollment e WHERE e.workspace_id = %s AND e.enrolled_at >= %s"
        " AND e.enrolled_at < %s AND e.path_version_id = (SELECT v.id FROM paths_pathversion v"
        " JOIN paths_path p ON p.id = v.path_id WHERE p.workspace_id = %s AND v.status = 'published'"
        " ORDER BY p.name, v.number DESC LIMIT 1)",
        [workspace.pk, start, end, workspace.pk],
    )
