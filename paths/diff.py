"""Readable differences between two ordered lists of step dicts (see paths.steps)."""

import json
from typing import Any

from django.utils.dateparse import parse_duration

from paths.steps import DURATION_FIELDS, STEP_FIELDS, condition_text, duration_text


def _text(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    return json.dumps(value, ensure_ascii=False)


def _field_change(key: str, field: str, old: Any, new: Any) -> list[str]:
    if field in DURATION_FIELDS:
        old_text = duration_text(parse_duration(old) if old else None)
        new_text = duration_text(parse_duration(new) if new else None)
        return [f"step '{key}': {field} {old_text} → {new_text}"]
    if field == "conditions":
        old_text = " and ".join(condition_text(condition) for condition in old) or "none"
        new_text = " and ".join(condition_text(condition) for condition in new) or "none"
        return [f"step '{key}': conditions {old_text} → {new_text}"]
    if field == "questions":
        return _question_changes(key, old, new)
    return [f"step '{key}': {field} {_text(old)} → {_text(new)}"]


def _question_changes(step_key: str, old: list[dict], new: list[dict]) -> list[str]:
    old_by_key = {question["key"]: question for question in old}
    new_by_key = {question["key"]: question for question in new}
    changes = [f"step '{step_key}': question '{key}' added" for key in new_by_key if key not in old_by_key]
    changes += [f"step '{step_key}': question '{key}' removed" for key in old_by_key if key not in new_by_key]
    for key in [key for key in new_by_key if key in old_by_key]:
        before, after = old_by_key[key], new_by_key[key]
        for field in ("label", "type", "required", "choices"):
            if before.get(field) != after.get(field):
                changes.append(
                    f"step '{step_key}': question '{key}' {field} "
                    f"{_text(before.get(field))} → {_text(after.get(field))}"
                )
    old_order = [key for key in old_by_key if key in new_by_key]
    new_order = [key for key in new_by_key if key in old_by_key]
    if old_order != new_order:
        changes.append(f"step '{step_key}': question order {', '.join(old_order)} → {', '.join(new_order)}")
    return changes


def steps_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """One line per change, in the new version's step order: additions, removals, field changes,
    then the order of the steps both versions share."""
    old_by_key = {step["key"]: step for step in old}
    new_by_key = {step["key"]: step for step in new}
    changes = []
    for step in new:
        key = step["key"]
        if key not in old_by_key:
            changes.append(f"step '{key}' added")
            continue
        for field in STEP_FIELDS:
            before, after = old_by_key[key].get(field), step.get(field)
            if before != after:
                changes.extend(_field_change(key, field, before, after))
    changes.extend(f"step '{step['key']}' removed" for step in old if step["key"] not in new_by_key)
    old_order = [step["key"] for step in old if step["key"] in new_by_key]
    new_order = [step["key"] for step in new if step["key"] in old_by_key]
    if old_order != new_order:
        changes.append(f"step order changed: {', '.join(old_order)} → {', '.join(new_order)}")
    return changes
