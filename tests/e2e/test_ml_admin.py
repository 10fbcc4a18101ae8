"""The model registry in a real browser: a growth admin signs in with their TOTP code, tries to
promote a candidate that has no A/B (refused, with the reason on the page), promotes it with an
override and its reason, then rolls the model back to the version it replaced from the versions
list. Nothing breaks the Content-Security-Policy. Screenshots are kept."""

import pytest
from selenium.webdriver.common.by import By

from ml.models import ModelVersion
from ml.registry import services
from tenancy import services as tenancy_services
from tenancy.models import AuditLog
from tests.e2e.conftest import admin_user, screenshot, sign_in, wait_for
from tests.e2e.test_content_security_policy import RECORD_VIOLATIONS
from tests.factories import WorkspaceFactory
from tests.ml.conftest import register_tiny

pytestmark = pytest.mark.browser
Status = ModelVersion.Status


def _messages(browser) -> list[str]:
    """As shown (the admin's base template capitalises each message's first letter)."""
    return [element.text for element in browser.find_elements(By.CSS_SELECTOR, "ul.messagelist li")]


@pytest.mark.django_db(transaction=True)
def test_an_admin_promotes_with_an_override_then_rolls_back(browser, live_server):
    workspace = WorkspaceFactory(name="Acme")
    live = register_tiny(workspace, metrics={"auc": 0.702, "log_loss": 0.64})
    services.model_promote(model_version=live, override_reason="the first model")
    candidate = register_tiny(workspace, seed=1)  # with TINY_METRICS: AUC 0.71, calibration, policy
    user, device = admin_user("grace")
    tenancy_services.workspace_grant(workspace=workspace, user=user, can_change=True)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    sign_in(browser, live_server, user, device)

    browser.get(f"{live_server.url}/admin/ml/modelversion/{candidate.pk}/change/")
    wait_for(browser, 'button[data-step="promote"]').click()
    wait_for(browser, "ul.messagelist")
    (refused,) = _messages(browser)
    assert refused.startswith(
        "Path_classifier@1.1.0 was not promoted: promotion: path_classifier@1.1.0 has no A/B"
    )
    assert ModelVersion.objects.get(pk=candidate.pk).status == Status.CANDIDATE
    screenshot(browser, "ml-promote-refused")

    browser.find_element(By.CSS_SELECTOR, 'a[data-step="override"]').click()
    verdict = wait_for(browser, "#promotion-verdict")
    assert "refused" in verdict.text and "has no A/B result" in verdict.text
    browser.find_element(By.ID, "id_reason").send_keys("Launch on Monday; the A/B follows")
    screenshot(browser, "ml-promote-override-form")
    browser.find_element(By.ID, "override-submit").click()
    wait_for(browser, 'button[data-step="rollback"]')
    assert _messages(browser) == ["Path_classifier@1.1.0 promoted with an override."]
    transitions = browser.find_element(By.CSS_SELECTOR, ".field-transitions")
    assert "promote_override" in transitions.text and "Launch on Monday" in transitions.text
    screenshot(browser, "ml-promoted-with-override")
    browser.execute_script("arguments[0].scrollIntoView()", transitions)
    screenshot(browser, "ml-promoted-transitions")

    browser.get(f"{live_server.url}/admin/ml/modelversion/")
    rollback = wait_for(browser, 'button[data-step="rollback"]')
    assert rollback.text == "ROLL BACK PATH_CLASSIFIER (TO 1.0.0), ACME"
    screenshot(browser, "ml-versions-list")
    rollback.click()
    wait_for(browser, "ul.messagelist")
    assert _messages(browser) == ["Path_classifier@1.1.0 retired, path_classifier@1.0.0 is active again."]
    statuses = dict(ModelVersion.objects.values_list("version", "status"))
    assert statuses == {"1.0.0": Status.ACTIVE, "1.1.0": Status.RETIRED}
    override = AuditLog.objects.get(action="ml.model_promote_override", object_id=str(candidate.pk))
    assert override.changes["reason"] == "Launch on Monday; the A/B follows" and override.actor == user
    assert AuditLog.objects.filter(action="ml.model_rollback", actor=user).count() == 2
    assert browser.execute_script("return window.__violations") == []
    screenshot(browser, "ml-rolled-back")
