"""The trigger kinds' registry: every kind a trigger can have is registered, once."""

import pytest

from nudges.models import Trigger
from nudges.triggers import registry


def test_every_trigger_kind_is_registered_under_its_own_name():
    assert sorted(registry.KINDS) == sorted(Trigger.Kind.values)
    assert all(name == registered.kind for name, registered in registry.KINDS.items())


def test_the_engine_asks_each_kind_only_what_it_does():
    assert registry.enrollment_kinds() == (Trigger.Kind.WELCOME,)
    assert registry.step_kinds() == (Trigger.Kind.MILESTONE,)
    assert registry.event_kinds() == (Trigger.Kind.CUSTOM,)
    assert registry.scanning_kinds() == (
        Trigger.Kind.STUCK,
        Trigger.Kind.INACTIVITY,
        Trigger.Kind.REENGAGEMENT,
        Trigger.Kind.CUSTOM,
    )


def test_an_unknown_kind_is_refused():
    with pytest.raises(LookupError, match="no trigger kind 'nope' is registered"):
        registry.kind_for("nope")
