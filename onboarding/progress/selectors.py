"""Reads of enrollments: the one a progress API call or socket is about, and the state its client sees."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db.models import F, Min, Q, QuerySet

from core.db.lookups import AnyOf
from core.db.prepared import PreparedQuery
from onboarding.models import Enrollment, StepCompletion
from onboarding.progress.inputs import completions_for
from onboarding.progress.state import CompletionState
from paths import rules
from tenancy.models import EndUser, Workspace
from tenancy.selectors import SEGMENT_TRAITS

Method = StepCompletion.Method


def enrollment_get_for_user(*, workspace: Workspace, user_id: str) -> Enrollment | None:
    """The end user's active enrollment, else their latest one; user_id is the external userId.

    A person has one enrollment, rarely a few, so they are all read and the choice is made
    here: an ORDER BY on a CASE costs more to build than the rows cost to sort. Every progress
    API call and socket starts here, so the query is built once per process (prepared.py).
    """
    found = _ENROLLMENTS_OF_USER.all(workspace.pk, user_id)
    return max(found, key=_active_then_latest, default=None)


_ENROLLMENTS_OF_USER = PreparedQuery(
    lambda workspace_id, user_id: (
        Enrollment.objects.filter(workspace_id=workspace_id, end_user__external_id=user_id)
        .select_related("path_version__path", "end_user")
        .order_by()
    ),
    0,
    "",
)


def _active_then_latest(enrollment: Enrollment) -> tuple:
    return (enrollment.status == Enrollment.Status.ACTIVE, enrollment.enrolled_at, enrollment.pk)


# Sections a higher app adds to the state (experiments: the user's arms), registered at start so
# onboarding never imports it. A section answering None is left out of the state.
_STATE_SECTIONS: dict[str, Callable[[Enrollment], Any]] = {}


def state_section_register(name: str, build: Callable[[Enrollment], Any]) -> None:
    _STATE_SECTIONS[name] = build


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def enrollment_state(
    *, enrollment: Enrollment, completions: dict[str, CompletionState] | None = None
) -> dict[str, Any]:
    """The state a client sees (API responses and websocket frames); JSON-ready. A writer that
    holds the step completions it just saved passes them, saving their query."""
    path_version = enrollment.path_version
    compiled = rules.compiled_version(path_version)
    if completions is None:
        completions = completions_for([enrollment]).get(enrollment.pk, {})
    steps, required, required_done = [], 0, 0
    for step in compiled.steps:
        row = completions.get(step.key)
        active = row if row is not None and row.is_active else None
        if active is not None:
            step_status = "skipped" if active.method == Method.SKIP else "completed"
        elif step.key == enrollment.current_step_key:
            step_status = "current"
        else:
            step_status = "pending"
        if not step.optional:
            required += 1
            required_done += active is not None
        steps.append(
            {
                "key": step.key,
                "title": step.title,
                "body": step.body,
                "order": step.order,
                "optional": step.optional,
                "ui_component": step.ui_component,
                "deep_link": step.deep_link,
                "completion": step.completion,
                "questions": list(step.questions),
                "status": step_status,
                "completed_at": _iso(active.completed_at) if active else None,
                "method": active.method if active else None,
            }
        )
    percent = 100 * required_done // required if required else 100
    state = {
        "user_id": enrollment.end_user.external_id,
        "enrollment_id": enrollment.pk,
        "path": {
            "key": path_version.path.key,
            "name": path_version.path.name,
            "version": path_version.number,
        },
        "status": enrollment.status,
        "current_step": enrollment.current_step_key or None,
        "revision": enrollment.revision,
        "percent_complete": percent,
        "answers": enrollment.answers,
        "steps": steps,
        "enrolled_at": _iso(enrollment.enrolled_at),
        "completed_at": _iso(enrollment.completed_at),
    }
    return _with_sections(state, enrollment)


def _with_sections(state: dict[str, Any], enrollment: Enrollment) -> dict[str, Any]:
    for name, build in _STATE_SECTIONS.items():
        section = build(enrollment)
        if section is not None:
            state[name] = section
    return state


def saved_state(enrollment: Enrollment) -> dict[str, Any]:
    """The state a write service just saved (no query), else the state read afresh."""
    state = getattr(enrollment, "saved_state", None)
    return state if state is not None else enrollment_state(enrollment=enrollment)


def first_enrollment_times(*, workspace: Workspace, start: datetime, end: datetime) -> QuerySet:
    """(end_user_id, first_enrolled_at) of the end users whose first enrolment in the workspace
    was in [start, end); for analytics' enrolment-week cohorts."""
    return (
        Enrollment.objects.filter(workspace=workspace)
        .values("end_user_id")
        .annotate(first_enrolled_at=Min("enrolled_at"))
        .filter(first_enrolled_at__gte=start, first_enrolled_at__lt=end)
        .order_by()
    )


def enrollments_enrolled_between(*, workspace: Workspace, start: datetime, end: datetime) -> QuerySet:
    """(end_user_id, enrolled_at, completed_at, status) of the enrollments enrolled in [start, end)."""
    return Enrollment.objects.filter(workspace=workspace, enrolled_at__gte=start, enrolled_at__lt=end).values(
        "end_user_id", "enrolled_at", "completed_at", "status"
    )


def cohort_people(*, workspace: Workspace, among: list[QuerySet] | None = None) -> QuerySet:
    """(id, created_at, first_enrolled_at, segment traits) of the workspace's end users, or of
    those in any of `among` (values queries of end user ids); first_enrolled_at is their earliest
    enrolment in the workspace, None if never enrolled. For analytics' cohort rollups."""
    people = EndUser.objects.filter(workspace=workspace)
    if among is not None:
        matches = Q(pk__in=[])
        for ids in among:
            matches |= Q(pk__in=ids)
        people = people.filter(matches)
    return (
        people.annotate(first_enrolled_at=Min("enrollments__enrolled_at"))
        .values("id", "created_at", "first_enrolled_at", *SEGMENT_TRAITS)
        .order_by()
    )


def end_users_of(*, workspace: Workspace) -> QuerySet[EndUser]:
    return EndUser.objects.filter(workspace=workspace)


def people_changed_between(*, workspace: Workspace, start: datetime, end: datetime) -> QuerySet:
    """Ids of the end users saved in [start, end) (traits, a merge into them, a new profile)."""
    return EndUser.objects.filter(workspace=workspace, updated_at__gte=start, updated_at__lt=end).values("id")


def enrollments_changed_between(*, workspace: Workspace, start: datetime, end: datetime) -> QuerySet:
    """(end_user_id, enrolled_at) of the enrollments saved in [start, end) (new ones among them)."""
    return (
        Enrollment.objects.filter(workspace=workspace, updated_at__gte=start, updated_at__lt=end)
        .values("end_user_id", "enrolled_at")
        .order_by()
    )


# --- Reads for analytics' rollups (aggregated there, in the database) -----------------------------


def completions_standing(*, enrollment_ids: list[int]) -> QuerySet:
    """(enrollment id, step key, method, completed_at) of the non-reverted step completions of these
    enrollments, found by the enrollment index (analytics' enrollment facts)."""
    return (
        StepCompletion.objects.filter(AnyOf(F("enrollment_id"), enrollment_ids), reverted_at__isnull=True)
        .order_by()
        .values_list("enrollment_id", "step_key", "method", "completed_at")
    )


def enrollments_of_workspace(*, workspace: Workspace) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(workspace=workspace)


def enrollments_changed_since(*, workspace: Workspace, since: datetime) -> QuerySet[Enrollment]:
    """Enrollments changed at or after `since`: every completion, revert, skip and status change
    saves the enrollment (updated_at), and a change of the end user's traits moves its segment."""
    return Enrollment.objects.filter(workspace=workspace).filter(
        Q(updated_at__gte=since) | Q(end_user__updated_at__gte=since)
    )
