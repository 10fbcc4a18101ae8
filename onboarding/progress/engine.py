"""The progress engine: stored events in, step completions and enrollment state out.

An enrollment's state is a function of its user's stored events and its non-event completions
(api, answers, admin, skip), so it does not depend on the order events arrive in, and replaying
them changes nothing. `derive` is that function; the rest loads its inputs and writes its output.

- A batch of newly stored events is evaluated inside ingestion's transaction, in a savepoint
  retried on database errors; if it still fails, the events commit anyway and the failure is
  logged (`manage.py rebuild_progress` repairs the state from the events).
- Only rules indexed under a new event's name are evaluated, plus the step whose window is
  anchored on a step that just changed. Counts and windows read the user's stored events.
- The rules themselves are `derive`, in onboarding.progress.state.
"""

import functools
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.db import bulk, retry
from core.db.prepared import PreparedQuery
from onboarding import signals
from onboarding.models import EndUser, Enrollment, Event, StepCompletion, Workspace
from onboarding.progress import answers, completions_cache
from onboarding.progress.state import EVENT, CompletionState, Derived, active_completions, derive
from onboarding.stuck import services as enrollment_signals
from paths import planner, rules

__all__ = ["CompletionState", "Derived", "active_completions", "derive", "evaluate", "progress_on_events"]

logger = logging.getLogger(__name__)

LIVE_STATUSES = (Enrollment.Status.ACTIVE, Enrollment.Status.COMPLETED)
# A failed write is retried three times (four attempts), waiting 50, 100, 200 ms.


def _transient(error: BaseException) -> bool:
    """Anything the database raised: the savepoint is rolled back and evaluated again."""
    return isinstance(error, OperationalError | IntegrityError)


# --- Loading and saving -------------------------------------------------------------------------


def load_completions(enrollment_ids: Iterable[int]) -> dict[int, dict[str, CompletionState]]:
    by_enrollment: dict[int, dict[str, CompletionState]] = defaultdict(dict)
    rows = StepCompletion.objects.filter(enrollment_id__in=list(enrollment_ids)).values_list(
        "enrollment_id", "step_key", "method", "event_id", "completed_at", "reverted_at"
    )
    for enrollment_id, step_key, method, event_id, completed_at, reverted_at in rows:
        by_enrollment[enrollment_id][step_key] = CompletionState(
            step_key, method, event_id, completed_at, reverted_at
        )
    return by_enrollment


def completions_for(enrollments: Iterable[Enrollment]) -> dict[int, dict[str, CompletionState]]:
    """Each enrollment's completions at the revision it was read at: from the cache the last
    writer filled (onboarding.progress.completions_cache), else from the database."""
    enrollments = list(enrollments)
    found = completions_cache.completions_cached(enrollments)
    missing = [enrollment.pk for enrollment in enrollments if enrollment.pk not in found]
    if missing:
        found.update(load_completions(missing))
    return found


def load_events(
    *, workspace_id: int, end_user_ids: Iterable[int], names: Iterable[str]
) -> dict[tuple[int, str], list[rules.StoredEvent]]:
    """(end user id, event name) -> stored events, for the names that rules are indexed under."""
    names, end_user_ids = list(names), list(end_user_ids)
    found: dict[tuple[int, str], list[rules.StoredEvent]] = defaultdict(list)
    if not names or not end_user_ids:
        return found
    if len(end_user_ids) == 1 and len(names) <= _PREPARED_NAME_COUNT:
        rows = _events_of_end_user(len(names)).rows(workspace_id, end_user_ids[0], *names)
    else:
        rows = _events(workspace_id, end_user_ids, names)
    for event_id, end_user_id, name, timestamp, properties in rows:
        found[(end_user_id, name)].append(rules.StoredEvent(event_id, timestamp, properties or {}))
    return found


def _events(workspace_id: int, end_user_ids: list[int], names: list[str]) -> QuerySet:
    return Event.objects.filter(
        workspace_id=workspace_id, end_user_id__in=end_user_ids, name__in=names
    ).values_list("id", "end_user_id", "name", "timestamp", "properties")


# One person's events (a single event's request, an API write) go through a query compiled once
# per number of event names (a whole path's, for an API write); paths with more take the ORM's way.
_PREPARED_NAME_COUNT = 64


@functools.cache
def _events_of_end_user(name_count: int) -> PreparedQuery:
    return PreparedQuery(
        lambda workspace_id, end_user_id, *names: _events(workspace_id, [end_user_id], list(names)),
        0,
        1,
        *(f"name-{index}" for index in range(name_count)),
    )


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
    """What follows a saved change: the completions cache, answer totals, stuck signals, nudge
    hooks, and the new state pushed after commit."""
    from onboarding.progress import push as live_progress
    from onboarding.progress.enrollments import enrollment_state

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
    live_progress.push_after_commit(end_user_id=enrollment.end_user_id, state=state)


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


# --- Enrolment on identify ------------------------------------------------------------------------


def _new_enrollment(*, end_user: EndUser, enrolled_at: datetime, published: list | None) -> Enrollment | None:
    """The planner's enrollment for this user, not yet saved; None when no path matches."""
    decision = planner.choose_path(end_user=end_user, published=published)
    if decision.path_version is None:
        logger.info(
            "enrollment.not_enrolled",
            extra={"end_user_id": end_user.pk, "reason": decision.reason, "source": decision.source},
        )
        return None
    enrollment = Enrollment(
        workspace_id=end_user.workspace_id,
        end_user=end_user,
        path_version=decision.path_version,
        status=Enrollment.Status.ACTIVE,
        current_step_key="",
        decision_reason=decision.reason,
        enrolled_at=enrolled_at,
        step_entered_at=enrolled_at,
    )
    enrollment.decision_source = decision.source
    return enrollment


def _enrollment_started(enrollment: Enrollment) -> None:
    signals.enrollment_started.send(
        sender=__name__, workspace_id=enrollment.workspace_id, enrollment_id=enrollment.pk
    )
    logger.info(
        "enrollment.started",
        extra={
            "end_user_id": enrollment.end_user_id,
            "path_version_id": enrollment.path_version_id,
            "source": enrollment.decision_source,
        },
    )


def enrol(*, end_user: EndUser, enrolled_at: datetime, published: list | None = None) -> Enrollment | None:
    """Enrol an end user who has no enrollment at all on the planner's path. Idempotent: a
    concurrent enrolment of the same user wins and this returns None."""
    enrollment = _new_enrollment(end_user=end_user, enrolled_at=enrolled_at, published=published)
    if enrollment is None or not _insert_alone(enrollment):
        return None
    _enrollment_started(enrollment)
    return enrollment


def _insert_alone(enrollment: Enrollment) -> bool:
    """INSERT one enrollment in a savepoint; False when the user was enrolled at the same moment
    by a concurrent batch (one active enrollment per user)."""
    try:
        with transaction.atomic():
            enrollment.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def enrol_many(
    *, end_users: list[EndUser], enrolled_at: dict[int, datetime], published: list | None
) -> list[Enrollment]:
    """Enrol a batch's new users in one INSERT. Should a concurrent batch have enrolled one of
    them meanwhile, the INSERT rolls back to its savepoint and each user is enrolled on their
    own, the way `enrol` does."""
    pending = [
        enrollment
        for end_user in end_users
        if (
            enrollment := _new_enrollment(
                end_user=end_user, enrolled_at=enrolled_at[end_user.pk], published=published
            )
        )
    ]
    if not pending:
        return []
    try:
        with transaction.atomic():
            Enrollment.objects.bulk_create(pending)
    except IntegrityError:
        for enrollment in pending:  # the rolled-back INSERT left them looking saved
            enrollment.pk = None
            enrollment._state.adding = True
        pending = [enrollment for enrollment in pending if _insert_alone(enrollment)]
    for enrollment in pending:
        _enrollment_started(enrollment)
    return pending


def _enrol_identified(workspace: Workspace, identified: dict[int, datetime]) -> list[Enrollment]:
    """Enrol identified users who have no enrollment yet; return the new enrollments (with their
    end user and path version: evaluation need not read them back)."""
    enrolled = set(
        Enrollment.objects.filter(end_user_id__in=list(identified)).values_list("end_user_id", flat=True)
    )
    waiting = [end_user_id for end_user_id in identified if end_user_id not in enrolled]
    if not waiting:
        return []
    published = planner.published_versions(workspace_id=workspace.pk)
    if not published:
        return []  # no path to enrol on: nothing to decide for anyone in this batch
    end_users = list(EndUser.objects.filter(workspace=workspace, pk__in=waiting).order_by("pk"))
    return enrol_many(end_users=end_users, enrolled_at=identified, published=published)


# --- The batch hook ---------------------------------------------------------------------------------


def _for_update(queryset: QuerySet, *, lock: bool = True) -> QuerySet:
    """Enrollments with their path version, locked in primary-key order so concurrent batches
    never deadlock. Only the enrollment rows are locked, not the shared path version row."""
    if lock:
        queryset = queryset.select_for_update(no_key=True, of=("self",))
    return queryset.select_related("path_version__path", "end_user").order_by("pk")


def _live_enrollments_locked(workspace_id: int, end_user_ids: list[int]) -> list[Enrollment]:
    """The people's live enrollments, locked. One person's (a client's single event: most
    requests) through a query compiled once: building it took a fifth of such a request's CPU."""
    if len(end_user_ids) == 1:
        return _LIVE_ENROLLMENTS_OF_END_USER.all(workspace_id, end_user_ids[0], *LIVE_STATUSES)
    queryset = Enrollment.objects.filter(
        workspace_id=workspace_id, end_user_id__in=end_user_ids, status__in=LIVE_STATUSES
    )
    return list(_for_update(queryset))


_LIVE_ENROLLMENTS_OF_END_USER = PreparedQuery(
    lambda workspace_id, end_user_id, *statuses: _for_update(
        Enrollment.objects.filter(workspace_id=workspace_id, end_user_id=end_user_id, status__in=statuses)
    ),
    0,
    1,
    *(f"status-{index}" for index in range(len(LIVE_STATUSES))),
)


def evaluate(
    scopes: dict[int, dict[str, list[datetime]] | None],
    *,
    workspace_id: int,
    commit: bool = True,
    lock: bool | None = None,
    created: Iterable[int] = (),
    loaded: Iterable[Enrollment] = (),
) -> dict[int, tuple[Enrollment, dict[str, CompletionState], Derived]]:
    """Evaluate enrollments. `scopes`: enrollment id -> {event name: timestamps of its new
    events} (only those rules), or None (every rule, as a rebuild does). With commit, write
    the changes (the caller holds a transaction); returns what was derived, per enrollment.
    Enrollments `created` in this transaction keep their first revision. `loaded` are
    enrollments the caller read already (locked, when committing): they are not read again."""
    known = {enrollment.pk: enrollment for enrollment in loaded if enrollment.pk in scopes}
    enrollments = list(known.values())
    missing = [pk for pk in scopes if pk not in known]
    if missing:
        queryset = Enrollment.objects.filter(pk__in=missing, workspace_id=workspace_id)
        enrollments += _for_update(queryset, lock=commit if lock is None else lock)
    enrollments.sort(key=lambda enrollment: enrollment.pk)
    completions = completions_for(enrollments)
    plans, names, end_user_ids = [], set(), set()
    for enrollment in enrollments:
        compiled = rules.compiled_version(enrollment.path_version)
        before = completions.get(enrollment.pk, {})
        scope = scopes[enrollment.pk]
        if scope is None:
            step_keys = None
            names.update(compiled.event_names)
        else:
            step_keys = set()
            for name, timestamps in scope.items():
                for rule in compiled.by_event.get(name, ()):
                    row = before.get(rule.step_key)
                    # An active completion can only move earlier, by an event older than it.
                    if (
                        row is not None
                        and row.is_active
                        and (row.method != EVENT or min(timestamps) >= row.completed_at)
                    ):
                        continue
                    step_keys.add(rule.step_key)
            if not step_keys:
                continue
            names.update(compiled.rule_event_names(compiled.with_dependents(step_keys)))
        plans.append((enrollment, compiled, before, step_keys))
        end_user_ids.add(enrollment.end_user_id)
    events = load_events(workspace_id=workspace_id, end_user_ids=end_user_ids, names=names)
    results = {}
    for enrollment, compiled, before, step_keys in plans:
        derived = derive(
            compiled,
            enrolled_at=enrollment.enrolled_at,
            status=enrollment.status,
            completions=before,
            events_by_name={
                name: events.get((enrollment.end_user_id, name), []) for name in compiled.by_event
            },
            evaluate=step_keys,
        )
        results[enrollment.pk] = (enrollment, before, derived)
    if commit:
        save_locked(
            (enrollment, before, derived, enrollment.pk not in created)
            for enrollment, before, derived in results.values()
        )
    return results


def _evaluate_batch(workspace: Workspace, events: list[dict]) -> None:
    by_user: dict[int, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    named_events: dict[int, list[dict]] = defaultdict(list)
    identified: dict[int, datetime] = {}
    for event in events:
        if event["name"]:
            by_user[event["end_user_id"]][event["name"]].append(event["timestamp"])
            named_events[event["end_user_id"]].append(event)
        if event["type"] == "identify" and event["user_id"]:
            end_user_id = event["end_user_id"]
            identified[end_user_id] = min(event["timestamp"], identified.get(end_user_id, event["timestamp"]))
    scopes: dict[int, dict[str, list[datetime]] | None] = {}
    enrolled = _enrol_identified(workspace, identified) if identified else []
    created = {enrollment.pk for enrollment in enrolled}
    reviews = []
    scopes.update(dict.fromkeys(created))
    candidates: list[Enrollment] = []
    if by_user:
        candidates = _live_enrollments_locked(workspace.pk, list(by_user))
        for enrollment in candidates:
            if enrollment.pk in scopes:
                continue
            event_names = rules.compiled_version(enrollment.path_version).event_names
            scope = {
                name: times for name, times in by_user[enrollment.end_user_id].items() if name in event_names
            }
            if scope:
                scopes[enrollment.pk] = scope
                reviews.extend(_ambiguous_events(enrollment, named_events[enrollment.end_user_id]))
    if scopes:
        # The new enrollments are this transaction's own rows: nobody else can lock them.
        evaluate(scopes, workspace_id=workspace.pk, created=created, loaded=[*enrolled, *candidates])
    for enrollment, step_key, reason in reviews:
        done = StepCompletion.objects.filter(enrollment=enrollment, step_key=step_key).filter(
            active_completions()
        )
        if not done.exists():
            enrollment_signals.needs_review_flag(enrollment=enrollment, step_key=step_key, reason=reason)


def _ambiguous_events(enrollment: Enrollment, events: list[dict]):
    """(enrollment, step, reason) for this user's new events that a rule cannot judge."""
    compiled = rules.compiled_version(enrollment.path_version)
    for event in events:
        for rule in compiled.by_event.get(event["name"], ()):
            reason = rules.ambiguity(rule, event["properties"])
            if reason:
                yield (
                    enrollment,
                    rule.step_key,
                    f"event {event['name']!r} ({event['message_id']}) may complete this step: {reason}",
                )


def progress_on_events(*, workspace: Workspace, events: list[dict]) -> None:
    """Ingestion's hook, inside its transaction, for events stored for the first time.

    Runs in a savepoint retried with exponential backoff on database errors; if it still fails,
    the savepoint is rolled back and the error logged, so the events themselves still commit.
    """
    if not events or workspace.paths_published_at is None:
        return  # a workspace that never published a path has no enrollment to evaluate
    try:
        for attempt in retry.retrying(retry_on=_transient):
            with attempt, transaction.atomic():
                _evaluate_batch(workspace, events)
    except Exception:
        logger.exception(
            "progress.evaluation_failed",
            extra={"workspace_id": workspace.pk, "events": len(events)},
        )
