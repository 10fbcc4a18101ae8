"""Time to activation: Kaplan-Meier with censoring, median with its interval, log-rank."""

import numpy as np
import pytest
from scipy import stats

from experiments.stats import StatsInputError, kaplan_meier, log_rank, median_time, survival_at

# Six users, days from path entry: activated on days 1, 2, 3 and 5; one still in the flow since
# day 2 and one since day 4 (censored).
DURATIONS = [1, 2, 2, 3, 4, 5]
ACTIVATED = [True, True, False, True, False, True]


def test_kaplan_meier_by_hand():
    curve = kaplan_meier(DURATIONS, ACTIVATED)
    # Day 1: 1 of 6 at risk; day 2: 1 of 5 (the censored user still counts on day 2);
    # day 3: 1 of 3; day 4: censoring only; day 5: 1 of 1.
    expected = [5 / 6, 5 / 6 * 4 / 5, 5 / 6 * 4 / 5 * 2 / 3, 5 / 6 * 4 / 5 * 2 / 3, 0.0]
    assert curve.times == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert curve.survival == pytest.approx(expected)
    assert all(low <= s <= high for low, s, high in zip(curve.low, curve.survival, curve.high, strict=True))
    assert (curve.low[-1], curve.high[-1]) == (0.0, 0.0)


def test_survival_at_chart_days():
    curve = kaplan_meier(DURATIONS, ACTIVATED)
    assert survival_at(curve, [0, 1, 2.5, 4, 10]) == pytest.approx([1.0, 5 / 6, 2 / 3, 4 / 9, 0.0])


def test_censored_users_are_not_dropped():
    # Dropping the two users still in the flow would claim everyone activated by day 5 faster.
    with_censoring = kaplan_meier(DURATIONS, ACTIVATED)
    dropped = kaplan_meier([1, 2, 3, 5], [True] * 4)
    assert with_censoring.survival[1] > dropped.survival[1]


def test_median_time_by_hand():
    median = median_time(kaplan_meier(DURATIONS, ACTIVATED))
    assert median.estimate == 3.0  # S(2) = 2/3 > 0.5, S(3) = 4/9 <= 0.5
    assert median.low == 1.0  # the lower band is under 0.5 from day 1 (0.27)
    assert median.high == 5.0  # the upper band stays above 0.5 until the curve reaches 0


def test_median_is_none_when_half_never_activate():
    median = median_time(kaplan_meier([1, 2, 3, 4], [True, False, False, False]))
    assert median.estimate is None


def test_matches_scipy_on_a_larger_sample():
    rng = np.random.default_rng(7)
    times = rng.exponential(5.0, 400).round(1)
    activated = rng.random(400) < 0.7
    curve = kaplan_meier(times, activated)
    reference = stats.ecdf(stats.CensoredData.right_censored(times, ~activated)).sf
    assert curve.survival == pytest.approx(reference.probabilities.tolist())
    median = median_time(curve)
    survival = np.array(curve.survival)
    assert median.estimate == curve.times[int(np.argmax(survival <= 0.5))]
    assert median.low <= median.estimate <= median.high


def test_log_rank_finds_faster_activation_and_not_a_copy():
    rng = np.random.default_rng(11)
    control = (rng.exponential(6.0, 500), np.ones(500, dtype=bool))
    faster = (rng.exponential(4.0, 500), np.ones(500, dtype=bool))
    assert log_rank(control, faster).p_value < 0.001
    assert log_rank(control, control).p_value == pytest.approx(1.0)
    reference = stats.logrank(
        stats.CensoredData.right_censored(control[0], ~control[1]),
        stats.CensoredData.right_censored(faster[0], ~faster[1]),
    )
    assert log_rank(control, faster).statistic == pytest.approx(reference.statistic)


@pytest.mark.parametrize(
    ("durations", "activated", "field"),
    [
        ([], [], "arm.durations"),
        ([1, 2], [True], "arm.activated"),
        ([1, -2], [True, True], "arm.durations"),
    ],
)
def test_bad_input_names_the_field(durations, activated, field):
    with pytest.raises(StatsInputError) as error:
        kaplan_meier(durations, activated)
    assert error.value.field == field
