"""The stuck detector and the response predictor in use: high-risk people are flagged stuck at half
their step's limit and the others keep the time-based rule; the send time follows the model's best
hour; without a model, or when it fails, the time-based rule and the most-active-hour heuristic
stand exactly as before."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ml.serving import loaded
from nudges.delivery import sendtime
from onboarding.models import EnrollmentSignal
from onboarding.stuck import services as stuck_services
from tests.factories import EventFactory
from tests.ml.conftest import register_active
from tests.onboarding.enrollment_rows import enrollment, published_version

pytestmark = pytest.mark.django_db

STEP = "connect-integration"

# --- Stuck detection ----------------------------------------------------------------------------


@pytest.fixture
def now():
    return datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def on_step(ml_workspace, now, fresh_serving):
    """Three people on a 2-day step: a small company and a large one 30 h in (past half the
    limit), a large one 3 days in (past the limit)."""
    version = published_version(
        ml_workspace, [{"key": STEP, "expected_duration": timedelta(days=2)}, {"key": "invite"}]
    )
    people = {}
    for name, size, hours in (("small", "1-10", 30), ("large", "51-200", 30), ("late", "51-200", 72)):
        row = enrollment(
            version, user_id=name, current_step_key=STEP, step_entered_at=now - timedelta(hours=hours)
        )
        row.end_user.company_size = size
        row.end_user.save(update_fields=["company_size"])
        people[name] = row
    return people


def stuck_detector(workspace):
    """85% of small companies abandon the integration step, 10% of large ones."""
    rows, labels = [], []
    for size, abandoning in (("1-10", 85), ("51-200", 10)):
        for number in range(100):
            rows.append({"company_size": size, "step": STEP, "step_index": 0, "hours_on_step": 0.0})
            labels.append(number < abandoning)
    return register_active(workspace, "stuck_detector", rows, labels)


def stuck_signals() -> dict[str, str]:
    return dict(
        EnrollmentSignal.objects.filter(kind=EnrollmentSignal.Kind.STUCK).values_list(
            "enrollment__end_user__external_id", "reason"
        )
    )


TIME_BASED = {"late": f"on '{STEP}' for 3 days; expected 2 days"}


def test_a_high_risk_enrollment_is_flagged_at_half_its_limit(ml_workspace, on_step, now):
    stuck_detector(ml_workspace)

    report = stuck_services.stuck_detect(workspace=ml_workspace, now=now)

    signals = stuck_signals()
    assert set(signals) == {"small", "late"}
    assert signals["late"] == TIME_BASED["late"]
    reason = signals["small"]
    assert reason.startswith("stuck detector 1.0.0: 0.")
    assert reason.endswith(f"risk of abandoning '{STEP}'; flagged at half its limit (expected 2 days)")
    assert 0.7 <= float(reason.split(": ")[1].split(" ")[0]) <= 0.95
    assert (report.flagged, report.flagged_early) == (2, 1)
    on_step["small"].refresh_from_db()
    assert on_step["small"].stuck_at == now


def test_an_early_flag_is_not_raised_twice_on_the_same_stay(ml_workspace, on_step, now):
    stuck_detector(ml_workspace)
    stuck_services.stuck_detect(workspace=ml_workspace, now=now)

    again = stuck_services.stuck_detect(workspace=ml_workspace, now=now + timedelta(minutes=15))

    assert (again.flagged, again.flagged_early) == (0, 0)
    assert EnrollmentSignal.objects.count() == 2


def test_without_a_model_the_time_based_detection_stands(ml_workspace, on_step, now):
    report = stuck_services.stuck_detect(workspace=ml_workspace, now=now)

    assert stuck_signals() == TIME_BASED
    assert (report.flagged, report.flagged_early) == (1, 0)


def test_a_failing_provider_leaves_the_time_based_result_unchanged(ml_workspace, on_step, now, monkeypatch):
    stuck_detector(ml_workspace)

    def broken(*args, **kwargs):
        raise RuntimeError("booster exploded")

    monkeypatch.setattr(loaded, "active", broken)

    report = stuck_services.stuck_detect(workspace=ml_workspace, now=now)

    assert stuck_signals() == TIME_BASED
    assert (report.flagged, report.flagged_early) == (1, 0)


# --- Send time ----------------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def person(ml_workspace, now, fresh_serving):
    """Active at 09:00 Paris on five days (the heuristic's most active hour); it is 13:00 in Paris."""
    end_user = enrollment(published_version(ml_workspace, [{"key": STEP}]), user_id="ada").end_user
    for day in range(1, 6):
        EventFactory(end_user=end_user, timestamp=datetime(2026, 3, 10 - day, 8, 0, tzinfo=UTC))
    return end_user


def response_predictor(workspace, best_hour: int = 17, best_channel: str = "push"):
    """Conversions at `best_hour` local on `best_channel` mostly, rarely otherwise."""
    rows, labels = [], []
    for channel in ("email", "push"):
        for hour in range(24):
            for copy in range(10):
                rows.append({"channel": channel, "local_hour": hour, "weekday": 1, "persona": ""})
                planted = hour == best_hour and channel == best_channel
                labels.append(copy < (8 if planted else 1))
    return register_active(workspace, "nudge_response_predictor", rows, labels)


def test_the_send_time_is_the_models_best_hour(ml_workspace, person, now):
    response_predictor(ml_workspace)

    when, why = sendtime.send_at(end_user=person, zone=PARIS, now=now, channel="push")

    assert when == datetime(2026, 3, 10, 17, 0, tzinfo=PARIS)
    assert why.startswith("send time: 17:00 Europe/Paris, response predictor 1.0.0: ")
    assert " at 17:00 vs " in why and why.endswith("now on push")


def test_the_best_channel_is_named_when_another_is_tried(ml_workspace, person, now):
    response_predictor(ml_workspace)

    _, why = sendtime.send_at(end_user=person, zone=PARIS, now=now, channel="email")

    assert "on email (best channel today: push, " in why
    assert why.rstrip(")").endswith("at 17:00")


def test_a_best_hour_already_past_sends_now(ml_workspace, person, now):
    response_predictor(ml_workspace, best_hour=13)

    when, why = sendtime.send_at(end_user=person, zone=PARIS, now=now, channel="push")

    assert when is None
    assert why.startswith("send time: now, response predictor 1.0.0: ")
    assert why.endswith("now on push, today's best")


def test_without_a_model_the_most_active_hour_stands(person, now):
    assert sendtime.send_at(end_user=person, zone=PARIS, now=now, channel="push") == (
        None,
        "send time: now (the user's most active hour, 09:00 Europe/Paris, has passed today)",
    )


def test_a_failing_model_leaves_the_most_active_hour_with_the_failure_named(
    ml_workspace, person, now, monkeypatch
):
    response_predictor(ml_workspace)

    def broken(*args, **kwargs):
        raise RuntimeError("booster exploded")

    monkeypatch.setattr(loaded, "active", broken)

    when, why = sendtime.send_at(end_user=person, zone=PARIS, now=now, channel="push")

    assert when is None
    assert why == (
        "send time: now (the user's most active hour, 09:00 Europe/Paris, has passed today)"
        " (the send-time model failed: RuntimeError)"
    )
