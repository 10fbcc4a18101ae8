"""Writes gbstats_reference.json: GrowthBook's gbstats 0.8.0 run on shared data sets, the
reference our engine (experiments/stats) is checked against to 1e-3.

gbstats is not a dependency of the project: it pins numpy < 2 and pandas < 2, which would
downgrade ours. So it runs in a throwaway virtual environment and its outputs are committed:

    python3.11 -m venv /tmp/gbenv && /tmp/gbenv/bin/pip install gbstats==0.8.0
    /tmp/gbenv/bin/python tests/experiments/gbstats_reference.py

Not a test module (pytest collects test_*.py only); it imports gbstats, which our venv lacks.
"""

import json
from functools import partial
from importlib.metadata import version
from pathlib import Path

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm

DATA_SETS = [
    {
        "name": "proportion, the issue's example",
        "metric": "proportion",
        "weights": [50, 50],
        "arms": [{"n": 1000, "conversions": 80}, {"n": 1030, "conversions": 95}],
    },
    {
        "name": "proportion, three arms at 20k",
        "metric": "proportion",
        "weights": [34, 33, 33],
        "arms": [
            {"n": 20000, "conversions": 2000},
            {"n": 19700, "conversions": 2150},
            {"n": 19650, "conversions": 1930},
        ],
    },
    {
        "name": "proportion, variant worse",
        "metric": "proportion",
        "weights": [50, 50],
        "arms": [{"n": 5000, "conversions": 600}, {"n": 5100, "conversions": 540}],
    },
    {
        "name": "proportion, small",
        "metric": "proportion",
        "weights": [50, 50],
        "arms": [{"n": 120, "conversions": 12}, {"n": 118, "conversions": 20}],
    },
    {
        "name": "mean, events per user",
        "metric": "mean",
        "weights": [50, 50],
        "arms": [
            {"n": 1000, "sum": 5000, "sum_squares": 40000},
            {"n": 1020, "sum": 5300, "sum_squares": 43000},
        ],
    },
    {
        "name": "mean, three arms, time to activation (hours)",
        "metric": "mean",
        "weights": [40, 30, 30],
        "arms": [
            {"n": 15000, "sum": 450000, "sum_squares": 30000000},
            {"n": 11200, "sum": 320000, "sum_squares": 21000000},
            {"n": 11300, "sum": 345000, "sum_squares": 23500000},
        ],
    },
]

RATIO_SETS = [
    {
        "name": "ratio, events per active day",
        "arms": [
            {
                "n": 2000,
                "m_sum": 9000,
                "m_sum_squares": 60000,
                "d_sum": 3000,
                "d_sum_squares": 6000,
                "sum_of_products": 17000,
            },
            {
                "n": 2050,
                "m_sum": 9900,
                "m_sum_squares": 68000,
                "d_sum": 3100,
                "d_sum_squares": 6300,
                "sum_of_products": 18500,
            },
        ],
    },
]

CUPED_SETS = [
    {
        "name": "cuped, events per user with last month's events",
        "arms": [
            {
                "n": 3000,
                "post_sum": 15000,
                "post_sum_squares": 110000,
                "pre_sum": 14000,
                "pre_sum_squares": 100000,
                "sum_of_products": 95000,
            },
            {
                "n": 3050,
                "post_sum": 16100,
                "post_sum_squares": 120000,
                "pre_sum": 14300,
                "pre_sum_squares": 102000,
                "sum_of_products": 101000,
            },
        ],
    },
]


def statistic(metric, arm):
    if metric == "proportion":
        return ProportionStatistic(n=arm["n"], sum=arm["conversions"])
    return SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_squares"])


def ratio_statistic(arm):
    return RatioStatistic(
        n=arm["n"],
        m_statistic=SampleMeanStatistic(n=arm["n"], sum=arm["m_sum"], sum_squares=arm["m_sum_squares"]),
        d_statistic=SampleMeanStatistic(n=arm["n"], sum=arm["d_sum"], sum_squares=arm["d_sum_squares"]),
        m_d_sum_of_products=arm["sum_of_products"],
    )


def cuped_statistic(arm):
    return RegressionAdjustedStatistic(
        n=arm["n"],
        post_statistic=SampleMeanStatistic(
            n=arm["n"], sum=arm["post_sum"], sum_squares=arm["post_sum_squares"]
        ),
        pre_statistic=SampleMeanStatistic(n=arm["n"], sum=arm["pre_sum"], sum_squares=arm["pre_sum_squares"]),
        post_pre_sum_of_products=arm["sum_of_products"],
        theta=0,
    )


PRIORS = [
    None,
    {"mean": 0.0, "variance": 0.09, "proper": True, "scale": "relative"},
    {"mean": 0.01, "variance": 0.0004, "proper": True, "scale": "absolute"},
]


def bayesian(stat_a, stat_b, difference, prior):
    if prior is None:
        config = EffectBayesianConfig(difference_type=difference)
    else:
        config = EffectBayesianConfig(
            difference_type=difference,
            prior_type=prior["scale"],
            prior_effect=GaussianPrior(mean=prior["mean"], variance=prior["variance"], proper=True),
        )
    result = EffectBayesianABTest(stat_a, stat_b, config).compute_result()
    return {
        "prior": prior,
        "expected": result.expected,
        "ci": list(result.ci),
        "chance_to_win": result.chance_to_win,
        "risk_control": result.risk[0],
        "risk": result.risk[1],
    }


def compare(make_a, make_b):
    """Every method and difference for one variant against control."""
    rows = []
    for difference in ("relative", "absolute"):
        fixed = TwoSidedTTest(make_a(), make_b(), FrequentistConfig(difference_type=difference))
        result = fixed.compute_result()
        rows.append(
            {
                "method": "welch",
                "difference": difference,
                "expected": result.expected,
                "ci": list(result.ci),
                "p_value": result.p_value,
            }
        )
        for tuning in (5000, 1000):
            config = SequentialConfig(difference_type=difference, sequential_tuning_parameter=tuning)
            result = SequentialTwoSidedTTest(make_a(), make_b(), config).compute_result()
            rows.append(
                {
                    "method": "sequential",
                    "difference": difference,
                    "tuning": tuning,
                    "expected": result.expected,
                    "ci": list(result.ci),
                    "p_value": result.p_value,
                }
            )
        for prior in PRIORS:
            rows.append(
                {
                    "method": "bayesian",
                    "difference": difference,
                    **bayesian(make_a(), make_b(), difference, prior),
                }
            )
    return rows


def main() -> None:
    sets = []
    for data in DATA_SETS:
        arms = data["arms"]
        results = []
        for index in range(1, len(arms)):
            rows = compare(
                partial(statistic, data["metric"], arms[0]),
                partial(statistic, data["metric"], arms[index]),
            )
            results += [{"variant": index, **row} for row in rows]
        srm = check_srm([arm["n"] for arm in arms], data["weights"])
        sets.append({**data, "kind": "simple", "srm_p_value": float(srm), "results": results})
    for kind, data_sets, make in (
        ("ratio", RATIO_SETS, ratio_statistic),
        ("cuped", CUPED_SETS, cuped_statistic),
    ):
        for data in data_sets:
            arms = data["arms"]
            rows = compare(partial(make, arms[0]), partial(make, arms[1]))
            sets.append({**data, "kind": kind, "results": [{"variant": 1, **row} for row in rows]})
    target = Path(__file__).with_name("gbstats_reference.json")
    payload = {
        "gbstats": version("gbstats"),
        "scipy": version("scipy"),
        "numpy": version("numpy"),
        "data_sets": sets,
    }
    target.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {target}: {sum(len(s['results']) for s in sets)} results from {len(sets)} data sets")


if __name__ == "__main__":
    main()
