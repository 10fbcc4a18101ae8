"""The product theme on every admin page: the header in the product's colours with its name, on the
login page, the Overview, a changelist and a change form; the dark theme switches the palette."""

import pytest
from django.urls import reverse
from selenium.webdriver.support.wait import WebDriverWait

from tenancy import services as tenancy_services
from tests.e2e.conftest import admin_user, screenshot, sign_in, wait_for
from tests.onboarding.progress_setup import published_path

LIGHT_HEADER = "rgb(49, 46, 129)"  # #312e81, static/admin/theme.css
DARK_HEADER = "rgb(30, 27, 75)"  # #1e1b4b
DARK_LINK = "rgb(165, 180, 252)"  # #a5b4fc


def _header_background(browser) -> str:
    return browser.execute_script(
        "return getComputedStyle(document.getElementById('header')).backgroundColor"
    )


@pytest.mark.django_db(transaction=True)
def test_every_admin_page_wears_the_product_theme(browser, live_server):
    user, device = admin_user()
    user.is_superuser = True
    user.save()
    workspace, _, _ = tenancy_services.workspace_create(name="Acme")
    version = published_path(workspace)

    browser.get(f"{live_server.url}/admin/login/")
    wait_for(browser, "#header")
    assert _header_background(browser) == LIGHT_HEADER
    assert browser.find_element("css selector", "#site-name").text == "Onboarding platform"
    screenshot(browser, "theme-login")
    sign_in(browser, live_server, user, device)

    pages = {
        "theme-overview": reverse("admin:index"),
        "theme-changelist": reverse("admin:onboarding_enrollment_changelist"),
        "theme-change-form": reverse("admin:paths_path_change", args=[version.path_id]),
    }
    for name, page in pages.items():
        browser.get(live_server.url + page)
        wait_for(browser, "#footer")
        assert _header_background(browser) == LIGHT_HEADER, page
        assert browser.find_element("css selector", "#site-name").text == "Onboarding platform"
        screenshot(browser, name)

    # The theme toggle stores its choice on <html data-theme>; the dark palette follows.
    browser.execute_script("document.documentElement.dataset.theme = 'dark'")
    assert _header_background(browser) == DARK_HEADER
    # Links fade to their new colour (admin's `transition: color`): wait for the dark link colour.
    WebDriverWait(browser, 5).until(
        lambda page: (
            page.execute_script("return getComputedStyle(document.querySelector('fieldset a')).color")
            == DARK_LINK
        )
    )
    screenshot(browser, "theme-change-form-dark")
    browser.execute_script("localStorage.removeItem('theme')")
