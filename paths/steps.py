"""Step data as plain dicts: the canonical form used by validation, diffs, export and import.

A step dict holds every editable field of a Step except `order` (a list of step dicts is in
order). Durations are ISO 8601 strings ("P7D", "PT1H30M") so files kept in git stay readable.
"""

import json
import re
from datetime import timedelta
from typing import Any

from django.utils.dateparse import parse_duration

from paths.models import Step

OPERATORS = {
    "eq": "=",
    "neq": "≠",
    "in": "is one of",
    "not_in": "is not one of",
    "exists": "exists",
    "not_exists": "does not exist",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "contains": "contains",
}
VALUELESS_OPERATORS = {"exists", "not_exists"}
LIST_OPERATORS = {"in", "not_in"}
NUMERIC_OPERATORS = {"gt", "gte", "lt", "lte"}
QUESTION_TYPES = ("text", "choice", "multi_choice", "number", "boolean")
CHOICE_TYPES = {"choice", "multi_choice"}

STEP_FIELDS = (
    "key",
    "title",
    "body",
    "optional",
    "expected_duration",
    "ui_component",
    "deep_link",
    "completion",
    "event_name",
    "conditions",
    "count",
    "window",
    "window_anchor",
    "questions",
)
DURATION_FIELDS = ("expected_duration", "window")
UNSAFE_LINK_SCHEMES = ("javascript:", "data:", "vbscript:")
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


def duration_iso(value: timedelta | None) -> str | None:
    """The shortest ISO 8601 form: P7D, PT1H30M, P1DT2H; None stays None."""
    if value is None:
        return None
    seconds = int(value.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    time_part = "".join(
        f"{amount}{unit}" for amount, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if amount
    )
    text = "P" + (f"{days}D" if days else "")
    if time_part:
        text += "T" + time_part
    return text if text != "P" else "P0D"


def duration_text(value: timedelta | None) -> str:
    """ "2 days 3 hours", "30 minutes", "none"."""
    if value is None:
        return "none"
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}{'s' if amount != 1 else ''}")
    return " ".join(parts) or "0 minutes"


def step_as_dict(step: Step) -> dict[str, Any]:
    data = {field: getattr(step, field) for field in STEP_FIELDS}
    for field in DURATION_FIELDS:
        data[field] = duration_iso(data[field])
    return data


def step_model_values(data: dict[str, Any]) -> dict[str, Any]:
    """Field values for a Step from a (validated) step dict, with defaults for missing keys."""
    values = {
        "key": data["key"],
        "title": data.get("title", ""),
        "body": data.get("body", ""),
        "optional": bool(data.get("optional", False)),
        "ui_component": data.get("ui_component", Step.UiComponent.CHECKLIST),
        "deep_link": data.get("deep_link", ""),
        "completion": data.get("completion", Step.Completion.EVENT),
        "event_name": data.get("event_name", ""),
        "conditions": list(data.get("conditions") or []),
        "count": data.get("count", 1),
        "window_anchor": data.get("window_anchor", Step.WindowAnchor.PREVIOUS_STEP),
        "questions": list(data.get("questions") or []),
    }
    for field in DURATION_FIELDS:
        raw = data.get(field)
        values[field] = raw if isinstance(raw, timedelta) or raw is None else parse_duration(raw)
    return values


def step_normalized(data: dict[str, Any]) -> dict[str, Any]:
    """A (validated) step dict with every field, defaults filled in and durations in shortest form,
    so two dicts for the same step compare equal."""
    values = step_model_values(data)
    for field in DURATION_FIELDS:
        values[field] = duration_iso(values[field])
    return {field: values[field] for field in STEP_FIELDS}


def condition_text(condition: dict[str, Any]) -> str:
    """plan = "pro", seats ≥ 3, referrer exists."""
    operator = condition.get("operator", "")
    text = f"{condition.get('property', '')} {OPERATORS.get(operator, operator)}"
    if operator not in VALUELESS_OPERATORS:
        text += f" {json.dumps(condition.get('value'), ensure_ascii=False)}"
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def condition_errors(condition: Any) -> list[str]:
    if not isinstance(condition, dict):
        return ["must be an object with property, operator and value"]
    errors = []
    if not isinstance(condition.get("property"), str) or not condition["property"].strip():
        errors.append("needs a property name")
    operator = condition.get("operator")
    if operator not in OPERATORS:
        errors.append(f"unknown operator {operator!r} (one of {', '.join(OPERATORS)})")
    elif operator in LIST_OPERATORS and not isinstance(condition.get("value"), list):
        errors.append(f"'{operator}' needs a list of values")
    elif operator in NUMERIC_OPERATORS and not _is_number(condition.get("value")):
        errors.append(f"'{operator}' needs a number")
    elif operator not in VALUELESS_OPERATORS and "value" not in condition:
        errors.append(f"'{operator}' needs a value")
    return errors


def question_errors(questions: Any) -> list[str]:
    if not isinstance(questions, list):
        return ["questions must be a list"]
    errors = []
    seen = set()
    for number, question in enumerate(questions, start=1):
        if not isinstance(question, dict):
            errors.append(f"question {number}: must be an object")
            continue
        key = question.get("key")
        where = f"question {key!r}" if isinstance(key, str) and key else f"question {number}"
        if not isinstance(key, str) or not SLUG.match(key):
            errors.append(f"{where}: key must be letters, digits, '-' or '_'")
        elif key in seen:
            errors.append(f"{where}: duplicate key")
        seen.add(key)
        if not isinstance(question.get("label"), str) or not question["label"].strip():
            errors.append(f"{where}: needs a label")
        kind = question.get("type")
        if kind not in QUESTION_TYPES:
            errors.append(f"{where}: unknown type {kind!r} (one of {', '.join(QUESTION_TYPES)})")
        if not isinstance(question.get("required", False), bool):
            errors.append(f"{where}: required must be true or false")
        choices = question.get("choices") or []
        if kind in CHOICE_TYPES:
            if not isinstance(choices, list) or not choices:
                errors.append(f"{where}: a {kind} question needs choices")
            elif not all(isinstance(choice, str) and choice.strip() for choice in choices):
                errors.append(f"{where}: choices must be non-empty text")
            elif len(set(choices)) != len(choices):
                errors.append(f"{where}: duplicate choices")
        elif choices:
            errors.append(f"{where}: only choice and multi_choice questions take choices")
    return errors


def step_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """What makes this step dict unusable, even as a draft, as (field, message) pairs: the admin
    shows each message on its field, the API and import list them."""
    problems = []
    key = data.get("key")
    if not isinstance(key, str) or not SLUG.match(key):
        problems.append(("key", "key must be letters, digits, '-' or '_'"))
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        problems.append(("title", "needs a title"))
    for field, choices in (
        ("ui_component", Step.UiComponent.values),
        ("completion", Step.Completion.values),
        ("window_anchor", Step.WindowAnchor.values),
    ):
        if field in data and data[field] not in choices:
            problems.append((field, f"{field} {data[field]!r} is not one of {', '.join(choices)}"))
    deep_link = data.get("deep_link", "")
    if not isinstance(deep_link, str) or deep_link.strip().lower().startswith(UNSAFE_LINK_SCHEMES):
        problems.append(
            (
                "deep_link",
                "deep_link must be a path, a web address or an app link "
                f"({', '.join(UNSAFE_LINK_SCHEMES)} links are refused)",
            )
        )
    count = data.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        problems.append(("count", "count must be a whole number of at least 1"))
    for field in DURATION_FIELDS:
        raw = data.get(field)
        if (
            raw is not None
            and not isinstance(raw, timedelta)
            and (not isinstance(raw, str) or parse_duration(raw) is None)
        ):
            problems.append((field, f"{field} {raw!r} is not a duration such as 'P7D' or 'PT1H30M'"))
    conditions = data.get("conditions") or []
    if not isinstance(conditions, list):
        problems.append(("conditions", "conditions must be a list"))
    else:
        for number, condition in enumerate(conditions, start=1):
            problems.extend(
                ("conditions", f"condition {number}: {error}") for error in condition_errors(condition)
            )
    problems.extend(("questions", error) for error in question_errors(data.get("questions") or []))
    return problems


def step_errors(data: dict[str, Any]) -> list[str]:
    """What makes this step dict unusable, even as a draft."""
    return [message for _, message in step_problems(data)]


def steps_errors(steps: list[dict[str, Any]], *, for_publish: bool) -> list[str]:
    """Every problem of an ordered list of step dicts, each naming its step.

    Drafts may be incomplete; publishing also needs at least one step, an event name on event
    steps and questions on form steps.
    """
    errors = []
    if for_publish and not steps:
        errors.append("a version needs at least one step to be published")
    seen = set()
    for number, data in enumerate(steps, start=1):
        key = data.get("key") if isinstance(data, dict) else None
        where = f"step {key!r}" if isinstance(key, str) and key else f"step {number}"
        if not isinstance(data, dict):
            errors.append(f"{where}: must be an object")
            continue
        if key in seen:
            errors.append(f"{where}: duplicate key")
        seen.add(key)
        errors.extend(f"{where}: {error}" for error in step_errors(data))
        if for_publish:
            completion = data.get("completion", Step.Completion.EVENT)
            if completion == Step.Completion.EVENT and not (data.get("event_name") or "").strip():
                errors.append(f"{where}: an event step needs an event name")
            if completion == Step.Completion.FORM and not data.get("questions"):
                errors.append(f"{where}: a form step needs at least one question")
    return errors


def rule_text(data: dict[str, Any]) -> str:
    """When a step counts as done, in words: 'when "Project Created" happens 3 times with
    plan = "pro", within 7 days of the previous step's completion'."""
    completion = data.get("completion", Step.Completion.EVENT)
    if completion == Step.Completion.API:
        return "when your app marks it done through the API"
    if completion == Step.Completion.FORM:
        return "when the form is submitted with valid answers"
    text = f"when '{data.get('event_name') or '?'}' happens"
    count = data.get("count", 1)
    if count > 1:
        text += f" {count} times"
    if data.get("conditions"):
        text += " with " + " and ".join(condition_text(condition) for condition in data["conditions"])
    window = data.get("window")
    if window:
        window = window if isinstance(window, timedelta) else parse_duration(window)
        anchor = Step.WindowAnchor(data.get("window_anchor", Step.WindowAnchor.PREVIOUS_STEP)).label
        text += f", within {duration_text(window)} of {anchor}"
    return text
