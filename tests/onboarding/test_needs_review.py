"""Events a completion rule cannot judge are flagged for a human, not silently ignored."""

import pytest

from onboarding.models import EnrollmentSignal, StepCompletion
from paths import rules
from tests.factories import PathFactory, PublishedPathVersionFactory, StepFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def seats_path(tenant):
    workspace, _, _ = tenant
    version = PublishedPathVersionFactory(path=PathFactory(workspace=workspace, key="team", is_default=True))
    StepFactory(
        path_version=version,
        key="seats",
        order=1,
        event_name="Seats Added",
        conditions=[
            {"property": "seats", "operator": "gt", "value": 5},
            {"property": "plan", "operator": "eq", "value": "team"},
        ],
    )
    StepFactory(path_version=version, key="done", order=2, completion="api", event_name="")
    rules.forget()
    return version


def test_a_non_numeric_value_in_a_numeric_condition_is_flagged_for_review(segment, seats_path):
    segment("identify", {"userId": "u-1", "traits": {}})
    segment(
        "track",
        {
            "userId": "u-1",
            "event": "Seats Added",
            "messageId": "m-1",
            "properties": {"seats": "ten", "plan": "team"},
        },
    )

    signal = EnrollmentSignal.objects.get(kind="needs_review")
    assert (signal.step_key, signal.resolved_at) == ("seats", None)
    assert signal.reason == (
        "event 'Seats Added' (m-1) may complete this step: property 'seats' is 'ten', not a number, for gt 5"
    )
    assert not StepCompletion.objects.filter(step_key="seats").exists()

    # The same doubt again keeps one open flag; a clear answer completes the step.
    segment(
        "track", {"userId": "u-1", "event": "Seats Added", "properties": {"seats": "many", "plan": "team"}}
    )
    assert EnrollmentSignal.objects.filter(kind="needs_review").count() == 1
    segment("track", {"userId": "u-1", "event": "Seats Added", "properties": {"seats": "12", "plan": "team"}})
    assert StepCompletion.objects.get(step_key="seats").method == "event"


@pytest.mark.parametrize(
    "properties",
    [
        {"seats": 3, "plan": "team"},  # clearly below
        {"seats": "ten", "plan": "solo"},  # another condition is clearly false
        {"plan": "team"},  # missing is not ambiguous
    ],
)
def test_clearly_false_events_are_not_flagged(segment, seats_path, properties):
    segment("identify", {"userId": "u-1", "traits": {}})
    segment("track", {"userId": "u-1", "event": "Seats Added", "properties": properties})

    assert not EnrollmentSignal.objects.filter(kind="needs_review").exists()
