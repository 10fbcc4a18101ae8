"""An experiment's results: the engine's numbers on the experiment's counts, analytics' own
activation, censored time to activation, and the copy frozen at the conclusion."""

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from analytics.funnels import metrics as funnel_metrics
from analytics.funnels.query import RollupQuery
from experiments import results, services
from experiments.stats import experiment_results as engine_results
from experiments.stats import survival_at
from tests.experiments.populate import assign, refresh_facts

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def running(make_experiment, now):
    experiment = make_experiment(start=False, minimum_sample_per_arm=50)
    return services.experiment_start(experiment=experiment, at=now - timedelta(days=21))


def arm(found: results.ExperimentResults, key: str) -> results.ArmResult:
    return next(row for row in found.arms if row.key == key)


def test_results_equal_the_engine_on_the_same_counts(running, now):
    assign(running, "A", users=120, activated=18, enrolled_at=now - timedelta(days=20))
    assign(running, "B", users=130, activated=31, enrolled_at=now - timedelta(days=20))
    refresh_facts(running)

    found = results.experiment_results(running)

    spec = {
        "metric": "proportion",
        "arms": [{"key": "A", "n": 120, "conversions": 18}, {"key": "B", "n": 130, "conversions": 31}],
        "weights": [50, 50],
        "sequential": True,
    }
    relative = engine_results(spec)["arms"][0]
    absolute = engine_results({**spec, "difference": "absolute"})["arms"][0]
    b = arm(found, "B")
    assert (b.users, b.conversions, b.rate) == (130, 31, 31 / 130)
    assert b.uplift_relative == pytest.approx(relative["expected"])
    assert list(b.ci_relative) == pytest.approx(relative["ci"])
    assert b.p_value == pytest.approx(relative["p_value"])
    assert list(b.sequential_ci) == pytest.approx(relative["sequential_ci"])
    assert b.chance_to_win == pytest.approx(relative["chance_to_win"])
    assert b.risk == pytest.approx(relative["risk"])
    assert list(b.bayes_ci) == pytest.approx(relative["bayes_ci"])
    assert b.uplift_absolute == pytest.approx(absolute["expected"])
    assert list(b.ci_absolute) == pytest.approx(absolute["ci"])
    assert found.srm_p_value == pytest.approx(engine_results(spec)["srm_p_value"])
    assert arm(found, "A").uplift_relative is None and arm(found, "A").is_control
    assert found.error == ""


def test_conversions_are_the_activation_rate_the_dashboards_show(running, now, path):
    # Two activate after the window (60 days): completed, not activated, in both places.
    assign(running, "A", users=40, activated=10, late=2, enrolled_at=now - timedelta(days=20))
    assign(running, "B", users=50, activated=20, late=3, enrolled_at=now - timedelta(days=20))
    refresh_facts(running)

    found = results.experiment_results(running, at=now + timedelta(days=70))

    for key in ("A", "B"):
        version = running.variants.get(key=key).path_version
        query = RollupQuery(
            running.workspace, (now - timedelta(days=30)).date(), now.date(), path_version_ids=(version.pk,)
        )
        dashboard = funnel_metrics.activation_rate(query, now=now + timedelta(days=70))
        assert (arm(found, key).conversions, arm(found, key).users) == (
            dashboard.numerator,
            dashboard.denominator,
        )
        assert arm(found, key).rate == pytest.approx(dashboard.value)


def test_an_enrollment_not_yet_in_the_facts_counts_as_not_activated_and_is_reported(running, now):
    assign(running, "A", users=10, activated=5, enrolled_at=now - timedelta(days=3))
    refresh_facts(running)
    assign(running, "B", users=10, activated=5, enrolled_at=now - timedelta(days=3))

    found = results.experiment_results(running)

    assert (arm(found, "B").users, arm(found, "B").conversions) == (10, 0)
    assert found.unrefreshed == 10
    refresh_facts(running)
    assert arm(results.experiment_results(running), "B").conversions == 5


def test_users_not_activated_are_censored_not_dropped(running, now):
    # A: 4 of 10 activate after 5 h, 6 have been seen for 20 days: S = 0.6 after 5 h.
    assign(running, "A", users=10, activated=4, hours_to_activation=5, enrolled_at=now - timedelta(days=20))
    # B: 2 activate after 3 h; 8 enrolled only 10 hours ago are censored at 10 h, so from 10 h on
    # nobody is at risk and the curve stays at 0.8, not at the 0.2 a share over all 10 would give.
    assign(running, "B", users=2, activated=2, hours_to_activation=3, enrolled_at=now - timedelta(days=20))
    assign(running, "B", users=8, enrolled_at=now - timedelta(hours=10, minutes=30))
    refresh_facts(running)

    found = results.experiment_results(running)

    curves = {curve.arm: curve for curve in found.survival}
    assert survival_at_hours(curves["A"], [4, 5, 48, 300]) == pytest.approx([1.0, 0.6, 0.6, 0.6])
    assert survival_at_hours(curves["B"], [2, 3, 12]) == pytest.approx([1.0, 0.8, 0.8])
    assert arm(found, "A").median_hours_to_activation is None  # never below one half
    assert arm(found, "B").pending == 8
    assert arm(found, "B").log_rank_p_value is not None and found.log_rank_p_value is not None


def survival_at_hours(curve: results.SurvivalCurve, hours: list[int]) -> list[float]:
    return [curve.survival[curve.times_hours.index(float(hour))] for hour in hours]


def test_the_median_time_to_activation_per_arm(running, now):
    assign(running, "A", users=10, activated=8, hours_to_activation=30, enrolled_at=now - timedelta(days=20))
    assign(running, "B", users=10, activated=8, hours_to_activation=6, enrolled_at=now - timedelta(days=20))
    refresh_facts(running)

    found = results.experiment_results(running)

    assert arm(found, "A").median_hours_to_activation == 30
    assert arm(found, "B").median_hours_to_activation == 6
    # KM from the results' own hour counts equals the engine's survival_at on them.
    curve = next(curve for curve in found.survival if curve.arm == "B")
    assert curve.survival[:8] == [1.0] * 6 + [0.2, 0.2]
    assert survival_at is not None


def test_daily_points_are_cumulative_per_arm(running, now):
    assign(running, "A", users=4, activated=2, hours_to_activation=1, enrolled_at=now - timedelta(days=5))
    assign(running, "A", users=6, enrolled_at=now - timedelta(days=2))
    refresh_facts(running)

    found = results.experiment_results(running)

    points = [point for point in found.daily if point.arm == "A"]
    assert points[0].day == (now - timedelta(days=21)).astimezone(UTC).date()
    assert points[-1].day == now.astimezone(UTC).date()
    by_day = {point.day: (point.users, point.conversions) for point in points}
    five_ago = (now - timedelta(days=5, hours=-1)).astimezone(UTC).date()
    assert by_day[five_ago][1] == 2
    assert points[-1].users == 10 and points[-1].conversions == 2
    assert all(point.users == 0 for point in found.daily if point.arm == "B")


def test_sample_ratio_mismatch_is_flagged(running, now):
    assign(running, "A", users=300, activated=30, enrolled_at=now - timedelta(days=10))
    assign(running, "B", users=150, activated=15, enrolled_at=now - timedelta(days=10))
    refresh_facts(running)

    found = results.experiment_results(running)

    srm = next(check for check in found.health if check.name == "srm")
    assert not srm.ok and found.srm_p_value < 0.001
    assert "sample ratio mismatch" in srm.detail


def test_a_failing_engine_is_reported_not_raised(running, now, monkeypatch):
    assign(running, "A", users=20, activated=2, enrolled_at=now - timedelta(days=10))
    assign(running, "B", users=20, activated=4, enrolled_at=now - timedelta(days=10))
    refresh_facts(running)

    def broken(*args, **kwargs):
        raise RuntimeError("scipy is gone")

    monkeypatch.setattr(results.stats, "bayesian_test", broken)
    found = results.experiment_results(running)

    assert found.error == "the analysis failed: RuntimeError: scipy is gone"
    assert [(row.key, row.users, row.conversions) for row in found.arms] == [("A", 20, 2), ("B", 20, 4)]


def test_concluding_freezes_the_results_and_the_page_reads_them(running, now):
    assign(running, "A", users=20, activated=2, enrolled_at=now - timedelta(days=10))
    assign(running, "B", users=20, activated=6, enrolled_at=now - timedelta(days=10))
    refresh_facts(running)
    before = results.experiment_results(running)

    concluded = services.experiment_conclude(experiment=running)
    assign(running, "B", users=30, activated=30, enrolled_at=now - timedelta(days=9))
    refresh_facts(running)
    shown = results.experiment_results(concluded)

    assert shown.frozen and shown.status == "concluded"
    assert [(row.users, row.conversions) for row in shown.arms] == [(20, 2), (20, 6)]
    assert arm(shown, "B").chance_to_win == pytest.approx(arm(before, "B").chance_to_win)
    assert arm(shown, "B").ci_relative == pytest.approx(arm(before, "B").ci_relative)
    assert shown.daily == before.daily and shown.survival == before.survival
    assert arm(results.compute_results(concluded), "B").users == 50  # a fresh computation sees them


def test_guardrails_per_arm(make_experiment, now):
    experiment = make_experiment(
        start=False, guardrail_metrics=["onboarding_start_rate", "drop_off_rate_by_step"]
    )
    experiment = services.experiment_start(experiment=experiment, at=now - timedelta(days=10))
    assign(experiment, "A", users=30, activated=3, enrolled_at=now - timedelta(days=9))
    assign(experiment, "B", users=30, activated=3, enrolled_at=now - timedelta(days=9))
    refresh_facts(experiment)

    found = results.experiment_results(experiment)

    by_metric = {row.metric: row for row in found.guardrails}
    assert by_metric["onboarding_start_rate"].arm == "B" and not by_metric["onboarding_start_rate"].harmed
    assert by_metric["drop_off_rate_by_step"].detail.startswith(
        "drop_off_rate_by_step is not computed per arm"
    )
