"""The path editor in a real browser, as a growth admin uses it: signed in with a password and an
authenticator code, building a path, typing steps and publishing without losing any of it."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from paths import services
from paths.models import Path, PathVersion
from tenancy import services as tenancy_services
from tests.e2e.conftest import admin_user, screenshot, sign_in, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture
def acme():
    workspace, _, _ = tenancy_services.workspace_create(name="Acme")
    return workspace


@pytest.fixture
def grace(acme):
    """A growth admin who may change Acme, and only Acme."""
    user, device = admin_user("grace")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=True)
    return user, device


@pytest.fixture
def draft(acme) -> PathVersion:
    return services.path_create(workspace=acme, key="getting-started", name="Getting started").versions.get()


def type_into(browser, field_id: str, text: str) -> None:
    element = browser.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


def messages_shown(browser) -> list[str]:
    return [item.text for item in browser.find_elements(By.CSS_SELECTOR, "ul.messagelist li")]


def test_an_admin_signs_in_with_password_and_authenticator_code(browser, live_server, grace):
    user, device = grace

    sign_in(browser, live_server, user, device)

    assert browser.current_url == f"{live_server.url}/admin/"
    assert "grace" in browser.find_element(By.ID, "user-tools").text.lower()
    screenshot(browser, "signed-in-admin-index")


def test_the_path_add_form_preselects_the_admins_only_workspace(browser, live_server, grace, acme):
    sign_in(browser, live_server, *grace)
    browser.get(f"{live_server.url}/admin/paths/path/add/")

    workspace = Select(wait_for(browser, "#id_workspace"))
    assert workspace.first_selected_option.text == "Acme"
    type_into(browser, "id_key", "getting-started")
    type_into(browser, "id_name", "Getting started")
    browser.find_element(By.CSS_SELECTOR, "input[name=_save]").click()

    wait_for(browser, "#pathversion_form")
    path = Path.objects.get(workspace=acme, key="getting-started")
    assert browser.current_url.endswith(f"/admin/paths/pathversion/{path.versions.get().pk}/change/")
    assert messages_shown(browser) == [
        "Path “Getting started” created. Add its steps to draft v1, then publish it."
    ]


def test_publish_saves_the_step_typed_just_before(browser, live_server, grace, draft):
    sign_in(browser, live_server, *grace)
    browser.get(f"{live_server.url}/admin/paths/pathversion/{draft.pk}/change/")
    wait_for(browser, "#id_steps-0-key")

    type_into(browser, "id_steps-0-key", "connect")
    type_into(browser, "id_steps-0-title", "Connect an integration")
    type_into(browser, "id_steps-0-event_name", "Integration Added")
    screenshot(browser, "publish-with-unsaved-step-before")
    browser.find_element(By.XPATH, "//*[contains(@class, 'object-tools')]//button[.='Publish']").click()

    wait_for(browser, "ul.messagelist")
    assert messages_shown(browser)[-1] == "Getting started v1 published."
    draft.refresh_from_db()
    assert draft.status == PathVersion.Status.PUBLISHED
    assert list(draft.steps.values_list("key", "title", "event_name")) == [
        ("connect", "Connect an integration", "Integration Added")
    ]
    # The published version's page lists the step, read-only.
    assert "Connect an integration" in browser.find_element(By.ID, "steps-group").text


def test_a_javascript_deep_link_is_shown_on_its_field_with_the_typed_step_kept(
    browser, live_server, grace, draft
):
    sign_in(browser, live_server, *grace)
    browser.get(f"{live_server.url}/admin/paths/pathversion/{draft.pk}/change/")
    wait_for(browser, "#id_steps-0-key")

    typed = {
        "id_steps-0-key": "connect",
        "id_steps-0-title": "Connect GitHub",
        "id_steps-0-body": "Link your repositories.",
        "id_steps-0-deep_link": "javascript:alert(document.cookie)",
        "id_steps-0-event_name": "Integration Added",
    }
    for field_id, text in typed.items():
        type_into(browser, field_id, text)
    browser.find_element(By.CSS_SELECTOR, "input[name=_continue]").click()

    deep_link_errors = wait_for(browser, ".field-deep_link .errorlist")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", deep_link_errors)
    screenshot(browser, "javascript-deep-link-refused")
    assert "javascript:, data:, vbscript: links are refused" in deep_link_errors.text
    assert {
        field_id: browser.find_element(By.ID, field_id).get_attribute("value") for field_id in typed
    } == typed
    assert not browser.find_elements(By.CSS_SELECTOR, "ul.messagelist li.error")
    assert not draft.steps.exists()


def test_the_editors_own_styles_apply_under_the_content_security_policy(browser, live_server, grace, draft):
    sign_in(browser, live_server, *grace)
    browser.get(f"{live_server.url}/admin/paths/pathversion/{draft.pk}/change/")
    days = wait_for(browser, "#id_steps-0-expected_duration_0")

    width_in_em = browser.execute_script(
        "const style = getComputedStyle(arguments[0]);"
        "return parseFloat(style.width) / parseFloat(style.fontSize);",
        days,
    )
    questions = browser.find_element(By.ID, "id_steps-0-questions")
    assert round(width_in_em, 1) == 5.0
    assert "monospace" in questions.value_of_css_property("font-family")
