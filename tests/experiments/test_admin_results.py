"""The results page and the experiments dashboard, on real data: assignments with their
enrollments, and analytics' enrollment facts rebuilt by the rollups service, as the dashboards read
them. The numbers shown are experiments.results' numbers for the same experiment."""

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from analytics.rollups import services as rollup_services
from experiments import results as experiment_results
from experiments import results_page, services
from experiments.models import Experiment
from tenancy import services as tenancy_services
from tests.conftest import verified_client
from tests.experiments import populate
from tests.factories import AdminUserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/experiments/experiment/"
DASHBOARD = "/admin/analytics/experiments/"


def seed_arm(
    experiment: Experiment,
    arm: str,
    *,
    users: int,
    activated: int,
    enrolled_at: datetime,
    hours_to_activation: float = 5.0,
) -> None:
    """`users` people assigned to `arm` and enrolled on its path version at `enrolled_at`; the first
    `activated` of them complete the path `hours_to_activation` later (inside the activation window)."""
    populate.assign(
        experiment,
        arm,
        users=users,
        activated=activated,
        enrolled_at=enrolled_at,
        hours_to_activation=hours_to_activation,
    )


def refresh_facts(experiment: Experiment) -> None:
    rollup_services.rollups_rebuild(workspace=experiment.workspace)


@pytest.fixture
def client(workspace):
    user = AdminUserFactory(username="alice")
    tenancy_services.workspace_grant(workspace=workspace, user=user, can_change=True)
    return verified_client(user)


@pytest.fixture
def running(make_experiment):
    """Started 20 days ago; 18 days ago 200 users entered A (20 activated), 210 entered B (42)."""
    now = timezone.now()
    experiment = services.experiment_start(
        experiment=make_experiment(start=False), at=now - timedelta(days=20)
    )
    seed_arm(experiment, "A", users=200, activated=20, enrolled_at=now - timedelta(days=18))
    seed_arm(
        experiment, "B", users=210, activated=42, enrolled_at=now - timedelta(days=18), hours_to_activation=3
    )
    refresh_facts(experiment)
    return experiment


def results_url(experiment: Experiment) -> str:
    return f"{CHANGELIST}{experiment.pk}/results/"


def table(response, key: str):
    return next(each for each in response.context["tables"] if each.key == key)


def chart_json(response, element_id: str) -> dict:
    html = response.content.decode()
    start = html.index(f'<script id="{element_id}" type="application/json">') + len(
        f'<script id="{element_id}" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_the_results_page_shows_the_engines_numbers_per_arm(client, running):
    expected = experiment_results.results_as_dict(experiment_results.experiment_results(running))

    response = client.get(results_url(running))

    assert response.status_code == 200
    rows = table(response, "arms").rows
    assert [row[:5] for row in rows] == [["A (control)", 50, 200, 20, 0.1], ["B", 50, 210, 42, 0.2]]
    challenger = expected["arms"][1]
    assert rows[1][5] == results_page.percent(challenger["uplift_relative"], 1, True)
    assert rows[1][6] == results_page.interval(challenger["ci_relative"])
    assert rows[1][11] == challenger["chance_to_win"]
    html = response.content.decode()
    assert "+100.0%" in html  # B's rate doubles A's
    assert rows[0][5] is None  # control has no uplift over itself
    assert rows[0][14] == pytest.approx(expected["arms"][0]["median_hours_to_activation"])


def test_the_charts_carry_the_same_numbers_as_their_tables(client, running):
    response = client.get(results_url(running))

    cumulative = chart_json(response, "chart-data-cumulative")
    assert cumulative["type"] == "line"
    assert [dataset["label"] for dataset in cumulative["datasets"]] == ["A rate", "B rate"]
    assert [dataset["data"][-1] for dataset in cumulative["datasets"]] == [10.0, 20.0]
    assert cumulative["labels"][-1] == timezone.now().date().isoformat()

    uplift = chart_json(response, "experiment-chart-uplift")
    assert uplift["labels"] == ["B"]
    assert [dataset["label"] for dataset in uplift["datasets"]] == [
        label for _, label, _ in results_page.METHODS
    ]
    assert uplift["estimate"]["data"] == [100.0]
    for dataset in uplift["datasets"]:
        low, high = dataset["data"][0]
        assert low < 100.0 < high
    assert len(table(response, "uplift").rows) == 3

    survival = chart_json(response, "experiment-chart-survival")
    assert [dataset["label"] for dataset in survival["datasets"]] == ["A", "B"]
    assert survival["datasets"][0]["data"][0] == {"x": 0.0, "y": 100.0}
    # After 5 hours 10% of A and after 3 hours 20% of B have activated; nobody else within the window.
    assert survival["datasets"][0]["data"][-1]["y"] == 90.0
    assert survival["datasets"][1]["data"][-1]["y"] == 80.0
    assert table(response, "survival").rows[-1][1:] == [0.9, 0.8]


def test_each_table_exports_as_csv(client, running):
    response = client.get(results_url(running), {"export": "arms"})

    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="onboarding-v2-arms.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:5] == ["arm", "weight (%)", "users", "conversions", "rate"]
    assert [row[:5] for row in rows[1:]] == [
        ["A (control)", "50", "200", "20", "0.1"],
        ["B", "50", "210", "42", "0.2"],
    ]
    assert client.get(results_url(running), {"export": "nothing"}).status_code == 404


def test_the_health_checks_are_listed_and_a_failing_one_warns(client, make_experiment):
    now = timezone.now()
    experiment = services.experiment_start(
        experiment=make_experiment(start=False), at=now - timedelta(days=20)
    )
    seed_arm(experiment, "A", users=150, activated=15, enrolled_at=now - timedelta(days=18))
    seed_arm(experiment, "B", users=300, activated=30, enrolled_at=now - timedelta(days=18))
    refresh_facts(experiment)

    response = client.get(results_url(experiment))

    health = {row["name"]: row for row in response.context["health"]}
    assert set(health) == {"srm", "too_little_data", "multiple_exposures"}
    assert health["srm"]["ok"] is False
    expected = experiment_results.experiment_results(experiment).srm_p_value
    assert health["srm"]["detail"].endswith(
        f"(chi-square p = {results_page.p_value(expected)}; flagged below 0.001)"
    )
    assert [row["name"] for row in response.context["failing_health"]] == ["srm"]
    html = response.content.decode()
    assert 'id="health-warning"' in html
    assert "do not trust these results" in html


def test_a_healthy_experiment_shows_no_warning(client, running):
    response = client.get(results_url(running))

    assert [(row["name"], row["ok"]) for row in response.context["health"]] == [
        ("srm", True),
        ("too_little_data", True),
        ("multiple_exposures", True),
    ]
    assert 'id="health-warning"' not in response.content.decode()


def test_the_last_decision_and_the_next_evaluation_are_shown(client, running):
    evaluated_at = timezone.now() - timedelta(minutes=10)
    Experiment.objects.filter(pk=running.pk).update(
        last_decision={
            "action": "continue",
            "winner": "",
            "reason": "B: 9 days < 7 minimum? no: 200/210 users < 1,000 per arm",
            "evaluated_at": evaluated_at.isoformat(),
        },
        last_decision_at=evaluated_at,
    )

    response = client.get(results_url(running))

    assert response.context["decision"]["action"] == "continue"
    assert response.context["next_evaluation"] == evaluated_at + timedelta(hours=1)
    html = response.content.decode()
    assert "200/210 users &lt; 1,000 per arm" in html
    assert "Next evaluation:" in html


def test_a_concluded_experiment_shows_its_frozen_results_labelled_so(client, running):
    services.experiment_conclude(experiment=running)
    running.refresh_from_db()
    seed_arm(running, "A", users=100, activated=90, enrolled_at=timezone.now() - timedelta(days=16))
    refresh_facts(running)

    response = client.get(results_url(running))

    assert response.context["frozen"] is True
    assert [row[2] for row in table(response, "arms").rows] == [200, 210]
    html = response.content.decode()
    assert "Final results, frozen when the experiment was concluded" in html
    assert response.context["buttons"] == []


def test_the_experiments_dashboard_lists_what_is_collecting_data(
    client, running, path, live_version, old_version
):
    services.create_path_experiment(path=path, versions=[live_version, old_version], key="still-a-draft")
    other = WorkspaceFactory()
    Experiment.objects.create(workspace=other, key="theirs", name="theirs", status="running")

    response = client.get(DASHBOARD)

    assert response.status_code == 200
    summary = table(response, "experiments")
    assert [row[:5] for row in summary.rows] == [["onboarding-v2", "running", "activation_rate", 20, 410]]
    assert summary.links == [results_url(running)]
    assert table(response, "arms").rows == [
        ["onboarding-v2 \u00b7 A (control)", 200, 20, 0.1, None, None],
        [
            "onboarding-v2 \u00b7 B",
            210,
            42,
            0.2,
            "+100.0%",
            experiment_results.experiment_results(running).arms[1].chance_to_win,
        ],
    ]
    html = response.content.decode()
    assert f'href="{results_url(running)}"' in html
    assert response.context["running"] == 1


def test_the_dashboard_is_in_the_experiments_section(client, running):
    index = client.get("/admin/")

    sections = {section["name"]: section for section in index.context["app_list"]}
    names = [entry["name"] for entry in sections["Experiments"]["models"]]
    assert names[0] == "Experiments dashboard"
    assert sections["Experiments"]["models"][0]["admin_url"] == DASHBOARD


def test_the_decision_jobs_verdict_is_what_the_page_shows(client, running):
    decision = services.experiment_decide(experiment=running)

    response = client.get(results_url(running))

    assert response.context["decision"]["action"] == decision.action
    assert response.context["decision"]["reason"] == decision.reason
    assert response.context["next_evaluation"] == decision.evaluated_at + timedelta(hours=1)


def test_rolling_out_the_winner_concludes_with_frozen_results(client, make_experiment):
    now = timezone.now()
    experiment = services.experiment_start(
        experiment=make_experiment(start=False, minimum_sample_per_arm=100), at=now - timedelta(days=20)
    )
    seed_arm(experiment, "A", users=400, activated=40, enrolled_at=now - timedelta(days=18))
    seed_arm(experiment, "B", users=400, activated=100, enrolled_at=now - timedelta(days=18))
    refresh_facts(experiment)

    response = client.post(f"{CHANGELIST}{experiment.pk}/rollout/")

    messages = [str(message) for message in response.wsgi_request._messages]
    assert messages == ["onboarding-v2 rolled out and concluded."]
    experiment.refresh_from_db()
    assert experiment.status == "concluded"
    page = client.get(results_url(experiment))
    assert page.context["frozen"] is True
    assert [row[2] for row in table(page, "arms").rows] == [400, 400]


def test_a_draft_without_data_has_a_results_page_that_says_so(client, make_experiment):
    experiment = make_experiment(start=False)

    response = client.get(results_url(experiment))

    assert response.status_code == 200
    assert [row[2] for row in table(response, "arms").rows] == [0, 0]
    assert table(response, "cumulative").rows == []
    html = response.content.decode()
    assert "No further evaluation: the experiment is draft." in html


def test_a_failed_analysis_is_said_and_the_counts_still_shown(client, running, monkeypatch):
    def broken(*args, **kwargs):
        raise FloatingPointError("the engine is unavailable")

    monkeypatch.setattr(experiment_results, "_analysed", broken)

    response = client.get(results_url(running))

    assert response.status_code == 200
    assert "the analysis failed: FloatingPointError: the engine is unavailable" in response.content.decode()
    assert [row[2:4] for row in table(response, "arms").rows] == [[200, 20], [210, 42]]
