"""Enrollment services: what the progress API and the admin do to one end user's onboarding.

Every write locks the enrollment's row and checks the caller's revision under that lock (two
writers holding the same revision: exactly one wins, the other waits, then gets StaleRevision
with the current state), bumps it, applies its change to the step completions, recomputes the
state with the progress engine and pushes it after commit. `expected_revision=None` asks for
no check. A database error is retried three times with exponential backoff before it is raised.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, transaction
from django.utils import timezone

from core.db import retry
from core.db.prepared import PreparedQuery
from onboarding.models import Enrollment, StepCompletion
from onboarding.progress import answers as answer_aggregation
from onboarding.progress import engine, enrolling, inputs, questions, saving
from onboarding.progress.selectors import enrollment_state
from onboarding.progress.state import CompletionState, derive
from paths import rules
from tenancy.models import EndUser


class StaleRevision(Exception):
    def __init__(self, state: dict):
        super().__init__(f"stale revision: the enrollment is at revision {state['revision']}")
        self.state = state


class UnknownStep(Exception):
    def __init__(self, step_key):
        super().__init__(step_key)
        self.step_key = step_key


class StepNotSkippable(Exception):
    def __init__(self, step_key):
        super().__init__(step_key)
        self.step_key = step_key


class InvalidAnswers(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__(errors)
        self.errors = errors


class IncompleteEnrollment(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__(errors)
        self.errors = errors


class EnrollmentNotActive(Exception):
    """The enrollment was abandoned: it no longer changes."""


Method = StepCompletion.Method

# --- The write path ---------------------------------------------------------------------------------


def _write(
    enrollment: Enrollment,
    expected_revision: int | None,
    change: Callable[[Enrollment, rules.CompiledPath, dict[str, CompletionState]], None],
) -> Enrollment:
    """Lock the row and check the revision, apply `change` to a copy of the completions (it may
    also change enrollment.answers, or raise to refuse: then nothing changes), recompute, save
    with the next revision."""
    for attempt in retry.retrying(retry_on=lambda error: isinstance(error, OperationalError)):
        with attempt, transaction.atomic():
            locked = _locked(enrollment)
            if expected_revision is not None and locked.revision != expected_revision:
                raise StaleRevision(enrollment_state(enrollment=locked))
            if locked.status == Enrollment.Status.ABANDONED:
                raise EnrollmentNotActive(f"enrollment {locked.pk} was abandoned")
            compiled = rules.compiled_version(locked.path_version)
            before = inputs.completions_for([locked]).get(locked.pk, {})
            after = {key: replace(row) for key, row in before.items()}
            answers_before = locked.answers
            change(locked, compiled, after)
            events = inputs.load_events(
                workspace_id=locked.workspace_id,
                end_user_ids=[locked.end_user_id],
                names=compiled.event_names,
            )
            # Every rule is evaluated, not only the changed steps': an event whose evaluation
            # failed at ingestion (logged, the event kept) counts from the user's next write.
            derived = derive(
                compiled,
                enrolled_at=locked.enrolled_at,
                status=locked.status,
                completions=after,
                events_by_name={
                    name: events.get((locked.end_user_id, name), []) for name in compiled.by_event
                },
            )
            # Every accepted write takes a new revision, even one that changes nothing else.
            saving.save(
                locked,
                before=before,
                derived=derived,
                force=True,
                answers_changed=locked.answers != answers_before,
            )
    return locked


def _locked(enrollment: Enrollment) -> Enrollment:
    """The enrollment's row as it is now, locked until the transaction ends, so a concurrent
    writer holding the same revision waits and then finds it stale. Its path version (pinned)
    and end user are the ones the caller read."""
    found = _ENROLLMENT_LOCKED.all(enrollment.pk)
    if not found:
        raise Enrollment.DoesNotExist(f"enrollment {enrollment.pk} was deleted")
    locked = found[0]
    locked.end_user = enrollment.end_user
    if locked.path_version_id == enrollment.path_version_id:
        locked.path_version = enrollment.path_version
    return locked


_ENROLLMENT_LOCKED = PreparedQuery(
    lambda pk: Enrollment.objects.select_for_update(no_key=True).filter(pk=pk).order_by(), 0
)


def _now_after(row: CompletionState | None) -> datetime:
    """Now, strictly after the row's revert, so the new completion counts as active."""
    now = timezone.now()
    if row is not None and row.reverted_at is not None and now <= row.reverted_at:
        return row.reverted_at + timedelta(microseconds=1)
    return now


def _step(compiled: rules.CompiledPath, step_key: str) -> rules.StepSpec:
    step = compiled.step(step_key)
    if step is None:
        raise UnknownStep(step_key)
    return step


def _complete(completions: dict[str, CompletionState], step_key: str, method: str) -> None:
    row = completions.get(step_key)
    if row is not None and row.is_active and row.method != Method.SKIP:
        return  # completed already: the first completion stands
    completions[step_key] = CompletionState(
        step_key, method, None, _now_after(row), row.reverted_at if row is not None else None
    )


def _revert(completions: dict[str, CompletionState], step_key: str) -> None:
    row = completions.get(step_key)
    if row is not None and row.is_active:
        completions[step_key] = replace(row, reverted_at=max(timezone.now(), row.completed_at))


def _save_answers(enrollment: Enrollment, compiled, completions, step_key: str, given: Any) -> list[dict]:
    step = _step(compiled, step_key)
    step_questions = list(step.questions)
    errors = questions.type_errors(step_key, step_questions, given)
    if errors:
        return errors
    answers = questions.merged(enrollment.answers.get(step_key, {}), given)
    errors = questions.missing_required(step_key, step_questions, answers)
    if errors:
        return errors
    enrollment.answers = {**enrollment.answers, step_key: answers}
    if step.completion == "form":
        _complete(completions, step_key, Method.ANSWERS)
    return []


def _done(completions: dict[str, CompletionState]) -> set[str]:
    return {key for key, row in completions.items() if row.is_active}


# --- Services ---------------------------------------------------------------------------------------


def enrollment_start(*, end_user: EndUser, enrolled_at: datetime | None = None) -> Enrollment | None:
    """Enrol an end user with no enrollment on the planner's path (None when no path fits),
    with the progress their stored events already made. Their existing enrollment otherwise."""
    with transaction.atomic():
        existing = Enrollment.objects.filter(end_user=end_user).order_by("-enrolled_at").first()
        if existing is not None:
            return existing
        enrollment = enrolling.enrol(end_user=end_user, enrolled_at=enrolled_at or timezone.now())
        if enrollment is not None:
            engine.evaluate(
                {enrollment.pk: None}, workspace_id=end_user.workspace_id, created={enrollment.pk}
            )
            enrollment.refresh_from_db()
    return enrollment


def step_complete(
    *, enrollment: Enrollment, step_key: str, expected_revision: int | None, method: str = Method.API
) -> Enrollment:
    """Complete a step explicitly. A form step needs valid saved answers first."""

    def change(locked, compiled, completions):
        step = _step(compiled, step_key)
        if step.completion == "form":
            saved = locked.answers.get(step_key, {})
            errors = questions.type_errors(step_key, list(step.questions), saved)
            errors += questions.missing_required(step_key, list(step.questions), saved)
            if errors:
                raise InvalidAnswers(errors)
        _complete(completions, step_key, method)

    return _write(enrollment, expected_revision, change)


def step_skip(*, enrollment: Enrollment, step_key: str, expected_revision: int | None) -> Enrollment:
    """Skip an optional step (a step completed already stays completed)."""

    def change(locked, compiled, completions):
        if not _step(compiled, step_key).optional:
            raise StepNotSkippable(step_key)
        if step_key not in _done(completions):
            _complete(completions, step_key, Method.SKIP)

    return _write(enrollment, expected_revision, change)


def step_back(*, enrollment: Enrollment, expected_revision: int | None) -> Enrollment:
    """Revert the completion of the step before the current one (of the last completed step
    when the path is complete): that step becomes current again. At the first step, no change."""

    def change(locked, compiled, completions):
        done = _done(completions)
        keys = [step.key for step in compiled.steps]
        if locked.current_step_key in keys:
            keys = keys[: keys.index(locked.current_step_key)]
        for key in reversed(keys):
            if key in done:
                _revert(completions, key)
                return

    return _write(enrollment, expected_revision, change)


def answers_save(
    *, enrollment: Enrollment, step_key: str, answers: dict, expected_revision: int | None
) -> Enrollment:
    """Save a step's answers over the saved ones (None removes one), validated against its
    questions; valid answers complete a form step."""

    def change(locked, compiled, completions):
        errors = _save_answers(locked, compiled, completions, step_key, answers)
        if errors:
            raise InvalidAnswers(errors)

    return _write(enrollment, expected_revision, change)


def completion_errors(compiled: rules.CompiledPath, enrollment: Enrollment, done: set[str]) -> list[dict]:
    """What stands between the enrollment and completion: each required step, each answer."""
    errors = []
    for step in compiled.steps:
        if not step.optional and step.key not in done:
            errors.append({"step": step.key, "field": None, "reason": "required step not completed"})
        if step.questions and (not step.optional or step.key in done):
            answers = enrollment.answers.get(step.key, {})
            errors += questions.missing_required(step.key, list(step.questions), answers)
    return errors


def enrollment_complete(*, enrollment: Enrollment, expected_revision: int | None) -> Enrollment:
    """Complete the path: every required step done and every required answer given, else
    IncompleteEnrollment listing each. Records the answers snapshot."""
    was_completed = []

    def change(locked, compiled, completions):
        errors = completion_errors(compiled, locked, _done(completions))
        if errors:
            raise IncompleteEnrollment(errors)
        was_completed.append(locked.status == Enrollment.Status.COMPLETED)

    enrollment = _write(enrollment, expected_revision, change)
    if was_completed and was_completed[-1]:
        # Completed earlier by its events: the snapshot is recorded again (it replaces itself).
        answer_aggregation.answers_snapshot_record(enrollment=enrollment)
    return enrollment


def enrollment_patch(
    *,
    enrollment: Enrollment,
    expected_revision: int | None,
    current_step_key: str | None = None,
    answers: dict | None = None,
) -> Enrollment:
    """Save answers ({step key: {question: value}}) and/or move to a step: forward skips the
    optional steps in between (a required one refuses), backward reverts the steps from there."""

    def change(locked, compiled, completions):
        if answers is not None:
            if not isinstance(answers, dict):
                raise InvalidAnswers([{"step": None, "field": "answers", "reason": "must be an object"}])
            errors = []
            for step_key, step_answers in answers.items():
                errors += _save_answers(locked, compiled, completions, step_key, step_answers)
            if errors:
                raise InvalidAnswers(errors)
        if current_step_key is None:
            return
        target = _step(compiled, current_step_key)
        keys = [step.key for step in compiled.steps]
        done = _done(completions)
        current = next((key for key in keys if key not in done), None)
        current_index = len(keys) if current is None else keys.index(current)
        target_index = keys.index(target.key)
        if target_index > current_index:
            for step in compiled.steps[current_index:target_index]:
                if step.key in done:
                    continue
                if not step.optional:
                    raise StepNotSkippable(step.key)
                _complete(completions, step.key, Method.SKIP)
        else:
            for key in keys[target_index:current_index]:
                _revert(completions, key)

    return _write(enrollment, expected_revision, change)
