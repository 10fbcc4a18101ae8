"""The ML dashboard as an admin reads it: one workspace's versions and metrics, its latest drift
check, shadow agreement, decisions per day by policy, latency and open alerts; every table exported
as CSV as shown; another workspace's models never appear."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from core import latency
from ml.models import DriftReport, ModelAlert, ModelVersion, PathChoice
from tenancy import services as tenancy_services
from tests.analytics.dashboard_pages import assert_csv_equals_page, page_tables
from tests.conftest import verified_client
from tests.factories import AdminUserFactory, EndUserFactory
from tests.ml.conftest import register_tiny

PAGE = "/admin/analytics/ml/"
RANGE = {"from": "2026-03-10", "to": "2026-03-11"}
POLICY = {
    "rules": {"activation": 0.25, "ci95": [0.2, 0.3]},
    "model": {"activation": 0.31, "ci95": [0.26, 0.36], "difference": 0.06, "difference_ci95": [0.01, 0.11]},
}


def _choice(workspace, day: int, policy: str, shadow: list | None = None) -> PathChoice:
    return PathChoice.objects.create(
        workspace=workspace,
        end_user=EndUserFactory(workspace=workspace),
        decided_at=datetime(2026, 3, day, 9, 30, tzinfo=UTC),
        policy=policy,
        path_key="get-started",
        propensity=1.0,
        shadow=shadow or [],
    )


@pytest.fixture
def workspaces(db, fresh_serving):
    acme, _, _ = tenancy_services.workspace_create(name="Acme")
    globex, _, _ = tenancy_services.workspace_create(name="Globex")
    active = register_tiny(acme, metrics={"auc": 0.74, "log_loss": 0.58, "ece": 0.031, "policy": POLICY})
    shadow = register_tiny(acme, metrics={"auc": 0.77, "log_loss": 0.55, "ece": 0.02})
    ModelVersion.objects.filter(pk=active.pk).update(status=ModelVersion.Status.ACTIVE)
    ModelVersion.objects.filter(pk=shadow.pk).update(status=ModelVersion.Status.SHADOW)
    now = timezone.now()
    DriftReport.objects.create(
        workspace=acme,
        model_version=active,
        computed_at=now,
        window_start=now,
        window_end=now,
        psi={"persona": 0.31, "engagement_score": 0.04},
        max_psi=0.31,
        auc_at_training=0.74,
        auc_now=0.69,
        matured_rows=412,
        accuracy_drop=0.06757,
        retraining_started=True,
    )
    ModelAlert.objects.create(
        workspace=acme, model_version=active, kind="drift", message="PSI 0.31 on persona"
    )
    ModelAlert.objects.create(
        workspace=acme, model_version=active, kind="drift", message="seen", acknowledged_at=now
    )
    agrees = [{"version": "1.1.0", "model_version_id": shadow.pk, "path_key": "get-started", "agrees": True}]
    differs = [{"version": "1.1.0", "model_version_id": shadow.pk, "path_key": "analysts", "agrees": False}]
    _choice(acme, 10, "rules", agrees)
    _choice(acme, 10, "rules", differs)
    _choice(acme, 10, "model", agrees)
    _choice(acme, 11, "explore", [{"version": "1.1.0", "error": "ValueError: boom"}])
    _choice(acme, 12, "model")  # after the range
    theirs = register_tiny(globex)
    ModelAlert.objects.create(workspace=globex, model_version=theirs, kind="drift", message="Globex's own")
    _choice(globex, 10, "model", agrees)
    return acme, globex


@pytest.fixture
def quantiles(monkeypatch):
    """The instance's latency histograms as they stand, fixed: other tests of this process observe
    them between two requests."""
    p95 = {"ml_inference_latency_p95_ms": 0.084, "path_selection_latency_p95_ms": 2.5}
    monkeypatch.setattr(latency, "read_families", lambda directory=None: [])
    monkeypatch.setattr(latency, "latency_quantile", lambda name, quantile=0.95, **options: p95.get(name))
    return p95


@pytest.fixture
def grace(workspaces, quantiles):
    acme, _ = workspaces
    user = AdminUserFactory(username="grace")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=False)
    return verified_client(user)


def test_the_dashboard_shows_the_workspaces_models(workspaces, grace):
    acme, _ = workspaces

    page = grace.get(PAGE, {"workspace": acme.pk, **RANGE})

    assert page.status_code == 200
    tables = {table.key: table for table in page.context["tables"]}
    assert [row[:9] for row in tables["versions"].rows] == [
        ["path_classifier", "1.1.0", "shadow", 0.77, 0.55, 0.02, None, None, None],
        ["path_classifier", "1.0.0", "active", 0.74, 0.58, 0.031, 0.31, 0.25, "+0.060 [+0.010, +0.110]"],
    ]
    assert tables["drift_psi"].rows == [
        ["path_classifier 1.0.0", "persona", 0.31, "significant"],
        ["path_classifier 1.0.0", "engagement_score", 0.04, "stable"],
    ]
    check = tables["drift_checks"].rows[0]
    assert check[2:8] == [0.31, 412, 0.74, 0.69, "6.8%", "yes"]
    assert tables["shadow"].rows == [["path_classifier 1.1.0", 3, 2, 2 / 3, 1]]
    assert tables["decisions"].rows == [
        [datetime(2026, 3, 10).date(), 2, 1, 0, 0],
        [datetime(2026, 3, 11).date(), 0, 0, 1, 0],
    ]
    assert tables["decisions"].chart.series == ("rules", "model", "explore", "experiment")
    assert [(row[0], row[2]) for row in tables["latency"].rows] == [
        ("ml_inference_latency_p95_ms", 0.08),
        ("path_selection_latency_p95_ms", 2.5),
    ]
    assert [row[1:] for row in tables["alerts"].rows] == [
        ["feature drift", "path_classifier 1.0.0", "PSI 0.31 on persona"]
    ]
    shown = page_tables(page.content.decode())
    assert shown["shadow"][0][3] == "66.7%"
    assert page.context["open_alerts"] == 1 and page.context["active"] == 1


def test_every_table_exports_as_csv_as_shown(workspaces, grace):
    acme, _ = workspaces
    params = {"workspace": acme.pk, **RANGE}
    page = grace.get(PAGE, params)

    assert_csv_equals_page(grace, PAGE, params, page)
    assert grace.get(PAGE, {**params, "export": "decisions"}).content.decode().splitlines()[:2] == [
        "day (UTC),rules,model,exploration,model experiment",
        "2026-03-10,2,1,0,0",
    ]


def test_another_workspace_is_not_found_and_its_models_never_show(workspaces, grace):
    acme, globex = workspaces

    assert grace.get(PAGE, {"workspace": globex.pk, **RANGE}).status_code == 404
    html = grace.get(PAGE, {"workspace": acme.pk, **RANGE}).content.decode()
    assert "Globex&#x27;s own" not in html and "Globex's own" not in html


def test_the_dashboard_is_in_the_navigation(workspaces, grace):
    index = grace.get("/admin/")

    sections = {section["name"]: section for section in index.context["app_list"]}
    assert "Dashboard:ml" in [model["object_name"] for model in sections["Machine learning"]["models"]]
    page = grace.get(PAGE).content.decode()
    assert "\u203a Machine learning \u203a ML dashboard</div>" in page
