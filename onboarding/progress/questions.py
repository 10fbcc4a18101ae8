"""Typed validation of a form step's answers against its questions.

Errors are {"step", "field", "reason"} dicts, one per problem, so a client can show each next
to its field. Types: text (string), choice (one of the choices), multi_choice (a list of them),
number (a JSON number, not a boolean), boolean. A None value counts as no answer.
"""

import math
from typing import Any


def _type_error(question: dict, value: Any) -> str | None:
    kind = question.get("type", "text")
    choices = [str(choice) for choice in question.get("choices") or []]
    if kind == "text":
        return None if isinstance(value, str) else "must be a string"
    if kind == "choice":
        if not isinstance(value, str):
            return "must be a string, one of the choices"
        return None if value in choices else f"{value!r} is not one of the choices {choices}"
    if kind == "multi_choice":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return "must be a list of strings, each one of the choices"
        unknown = [item for item in value if item not in choices]
        return f"{unknown} not among the choices {choices}" if unknown else None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    return f"question type {kind!r} is not supported"


def is_answered(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return bool(value)
    return True


def type_errors(step_key: str, questions: list[dict], answers: Any) -> list[dict]:
    """Problems with the given answers themselves: not an object, unknown question, wrong type."""
    if not isinstance(answers, dict):
        return [{"step": step_key, "field": None, "reason": "answers must be an object of question: value"}]
    by_key = {question.get("key"): question for question in questions}
    errors = []
    for key, value in answers.items():
        question = by_key.get(key)
        if question is None:
            errors.append({"step": step_key, "field": key, "reason": "unknown question"})
        elif is_answered(value):  # an empty answer is no answer: only `required` looks at it
            reason = _type_error(question, value)
            if reason:
                errors.append({"step": step_key, "field": key, "reason": reason})
    return errors


def missing_required(step_key: str, questions: list[dict], answers: dict) -> list[dict]:
    return [
        {"step": step_key, "field": question.get("key"), "reason": "required answer missing"}
        for question in questions
        if question.get("required") and not is_answered(answers.get(question.get("key")))
    ]


def merged(existing: dict, given: dict) -> dict:
    """The step's answers after saving `given` over `existing` (None removes an answer)."""
    result = dict(existing or {})
    for key, value in given.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result
