"""Completion rules: a PathVersion's steps compiled into plain data, indexed by event name.

Pure functions: no database access except `compiled_version`, which reads a version's steps
once and keeps the result, since a published version never changes. The progress engine
evaluates an event only against the rules indexed under its name.

Semantics, relied on for idempotency and order independence:
- a condition whose property is missing, or whose types do not compare, is false (never raises);
- a rule is satisfied by its `count`-th matching event in time order (ties by event id);
- a window keeps only events within [anchor, anchor + window]; the anchor is the previous
  step's completion (no anchor while it is incomplete) or the enrollment time;
- `not_before` (a reverted completion) keeps only events strictly newer than it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

_MISSING = object()

OPERATORS = ("eq", "neq", "in", "not_in", "exists", "not_exists", "gt", "gte", "lt", "lte", "contains")
CACHE_SIZE = 2048


@dataclass(frozen=True, slots=True)
class Condition:
    property: str
    operator: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Rule:
    step_key: str
    event_name: str
    conditions: tuple[Condition, ...] = ()
    count: int = 1
    window: timedelta | None = None
    window_anchor: str = "previous_step"


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A step as the engine and the state view need it (display fields included)."""

    key: str
    order: int
    title: str = ""
    body: str = ""
    optional: bool = False
    completion: str = "event"
    ui_component: str = "checklist"
    deep_link: str = ""
    expected_duration: timedelta | None = None
    questions: tuple[dict, ...] = ()
    rule: Rule | None = None


@dataclass(frozen=True, slots=True)
class CompiledPath:
    path_version_id: int | None
    steps: tuple[StepSpec, ...]
    by_event: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    @property
    def event_names(self) -> frozenset[str]:
        return frozenset(self.by_event)

    def step(self, key: str) -> StepSpec | None:
        for step in self.steps:
            if step.key == key:
                return step
        return None

    def previous_step(self, key: str) -> StepSpec | None:
        previous = None
        for step in self.steps:
            if step.key == key:
                return previous
            previous = step
        return None

    def dependents(self, key: str) -> list[StepSpec]:
        """Steps whose window is anchored on this step's completion (the next step, if so)."""
        found = False
        for step in self.steps:
            if found:
                rule = step.rule
                if rule is not None and rule.window is not None and rule.window_anchor == "previous_step":
                    return [step]
                return []
            found = step.key == key
        return []

    def rule_event_names(self, keys: Iterable[str]) -> set[str]:
        """The event names that the rules of those steps (the ones with a rule) read."""
        wanted = set(keys)
        return {step.rule.event_name for step in self.steps if step.key in wanted and step.rule is not None}

    def with_dependents(self, keys: Iterable[str]) -> set[str]:
        """The steps, and every step whose window hangs on one of them, however indirectly:
        what to evaluate again when those steps' completions change."""
        found, pending = set(), list(keys)
        while pending:
            key = pending.pop()
            if key not in found:
                found.add(key)
                pending.extend(dependent.key for dependent in self.dependents(key))
        return found


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """The part of an Event that rules read."""

    id: int
    timestamp: datetime
    properties: Mapping[str, Any]


# --- Compilation -------------------------------------------------------------------------------


def compile_steps(steps: Iterable[Any], *, path_version_id: int | None = None) -> CompiledPath:
    """Compile Step objects (or anything with the same attributes) into a CompiledPath."""
    specs = []
    by_event: dict[str, list[Rule]] = {}
    for step in sorted(steps, key=lambda step: (step.order, step.pk or 0)):
        rule = None
        if step.completion == "event" and step.event_name:
            rule = Rule(
                step_key=step.key,
                event_name=step.event_name,
                conditions=tuple(
                    Condition(
                        property=str(condition.get("property", "")),
                        operator=str(condition.get("operator", "eq")),
                        value=condition.get("value"),
                    )
                    for condition in (step.conditions or [])
                    if isinstance(condition, dict)
                ),
                count=max(int(step.count or 1), 1),
                window=step.window,
                window_anchor=step.window_anchor or "previous_step",
            )
            by_event.setdefault(rule.event_name, []).append(rule)
        specs.append(
            StepSpec(
                key=step.key,
                order=step.order,
                title=step.title,
                body=step.body,
                optional=step.optional,
                completion=step.completion,
                ui_component=step.ui_component,
                deep_link=step.deep_link,
                expected_duration=step.expected_duration,
                questions=tuple(
                    question for question in (step.questions or []) if isinstance(question, dict)
                ),
                rule=rule,
            )
        )
    return CompiledPath(
        path_version_id=path_version_id,
        steps=tuple(specs),
        by_event={name: tuple(rules) for name, rules in by_event.items()},
    )


_cache: dict[tuple[int, datetime], CompiledPath] = {}


def compiled_version(path_version) -> CompiledPath:
    """The compiled steps of a version; published (immutable) versions are cached per process.

    The key holds `published_at`, so a version published again (after a database reset, say)
    is compiled afresh; drafts are never cached, since they may still change.
    """
    if path_version.status == "draft" or path_version.published_at is None:
        return compile_steps(path_version.steps.all(), path_version_id=path_version.pk)
    key = (path_version.pk, path_version.published_at)
    compiled = _cache.get(key)
    if compiled is None:
        compiled = compile_steps(path_version.steps.all(), path_version_id=path_version.pk)
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()
        _cache[key] = compiled
    return compiled


def forget(path_version_id: int | None = None) -> None:
    """Drop cached compilations (of one version, or all): for tests and admin repairs."""
    if path_version_id is None:
        _cache.clear()
        return
    for key in [key for key in _cache if key[0] == path_version_id]:
        del _cache[key]


# --- Conditions --------------------------------------------------------------------------------


def property_value(properties: Mapping[str, Any], path: str) -> Any:
    """The value at `path`: a key as written, else a dotted path through nested objects
    ("plan.tier"). Returns _MISSING when absent."""
    if not isinstance(properties, Mapping):
        return _MISSING
    if path in properties:
        return properties[path]
    value: Any = properties
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _number(value: Any) -> Decimal | None:
    """A number from a number or a numeric string; booleans and the rest are not numbers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else Decimal(repr(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _equal(left: Any, right: Any) -> bool:
    """Equality that treats 3, 3.0 and "3" alike, and booleans only as booleans."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float | Decimal) or isinstance(right, int | float | Decimal):
        left_number, right_number = _number(left), _number(right)
        return left_number is not None and left_number == right_number
    return left == right


def condition_matches(condition: Condition, properties: Mapping[str, Any]) -> bool:
    actual = property_value(properties, condition.property)
    operator, expected = condition.operator, condition.value
    if operator == "exists":
        return actual is not _MISSING and actual is not None
    if operator == "not_exists":
        return actual is _MISSING or actual is None
    if actual is _MISSING:
        return False
    if operator == "eq":
        return _equal(actual, expected)
    if operator == "neq":
        return not _equal(actual, expected)
    if operator in ("in", "not_in"):
        if not isinstance(expected, list | tuple):
            return False
        found = any(_equal(actual, candidate) for candidate in expected)
        return found if operator == "in" else not found
    if operator in ("gt", "gte", "lt", "lte"):
        left, right = _number(actual), _number(expected)
        if left is None or right is None:
            return False
        return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[operator]
    if operator == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected.casefold() in actual.casefold()
        if isinstance(actual, list):
            return any(_equal(item, expected) for item in actual)
        if isinstance(actual, Mapping):
            return isinstance(expected, str) and expected in actual
        return False
    return False  # an unknown operator never matches


def event_matches(rule: Rule, properties: Mapping[str, Any]) -> bool:
    return all(condition_matches(condition, properties) for condition in rule.conditions)


def ambiguity(rule: Rule, properties: Mapping[str, Any]) -> str | None:
    """Why an event that almost completes a step cannot be judged, or None.

    An event is ambiguous when every other condition holds but a numeric comparison meets a
    value that is present and not a number ("ten seats"): the client probably meant to complete
    the step, so a human should look rather than the rule silently saying no.
    """
    unclear = []
    for condition in rule.conditions:
        if condition_matches(condition, properties):
            continue
        actual = property_value(properties, condition.property)
        numeric = condition.operator in ("gt", "gte", "lt", "lte")
        if numeric and actual is not _MISSING and actual is not None and _number(actual) is None:
            unclear.append(
                f"property {condition.property!r} is {actual!r}, not a number, for "
                f"{condition.operator} {condition.value!r}"
            )
        else:
            return None  # clearly false
    return "; ".join(unclear) or None


# --- Counts and windows ------------------------------------------------------------------------


def satisfying_event(
    rule: Rule,
    events: Sequence[StoredEvent],
    *,
    anchor: datetime | None = None,
    not_before: datetime | None = None,
) -> StoredEvent | None:
    """The event that completes the rule (its `count`-th match in time order), or None.

    `anchor` is required when the rule has a window (None then means "no anchor yet": not
    satisfiable). Events are any of the user's stored events under the rule's event name.
    """
    if rule.window is not None:
        if anchor is None:
            return None
        start, end = anchor, anchor + rule.window
    else:
        start = end = None
    seen = 0
    for event in sorted(events, key=lambda event: (event.timestamp, event.id)):
        if not_before is not None and event.timestamp <= not_before:
            continue
        if start is not None and event.timestamp < start:
            continue
        if end is not None and event.timestamp > end:
            break
        if event_matches(rule, event.properties):
            seen += 1
            if seen >= rule.count:
                return event
    return None
