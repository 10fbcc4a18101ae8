"""Paths and enrollments written as rows, for tests of the engines that read them (stuck
detection, answer aggregation) without going through the progress engine."""

from datetime import datetime, timedelta

from django.utils import timezone

from onboarding.models import Enrollment, StepCompletion
from paths.models import Path, PathVersion, Step
from tenancy import services
from tenancy.models import Workspace
from tests.factories import EndUserFactory


def published_version(workspace: Workspace, steps: list[dict], *, key: str = "main") -> PathVersion:
    path = Path.objects.create(workspace=workspace, key=key, name=key.title())
    version = PathVersion.objects.create(
        path=path, number=1, status=PathVersion.Status.PUBLISHED, published_at=timezone.now()
    )
    services.workspace_paths_published(workspace=workspace, at=version.published_at)
    for order, spec in enumerate(steps):
        Step.objects.create(path_version=version, order=order, title=spec["key"], **spec)
    return version


def enrollment(
    path_version: PathVersion,
    *,
    user_id: str,
    current_step_key: str = "",
    step_entered_at: datetime | None = None,
    enrolled_at: datetime | None = None,
    status: str = Enrollment.Status.ACTIVE,
    answers: dict | None = None,
    completed_at: datetime | None = None,
) -> Enrollment:
    workspace = path_version.path.workspace
    enrolled_at = enrolled_at or timezone.now() - timedelta(days=30)
    return Enrollment.objects.create(
        workspace=workspace,
        end_user=EndUserFactory(workspace=workspace, external_id=user_id),
        path_version=path_version,
        status=status,
        current_step_key=current_step_key,
        answers=answers or {},
        enrolled_at=enrolled_at,
        step_entered_at=step_entered_at or enrolled_at,
        completed_at=completed_at,
    )


def complete(
    enrollment: Enrollment,
    step_key: str,
    at: datetime,
    *,
    method: str = StepCompletion.Method.API,
    reverted_at: datetime | None = None,
) -> StepCompletion:
    return StepCompletion.objects.create(
        enrollment=enrollment, step_key=step_key, method=method, completed_at=at, reverted_at=reverted_at
    )
