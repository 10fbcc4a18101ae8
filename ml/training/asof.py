"""Users' features as of past moments, in bulk: ml/features/history.features_as_of's answers
(the same ml/features/compute.py functions on the same rows, the same rules: events up to the
moment, at most the person's MAX_EVENTS_PER_PERSON most recent ones, steps completed and not
reverted by then on the person's latest enrollment started by then), but read once per workspace
instead of three queries per distinct moment, so a training set of 100k moments costs a few
sequential reads and an in-memory walk.

tests/ml/test_training.py checks that both give the same features.
"""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ml.features import compute
from ml.features.history import MAX_EVENTS_PER_PERSON
from onboarding.models import Enrollment, Event, StepCompletion
from tenancy.models import EndUser

CHUNK = 50_000


@dataclass(slots=True)
class _Enrollment:
    enrolled_at: datetime
    completions: list[tuple[datetime, datetime | None]] = field(default_factory=list)


@dataclass(slots=True)
class History:
    """What a workspace's people did up to `until`, held in memory for as-of reads."""

    profiles: dict[int, compute.Profile]
    events: dict[int, list[datetime]]
    enrollments: dict[int, list[tuple[datetime, _Enrollment]]]

    def steps_completed(self, end_user_id: int, moment: datetime) -> int:
        started = self.enrollments.get(end_user_id, ())
        latest = None
        for enrolled_at, enrollment in started:
            if enrolled_at > moment:
                break
            latest = enrollment
        if latest is None:
            return 0
        return sum(
            1
            for completed_at, reverted_at in latest.completions
            if completed_at <= moment and (reverted_at is None or reverted_at > moment)
        )

    def features(self, end_user_id: int, moment: datetime) -> dict:
        """The person's raw user features at `moment` (compute.features_of)."""
        times = self.events.get(end_user_id, [])
        upto = bisect_right(times, moment)
        behaviour = compute.behaviour_of(
            times[max(0, upto - MAX_EVENTS_PER_PERSON) : upto],
            now=moment,
            steps_completed=self.steps_completed(end_user_id, moment),
        )
        return compute.features_of(self.profiles[end_user_id], behaviour, moment)


def history_load(*, workspace_id: int, end_user_ids: Iterable[int], until: datetime) -> History:
    """The people's profiles, event times, enrollments and completions up to `until` (four
    sequential reads over the workspace, kept for the people asked about)."""
    wanted = set(end_user_ids)
    profiles = {
        pk: compute.Profile(persona, source, size, use_case, created_at)
        for pk, persona, source, size, use_case, created_at in EndUser.objects.filter(
            workspace_id=workspace_id
        )
        .order_by()
        .values_list("pk", "persona", "signup_source", "company_size", "use_case", "created_at")
        .iterator(chunk_size=CHUNK)
        if pk in wanted
    }
    events: dict[int, list[datetime]] = defaultdict(list)
    rows = (
        Event.objects.filter(workspace_id=workspace_id, timestamp__lte=until)
        .order_by()
        .values_list("end_user_id", "timestamp")
    )
    for end_user_id, moment in rows.iterator(chunk_size=CHUNK):
        if end_user_id in wanted:
            events[end_user_id].append(moment)
    for moments in events.values():
        moments.sort()
    return History(profiles, dict(events), _enrollments(workspace_id, wanted, until))


def _enrollments(
    workspace_id: int, wanted: set[int], until: datetime
) -> dict[int, list[tuple[datetime, _Enrollment]]]:
    by_id: dict[int, _Enrollment] = {}
    by_person: dict[int, list[tuple[datetime, _Enrollment]]] = defaultdict(list)
    rows = (
        Enrollment.objects.filter(workspace_id=workspace_id, enrolled_at__lte=until)
        .order_by("end_user_id", "enrolled_at")
        .values_list("pk", "end_user_id", "enrolled_at")
    )
    for pk, end_user_id, enrolled_at in rows.iterator(chunk_size=CHUNK):
        if end_user_id in wanted:
            by_id[pk] = _Enrollment(enrolled_at)
            by_person[end_user_id].append((enrolled_at, by_id[pk]))
    completions = (
        StepCompletion.objects.filter(enrollment__workspace_id=workspace_id, completed_at__lte=until)
        .order_by()
        .values_list("enrollment_id", "completed_at", "reverted_at")
    )
    for enrollment_id, completed_at, reverted_at in completions:  # no cursor: see stuck_detector._completions
        known = by_id.get(enrollment_id)
        if known is not None:
            known.completions.append((completed_at, reverted_at))
    return dict(by_person)
