"""One experiment's results from its sufficient statistics, as the `experiment_stats` command
and anyone checking the engine give them: a JSON-like dict in, a JSON-like dict out.

Input: {"metric": "proportion" | "mean", "difference": "relative" | "absolute",
"arms": [{"key", "n", "conversions"} | {"key", "n", "sum", "sum_squares"}, ...] (control first),
optional "weights" (one per arm, summing to 100 or 1), "sequential" (true, or
{"tuning": 5000}), "prior" ({"mean", "variance", "proper", "scale"}), "alpha" (0.05),
"correction" ("holm" | "benjamini-hochberg" | "none"), "inverse" (lower is better)}.
"""

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from experiments.stats.bayesian import GaussianPrior, bayesian_test
from experiments.stats.constants import ALPHA, SEQUENTIAL_TUNING_PARAMETER
from experiments.stats.corrections import CORRECTIONS, adjust
from experiments.stats.effects import Moments, StatsInputError, check_difference, proportion, sample_mean
from experiments.stats.frequentist import welch_t_test
from experiments.stats.health import srm_check, too_little_data_check
from experiments.stats.sequential import sequential_t_test

FIELDS = frozenset(
    {"metric", "difference", "arms", "weights", "sequential", "prior", "alpha", "correction", "inverse"}
)
METRICS = ("proportion", "mean")


def _arm_moments(metric: str, arm: Any, index: int) -> tuple[str, Moments]:
    field = f"arms[{index}]"
    if not isinstance(arm, Mapping):
        raise StatsInputError(field, "must be an object with key, n and the metric's sums")
    key = arm.get("key")
    if not isinstance(key, str) or not key:
        raise StatsInputError(f"{field}.key", "must be a non-empty string")
    needed = ("n", "conversions") if metric == "proportion" else ("n", "sum", "sum_squares")
    for name in needed:
        if name not in arm:
            raise StatsInputError(f"{field}.{name}", f"is required for a {metric} metric")
    if metric == "proportion":
        return key, proportion(arm["n"], arm["conversions"], field=field)
    return key, sample_mean(arm["n"], arm["sum"], arm["sum_squares"], field=field)


def _prior(value: Any) -> GaussianPrior | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"mean", "variance", "proper", "scale"}:
        raise StatsInputError("prior", "must be an object with mean, variance, proper, scale")
    for name in ("mean", "variance"):
        if name in value and not isinstance(value[name], (int, float)):
            raise StatsInputError(f"prior.{name}", f"must be a number, got {value[name]!r}")
    return GaussianPrior(
        mean=float(value.get("mean", 0.0)),
        variance=float(value.get("variance", 1.0)),
        proper=bool(value.get("proper", True)),
        scale=value.get("scale", "relative"),
    )


def _tuning(value: Any) -> float | None:
    if value in (None, False):
        return None
    if value is True:
        return SEQUENTIAL_TUNING_PARAMETER
    tuning = value.get("tuning", SEQUENTIAL_TUNING_PARAMETER) if isinstance(value, Mapping) else None
    if isinstance(tuning, bool) or not isinstance(tuning, (int, float)) or tuning <= 0:
        raise StatsInputError("sequential", 'must be true, false or {"tuning": a positive number}')
    return float(tuning)


def _options(spec: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(spec) - FIELDS)
    if unknown:
        raise StatsInputError(unknown[0], f"is not a known field (known: {', '.join(sorted(FIELDS))})")
    metric = spec.get("metric")
    if metric not in METRICS:
        raise StatsInputError("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    difference = spec.get("difference", "relative")
    check_difference(difference)
    alpha = spec.get("alpha", ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise StatsInputError("alpha", f"must be a number between 0 and 1, got {alpha!r}")
    correction = spec.get("correction", "holm")
    if correction not in CORRECTIONS:
        raise StatsInputError("correction", f"must be one of {', '.join(CORRECTIONS)}")
    return {
        "metric": metric,
        "difference": difference,
        "alpha": float(alpha),
        "correction": correction,
        "prior": _prior(spec.get("prior")),
        "tuning": _tuning(spec.get("sequential")),
        "inverse": bool(spec.get("inverse", False)),
    }


def _arms(spec: Mapping[str, Any], metric: str) -> list[tuple[str, Moments]]:
    arms = spec.get("arms")
    if not isinstance(arms, list) or len(arms) < 2:
        raise StatsInputError("arms", "needs a list of at least two arms, control first")
    parsed = [_arm_moments(metric, arm, index) for index, arm in enumerate(arms)]
    keys = [key for key, _ in parsed]
    if len(set(keys)) != len(keys):
        raise StatsInputError("arms", f"keys must be unique, got {keys}")
    return parsed


def _compare(control: Moments, variant: Moments, options: dict[str, Any]) -> dict[str, Any]:
    common = {"difference": options["difference"], "alpha": options["alpha"]}
    fixed = welch_t_test(control, variant, **common)
    bayes = bayesian_test(control, variant, prior=options["prior"], inverse=options["inverse"], **common)
    result = {
        "expected": fixed.expected,
        "ci": list(fixed.ci),
        "p_value": fixed.p_value,
        "bayes_expected": bayes.expected,
        "bayes_ci": list(bayes.ci),
        "chance_to_win": bayes.chance_to_win,
        "risk": bayes.risk,
        "risk_control": bayes.risk_control,
    }
    if options["tuning"] is not None:
        sequential = sequential_t_test(control, variant, tuning_parameter=options["tuning"], **common)
        result["sequential_ci"] = list(sequential.ci)
        result["sequential_p_value"] = sequential.p_value
    result["message"] = fixed.message or bayes.message
    return result


def experiment_results(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Every arm after the first against the first; StatsInputError names the bad field."""
    if not isinstance(spec, Mapping):
        raise StatsInputError("input", "must be a JSON object")
    options = _options(spec)
    arms = _arms(spec, options["metric"])
    (control_key, control), variants = arms[0], arms[1:]
    compared = [
        {"key": key, "n": m.n, "mean": m.mean, **_compare(control, m, options)} for key, m in variants
    ]
    p_key = "sequential_p_value" if options["tuning"] is not None else "p_value"
    for row, adjusted in zip(
        compared, adjust([row[p_key] for row in compared], options["correction"]), strict=True
    ):
        row["p_value_adjusted"] = adjusted
    units = [m.n for _, m in arms]
    conversions = [m.mean * m.n for _, m in arms] if options["metric"] == "proportion" else None
    health = [too_little_data_check(units, conversions)]
    output: dict[str, Any] = {
        "metric": options["metric"],
        "difference": options["difference"],
        "alpha": options["alpha"],
        "correction": options["correction"],
        "sequential": options["tuning"],
        "control": {"key": control_key, "n": control.n, "mean": control.mean},
        "arms": compared,
        "srm_p_value": None,
    }
    if spec.get("weights") is not None:
        srm = srm_check(units, spec["weights"])
        output["srm_p_value"] = srm.value
        health.insert(0, srm)
    output["health"] = [asdict(check) for check in health]
    return output
