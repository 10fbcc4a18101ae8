"""The trigger kinds, registered in one place: a new kind is one module under
nudges/triggers/kinds/ and one line here (its Trigger.Kind choice besides)."""

from nudges.triggers.kinds import custom, inactivity, milestone, reengagement, stuck, welcome
from nudges.triggers.kinds.base import TriggerKind

# In the order the periodic scan runs them.
KINDS: dict[str, TriggerKind] = {
    registered.kind: registered
    for registered in (
        welcome.KIND,
        milestone.KIND,
        stuck.KIND,
        inactivity.KIND,
        reengagement.KIND,
        custom.KIND,
    )
}


def kind_for(kind: str) -> TriggerKind:
    """The registered kind; LookupError for an unknown one."""
    try:
        return KINDS[kind]
    except KeyError:
        raise LookupError(f"no trigger kind {kind!r} is registered") from None


def enrollment_kinds() -> tuple[str, ...]:
    """Kinds that react to a new enrollment."""
    return tuple(name for name, registered in KINDS.items() if registered.fires_on_enrollment)


def step_kinds() -> tuple[str, ...]:
    """Kinds that react to completed steps."""
    return tuple(name for name, registered in KINDS.items() if registered.fires_on_steps)


def event_kinds() -> tuple[str, ...]:
    """Kinds that react to stored events."""
    return tuple(name for name, registered in KINDS.items() if registered.fires_on_events)


def scanning_kinds() -> tuple[str, ...]:
    """Kinds with a periodic scan."""
    return tuple(name for name, registered in KINDS.items() if registered.scans)
