"""The experiments statistics engine: one pure function per method, numbers in, dataclasses out,
no Django and no database. Formulas and sources: docs/experiments-statistics.md."""

from experiments.stats.bayesian import BayesianResult, GaussianPrior, bayesian_test
from experiments.stats.constants import (
    ALPHA,
    CHANCE_TO_WIN_THRESHOLD,
    MINIMUM_CONVERSIONS_PER_ARM,
    MINIMUM_UNITS_PER_ARM,
    MULTIPLE_EXPOSURE_SHARE_THRESHOLD,
    RISK_THRESHOLD,
    SEQUENTIAL_TUNING_PARAMETER,
    SRM_P_VALUE_THRESHOLD,
)
from experiments.stats.corrections import adjust, benjamini_hochberg, holm
from experiments.stats.cuped import CupedArm, cuped_adjust, cuped_pair, cuped_theta
from experiments.stats.effects import Moments, StatsInputError, proportion, ratio, sample_mean
from experiments.stats.frequentist import FrequentistResult, planned_sample_per_arm, welch_t_test
from experiments.stats.health import (
    HealthCheck,
    multiple_exposures_check,
    srm_check,
    srm_p_value,
    too_little_data_check,
)
from experiments.stats.sequential import sequential_t_test
from experiments.stats.summary import experiment_results
from experiments.stats.survival import (
    KaplanMeierCurve,
    LogRankResult,
    MedianTime,
    kaplan_meier,
    log_rank,
    median_time,
    survival_at,
)

__all__ = [
    "ALPHA",
    "CHANCE_TO_WIN_THRESHOLD",
    "MINIMUM_CONVERSIONS_PER_ARM",
    "MINIMUM_UNITS_PER_ARM",
    "MULTIPLE_EXPOSURE_SHARE_THRESHOLD",
    "RISK_THRESHOLD",
    "SEQUENTIAL_TUNING_PARAMETER",
    "SRM_P_VALUE_THRESHOLD",
    "BayesianResult",
    "CupedArm",
    "FrequentistResult",
    "GaussianPrior",
    "HealthCheck",
    "KaplanMeierCurve",
    "LogRankResult",
    "MedianTime",
    "Moments",
    "StatsInputError",
    "adjust",
    "bayesian_test",
    "benjamini_hochberg",
    "cuped_adjust",
    "cuped_pair",
    "cuped_theta",
    "experiment_results",
    "holm",
    "kaplan_meier",
    "log_rank",
    "median_time",
    "multiple_exposures_check",
    "planned_sample_per_arm",
    "proportion",
    "ratio",
    "sample_mean",
    "sequential_t_test",
    "srm_check",
    "srm_p_value",
    "survival_at",
    "too_little_data_check",
    "welch_t_test",
]
