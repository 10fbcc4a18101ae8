"""The admin's dashboards (analytics.dashboards) through Django's test client, on known data:
scoped to the admin's workspaces, the numbers shown are the analytics services' numbers, every
table exports as the same CSV, and bad filters say what is wrong (400) rather than fail."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.utils import timezone

from analytics.dashboards.registry import dashboards
from analytics.dashboards.tables import NONE_SHOWN
from analytics.events import raw
from analytics.events.rollups import LAG, event_rollups_refresh
from analytics.funnels import metrics
from analytics.funnels.path_funnel import path_funnel
from analytics.funnels.query import RollupQuery
from analytics.nudges.breakdown import nudge_totals
from analytics.nudges.metrics import NudgeQuery
from analytics.rollups import services
from analytics.signals.storage import signals_storage
from onboarding.models import Enrollment
from onboarding.stuck import selectors as stuck_selectors
from tenancy import services as tenancy_services
from tests.analytics.rollup_data import DAY_1, DAY_2, build_history
from tests.conftest import verified_client
from tests.factories import AdminUserFactory, EndUserFactory, EventFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

PRODUCT = "/admin/analytics/product/"
RANGE = {"from": DAY_1.isoformat(), "to": DAY_2.isoformat()}


@pytest.fixture
def acme_and_globex():
    """Acme (granted to the admin) with the known history; Globex (not granted) with more of it."""
    acme = WorkspaceFactory(name="Acme")
    globex = WorkspaceFactory(name="Globex")
    version, _ = build_history(acme)
    build_history(globex)
    build_history_extra = EndUserFactory(workspace=globex)  # one more user: Globex's counts differ
    Enrollment.objects.create(
        workspace=globex,
        end_user=build_history_extra,
        path_version=Enrollment.objects.filter(workspace=globex).first().path_version,
        enrolled_at=datetime(2026, 1, 5, 11, tzinfo=UTC),
        step_entered_at=datetime(2026, 1, 5, 11, tzinfo=UTC),
    )
    services.rollups_refresh(workspace=acme)
    services.rollups_refresh(workspace=globex)
    admin = AdminUserFactory(username="grace")
    tenancy_services.workspace_grant(workspace=acme, user=admin, can_change=False)
    return acme, globex, version, verified_client(admin)


def _table(response, key: str):
    return next(table for table in response.context["tables"] if table.key == key)


def _shown_rows(response, key: str) -> list[list[str]]:
    """The text of each body row of the page's table `key`, as a reader sees it."""
    html = response.content.decode()
    found = re.search(rf'<table class="data-table" data-table="{key}">(.*?)</table>', html, re.S)
    assert found, f"no table {key} on the page"
    body = found.group(1).split("<tbody>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
    ]


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_every_registered_dashboard_renders_for_a_verified_admin(acme_and_globex):
    client = acme_and_globex[3]
    for entry in dashboards():
        response = client.get(f"/admin/analytics/{entry.key}/", RANGE)
        assert response.status_code == 200, entry.key
        assert response.context["filters"].workspace.name == "Acme"


def test_the_dashboards_need_the_two_factor_admin_login(acme_and_globex, client):
    assert client.get(PRODUCT).status_code == 302
    assert "/admin/login/" in client.get(PRODUCT)["Location"]


def test_the_product_funnel_shows_the_path_funnel_service_numbers(acme_and_globex):
    acme, _, version, client = acme_and_globex
    response = client.get(PRODUCT, {**RANGE, "path": "setup"})

    expected = path_funnel(RollupQuery(acme, DAY_1, DAY_2), version)
    table = _table(response, "funnel")
    assert [row[:5] for row in table.rows] == [
        [step.key, step.title, step.entered, step.advanced, step.completed] for step in expected
    ]
    shown = _shown_rows(response, "funnel")
    assert [row[2:5] for row in shown] == [
        [str(step.entered), str(step.advanced), str(step.completed)] for step in expected
    ]
    assert [row[5] for row in shown] == [f"{step.drop_off_rate * 100:.1f}%" for step in expected]
    # the known history (rollup_data.SPECS): all 7 enter s1; e1, e2, e3, e5, e6 pass it; s3 is
    # entered by those past s2: e1, e2 (skipped), e6 and e7 (s2 without s1)
    assert [step.entered for step in expected] == [7, 5, 4]


def test_the_headline_numbers_are_the_metric_functions(acme_and_globex):
    acme, _, _, client = acme_and_globex
    response = client.get(PRODUCT, RANGE)

    query = RollupQuery(acme, DAY_1, DAY_2)
    activation = metrics.activation_rate(query)
    assert (activation.numerator, activation.denominator) == (1, 7)  # e6 took 20 days > 14
    headline = response.context["headline"]
    assert headline["activation"] == activation
    assert headline["starts"] == metrics.onboarding_start_rate(query)
    assert headline["tta_p50"] == metrics.time_to_activation_p50_hours(query)
    html = response.content.decode()
    assert '<p class="metric-value" data-metric="activation_rate">14.3%</p>' in html


def test_activation_per_day_sums_to_the_metric(acme_and_globex):
    acme, _, _, client = acme_and_globex
    response = client.get(PRODUCT, RANGE)

    rows = _table(response, "activation_trend").rows
    assert [row[0] for row in rows] == [DAY_1, DAY_2]
    assert [row[1:3] for row in rows] == [[5, 1], [2, 0]]
    activation = metrics.activation_rate(RollupQuery(acme, DAY_1, DAY_2))
    assert sum(row[2] for row in rows) == activation.numerator
    assert sum(row[1] for row in rows) == activation.denominator


def test_another_workspaces_numbers_never_show(acme_and_globex):
    _, globex, _, client = acme_and_globex
    response = client.get(PRODUCT, RANGE)

    assert [each.name for each in response.context["filters"].workspaces] == ["Acme"]
    assert "Globex" not in response.content.decode()
    assert [row[1] for row in _table(response, "activation_trend").rows] == [5, 2]  # Globex has 6 on day 1
    assert client.get(PRODUCT, {**RANGE, "workspace": globex.pk}).status_code == 404
    assert client.get("/admin/", {**RANGE, "workspace": globex.pk}).status_code == 404
    assert client.get(PRODUCT, {**RANGE, "workspace": "x"}).status_code == 404


def test_an_admin_without_a_workspace_is_told_so(acme_and_globex):
    client = verified_client(AdminUserFactory(username="nobody"))
    response = client.get(PRODUCT)
    assert response.status_code == 200
    assert "No workspace is granted to you" in response.content.decode()


def test_every_table_exports_as_the_csv_of_what_it_shows(acme_and_globex):
    client = acme_and_globex[3]
    page = client.get(PRODUCT, {**RANGE, "path": "setup"})
    for table in page.context["tables"]:
        rows = _csv(client.get(PRODUCT, {**RANGE, "path": "setup", "export": table.key}))
        assert rows[0] == [column.label for column in table.columns]
        assert len(rows) - 1 == len(table.rows)
        shown_rows = _shown_rows(page, table.key) if table.rows else []  # else "Nothing in this range."
        for exported, shown in zip(rows[1:], shown_rows, strict=True):
            for column, raw_value, text in zip(table.columns, exported, shown, strict=True):
                if column.kind in ("ratio", "share") and raw_value:
                    assert text == f"{float(raw_value) * 100:.1f}%"
                elif column.kind in ("int", "text"):
                    assert text == (raw_value or NONE_SHOWN)
    funnel = _csv(client.get(PRODUCT, {**RANGE, "path": "setup", "export": "funnel"}))
    assert funnel[1][:5] == ["s1", "Step s1", "7", "5", "5"]
    assert client.get(PRODUCT, {**RANGE, "export": "nope"}).status_code == 404


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"from": "2026-13-01"}, "from", "is not a date"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to", "is before from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from", "more than 400 days"),
        ({"path": "nope"}, "path", "No path 'nope'"),
        ({"path": "setup", "version": "abc"}, "version", "not a version number"),
        ({"path": "setup", "version": "9"}, "version", "has no version 9"),
        ({"version": "1"}, "version", "needs its path"),
        ({"persona": "x" * 101}, "persona", "At most 100"),
        ({"funnel_steps": "Signed Up"}, "funnel_steps", "2 to 10 steps"),
        ({"funnel_steps": "a,b", "funnel_order": "sideways"}, "funnel_order", "not a valid order"),
        ({"funnel_steps": "a,b", "funnel_window_hours": "-3"}, "funnel_window_hours", "hours"),
        ({"cohort_by": "month"}, "cohort_by", "not a valid by"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(acme_and_globex, query, field, message):
    response = acme_and_globex[3].get(PRODUCT, query)
    assert response.status_code == 400
    assert message in response.context["errors"][field]
    html = unescape(response.content.decode())
    assert field in html and message in html


def test_the_event_funnel_builder_runs_the_event_funnel_service(acme_and_globex, monkeypatch):
    acme, _, _, client = acme_and_globex
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    for number in range(4):
        end_user = EndUserFactory(workspace=acme)
        EventFactory(end_user=end_user, name="Signed Up", timestamp=start)
        if number < 3:
            EventFactory(end_user=end_user, name="Project Created", timestamp=start + timedelta(hours=1))
    query = {**RANGE, "funnel_steps": "Signed Up, Project Created", "funnel_window_hours": "24"}

    response = client.get(PRODUCT, query)

    assert response.status_code == 200
    assert [row[:3] for row in _table(response, "event_funnel").rows] == [
        [1, "Signed Up", 4],
        [2, "Project Created", 3],
    ]
    assert "Stale" not in response.content.decode()

    def timed_out(compute):
        raise raw.QueryTimedOut("canceling statement due to statement timeout")

    monkeypatch.setattr(raw, "execute_with_timeout", timed_out)
    stale = client.get(PRODUCT, query)
    assert [row[2] for row in _table(stale, "event_funnel").rows] == [4, 3]
    assert "Stale: the query timed out; this result is" in stale.content.decode()
    fresh_query = {**query, "funnel_order": "any"}  # nothing cached for these parameters
    unavailable = client.get(PRODUCT, fresh_query)
    assert unavailable.status_code == 400
    assert "no earlier result" in unavailable.context["errors"]["funnel"]


def test_the_cohort_heat_map_carries_each_share_as_text_and_a_decile_class(acme_and_globex):
    acme, _, _, client = acme_and_globex
    monday = datetime(2026, 11, 2, 9, tzinfo=UTC)
    users = [EndUserFactory(workspace=acme) for _ in range(4)]
    type(users[0]).objects.filter(pk__in=[user.pk for user in users]).update(created_at=monday)
    for number, user in enumerate(users):
        EventFactory(end_user=user, name="Seen", timestamp=monday)
        if number < 3:
            EventFactory(end_user=user, name="Seen", timestamp=monday + timedelta(days=7))
    event_rollups_refresh(workspace=acme, now=timezone.now() + LAG)  # as the scheduler would have
    response = client.get(
        PRODUCT, {"from": "2026-11-02", "to": "2026-11-08", "cohort_by": "signup", "cohort_weeks": "2"}
    )

    table = _table(response, "cohorts")
    assert table.rows[0][:4] == ["2026-11-02", 4, 1.0, 0.75]
    html = response.content.decode()
    assert '<td class="shade-9">100.0%</td>' in html
    assert '<td class="shade-7">75.0%</td>' in html
    assert "style=" not in html.split('id="content-main"')[1]


def test_the_overview_home_shows_the_services_numbers(acme_and_globex):
    acme, _, _, client = acme_and_globex
    Enrollment.objects.filter(workspace=acme).update(status=Enrollment.Status.ACTIVE, current_step_key="s2")
    Enrollment.objects.filter(workspace=acme).filter(
        pk__in=Enrollment.objects.filter(workspace=acme).values("pk")[:3]
    ).update(stuck_at=timezone.now())

    response = client.get("/admin/", RANGE)

    assert response.status_code == 200
    cards = {card["key"]: card for card in response.context["cards"]}
    query = RollupQuery(acme, DAY_1, DAY_2)
    assert cards["activation"]["value"] == metrics.activation_rate(query)
    assert cards["starts"]["value"] == metrics.onboarding_start_rate(query)
    assert cards["tta"]["value"] == metrics.time_to_activation_p50_hours(query)
    totals = nudge_totals(NudgeQuery(workspace=acme, date_from=DAY_1, date_to=DAY_2))
    assert cards["nudges"]["value"] == totals
    shares = stuck_selectors.stuck_shares_by_step(workspaces=[acme])
    assert response.context["stuck_total"] == sum(share.stuck for share in shares) == 3
    assert _table(response, "stuck").rows == [["Setup v1 · 2. s2", 7, 3, 1.0]]
    html = response.content.decode()
    assert '<span data-metric="started">6</span> started of <span data-metric="enrolled">7</span>' in html
    assert 'href="/admin/analytics/product/?workspace=' in html
    assert _csv(client.get("/admin/", {**RANGE, "export": "starts"}))[1:] == [
        [DAY_1.isoformat(), "5", "4", "0.8"],
        [DAY_2.isoformat(), "2", "2", "1.0"],
    ]


def test_the_navigation_follows_the_teams_workflow(acme_and_globex):
    client = acme_and_globex[3]
    response = client.get("/admin/")
    sections = [section["name"] for section in response.context["app_list"]]
    assert sections[:2] == ["Overview", "Paths"]
    assert sections == [
        name
        for name in (
            "Overview",
            "Paths",
            "People & progress",
            "Nudges",
            "Experiments",
            "Machine learning",
            "Analytics",
            "Guardrails",
            "Settings",
        )
        if name in sections
    ]
    assert "Machine learning" in sections
    analytics = next(section for section in response.context["app_list"] if section["name"] == "Analytics")
    assert "Product dashboard" in [entry["name"] for entry in analytics["models"]]
    assert "Signals reports" in [entry["name"] for entry in analytics["models"]]


def test_the_product_dashboard_links_the_workspaces_latest_signals_report(acme_and_globex):
    acme, globex, _, client = acme_and_globex
    assert "no report yet" in client.get(PRODUCT, RANGE).content.decode()
    storage = signals_storage()
    for workspace, label in (
        (acme, "all"),
        (acme, "2026-01-04"),
        (acme, "2026-01-05"),
        (globex, "2026-02-01"),
    ):
        storage.put(f"reports/{workspace.pk}/{label}/report.html", b"<html></html>", content_type="text/html")

    html = client.get(PRODUCT, RANGE).content.decode()

    assert f'href="/admin/analytics/signals/{acme.pk}/2026-01-05/report.html"' in html
    assert "2026-02-01" not in html
