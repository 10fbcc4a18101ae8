"""The shapes of an experiment's results: frozen dataclasses, and their JSON (the frozen copy
of a conclusion, Experiment.final_results, is ``results_as_dict``'s output)."""

from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ArmResult:
    key: str
    is_control: bool
    weight: int
    users: int
    conversions: int
    rate: float | None
    pending: int = 0  # not activated yet, still inside the activation window
    # Against control (None for control, or when the arm has too little data to compare).
    uplift_relative: float | None = None
    ci_relative: tuple[float, float] | None = None
    uplift_absolute: float | None = None
    ci_absolute: tuple[float, float] | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None  # Holm across the arms
    sequential_ci: tuple[float, float] | None = None  # always-valid, relative
    sequential_p_value: float | None = None
    sequential_p_value_adjusted: float | None = None
    chance_to_win: float | None = None
    risk: float | None = None  # expected relative loss of shipping this arm
    risk_control: float | None = None  # ... of keeping control instead
    bayes_ci: tuple[float, float] | None = None
    # Time to activation (kind=path), every arm.
    median_hours_to_activation: float | None = None
    median_ci: tuple[float | None, float | None] | None = None
    log_rank_p_value: float | None = None
    message: str = ""  # why a comparison is empty


@dataclass(frozen=True)
class HealthCheck:
    name: str  # "srm" | "too_little_data" | "multiple_exposures"
    ok: bool
    detail: str
    value: float | None = None


@dataclass(frozen=True)
class DailyPoint:
    day: date
    arm: str
    users: int  # assigned by the day's end
    conversions: int  # activated by the day's end
    rate: float | None


@dataclass(frozen=True)
class SurvivalCurve:
    arm: str
    times_hours: list[float]
    survival: list[float]  # share not yet activated at each time (Kaplan-Meier)


@dataclass(frozen=True)
class GuardrailResult:
    metric: str
    arm: str
    control_rate: float | None
    rate: float | None
    sequential_ci: tuple[float, float] | None  # relative effect, always-valid
    harmed: bool
    detail: str


@dataclass(frozen=True)
class ExperimentResults:
    experiment_key: str
    status: str
    kind: str
    computed_at: datetime
    metric: str
    window_days: int
    arms: list[ArmResult]
    health: list[HealthCheck] = field(default_factory=list)
    srm_p_value: float | None = None
    daily: list[DailyPoint] = field(default_factory=list)
    survival: list[SurvivalCurve] = field(default_factory=list)
    log_rank_p_value: float | None = None  # the smallest Holm-adjusted log-rank p-value
    guardrails: list[GuardrailResult] = field(default_factory=list)
    unrefreshed: int = 0  # enrollments the rollup refresh has not read yet (counted not activated)
    frozen: bool = False  # read from the copy stored at conclusion
    error: str = ""  # the analysis failed: the decision job defers

    @property
    def control(self) -> ArmResult | None:
        return next((arm for arm in self.arms if arm.is_control), None)


# --- JSON ------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def results_as_dict(results: ExperimentResults) -> dict[str, Any]:
    """JSON-ready: dates as ISO strings, tuples as lists, infinities as null."""
    return _jsonable(asdict(results))


def _tuples(cls, data: dict[str, Any]) -> dict[str, Any]:
    known = {item.name for item in fields(cls)}
    return {
        key: tuple(value) if isinstance(value, list) and "ci" in key.split("_") else value
        for key, value in data.items()
        if key in known
    }


def results_from_dict(data: dict[str, Any]) -> ExperimentResults:
    """The dataclasses back from results_as_dict's output (the frozen copy of a conclusion)."""
    nested = {
        "arms": [ArmResult(**_tuples(ArmResult, arm)) for arm in data.get("arms", [])],
        "health": [HealthCheck(**_tuples(HealthCheck, check)) for check in data.get("health", [])],
        "daily": [
            DailyPoint(**{**point, "day": date.fromisoformat(point["day"])})
            for point in data.get("daily", [])
        ],
        "survival": [SurvivalCurve(**curve) for curve in data.get("survival", [])],
        "guardrails": [
            GuardrailResult(**_tuples(GuardrailResult, row)) for row in data.get("guardrails", [])
        ],
    }
    scalars = _tuples(ExperimentResults, {key: value for key, value in data.items() if key not in nested})
    scalars["computed_at"] = datetime.fromisoformat(data["computed_at"])
    scalars["frozen"] = True
    return ExperimentResults(**scalars, **nested)
