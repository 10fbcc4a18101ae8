"""An enrollment's state as a pure function of its completions and its user's stored events.

`derive` is the whole of the progress rules; the engine (onboarding.progress.engine) loads its inputs
and writes its output, incrementally for new events, from scratch for a rebuild.

A reverted completion (`back`) keeps its row with `reverted_at`; an event completion comes back
only from an event newer than that. A row is active when it was never reverted, or completed
again after its revert (`completed_at > reverted_at`).
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from django.db.models import F, Q

from onboarding.models import Enrollment, StepCompletion
from paths import rules

EVENT = StepCompletion.Method.EVENT


def active_completions() -> Q:
    """Filter for StepCompletion rows that count: never reverted, or completed after the revert."""
    return Q(reverted_at__isnull=True) | Q(completed_at__gt=F("reverted_at"))


@dataclass(slots=True)
class CompletionState:
    step_key: str
    method: str
    event_id: int | None
    completed_at: datetime
    reverted_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.reverted_at is None or self.completed_at > self.reverted_at


@dataclass(slots=True)
class Derived:
    completions: dict[str, CompletionState]
    status: str
    current_step_key: str
    step_entered_at: datetime
    completed_at: datetime | None


def _anchor(compiled: rules.CompiledPath, step: rules.StepSpec, completions, enrolled_at):
    if step.rule is None or step.rule.window is None:
        return None
    previous = compiled.previous_step(step.key)
    if step.rule.window_anchor == "enrollment" or previous is None:
        return enrolled_at
    row = completions.get(previous.key)
    return row.completed_at if row is not None and row.is_active else None


def derive(
    compiled: rules.CompiledPath,
    *,
    enrolled_at: datetime,
    status: str,
    completions: dict[str, CompletionState],
    events_by_name: dict[str, list[rules.StoredEvent]],
    evaluate: Iterable[str] | None = None,
) -> Derived:
    """The enrollment's state. `evaluate`: the step keys whose rules to evaluate (None: all);
    a step whose window is anchored on a step that changed is evaluated too."""
    completions = {key: replace(row) for key, row in completions.items()}
    to_evaluate = None if evaluate is None else set(evaluate)
    for step in compiled.steps:
        if step.rule is None or (to_evaluate is not None and step.key not in to_evaluate):
            continue
        row = completions.get(step.key)
        new = _step_by_events(compiled, step, row, completions, events_by_name, enrolled_at)
        if new == row:
            continue
        if new is None:
            del completions[step.key]
        else:
            completions[step.key] = new
        if to_evaluate is not None:
            to_evaluate.update(dependent.key for dependent in compiled.dependents(step.key))
    return _state_of(compiled, completions, enrolled_at=enrolled_at, status=status)


def _step_by_events(
    compiled: rules.CompiledPath,
    step: rules.StepSpec,
    row: CompletionState | None,
    completions: dict[str, CompletionState],
    events_by_name: dict[str, list[rules.StoredEvent]],
    enrolled_at: datetime,
) -> CompletionState | None:
    """The step's completion row as its rule judges the events (`row` itself when unchanged)."""
    if row is not None and row.is_active and row.method != EVENT:
        return row  # an explicit completion stands whatever the events say
    rule = step.rule
    floor = row.reverted_at if row is not None else None
    event = rules.satisfying_event(
        rule,
        events_by_name.get(rule.event_name, ()),
        anchor=_anchor(compiled, step, completions, enrolled_at),
        not_before=floor,
    )
    if event is not None:
        return CompletionState(step.key, EVENT, event.id, event.timestamp, floor)
    if row is not None and row.is_active:
        # No longer satisfied (its window's anchor moved): gone, or back to reverted.
        return None if floor is None else replace(row, event_id=None, completed_at=floor)
    return row


def _state_of(
    compiled: rules.CompiledPath,
    completions: dict[str, CompletionState],
    *,
    enrolled_at: datetime,
    status: str,
) -> Derived:
    """Status, current step and its entry time, completion time, from the step completions."""
    done = {key for key, row in completions.items() if row.is_active}
    required_done = all(step.optional or step.key in done for step in compiled.steps)
    if status != Enrollment.Status.ABANDONED:
        status = Enrollment.Status.COMPLETED if required_done else Enrollment.Status.ACTIVE
    current = next((step for step in compiled.steps if step.key not in done), None)
    completed = status == Enrollment.Status.COMPLETED
    before_current = set()
    for step in compiled.steps:
        if not completed and current is not None and step.key == current.key:
            break
        before_current.add(step.key)
    moments = [enrolled_at] + [completions[key].completed_at for key in before_current & done]
    current_row = completions.get(current.key) if current is not None and not completed else None
    if current_row is not None and current_row.reverted_at is not None:
        moments.append(current_row.reverted_at)
    required_times = [
        completions[step.key].completed_at
        for step in compiled.steps
        if not step.optional and step.key in done
    ]
    return Derived(
        completions=completions,
        status=status,
        current_step_key="" if completed or current is None else current.key,
        step_entered_at=max(moments),
        completed_at=max([enrolled_at, *required_times]) if completed else None,
    )
