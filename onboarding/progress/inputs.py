"""What the progress engine reads: an enrollment's step completions and its user's stored events.

Completions come from the cache the last writer filled (onboarding.progress.completions_cache),
else from the database; events are read only under the names the rules are indexed by.
"""

import functools
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import QuerySet

from core.db.prepared import PreparedQuery
from onboarding.models import Enrollment, Event, StepCompletion
from onboarding.progress import completions_cache
from onboarding.progress.state import CompletionState
from paths import rules


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
