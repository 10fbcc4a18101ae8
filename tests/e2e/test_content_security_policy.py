"""The admin under its Content-Security-Policy, in a real browser: nothing on its pages is blocked
(the browser reports every blocked style, script or image as a securitypolicyviolation event)."""

import pytest
from django.urls import reverse

from tenancy import services as tenancy_services
from tests.e2e.conftest import admin_user, sign_in, wait_for
from tests.nudges.factories import TemplateVersionFactory
from tests.onboarding.progress_setup import published_path

# Registered through the DevTools protocol before each page's own code: a policy cannot stop it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${where}`);
});
"""


def _violations(browser, url: str) -> list[str]:
    browser.get(url)
    wait_for(browser, "#footer")
    return browser.execute_script("return window.__violations")


@pytest.mark.django_db(transaction=True)
def test_admin_pages_run_under_the_policy_with_nothing_blocked(browser, live_server):
    user, device = admin_user()
    user.is_superuser = True
    user.save()
    workspace, _, _ = tenancy_services.workspace_create(name="Acme")
    version = published_path(workspace)
    template_version = TemplateVersionFactory(template__trigger__workspace=workspace)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    assert _violations(browser, f"{live_server.url}/admin/login/") == []
    sign_in(browser, live_server, user, device)

    pages = [
        reverse("admin:index"),
        reverse("admin:paths_pathversion_change", args=[version.pk]),
        reverse("admin:paths_pathversion_preview", args=[version.pk]),
        reverse("admin:paths_path_change", args=[version.path_id]),
        reverse("admin:paths_path_compare", args=[version.path_id]),
        reverse("admin:nudges_nudgetemplate_change", args=[template_version.template_id]),
        reverse("admin:nudges_templateversion_change", args=[template_version.pk]),
        reverse("admin:nudges_templateversion_preview", args=[template_version.pk]),
        reverse("admin:onboarding_event_changelist"),  # the typed filters (InputFilter)
        reverse("admin:nudges_nudge_changelist"),  # a date-range filter with its inline script
        reverse("admin:guardrails_auditlog_changelist"),
        reverse("admin:onboarding_apikey_add"),
        reverse("admin:onboarding_enrollment_changelist"),  # path, version, step and date filters
        reverse("admin:onboarding_enrollmentsignal_changelist"),  # the stuck per step summary
        reverse("admin:analytics_dashboard", kwargs={"key": "product"}),  # Chart.js from json_script
        reverse("admin:analytics_dashboard", kwargs={"key": "ops"}),
        reverse("admin:analytics_dashboard", kwargs={"key": "nudges"}),
    ]
    blocked = {page: _violations(browser, live_server.url + page) for page in pages}

    assert blocked == {page: [] for page in pages}
