"""The stuck list in a real browser: the summary names the step that holds the most stuck people,
and its count opens the enrollments list of exactly them, with that step chosen in the filters."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By

from onboarding.models import Enrollment
from paths.models import Path
from tenancy import services as tenancy_services
from tests.e2e.conftest import admin_user, screenshot, sign_in, wait_for
from tests.onboarding.enrollment_rows import enrollment, published_version

pytestmark = pytest.mark.browser


def _people_on(version, step: str, hours: list[int], *, stuck: bool) -> None:
    now = timezone.now()
    for number, each in enumerate(hours):
        row = enrollment(
            version,
            user_id=f"{'stuck' if stuck else 'fine'}-{step}-{number}",
            current_step_key=step,
            step_entered_at=now - timedelta(hours=each),
        )
        if stuck:
            Enrollment.objects.filter(pk=row.pk).update(stuck_at=now)


def test_the_busiest_stuck_step_links_to_its_people(browser, live_server):
    acme, _, _ = tenancy_services.workspace_create(name="Acme")
    user, device = admin_user("grace")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=False)
    version = published_version(
        acme, [{"key": "install"}, {"key": "api-key"}, {"key": "first-event"}], key="dev"
    )
    Path.objects.filter(pk=version.path_id).update(name="Developer setup")
    _people_on(version, "first-event", [30, 50, 70], stuck=True)  # median 50 hours
    _people_on(version, "first-event", [1], stuck=False)
    _people_on(version, "api-key", [100], stuck=True)
    sign_in(browser, live_server, user, device)

    browser.get(f"{live_server.url}/admin/onboarding/enrollmentsignal/")
    summary = wait_for(browser, ".stuck-by-step")
    assert "Step 3 of Developer setup holds 75% of the stuck users." in summary.text
    assert "median of 2.1 days" in summary.text
    screenshot(browser, "stuck-by-step-summary")
    summary.find_element(By.LINK_TEXT, "3 of 4").click()

    wait_for(browser, "#result_list")
    shown = [
        cell.text
        for cell in browser.find_elements(
            By.CSS_SELECTOR, "#result_list tbody th, #result_list tbody td.field-end_user_link"
        )
    ]
    assert sorted(shown) == ["stuck-first-event-0", "stuck-first-event-1", "stuck-first-event-2"]
    chosen = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#changelist-filter li.selected")]
    assert {"Developer setup", "Developer setup v1", "yes", "3. first-event"} <= set(chosen)
    screenshot(browser, "enrollments-of-a-stuck-step")
