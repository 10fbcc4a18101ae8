"""Reads of experiments, always within a workspace."""

from django.db.models import QuerySet

from experiments.models import Assignment, Experiment
from onboarding.models import Enrollment
from tenancy.models import EndUser, Workspace


def experiment_get(*, workspace: Workspace, key: str) -> Experiment | None:
    return Experiment.objects.filter(workspace=workspace, key=key).first()


def experiments_running(*, workspace: Workspace) -> QuerySet[Experiment]:
    return Experiment.objects.filter(workspace=workspace, status=Experiment.Status.RUNNING)


def user_assignments(*, workspace: Workspace, end_user: EndUser) -> QuerySet[Assignment]:
    """A person's arms, oldest first, with what a client needs to show them."""
    return (
        Assignment.objects.filter(workspace=workspace, end_user=end_user)
        .select_related("experiment", "variant__path_version__path", "variant__template_version")
        .order_by("assigned_at", "pk")
    )


def assignment_as_dict(assignment: Assignment) -> dict:
    """One arm as the API, the enrollment state and the GDPR export show it (JSON-ready)."""
    variant = assignment.variant
    version = variant.path_version
    return {
        "experiment": assignment.experiment.key,
        "experiment_status": assignment.experiment.status,
        "variant": variant.key,
        "assigned_at": assignment.assigned_at.isoformat(),
        "path_version": (
            {"path": version.path.key, "version": version.number} if version is not None else None
        ),
    }


def enrollment_arms(enrollment: Enrollment) -> list[dict] | None:
    """The arms of the enrollment's user for its state; None (no section) when the planner did not
    choose this enrollment by an experiment, read from its decision reason so that the state of
    an enrollment outside any experiment costs no query."""
    if (
        not enrollment.decision_reason.startswith("experiment ")
        or ", variant " not in enrollment.decision_reason
    ):
        return None
    rows = Assignment.objects.filter(
        workspace_id=enrollment.workspace_id, end_user_id=enrollment.end_user_id
    ).select_related("experiment", "variant__path_version__path")
    return [assignment_as_dict(row) for row in rows.order_by("assigned_at", "pk")] or None
