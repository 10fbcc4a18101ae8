"""Browser tests: what a person sees in the admin, in a real browser.

Debian's chromium, driven headless by Selenium through /usr/bin/chromedriver (never a driver
Selenium Manager would download), against pytest-django's live server. The live server answers
from another thread, so every test here runs on `transactional_db` (pytest-django adds it): rows
the test writes are committed for the server to read, and the tables are emptied afterwards.

Without chromium the tests are skipped, unless REQUIRE_SERVICES=1 (CI), where they fail.
Screenshots go to $TEST_ARTIFACTS_DIR, or var/test-artifacts/ (ignored by git).
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import _missing
from tests.factories import AdminUserFactory

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery staple"
WAIT_SECONDS = 10


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)


def artifacts_dir() -> Path:
    directory = Path(
        os.environ.get("TEST_ARTIFACTS_DIR") or Path(settings.BASE_DIR) / "var" / "test-artifacts"
    )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="session")
def _browser_session(live_server) -> Iterator[WebDriver]:
    """One headless chromium for the whole run (starting one costs about a second). It quits
    before the live server stops: its open keep-alive connections would otherwise be closed by the
    server's threads after the in-memory SQLite connection stopped being shared with them."""
    if not CHROMEDRIVER.exists() or not (CHROMIUM.exists() or shutil.which("chromium")):
        _missing(f"chromium and chromium-driver are not installed ({CHROMEDRIVER} is missing)")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    except WebDriverException as error:
        _missing(f"chromium does not start: {error.msg}")
    yield driver
    driver.quit()


@pytest.fixture
def browser(_browser_session, request) -> Iterator[WebDriver]:
    """The browser, signed out; a screenshot of where the test ended is kept as an artefact."""
    _browser_session.delete_all_cookies()
    yield _browser_session
    _browser_session.save_screenshot(str(artifacts_dir() / f"{request.node.name}.png"))


def wait_for(browser: WebDriver, css: str):
    return WebDriverWait(browser, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def screenshot(browser: WebDriver, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def admin_user(username: str = "grace"):
    """A staff user with a confirmed authenticator app, as `manage.py otp_enrol` leaves one."""
    user = AdminUserFactory(username=username, password=PASSWORD)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user, device


def current_code(device: TOTPDevice) -> str:
    """What the admin's authenticator app shows now."""
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
    return str(code).zfill(device.digits)


def sign_in(browser: WebDriver, live_server, user, device: TOTPDevice) -> None:
    """Signs in on the admin's login page as a person does: name, password, code from the app."""
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    wait_for(browser, "#id_username").send_keys(user.get_username())
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.ID, "id_otp_token").send_keys(current_code(device))
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]:not([name=otp_challenge])").click()
    wait_for(browser, "#user-tools")
