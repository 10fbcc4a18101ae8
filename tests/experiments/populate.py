"""Assigned users with their enrollments, written in bulk, and analytics' enrollment facts built
by the rollups rebuild, the way the dashboards get them: the results read those facts."""

import itertools
from datetime import datetime, timedelta

from analytics.rollups import services as rollup_services
from experiments.models import Assignment, Experiment
from onboarding.models import Enrollment
from tenancy.models import EndUser

_numbers = itertools.count(1)


def assign(
    experiment: Experiment,
    arm: str,
    *,
    users: int,
    activated: int = 0,
    enrolled_at: datetime,
    hours_to_activation: float = 5.0,
    late: int = 0,
) -> list[Enrollment]:
    """``users`` assigned to ``arm`` at ``enrolled_at``: the first ``activated`` complete their path
    after ``hours_to_activation``, the next ``late`` complete it after the activation window."""
    variant = experiment.variants.get(key=arm)
    people = EndUser.objects.bulk_create(
        [
            EndUser(workspace=experiment.workspace, external_id=f"person-{next(_numbers)}")
            for _ in range(users)
        ]
    )
    enrollments = []
    for index, person in enumerate(people):
        if index < activated:
            completed_at = enrolled_at + timedelta(hours=hours_to_activation)
        elif index < activated + late:
            completed_at = enrolled_at + timedelta(days=60)
        else:
            completed_at = None
        enrollments.append(
            Enrollment(
                workspace=experiment.workspace,
                end_user=person,
                path_version=variant.path_version,
                status=Enrollment.Status.COMPLETED if completed_at else Enrollment.Status.ACTIVE,
                enrolled_at=enrolled_at,
                step_entered_at=enrolled_at,
                completed_at=completed_at,
            )
        )
    enrollments = Enrollment.objects.bulk_create(enrollments)
    Assignment.objects.bulk_create(
        [
            Assignment(
                workspace=experiment.workspace,
                experiment=experiment,
                end_user=enrollment.end_user,
                variant=variant,
                enrollment=enrollment,
                assigned_at=enrolled_at,
                hash_value=0.5,
            )
            for enrollment in enrollments
        ]
    )
    return enrollments


def refresh_facts(experiment: Experiment) -> None:
    rollup_services.rollups_rebuild(workspace=experiment.workspace)
