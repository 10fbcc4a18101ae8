"""Saving what the engine derived: step completion rows, the enrollment's state and revision,
then what follows a change (completions cache, answer totals, stuck signals, the
steps_completed signal, the new state pushed after commit).

Callers hold the enrollments locked (or inserted them in this transaction): the revisions are
worked out here, with no compare-and-set.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import timezone

from core.db import bulk
from onboarding import signals
from onboarding.models import Enrollment, StepCompletion
from onboarding.progress import answers, completions_cache, push
from onboarding.progress.selectors import enrollment_state
from onboarding.progress.state import CompletionState, Derived
from onboarding.stuck import services as enrollment_signals


def state_fields(enrollment: Enrollment) -> tuple:
    return (
        enrollment.status,
        enrollment.current_step_key,
        enrollment.step_entered_at,
        enrollment.completed_at,
    )


@dataclass(slots=True)
class _Write:
    """What saving one enrollment writes, worked out before anything is written."""

    enrollment: Enrollment
    before: dict[str, CompletionState]
    derived: Derived
    new_rows: list[StepCompletion]
    changed_rows: list[CompletionState]
    deleted_keys: list[str]
    was_completed: bool
    was_stuck: bool
    step_changed: bool
    bump_revision: bool
    answers_changed: bool


def _plan_write(
    enrollment: Enrollment,
    *,
    before: dict[str, CompletionState],
    derived: Derived,
    bump_revision: bool,
    force: bool,
    answers_changed: bool,
) -> _Write | None:
    """The completion rows to insert, change and delete, with the enrollment's new state set
    on it; None when nothing changed."""
    new_rows, changed_rows, deleted_keys = [], [], []
    for key in sorted(before.keys() | derived.completions.keys()):
        old, new = before.get(key), derived.completions.get(key)
        if old == new:
            continue
        if new is None:
            deleted_keys.append(key)
        elif old is None:
            new_rows.append(
                StepCompletion(
                    enrollment=enrollment,
                    step_key=key,
                    method=new.method,
                    event_id=new.event_id,
                    completed_at=new.completed_at,
                    reverted_at=new.reverted_at,
                )
            )
        else:
            changed_rows.append(new)
    old_fields = state_fields(enrollment)
    write = _Write(
        enrollment=enrollment,
        before=before,
        derived=derived,
        new_rows=new_rows,
        changed_rows=changed_rows,
        deleted_keys=deleted_keys,
        was_completed=enrollment.status == Enrollment.Status.COMPLETED,
        was_stuck=enrollment.stuck_at is not None,
        step_changed=enrollment.current_step_key != derived.current_step_key,
        bump_revision=bump_revision,
        answers_changed=answers_changed,
    )
    enrollment.status = derived.status
    enrollment.current_step_key = derived.current_step_key
    enrollment.step_entered_at = derived.step_entered_at
    enrollment.completed_at = derived.completed_at
    changed = force or bool(new_rows or changed_rows or deleted_keys)
    if not changed and old_fields == state_fields(enrollment):
        return None
    return write


def _write_completions(writes: list[_Write]) -> None:
    new_rows = [row for write in writes for row in write.new_rows]
    for write in writes:
        if write.deleted_keys:
            StepCompletion.objects.filter(
                enrollment=write.enrollment, step_key__in=write.deleted_keys
            ).delete()
    if new_rows:
        StepCompletion.objects.bulk_create(new_rows)
    for write in writes:
        for row in write.changed_rows:
            StepCompletion.objects.filter(enrollment=write.enrollment, step_key=row.step_key).update(
                method=row.method,
                event_id=row.event_id,
                completed_at=row.completed_at,
                reverted_at=row.reverted_at,
            )


ENROLLMENT_STATE_COLUMNS = (
    "status",
    "current_step_key",
    "step_entered_at",
    "completed_at",
    "updated_at",
    "stuck_at",
    "revision",
)


def _write_enrollments(writes: list[_Write]) -> None:
    """One UPDATE for the enrollments of `writes` (and their answers, when a write changed them),
    with the revisions worked out here: only for rows this transaction holds locked (or
    inserted), whose revision nobody else can move."""
    now = timezone.now()
    with_answers = any(write.answers_changed for write in writes)
    rows = []
    for write in writes:
        enrollment = write.enrollment
        if write.step_changed:
            enrollment.stuck_at = None
        if write.bump_revision:
            enrollment.revision += 1
        row = (
            enrollment.pk,
            enrollment.status,
            enrollment.current_step_key,
            enrollment.step_entered_at,
            enrollment.completed_at,
            now,
            enrollment.stuck_at,
            enrollment.revision,
        )
        rows.append((*row, enrollment.answers) if with_answers else row)
    columns = (*ENROLLMENT_STATE_COLUMNS, "answers") if with_answers else ENROLLMENT_STATE_COLUMNS
    bulk.update(Enrollment, columns, rows)


def _after_write(write: _Write) -> None:
    """What follows a saved change: the completions cache, answer totals, stuck signals, the
    steps_completed signal, and the new state pushed after commit."""
    enrollment, before, derived = write.enrollment, write.before, write.derived
    completions_cache.completions_remember(enrollment=enrollment, completions=derived.completions)
    is_completed = enrollment.status == Enrollment.Status.COMPLETED
    if is_completed and not write.was_completed:
        answers.answers_snapshot_record(enrollment=enrollment)
    elif write.was_completed and not is_completed:
        answers.answers_snapshot_remove(enrollment=enrollment)  # reopened: its answers leave the totals
    if write.step_changed and write.was_stuck:
        enrollment_signals.stuck_signals_resolve(enrollment=enrollment)
    newly_done = [
        key
        for key, row in derived.completions.items()
        if row.is_active and not (before.get(key) is not None and before[key].is_active)
    ]
    if newly_done:
        signals.steps_completed.send(
            sender=__name__,
            workspace_id=enrollment.workspace_id,
            enrollment_id=enrollment.pk,
            step_keys=newly_done,
            at=max(derived.completions[key].completed_at for key in newly_done),
        )
    # The state as saved, built from what is in hand: pushed after commit, and kept on the
    # enrollment for the caller's response (enrollments.saved_state), with no query.
    enrollment.saved_state = state = enrollment_state(enrollment=enrollment, completions=derived.completions)
    push.push_after_commit(end_user_id=enrollment.end_user_id, state=state)


def save(
    enrollment: Enrollment,
    *,
    before: dict[str, CompletionState],
    derived: Derived,
    bump_revision: bool = True,
    force: bool = False,
    answers_changed: bool = False,
) -> bool:
    """Write what changed (completions, then the enrollment with a new revision, and its
    answers when the caller changed them) and push the new state after commit. Returns whether
    anything changed. Call with the enrollment locked."""
    write = _plan_write(
        enrollment,
        before=before,
        derived=derived,
        bump_revision=bump_revision,
        force=force,
        answers_changed=answers_changed,
    )
    if write is None:
        return False
    _apply([write])
    return True


def save_locked(items: Iterable[tuple[Enrollment, dict[str, CompletionState], Derived, bool]]) -> None:
    """`save` for many enrollments this transaction holds locked or created, each item
    (enrollment, before, derived, bump revision): one completion INSERT and one enrollment
    UPDATE for them all, however many there are."""
    writes = [
        write
        for enrollment, before, derived, bump_revision in items
        if (
            write := _plan_write(
                enrollment,
                before=before,
                derived=derived,
                bump_revision=bump_revision,
                force=False,
                answers_changed=False,
            )
        )
    ]
    _apply(writes)


def _apply(writes: list[_Write]) -> None:
    if not writes:
        return
    _write_completions(writes)
    _write_enrollments(writes)
    for write in writes:
        _after_write(write)
