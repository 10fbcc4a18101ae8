"""Enrolling end users on the planner's path: one at a time (a service, the first identify of a
person) or a batch's new users in one INSERT, each announced with onboarding.signals.enrollment_started.
What the planner's deciders must write with an enrollment (an experiment's assignment) is written
in the same savepoint (planner.record_choices), so neither exists without the other.
"""

import logging
from datetime import datetime
from time import perf_counter

from django.db import IntegrityError, transaction

from core.latency import PATH_SELECTION_LATENCY
from onboarding import signals
from onboarding.models import Enrollment
from paths import planner
from tenancy.models import EndUser, Workspace

logger = logging.getLogger(__name__)


def _new_enrollment(
    *, end_user: EndUser, enrolled_at: datetime, published: list | None, prepared: dict | None = None
) -> Enrollment | None:
    """The planner's enrollment for this user, not yet saved; None when no path matches. The
    choice is timed into path_selection_latency_p95_ms (a batch reads the published versions
    and the deciders' data once, before, so its users' times are the choice alone)."""
    started = perf_counter()
    decision = planner.choose_path(end_user=end_user, published=published, prepared=prepared)
    PATH_SELECTION_LATENCY.labels(decision.source).observe((perf_counter() - started) * 1000)
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
    enrollment.decision = decision
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
            planner.record_choices([(enrollment, enrollment.decision)])
    except IntegrityError:
        return False
    return True


def enrol_many(
    *, end_users: list[EndUser], enrolled_at: dict[int, datetime], published: list | None
) -> list[Enrollment]:
    """Enrol a batch's new users in one INSERT. Should a concurrent batch have enrolled one of
    them meanwhile, the INSERT rolls back to its savepoint and each user is enrolled on their
    own, the way `enrol` does."""
    prepared = (
        planner.prepare(
            workspace_id=end_users[0].workspace_id, end_user_ids=[end_user.pk for end_user in end_users]
        )
        if end_users
        else {}
    )
    pending = [
        enrollment
        for end_user in end_users
        if (
            enrollment := _new_enrollment(
                end_user=end_user,
                enrolled_at=enrolled_at[end_user.pk],
                published=published,
                prepared=prepared,
            )
        )
    ]
    if not pending:
        return []
    try:
        with transaction.atomic():
            Enrollment.objects.bulk_create(pending)
            planner.record_choices([(enrollment, enrollment.decision) for enrollment in pending])
    except IntegrityError:
        for enrollment in pending:  # the rolled-back INSERT left them looking saved
            enrollment.pk = None
            enrollment._state.adding = True
        pending = [enrollment for enrollment in pending if _insert_alone(enrollment)]
    for enrollment in pending:
        _enrollment_started(enrollment)
    return pending


def enrol_identified(workspace: Workspace, identified: dict[int, datetime]) -> list[Enrollment]:
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
