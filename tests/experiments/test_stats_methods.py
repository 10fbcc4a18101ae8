"""The methods' behaviour beyond the gbstats reference: corrections, CUPED, priors, power, and
bad input refused with the field and the reason."""

import numpy as np
import pytest
from scipy import stats

from experiments.stats import (
    CupedArm,
    GaussianPrior,
    StatsInputError,
    bayesian_test,
    benjamini_hochberg,
    cuped_pair,
    holm,
    planned_sample_per_arm,
    proportion,
    sample_mean,
    welch_t_test,
)


def test_holm_by_hand():
    # Sorted 0.01, 0.02, 0.04 times 3, 2, 1 -> 0.03, 0.04, 0.04 (kept monotone), in given order.
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_benjamini_hochberg_matches_scipy():
    p_values = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]
    assert benjamini_hochberg(p_values) == pytest.approx(stats.false_discovery_control(p_values).tolist())


def test_corrections_refuse_a_p_value_outside_0_1():
    with pytest.raises(ValueError, match="p_values"):
        holm([0.2, 1.5])


def test_cuped_narrows_the_interval_and_keeps_the_effect_unbiased():
    rng = np.random.default_rng(3)
    arms = []
    for lift in (0.0, 0.2):
        pre = rng.gamma(2.0, 2.0, 4000)
        post = pre * 0.9 + rng.normal(1.0 + lift, 1.0, 4000)
        arms.append(
            CupedArm(
                n=4000,
                post_sum=post.sum(),
                post_sum_squares=(post**2).sum(),
                pre_sum=pre.sum(),
                pre_sum_squares=(pre**2).sum(),
                sum_of_products=(post * pre).sum(),
            )
        )
    control, variant, theta = cuped_pair(*arms)
    plain = [sample_mean(a.n, a.post_sum, a.post_sum_squares) for a in arms]
    adjusted = welch_t_test(control, variant, difference="absolute")
    unadjusted = welch_t_test(*plain, difference="absolute")
    assert theta == pytest.approx(0.9, abs=0.05)
    assert adjusted.stddev < unadjusted.stddev / 2
    assert adjusted.ci[0] < 0.2 < adjusted.ci[1]


def test_a_proper_prior_pulls_a_small_sample_toward_it():
    control, variant = proportion(200, 20), proportion(200, 30)
    flat = bayesian_test(control, variant)
    skeptical = bayesian_test(control, variant, prior=GaussianPrior(0.0, 0.01, proper=True))
    assert flat.expected == pytest.approx(0.5)
    assert 0 < skeptical.expected < flat.expected
    assert skeptical.chance_to_win < flat.chance_to_win


def test_inverse_metric_wins_when_lower():
    control, faster = sample_mean(1000, 5000, 40000), sample_mean(1000, 4500, 33000)
    lower_is_better = bayesian_test(control, faster, inverse=True)
    assert lower_is_better.chance_to_win > 0.95
    assert bayesian_test(control, faster).chance_to_win < 0.05


def test_zero_control_conversions_says_why_instead_of_dividing_by_zero():
    result = welch_t_test(proportion(500, 0), proportion(500, 5))
    assert result.message and "control" in result.message
    assert (result.p_value, result.ci) == (1.0, (0.0, 0.0))


def test_planned_sample_for_a_ten_percent_lift_on_ten_percent():
    # (1.96 + 0.8416)^2 (0.1 x 0.9 + 0.11 x 0.89) / 0.01^2 = 14,749.
    assert planned_sample_per_arm(0.10, 0.10) == 14749


@pytest.mark.parametrize(
    ("make", "field", "reason"),
    [
        (lambda: proportion(0, 0), "arm.n", "at least 1"),
        (lambda: proportion(100, 120), "arm.conversions", "exceed n=100"),
        (lambda: proportion(-5, 0), "arm.n", "not be negative"),
        (lambda: proportion(100, -1), "arm.conversions", "not be negative"),
        (lambda: sample_mean(10, 100, 50), "arm.sum_squares", "negative variance"),
        (lambda: sample_mean(10, float("nan"), 50), "arm.sum", "finite"),
        (
            lambda: welch_t_test(proportion(10, 1), proportion(10, 2), difference="ratio"),
            "difference",
            "relative",
        ),
    ],
)
def test_bad_input_is_refused_with_field_and_reason(make, field, reason):
    with pytest.raises(ValueError, match=reason) as error:
        make()
    assert isinstance(error.value, StatsInputError)
    assert error.value.field == field
