"""Our engine against GrowthBook's gbstats 0.8.0 on shared data sets, to 1e-3. gbstats' outputs are
in gbstats_reference.json, written by gbstats_reference.py in a throwaway venv (gbstats pins
numpy < 2 and pandas < 2, so it is not one of our dependencies)."""

import json
from pathlib import Path

import pytest

from experiments.stats import (
    CupedArm,
    GaussianPrior,
    bayesian_test,
    cuped_pair,
    proportion,
    ratio,
    sample_mean,
    sequential_t_test,
    srm_p_value,
    welch_t_test,
)

REFERENCE = json.loads(Path(__file__).with_name("gbstats_reference.json").read_text())
TOLERANCE = 1e-3


def moments(data_set, index):
    arm = data_set["arms"][index]
    if data_set["kind"] == "ratio":
        numerator = sample_mean(arm["n"], arm["m_sum"], arm["m_sum_squares"])
        denominator = sample_mean(arm["n"], arm["d_sum"], arm["d_sum_squares"])
        return ratio(numerator, denominator, arm["sum_of_products"])
    if data_set["metric"] == "proportion":
        return proportion(arm["n"], arm["conversions"])
    return sample_mean(arm["n"], arm["sum"], arm["sum_squares"])


def pair(data_set, variant):
    if data_set["kind"] == "cuped":
        control, treated = (CupedArm(**data_set["arms"][i]) for i in (0, variant))
        adjusted_control, adjusted_variant, _ = cuped_pair(control, treated)
        return adjusted_control, adjusted_variant
    return moments(data_set, 0), moments(data_set, variant)


def ours(data_set, row):
    control, variant = pair(data_set, row["variant"])
    difference = row["difference"]
    if row["method"] == "welch":
        return welch_t_test(control, variant, difference=difference)
    if row["method"] == "sequential":
        return sequential_t_test(control, variant, difference=difference, tuning_parameter=row["tuning"])
    prior = GaussianPrior(**row["prior"]) if row["prior"] else None
    return bayesian_test(control, variant, difference=difference, prior=prior)


CASES = [
    pytest.param(
        data_set,
        row,
        id=f"{data_set['name']}-v{row['variant']}-{row['method']}-"
        f"{row['difference']}-{row.get('tuning', '')}{'prior' if row.get('prior') else ''}-{i}",
    )
    for data_set in REFERENCE["data_sets"]
    for i, row in enumerate(data_set["results"])
]


def test_the_reference_covers_every_method_and_kind():
    methods = {
        (s["kind"], s.get("metric"), r["method"], r["difference"])
        for s, r in [(c.values[0], c.values[1]) for c in CASES]
    }
    for kind, metric in (("simple", "proportion"), ("simple", "mean"), ("ratio", None), ("cuped", None)):
        for method in ("welch", "sequential", "bayesian"):
            for difference in ("relative", "absolute"):
                assert (kind, metric, method, difference) in methods
    several_arms = [s for s in REFERENCE["data_sets"] if len(s["arms"]) > 2]
    assert {s["metric"] for s in several_arms} == {"proportion", "mean"}
    significant = [r for _, r in (c.values for c in CASES) if r.get("p_value", 1) < 0.05]
    assert any(r["method"] == "sequential" for r in significant)


@pytest.mark.parametrize(("data_set", "row"), CASES)
def test_matches_gbstats(data_set, row):
    result = ours(data_set, row)
    assert result.message is None
    assert result.expected == pytest.approx(row["expected"], abs=TOLERANCE)
    assert result.ci[0] == pytest.approx(row["ci"][0], abs=TOLERANCE)
    assert result.ci[1] == pytest.approx(row["ci"][1], abs=TOLERANCE)
    if row["method"] == "bayesian":
        assert result.chance_to_win == pytest.approx(row["chance_to_win"], abs=TOLERANCE)
        assert result.risk == pytest.approx(row["risk"], abs=TOLERANCE)
        assert result.risk_control == pytest.approx(row["risk_control"], abs=TOLERANCE)
    else:
        assert result.p_value == pytest.approx(row["p_value"], abs=TOLERANCE)


@pytest.mark.parametrize(
    "data_set", [s for s in REFERENCE["data_sets"] if "srm_p_value" in s], ids=lambda s: s["name"]
)
def test_srm_matches_gbstats(data_set):
    users = [arm["n"] for arm in data_set["arms"]]
    assert srm_p_value(users, data_set["weights"]) == pytest.approx(data_set["srm_p_value"], abs=TOLERANCE)
