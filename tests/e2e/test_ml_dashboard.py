"""The ML dashboard in a real browser, on a simulated history: the decisions per day by policy
are the path choices' own counts, every chart drew on its canvas, and the page kept to the
Content-Security-Policy."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By

from ml.models import PathChoice
from ml.registry import services as registry
from ml.simulation.writer import simulate
from tenancy import services as tenancy_services
from tests.e2e.conftest import admin_user, screenshot, sign_in, wait_for
from tests.e2e.test_content_security_policy import RECORD_VIOLATIONS
from tests.e2e.test_dashboards import _assert_every_chart_drew
from tests.factories import WorkspaceFactory
from tests.ml.conftest import register_tiny

pytestmark = pytest.mark.browser

DAYS = 10


@pytest.mark.django_db(transaction=True)
def test_the_ml_dashboard_shows_the_decisions_and_versions(browser, live_server):
    workspace = WorkspaceFactory(name="Acme")
    today = timezone.now().date()
    simulate(
        workspace=workspace,
        people=300,
        start=timezone.now() - timedelta(days=DAYS),
        days=DAYS,
        seed=3,
        exploration_share=0.3,
    )
    active = register_tiny(workspace, metrics={"auc": 0.702, "log_loss": 0.64})
    registry.model_promote(model_version=active, override_reason="the first model")
    user, device = admin_user("grace")
    tenancy_services.workspace_grant(workspace=workspace, user=user, can_change=False)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    sign_in(browser, live_server, user, device)

    date_from = today - timedelta(days=DAYS)
    browser.get(f"{live_server.url}/admin/analytics/ml/?from={date_from}&to={today}")
    table = wait_for(browser, '[data-table="decisions"]')
    shown = sum(
        int(cell.text or 0) for cell in table.find_elements(By.CSS_SELECTOR, "tbody td:not(:first-child)")
    )
    assert shown == PathChoice.objects.filter(workspace=workspace).count() == 300
    versions = browser.find_element(By.CSS_SELECTOR, '[data-table="versions"]').text
    assert "1.0.0" in versions and "active" in versions
    assert _assert_every_chart_drew(browser) >= 1
    assert browser.execute_script("return window.__violations") == []
    screenshot(browser, "ml-dashboard")
    browser.execute_script("arguments[0].scrollIntoView()", table)
    screenshot(browser, "ml-dashboard-decisions")
