"""The experiment manager in a real browser: a growth admin signs in with their TOTP code, creates
an experiment from a path, starts it with the page's button, and reads the results page of an
experiment with assigned, enrolled and activated users: every chart drew on its canvas, the numbers
are the results engine's, and nothing broke the Content-Security-Policy. Screenshots are kept."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from experiments import results as experiment_results
from experiments import services
from experiments.models import Experiment
from tenancy import services as tenancy_services
from tests.e2e.conftest import admin_user, screenshot, sign_in, wait_for
from tests.e2e.test_content_security_policy import RECORD_VIOLATIONS
from tests.e2e.test_dashboards import CANVAS_PAINTED
from tests.experiments.test_admin_results import refresh_facts, seed_arm
from tests.factories import PathFactory, PathVersionFactory, PublishedPathVersionFactory, WorkspaceFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def setup_path():
    workspace = WorkspaceFactory(name="Acme")
    path = PathFactory(workspace=workspace, key="onboarding", name="Onboarding", is_default=True)
    old = PathVersionFactory(path=path, number=1, status="archived", published_at=timezone.now())
    live = PublishedPathVersionFactory(path=path, number=2)
    return workspace, path, old, live


def _signed_in(browser, live_server, workspace):
    user, device = admin_user("grace")
    tenancy_services.workspace_grant(workspace=workspace, user=user, can_change=True)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    sign_in(browser, live_server, user, device)
    return user


def _charts_drawn(browser) -> list[str]:
    """The aria-label of every chart on the page, each checked drawn and painted."""
    canvases = browser.find_elements(
        By.CSS_SELECTOR, "canvas[data-chart-source], canvas[data-experiment-chart]"
    )
    for canvas in canvases:
        label = canvas.get_attribute("aria-label")
        assert canvas.get_attribute("data-drawn") == "true", label
        assert browser.execute_script(CANVAS_PAINTED, canvas), label
    return [canvas.get_attribute("aria-label") for canvas in canvases]


def _messages(browser) -> list[str]:
    """As shown (the admin's base template capitalises each message's first letter)."""
    return [element.text for element in browser.find_elements(By.CSS_SELECTOR, "ul.messagelist li")]


@pytest.mark.django_db(transaction=True)
def test_an_admin_creates_an_experiment_from_a_path_and_starts_it(browser, live_server, setup_path):
    workspace, _, old, live = setup_path
    _signed_in(browser, live_server, workspace)

    browser.get(f"{live_server.url}/admin/experiments/experiment/")
    wait_for(browser, "#new-from-path").click()
    Select(wait_for(browser, "#id_owner")).select_by_visible_text("Onboarding (Acme)")
    browser.find_element(By.ID, "choose-owner").click()
    wait_for(browser, "#experiment-new-form")
    assert Select(browser.find_element(By.ID, "id_arms-0-version")).first_selected_option.text == (
        "Onboarding v2 (published)"
    )
    assert Select(browser.find_element(By.ID, "id_arms-1-version")).first_selected_option.text == (
        "Onboarding v1 (archived)"
    )
    browser.find_element(By.ID, "id_key").send_keys("shorter-setup")
    weight = browser.find_element(By.ID, "id_arms-1-weight")
    weight.clear()
    weight.send_keys("40")  # 50 + 40: refused, with the reason
    screenshot(browser, "experiments-new-from-path")
    browser.find_element(By.NAME, "_create").click()
    refusal = wait_for(browser, "#refusal")
    assert "weights must sum to 100, not 90" in refusal.text
    assert not Experiment.objects.exists()
    screenshot(browser, "experiments-new-refused")

    weight = browser.find_element(By.ID, "id_arms-1-weight")
    weight.clear()
    weight.send_keys("50")
    browser.find_element(By.NAME, "_create").click()
    wait_for(browser, "#results-link")
    assert _messages(browser) == [
        "Experiment shorter-setup created as a draft with 2 arms: check it, then start it."
    ]
    experiment = Experiment.objects.get()
    assert [(arm.key, arm.path_version_id, arm.weight) for arm in experiment.variants.all()] == [
        ("A", live.pk, 50),
        ("B", old.pk, 50),
    ]

    browser.find_element(By.CSS_SELECTOR, 'button[data-step="start"]').click()
    wait_for(browser, 'button[data-step="stop"]')
    assert _messages(browser) == ["Shorter-setup started."]
    experiment.refresh_from_db()
    assert experiment.status == "running"
    assert browser.execute_script("return window.__violations") == []
    screenshot(browser, "experiments-started")


@pytest.mark.django_db(transaction=True)
def test_the_results_page_and_the_dashboard_draw_the_experiments_numbers(browser, live_server, setup_path):
    workspace, path, old, live = setup_path
    now = timezone.now()
    experiment = services.create_path_experiment(
        path=path, versions=[live, old], key="shorter-setup", name="Shorter setup", minimum_sample_per_arm=100
    )
    experiment = services.experiment_start(experiment=experiment, at=now - timedelta(days=21))
    for days_ago, users_a, users_b in ((20, 120, 110), (14, 100, 115), (9, 90, 95)):
        enrolled_at = now - timedelta(days=days_ago)
        seed_arm(
            experiment,
            "A",
            users=users_a,
            activated=users_a // 8,
            enrolled_at=enrolled_at,
            hours_to_activation=30,
        )
        seed_arm(
            experiment,
            "B",
            users=users_b,
            activated=users_b // 5,
            enrolled_at=enrolled_at,
            hours_to_activation=20,
        )
    refresh_facts(experiment)
    services.experiment_decide(experiment=experiment)
    expected = experiment_results.experiment_results(experiment)
    _signed_in(browser, live_server, workspace)

    browser.get(f"{live_server.url}/admin/experiments/experiment/{experiment.pk}/results/")
    wait_for(browser, "#table-arms")
    labels = _charts_drawn(browser)
    assert len(labels) == 3
    cells = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in browser.find_elements(By.CSS_SELECTOR, '[data-table="arms"] tbody tr')
    ]
    assert [row[:4] for row in cells] == [
        ["A (control)", "50", str(expected.arms[0].users), str(expected.arms[0].conversions)],
        ["B", "50", str(expected.arms[1].users), str(expected.arms[1].conversions)],
    ]
    assert cells[1][4] == f"{expected.arms[1].rate * 100:.1f}%"
    assert browser.find_element(By.CSS_SELECTOR, '[data-metric="decision"]').text
    assert browser.find_elements(By.CSS_SELECTOR, '#health tr[data-check="srm"]')
    assert browser.execute_script("return window.__violations") == []
    screenshot(browser, "experiments-results")
    browser.execute_script("arguments[0].scrollIntoView()", browser.find_element(By.ID, "chart-survival"))
    screenshot(browser, "experiments-results-survival")

    browser.get(f"{live_server.url}/admin/analytics/experiments/?workspace={workspace.pk}")
    wait_for(browser, "#table-experiments")
    assert len(_charts_drawn(browser)) == 1
    first = browser.find_element(By.CSS_SELECTOR, '[data-table="experiments"] tbody tr td a')
    assert first.text == "shorter-setup"
    assert browser.execute_script("return window.__violations") == []
    screenshot(browser, "experiments-dashboard")
    first.click()
    wait_for(browser, "#table-arms")
    assert browser.current_url.endswith(f"/admin/experiments/experiment/{experiment.pk}/results/")
