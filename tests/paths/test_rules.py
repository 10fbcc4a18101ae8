"""Completion rules: conditions (every operator), counts, windows, the event-name index."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from paths import rules
from paths.rules import Condition, Rule, StoredEvent
from tests.factories import PathVersionFactory, PublishedPathVersionFactory, StepFactory

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
PROPERTIES = {
    "plan": "pro",
    "seats": 5,
    "price": "19.90",
    "trial": False,
    "tags": ["beta", "eu"],
    "note": None,
    "plan.tier": "flat key wins",
    "company": {"plan": {"tier": "gold"}, "size": 42},
}


def matches(property_name, operator, value=None):
    return rules.condition_matches(Condition(property_name, operator, value), PROPERTIES)


@pytest.mark.parametrize(
    ("property_name", "operator", "value", "expected"),
    [
        ("plan", "eq", "pro", True),
        ("plan", "eq", "PRO", False),
        ("seats", "eq", 5, True),
        ("seats", "eq", "5", True),
        ("seats", "eq", 5.0, True),
        ("trial", "eq", False, True),
        ("trial", "eq", 0, False),
        ("missing", "eq", None, False),
        ("plan", "neq", "free", True),
        ("plan", "neq", "pro", False),
        ("missing", "neq", "pro", False),
        ("plan", "in", ["free", "pro"], True),
        ("seats", "in", ["5", 6], True),
        ("plan", "in", ["free"], False),
        ("plan", "in", "pro", False),
        ("plan", "not_in", ["free", "team"], True),
        ("plan", "not_in", ["pro"], False),
        ("missing", "not_in", ["pro"], False),
        ("plan", "exists", None, True),
        ("note", "exists", None, False),
        ("missing", "exists", None, False),
        ("missing", "not_exists", None, True),
        ("note", "not_exists", None, True),
        ("plan", "not_exists", None, False),
        ("seats", "gt", 4, True),
        ("seats", "gt", 5, False),
        ("seats", "gte", 5, True),
        ("seats", "lt", "6", True),
        ("seats", "lte", 4, False),
        ("price", "gt", 19.5, True),
        ("price", "lte", "19.9", True),
        ("plan", "gt", 1, False),
        ("trial", "lt", 1, False),
        ("seats", "gt", "many", False),
        ("plan", "contains", "R", True),
        ("plan", "contains", "team", False),
        ("tags", "contains", "eu", True),
        ("tags", "contains", "us", False),
        ("seats", "contains", "5", False),
        ("company", "contains", "size", True),
        ("company.plan.tier", "eq", "gold", True),
        ("company.size", "gte", 40, True),
        ("company.plan.missing", "exists", None, False),
        ("plan.tier", "eq", "flat key wins", True),
        ("tags.1", "eq", "eu", True),
        ("plan", "regex", "p.*", False),
    ],
)
def test_condition_operators(property_name, operator, value, expected):
    assert matches(property_name, operator, value) is expected


def test_every_condition_must_hold():
    rule = Rule("s", "Upgraded", (Condition("plan", "eq", "pro"), Condition("seats", "gte", 10)))

    assert rules.event_matches(rule, {"plan": "pro", "seats": 12}) is True
    assert rules.event_matches(rule, {"plan": "pro", "seats": 3}) is False
    assert rules.event_matches(Rule("s", "Upgraded"), {}) is True


def events(*offsets_and_properties):
    return [
        StoredEvent(index, T0 + timedelta(hours=hours), properties)
        for index, (hours, properties) in enumerate(offsets_and_properties, start=1)
    ]


def test_count_is_reached_by_the_nth_matching_event_in_time_order():
    rule = Rule("invite", "Teammate Invited", (Condition("role", "neq", "viewer"),), count=3)
    stored = events((5, {"role": "admin"}), (1, {"role": "member"}), (2, {"role": "viewer"}), (3, {}))

    # Unordered input; the viewer does not match, nor the event without a role (neq is false).
    assert rules.satisfying_event(rule, stored) is None

    stored.append(StoredEvent(99, T0 + timedelta(hours=4), {"role": "member"}))

    assert rules.satisfying_event(rule, stored).id == 1  # hours 1, 4 and 5: the third is at hour 5


def test_ties_in_time_are_broken_by_event_id():
    rule = Rule("s", "Report Viewed", count=1)
    same_time = [StoredEvent(7, T0, {}), StoredEvent(3, T0, {})]

    assert rules.satisfying_event(rule, same_time).id == 3


def test_window_keeps_events_between_the_anchor_and_its_end():
    rule = Rule("s", "Report Viewed", count=2, window=timedelta(days=7))
    stored = events((-1, {}), (24, {}), (24 * 6, {}), (24 * 8, {}))

    assert rules.satisfying_event(rule, stored, anchor=T0).id == 3
    assert rules.satisfying_event(rule, stored, anchor=T0 + timedelta(days=2)).id == 4
    assert rules.satisfying_event(rule, stored, anchor=T0 + timedelta(days=7)) is None
    assert rules.satisfying_event(rule, stored, anchor=None) is None  # the anchor step is not done


def test_window_bounds_are_inclusive():
    rule = Rule("s", "Report Viewed", window=timedelta(hours=2))

    assert rules.satisfying_event(rule, events((0, {})), anchor=T0).id == 1
    assert rules.satisfying_event(rule, events((2, {})), anchor=T0).id == 1


def test_not_before_keeps_only_strictly_newer_events():
    rule = Rule("s", "Report Viewed")
    stored = events((1, {}), (3, {}))

    assert rules.satisfying_event(rule, stored, not_before=T0 + timedelta(hours=1)).id == 2
    assert rules.satisfying_event(rule, stored, not_before=T0 + timedelta(hours=3)) is None


def step(key, order, **fields):
    defaults = {
        "pk": order,
        "title": key,
        "body": "",
        "optional": False,
        "completion": "event",
        "ui_component": "checklist",
        "deep_link": "",
        "expected_duration": None,
        "questions": [],
        "event_name": "",
        "conditions": [],
        "count": 1,
        "window": None,
        "window_anchor": "previous_step",
    }
    return SimpleNamespace(key=key, order=order, **{**defaults, **fields})


def test_compile_indexes_rules_by_event_name_in_step_order():
    compiled = rules.compile_steps(
        [
            step("share", 3, event_name="Dashboard Shared", count=2, window=timedelta(days=7)),
            step(
                "create", 1, event_name="Project Created", conditions=[{"property": "plan", "value": "pro"}]
            ),
            step("profile", 2, completion="form", questions=[{"key": "role", "type": "text"}]),
            step("again", 4, event_name="Project Created"),
            step("call", 5, completion="api", event_name="Ignored"),
        ]
    )

    assert [spec.key for spec in compiled.steps] == ["create", "profile", "share", "again", "call"]
    assert compiled.event_names == {"Project Created", "Dashboard Shared"}
    assert [rule.step_key for rule in compiled.by_event["Project Created"]] == ["create", "again"]
    assert compiled.by_event["Project Created"][0].conditions == (Condition("plan", "eq", "pro"),)
    assert compiled.by_event["Dashboard Shared"][0] == Rule(
        "share", "Dashboard Shared", (), count=2, window=timedelta(days=7), window_anchor="previous_step"
    )
    assert compiled.step("profile").questions == ({"key": "role", "type": "text"},)
    assert compiled.previous_step("share").key == "profile"
    assert [dependent.key for dependent in compiled.dependents("profile")] == ["share"]
    assert compiled.dependents("share") == []


@pytest.mark.django_db
def test_published_versions_are_compiled_once_and_drafts_every_time(django_assert_num_queries):
    rules.forget()
    published = PublishedPathVersionFactory()
    StepFactory(path_version=published, key="create")
    draft = PathVersionFactory(path=published.path)
    StepFactory(path_version=draft, key="create")

    with django_assert_num_queries(1):
        first = rules.compiled_version(published)
        assert rules.compiled_version(published) is first
    with django_assert_num_queries(2):
        rules.compiled_version(draft)
        rules.compiled_version(draft)

    rules.forget(published.pk)
    with django_assert_num_queries(1):
        assert rules.compiled_version(published) == first
