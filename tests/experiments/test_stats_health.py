"""Health checks: sample ratio mismatch, multiple exposures, too little data."""

import pytest

from experiments.stats import (
    SRM_P_VALUE_THRESHOLD,
    StatsInputError,
    multiple_exposures_check,
    srm_check,
    too_little_data_check,
)


def test_srm_flags_a_52_48_split_at_20000_users():
    check = srm_check([10400, 9600], [50, 50])
    assert not check.passed
    assert check.value < SRM_P_VALUE_THRESHOLD
    assert "sample ratio mismatch" in check.message


def test_srm_passes_a_50_50_split_and_an_honest_wobble():
    assert srm_check([10000, 10000], [50, 50]).passed
    assert srm_check([10060, 9940], [50, 50]).passed  # 0.9 standard deviations off


def test_srm_judges_against_the_configured_weights():
    assert srm_check([8000, 12000], [40, 60]).passed
    assert not srm_check([8000, 12000], [50, 50]).passed
    assert srm_check([8000, 12000], [0.4, 0.6]).passed  # fractions are accepted too


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        ([50, 40], "must sum to 100"),
        ([50, 50, 0], "one weight per arm"),
        ([120, -20], "non-negative"),
    ],
)
def test_srm_refuses_bad_weights(weights, reason):
    with pytest.raises(StatsInputError, match=reason) as error:
        srm_check([1000, 1000], weights)
    assert error.value.field == "weights"


def test_multiple_exposures_flagged_above_one_percent():
    assert multiple_exposures_check(50, 10000).passed
    flagged = multiple_exposures_check(150, 10000)
    assert not flagged.passed
    assert flagged.value == pytest.approx(0.015)


def test_too_little_data():
    assert not too_little_data_check([1000, 40]).passed
    assert not too_little_data_check([1000, 1000], [50, 3]).passed
    assert too_little_data_check([1000, 1000], [50, 60]).passed
