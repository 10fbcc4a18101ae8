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

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import QuerySet

from core.db import retry
from core.db.prepared import PreparedQuery
from onboarding.models import Enrollment, StepCompletion
from onboarding.progress.enrolling import enrol_identified
from onboarding.progress.inputs import completions_for, load_events
from onboarding.progress.saving import save_locked
from onboarding.progress.state import EVENT, CompletionState, Derived, active_completions, derive
from onboarding.stuck import services as enrollment_signals
from paths import rules
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

LIVE_STATUSES = (Enrollment.Status.ACTIVE, Enrollment.Status.COMPLETED)
# A failed write is retried three times (four attempts), waiting 50, 100, 200 ms.


def _transient(error: BaseException) -> bool:
    """Anything the database raised: the savepoint is rolled back and evaluated again."""
    return isinstance(error, OperationalError | IntegrityError)


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
    enrollments = _enrollments_to_evaluate(
        scopes, workspace_id=workspace_id, loaded=loaded, lock=commit if lock is None else lock
    )
    completions = completions_for(enrollments)
    plans, names, end_user_ids = [], set(), set()
    for enrollment in enrollments:
        compiled = rules.compiled_version(enrollment.path_version)
        before = completions.get(enrollment.pk, {})
        scope = scopes[enrollment.pk]
        step_keys = None if scope is None else _steps_to_evaluate(compiled, before, scope)
        if step_keys is None:
            names.update(compiled.event_names)
        elif not step_keys:
            continue
        else:
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


def _enrollments_to_evaluate(
    scopes: dict[int, dict[str, list[datetime]] | None],
    *,
    workspace_id: int,
    loaded: Iterable[Enrollment],
    lock: bool,
) -> list[Enrollment]:
    """The enrollments of `scopes` in primary-key order: those the caller `loaded`, the others read
    (locked when `lock`)."""
    known = {enrollment.pk: enrollment for enrollment in loaded if enrollment.pk in scopes}
    enrollments = list(known.values())
    missing = [pk for pk in scopes if pk not in known]
    if missing:
        queryset = Enrollment.objects.filter(pk__in=missing, workspace_id=workspace_id)
        enrollments += _for_update(queryset, lock=lock)
    enrollments.sort(key=lambda enrollment: enrollment.pk)
    return enrollments


def _steps_to_evaluate(
    compiled: rules.CompiledPath, before: dict[str, CompletionState], scope: dict[str, list[datetime]]
) -> set[str]:
    """The steps whose rules the new events (name -> timestamps) may change."""
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
    return step_keys


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
    enrolled = enrol_identified(workspace, identified) if identified else []
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
