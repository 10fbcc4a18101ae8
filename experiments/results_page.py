"""The results page's content, built from one experiment's results (experiments.results) as a
plain dict: the live results turned by `dataclasses.asdict`, or the copy frozen at conclude (the
same shape, read from JSON). Tables are analytics' dashboard tables (shown, exported as CSV, read
by the tests); the charts are drawn from the same numbers by static/experiments/results.js.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from analytics.dashboards import tables as t
from experiments.stats.constants import SRM_P_VALUE_THRESHOLD

METHODS = (
    ("frequentist", "Frequentist 95% CI", "ci_relative"),
    ("bayesian", "Bayesian 95% credible interval", "bayes_ci"),
    ("sequential", "Sequential (always valid) 95% CI", "sequential_ci"),
)
HEALTH_TITLES = {
    "srm": "Sample ratio mismatch",
    "too_little_data": "Enough data",
    "multiple_exposures": "Multiple exposures",
}


def percent(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return t.NONE_SHOWN
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value * 100:.{digits}f}%".replace("-", "\u2212")


def interval(bounds: Sequence[float] | None, digits: int = 1) -> str | None:
    """An interval as "-1.2% to +3.4%" (true minus signs), or None (a dash) when there is none."""
    if not bounds or bounds[0] is None or bounds[1] is None:
        return None
    return f"{percent(bounds[0], digits, True)} to {percent(bounds[1], digits, True)}"


def hours_interval(bounds: Sequence[float] | None) -> str | None:
    if not bounds or bounds[0] is None:
        return None
    high = "\u221e" if bounds[1] is None else f"{bounds[1]:.1f}"
    return f"{bounds[0]:.1f} to {high} h"


def p_value(value: float | None) -> str | None:
    if value is None:
        return None
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def arms_table(arms: Sequence[Mapping[str, Any]]) -> t.Table:
    columns = [
        t.Column("arm", "arm", t.TEXT),
        t.Column("weight", "weight (%)"),
        t.Column("users", "users"),
        t.Column("conversions", "conversions"),
        t.Column("rate", "rate", t.RATIO),
        t.Column("uplift_relative", "uplift (relative)", t.TEXT),
        t.Column("ci_relative", "95% CI (relative)", t.TEXT),
        t.Column("uplift_absolute", "uplift (points)", t.TEXT),
        t.Column("ci_absolute", "95% CI (points)", t.TEXT),
        t.Column("p_value", "p-value (Holm)", t.TEXT),
        t.Column("sequential_ci", "always-valid CI", t.TEXT),
        t.Column("chance_to_win", "chance to win", t.RATIO),
        t.Column("risk", "risk", t.TEXT),
        t.Column("bayes_ci", "credible interval", t.TEXT),
        t.Column("median_hours", "median time to activation", t.HOURS),
        t.Column("median_ci", "its 95% CI", t.TEXT),
    ]
    rows = []
    for arm in arms:
        control = arm["is_control"]
        rows.append(
            [
                f"{arm['key']} (control)" if control else arm["key"],
                arm["weight"],
                arm["users"],
                arm["conversions"],
                arm["rate"],
                None if control else percent(arm["uplift_relative"], 1, True),
                None if control else interval(arm["ci_relative"]),
                None if control else percent(arm["uplift_absolute"], 2, True),
                None if control else interval(arm["ci_absolute"], 2),
                None if control else p_value(_first(arm.get("p_value_adjusted"), arm["p_value"])),
                None if control else interval(arm["sequential_ci"]),
                None if control else arm["chance_to_win"],
                None if control else percent(arm["risk"], 2),
                None if control else interval(arm["bayes_ci"]),
                arm["median_hours_to_activation"],
                hours_interval(arm["median_ci"]),
            ]
        )
    return t.Table(
        "arms",
        "Arms",
        columns,
        rows,
        note=(
            "Uplifts are relative to control (points: the difference of the rates). Risk: the expected"
            " relative loss if this arm is chosen and is in fact worse. The p-values are corrected for"
            " several arms (Holm); the always-valid interval may be read every day."
        ),
    )


def cumulative_table(daily: Sequence[Mapping[str, Any]], arm_keys: Sequence[str]) -> t.Table:
    """Per day since the start: each arm's cumulative users and conversion rate (the line chart)."""
    by_day: dict[str, dict[str, Mapping[str, Any]]] = {}
    for point in daily:
        by_day.setdefault(str(point["day"]), {})[point["arm"]] = point
    columns = [t.Column("day", "day", t.TEXT)]
    for key in arm_keys:
        columns += [t.Column(f"users_{key}", f"{key} users"), t.Column(f"rate_{key}", f"{key} rate", t.RATIO)]
    rows = []
    for day in sorted(by_day):
        row: list[Any] = [day]
        for key in arm_keys:
            point = by_day[day].get(key)
            row += [point["users"] if point else None, point["rate"] if point else None]
        rows.append(row)
    return t.Table(
        "cumulative",
        "Cumulative conversion per arm",
        columns,
        rows,
        chart=t.Chart(
            "day",
            tuple(f"rate_{key}" for key in arm_keys),
            "line",
            "Cumulative conversion rate of each arm, day by day since the start",
        ),
        note="Each day: the users assigned so far and the share of them who converted.",
    )


def uplift_table(arms: Sequence[Mapping[str, Any]]) -> t.Table:
    rows = []
    for arm in arms:
        if arm["is_control"]:
            continue
        for _, label, field in METHODS:
            bounds = arm.get(field) or (None, None)
            rows.append([arm["key"], label, arm["uplift_relative"], bounds[0], bounds[1]])
    return t.Table(
        "uplift",
        "Uplift over control with its intervals",
        [
            t.Column("arm", "arm", t.TEXT),
            t.Column("method", "interval", t.TEXT),
            t.Column("uplift", "relative uplift", t.RATIO),
            t.Column("low", "low", t.RATIO),
            t.Column("high", "high", t.RATIO),
        ],
        rows,
        note="An interval entirely above 0% says the arm beats control by that method.",
    )


def uplift_chart(arms: Sequence[Mapping[str, Any]]) -> dict:
    """Floating bars (low to high) per method and arm, and the estimate as a point."""
    challengers = [arm for arm in arms if not arm["is_control"]]

    def bar(bounds):
        if not bounds or bounds[0] is None or bounds[1] is None:
            return None
        return [round(bounds[0] * 100, 2), round(bounds[1] * 100, 2)]

    return {
        "kind": "intervals",
        "labels": [arm["key"] for arm in challengers],
        "datasets": [
            {"label": label, "data": [bar(arm.get(field)) for arm in challengers]}
            for _, label, field in METHODS
        ],
        "estimate": {
            "label": "relative uplift",
            "data": [
                None if arm["uplift_relative"] is None else round(arm["uplift_relative"] * 100, 2)
                for arm in challengers
            ],
        },
    }


def survival_table(curves: Sequence[Mapping[str, Any]]) -> t.Table:
    """Share not yet activated per arm at each time (Kaplan-Meier, the censored counted)."""
    times = sorted({time for curve in curves for time in curve["times_hours"]})
    by_arm = {
        curve["arm"]: dict(zip(curve["times_hours"], curve["survival"], strict=True)) for curve in curves
    }
    columns = [t.Column("hours", "hours since entry", t.TEXT)] + [
        t.Column(f"survival_{curve['arm']}", f"{curve['arm']} not yet activated", t.RATIO) for curve in curves
    ]
    rows = [[f"{time:g}", *(by_arm[curve["arm"]].get(time) for curve in curves)] for time in times]
    return t.Table(
        "survival",
        "Time to activation (Kaplan\u2013Meier)",
        columns,
        rows,
        note=(
            "The share of each arm's users not yet activated at each time since they entered the path;"
            " users not activated yet are censored at their time so far, not dropped."
        ),
    )


def survival_chart(curves: Sequence[Mapping[str, Any]]) -> dict:
    return {
        "kind": "survival",
        "datasets": [
            {
                "label": curve["arm"],
                "data": [
                    {"x": time, "y": round(share * 100, 2)}
                    for time, share in zip(curve["times_hours"], curve["survival"], strict=True)
                ],
            }
            for curve in curves
        ],
    }


def health_rows(results: Mapping[str, Any]) -> list[dict]:
    rows = []
    for check in results.get("health", []):
        detail = check["detail"]
        if check["name"] == "srm" and results.get("srm_p_value") is not None:
            shown = p_value(results["srm_p_value"])
            detail = f"{detail} (chi-square p = {shown}; flagged below {SRM_P_VALUE_THRESHOLD:g})"
        rows.append(
            {
                "name": check["name"],
                "title": HEALTH_TITLES.get(check["name"], check["name"].replace("_", " ")),
                "ok": check["ok"],
                "detail": detail,
            }
        )
    return rows


def build(results: Mapping[str, Any]) -> dict:
    """The page's context from one results dict."""
    arms = results.get("arms", [])
    arm_keys = [arm["key"] for arm in arms]
    tables = {
        "arms": arms_table(arms),
        "cumulative": cumulative_table(results.get("daily", []), arm_keys),
        "uplift": uplift_table(arms),
        "survival": survival_table(results.get("survival", [])),
    }
    health = health_rows(results)
    return {
        "results": results,
        "tables": list(tables.values()),
        **{f"{key}_table": table for key, table in tables.items()},
        "uplift_chart": uplift_chart(arms),
        "survival_chart": survival_chart(results.get("survival", [])),
        "health": health,
        "failing_health": [row for row in health if not row["ok"]],
        "log_rank_p_value": p_value(results.get("log_rank_p_value")),
        "computed_at": _moment_text(results.get("computed_at")),
    }


def _moment_text(value: Any) -> str:
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
