"""Allocation agrees with GrowthBook's SDKs: their own test cases (fixtures/growthbook_cases.json,
copied from growthbook-python's tests/cases.json with its source link)."""

import json
from pathlib import Path

import pytest

from experiments import allocation

CASES = json.loads((Path(__file__).parent / "fixtures" / "growthbook_cases.json").read_text())


@pytest.mark.parametrize(("seed", "value", "version", "expected"), CASES["hash"])
def test_hash_matches_growthbook(seed, value, version, expected):
    assert allocation.gb_hash(seed, value, version) == expected


@pytest.mark.parametrize(("name", "arguments", "expected"), CASES["getBucketRange"])
def test_bucket_ranges_match_growthbook(name, arguments, expected):
    count, coverage, weights = arguments
    ranges = allocation.bucket_ranges(count, coverage, weights)
    assert [[round(start, 6), round(end, 6)] for start, end in ranges] == expected, name


@pytest.mark.parametrize(("name", "number", "ranges", "expected"), CASES["chooseVariation"])
def test_choose_variation_matches_growthbook(name, number, ranges, expected):
    assert allocation.choose_variation(number, [tuple(r) for r in ranges]) == expected, name


def test_allocate_is_the_growthbook_arm_of_the_external_id():
    # hash("seed", "b", v2) = 0.2696 (GrowthBook's case): in the first half of a 50/50 split.
    result = allocation.allocate(seed="seed", user_value="b", weights_percent=[50, 50], traffic_share=1.0)
    assert result == allocation.Allocation(index=0, hash_value=0.2696)
    # 0.7516 with seed "90850943850283058242805" and value "123": second arm.
    result = allocation.allocate(
        seed="90850943850283058242805", user_value="123", weights_percent=[50, 50], traffic_share=1.0
    )
    assert result.index == 1


def test_allocate_outside_the_coverage_is_minus_one():
    # 0.2696 lies beyond the first arm's covered 0..0.1 when 20% of traffic is in (50/50).
    result = allocation.allocate(seed="seed", user_value="b", weights_percent=[50, 50], traffic_share=0.2)
    assert result.index == -1


@pytest.mark.parametrize(
    ("weights", "user_value", "reason"),
    [([], "u1", "no variants"), ([50, 50], "", "no external id"), ([60, 60], "u1", "sum to 120")],
)
def test_allocate_refuses_what_it_cannot_split(weights, user_value, reason):
    with pytest.raises(allocation.AllocationError, match=reason):
        allocation.allocate(seed="s", user_value=user_value, weights_percent=weights, traffic_share=1.0)


def test_split_is_close_to_the_weights_over_many_users():
    counts = [0, 0, 0]
    for number in range(20000):
        counts[
            allocation.allocate(
                seed="exp", user_value=f"user-{number}", weights_percent=[20, 30, 50], traffic_share=1.0
            ).index
        ] += 1
    shares = [count / 20000 for count in counts]
    assert shares == pytest.approx([0.2, 0.3, 0.5], abs=0.01)
