"""Features computed from PostgreSQL, the source of truth: for the store's fallback (now) and for
training (as of the moment each decision was taken), through ml/features/compute.py like the
real-time store, so a model learns on the features it is served.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from ml.features import compute
from onboarding.models import Enrollment, Event, StepCompletion
from tenancy.models import EndUser

MAX_EVENTS_PER_PERSON = 5000
"""Events read per person at most (the most recent): a bot's millions must not stall a decision."""


def profile_of(end_user: EndUser) -> compute.Profile:
    return compute.Profile(
        persona=end_user.persona,
        signup_source=end_user.signup_source,
        company_size=end_user.company_size,
        use_case=end_user.use_case,
        signed_up_at=end_user.created_at,
    )


def _event_times(
    workspace_id: int, end_user_ids: Sequence[int], until: datetime
) -> dict[int, list[datetime]]:
    times: dict[int, list[datetime]] = defaultdict(list)
    rows = (
        Event.objects.filter(
            workspace_id=workspace_id, end_user_id__in=list(end_user_ids), timestamp__lte=until
        )
        .order_by()
        .values_list("end_user_id", "timestamp")
    )
    for end_user_id, moment in rows.iterator(chunk_size=20000):
        times[end_user_id].append(moment)
    for moments in times.values():
        if len(moments) > MAX_EVENTS_PER_PERSON:
            moments.sort()
            del moments[:-MAX_EVENTS_PER_PERSON]
    return times


def _steps_completed(workspace_id: int, end_user_ids: Sequence[int], until: datetime) -> dict[int, int]:
    """Steps completed (not reverted by then) on each person's latest enrollment started by `until`."""
    latest = {}
    enrollments = (
        Enrollment.objects.filter(
            workspace_id=workspace_id, end_user_id__in=list(end_user_ids), enrolled_at__lte=until
        )
        .order_by("end_user_id", "enrolled_at")
        .values_list("end_user_id", "pk")
    )
    for end_user_id, enrollment_id in enrollments:
        latest[end_user_id] = enrollment_id
    counts: dict[int, int] = defaultdict(int)
    by_enrollment = {enrollment_id: end_user_id for end_user_id, enrollment_id in latest.items()}
    completions = StepCompletion.objects.filter(
        enrollment_id__in=list(by_enrollment), completed_at__lte=until
    )
    for enrollment_id, reverted_at in completions.values_list("enrollment_id", "reverted_at"):
        if reverted_at is None or reverted_at > until:
            counts[by_enrollment[enrollment_id]] += 1
    return counts


def behaviours_at(
    workspace_id: int, end_user_ids: Sequence[int], now: datetime
) -> dict[int, compute.Behaviour]:
    """Each person's counters at `now`, from their events and completions (three queries)."""
    times = _event_times(workspace_id, end_user_ids, now)
    steps = _steps_completed(workspace_id, end_user_ids, now)
    return {
        end_user_id: compute.behaviour_of(
            times.get(end_user_id, ()), now=now, steps_completed=steps.get(end_user_id, 0)
        )
        for end_user_id in end_user_ids
    }


def features_now(workspace_id: int, end_users: Sequence[EndUser], now: datetime) -> dict[int, dict]:
    """Raw user features at `now`, recomputed from PostgreSQL."""
    behaviours = behaviours_at(workspace_id, [each.pk for each in end_users], now)
    return {each.pk: compute.features_of(profile_of(each), behaviours[each.pk], now) for each in end_users}


def features_as_of(workspace_id: int, moments: Iterable[tuple[EndUser, datetime]]) -> list[dict]:
    """Raw user features of each (person, moment), as they were then: training's view. People are
    read in groups of one moment's batch, so a moment never sees a later event."""
    by_moment: dict[datetime, list[EndUser]] = defaultdict(list)
    ordered = list(moments)
    for end_user, moment in ordered:
        by_moment[moment].append(end_user)
    found: dict[tuple[int, datetime], dict] = {}
    for moment, people in by_moment.items():
        for end_user_id, features in features_now(workspace_id, people, moment).items():
            found[(end_user_id, moment)] = features
    return [found[(end_user.pk, moment)] for end_user, moment in ordered]
