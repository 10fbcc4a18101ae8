"""The decision rules, one test per branch, and the hourly job that acts on them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments import decisions, results, services
from experiments.jobs import evaluate_experiments_job
from experiments.models import Experiment
from tenancy.models import AuditLog
from tests.experiments.populate import assign, refresh_facts

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def started(make_experiment, now):
    def start(days_ago: float, **options):
        options.setdefault("minimum_sample_per_arm", 100)
        experiment = make_experiment(start=False, **options)
        return services.experiment_start(experiment=experiment, at=now - timedelta(days=days_ago))

    return start


def clear_winner(experiment, now, *, days_ago=9):
    assign(experiment, "A", users=300, activated=30, enrolled_at=now - timedelta(days=days_ago))
    assign(experiment, "B", users=300, activated=75, enrolled_at=now - timedelta(days=days_ago))
    refresh_facts(experiment)


def no_difference(experiment, now, *, days_ago=9, users=300):
    assign(experiment, "A", users=users, activated=users // 10, enrolled_at=now - timedelta(days=days_ago))
    assign(experiment, "B", users=users, activated=users // 10, enrolled_at=now - timedelta(days=days_ago))
    refresh_facts(experiment)


def test_a_winner_with_the_reason_a_person_reads(started, now):
    experiment = started(10)
    clear_winner(experiment, now)

    decision = decisions.evaluate(experiment)

    assert (decision.action, decision.winner) == ("winner", "B")
    b = next(arm for arm in decision.results.arms if arm.key == "B")
    assert decision.reason == (
        f"B: chance to win {b.chance_to_win:.1%} >= 95%, risk {b.risk:.2%} < 0.25%, "
        "300/300 users >= 100 per arm, 10 days >= 7"
    )


def test_no_winner_before_the_minimum_sample_even_when_clear(started, now):
    experiment = started(10, minimum_sample_per_arm=1000)
    clear_winner(experiment, now)

    decision = decisions.evaluate(experiment)

    assert decision.action == "extend"  # day 10 of a planned 7, and the sample is short
    assert "300/300 users < 1,000 per arm" in decision.reason


def test_no_winner_before_the_minimum_duration(started, now):
    experiment = started(3)
    clear_winner(experiment, now, days_ago=2)

    decision = decisions.evaluate(experiment)

    assert (decision.action, decision.winner) == ("continue", "")
    assert decision.reason.startswith("no decision before the planned end (day 3 of 7): B chance to win")


def test_low_confidence_at_the_planned_end_extends_and_records_it(started, now):
    experiment = started(8)
    no_difference(experiment, now, days_ago=8)

    decision = services.experiment_decide(experiment=experiment)

    experiment.refresh_from_db()
    assert decision.action == "extend" and decision.planned_duration_days == 14
    assert decision.reason.startswith("confidence low at the planned end (day 8 of 7): B chance to win")
    assert decision.reason.endswith("extended to 14 days (maximum 30)")
    assert experiment.status == "running" and experiment.planned_duration_days == 14
    assert experiment.last_decision["action"] == "extend"
    audit = AuditLog.objects.get(action="experiment.extend")
    assert audit.changes == {
        "before": {"planned_duration_days": 7},
        "after": {"planned_duration_days": 14},
        "reason": decision.reason,
    }
    # The same hour again: the planned end has moved, so nothing more happens.
    again = services.experiment_decide(experiment=experiment)
    assert again.action == "continue" and AuditLog.objects.filter(action="experiment.extend").count() == 1


def test_the_extension_never_passes_the_maximum(started, now):
    experiment = started(12, maximum_duration_days=15)
    Experiment.objects.filter(pk=experiment.pk).update(planned_duration_days=11)
    experiment.refresh_from_db()
    no_difference(experiment, now, days_ago=12)

    assert decisions.evaluate(experiment).planned_duration_days == 15


def test_stop_inconclusive_at_the_maximum_duration(started, now):
    experiment = started(31)
    no_difference(experiment, now, days_ago=30)

    decision = services.experiment_decide(experiment=experiment)

    experiment.refresh_from_db()
    assert decision.action == "stop"
    assert decision.reason.startswith("inconclusive at the maximum duration (31 days >= 30): B chance to win")
    assert experiment.status == "stopped"
    audit = AuditLog.objects.get(action="experiment.stop")
    assert audit.actor_label == "experiment decision job" and audit.changes["reason"] == decision.reason


def test_stop_on_sample_ratio_mismatch(started, now):
    experiment = started(10)
    assign(experiment, "A", users=400, activated=40, enrolled_at=now - timedelta(days=9))
    assign(experiment, "B", users=250, activated=60, enrolled_at=now - timedelta(days=9))
    refresh_facts(experiment)

    decision = services.experiment_decide(experiment=experiment)

    experiment.refresh_from_db()
    assert decision.action == "stop" and decision.winner == ""
    assert decision.reason.startswith("sample ratio mismatch: p = ")
    assert decision.reason.endswith("; users 400/250 against weights 50/50")
    assert experiment.status == "stopped"
    assert AuditLog.objects.filter(action="experiment.stop", object_id=str(experiment.pk)).count() == 1


def test_stop_when_a_guardrail_is_harmed(started, now):
    experiment = started(10, guardrail_metrics=["activation_rate"], primary_metric="onboarding_start_rate")
    assign(experiment, "A", users=300, activated=150, enrolled_at=now - timedelta(days=9))
    assign(experiment, "B", users=300, activated=40, enrolled_at=now - timedelta(days=9))
    refresh_facts(experiment)

    decision = services.experiment_decide(experiment=experiment)

    experiment.refresh_from_db()
    assert decision.action == "stop"
    assert decision.reason.startswith(
        "guardrail harmed: B: activation_rate 13.33% vs 50.00%, always-valid interval"
    )
    assert decision.reason.endswith("entirely below 0: harmed")
    assert experiment.status == "stopped"


def test_defer_with_the_reason_when_the_analysis_fails(started, now, monkeypatch):
    experiment = started(10)
    clear_winner(experiment, now)

    def broken(*args, **kwargs):
        raise RuntimeError("stats engine unavailable")

    monkeypatch.setattr(results.stats, "welch_t_test", broken)
    decision = services.experiment_decide(experiment=experiment)

    experiment.refresh_from_db()
    assert (decision.action, decision.winner) == ("defer", "")
    assert decision.reason == "analysis deferred: the analysis failed: RuntimeError: stats engine unavailable"
    assert experiment.status == "running" and experiment.last_decision["action"] == "defer"


def test_defer_when_the_data_cannot_be_read(started, now, monkeypatch):
    experiment = started(10)

    def broken(*args, **kwargs):
        raise ConnectionError("database gone")

    monkeypatch.setattr(decisions, "compute_results", broken)
    decision = decisions.evaluate(experiment)

    assert decision.action == "defer"
    assert decision.reason == "analysis deferred: ConnectionError: database gone"


def test_the_job_evaluates_every_running_experiment_and_is_idempotent(started, now, make_experiment):
    experiment = started(10)
    clear_winner(experiment, now)
    draft = make_experiment(start=False, key="still-a-draft")

    first = evaluate_experiments_job()
    second = evaluate_experiments_job()

    assert (
        first
        == second
        == {
            "experiments": 1,
            "failed": 0,
            "winner": 1,
            "extend": 0,
            "continue": 0,
            "stop": 0,
            "defer": 0,
        }
    )
    experiment.refresh_from_db()
    assert experiment.status == "running"  # a winner is never rolled out by the job
    assert experiment.last_decision["winner"] == "B"
    draft.refresh_from_db()
    assert draft.last_decision == {}
