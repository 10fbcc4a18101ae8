"""Reads of stuck detection's outcomes, for the admin: where the stuck are, per step."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q

from onboarding.models import Enrollment
from paths.models import Step
from tenancy.models import Workspace


@dataclass(frozen=True)
class StepStuckShare:
    """How many of the people on one step are stuck there, and its part of all the stuck."""

    workspace_name: str
    path_name: str
    path_version_number: int
    step_number: int  # its place in the path version, from 1
    step_key: str
    step_title: str
    on_step: int  # active enrollments whose current step it is
    stuck: int  # of those, the ones with an open stuck signal on it (Enrollment.stuck_at)
    share_of_stuck: float  # stuck / every stuck enrollment of the workspaces (0 when none is)

    @property
    def share_of_step(self) -> float:
        return self.stuck / self.on_step if self.on_step else 0.0


def stuck_shares_by_step(*, workspaces: Iterable[Workspace]) -> list[StepStuckShare]:
    """Every step active enrollments are on, the most stuck first: where a growth team should
    look ("step 3 of Developer setup holds 41% of the stuck users")."""
    counts = list(
        Enrollment.objects.filter(workspace__in=workspaces, status=Enrollment.Status.ACTIVE)
        .exclude(current_step_key="")
        .values("path_version_id", "current_step_key")
        .annotate(on_step=Count("pk"), stuck=Count("pk", filter=Q(stuck_at__isnull=False)))
        .order_by()
    )
    steps = (
        Step.objects.filter(path_version_id__in={row["path_version_id"] for row in counts})
        .order_by("path_version_id", "order", "pk")
        .values_list(
            "path_version_id",
            "key",
            "title",
            "path_version__number",
            "path_version__path__name",
            "path_version__path__workspace__name",
        )
    )
    described: dict[tuple[int, str], tuple] = {}
    numbers: dict[int, int] = {}
    for path_version_id, key, title, version_number, path_name, workspace_name in steps:
        numbers[path_version_id] = numbers.get(path_version_id, 0) + 1
        described[(path_version_id, key)] = (
            workspace_name,
            path_name,
            version_number,
            numbers[path_version_id],
            title,
        )
    total_stuck = sum(row["stuck"] for row in counts)
    shares = []
    for row in counts:
        pair = (row["path_version_id"], row["current_step_key"])
        workspace_name, path_name, version_number, number, title = described.get(
            pair, ("", "", 0, 0, row["current_step_key"])
        )
        shares.append(
            StepStuckShare(
                workspace_name=workspace_name,
                path_name=path_name,
                path_version_number=version_number,
                step_number=number,
                step_key=row["current_step_key"],
                step_title=title,
                on_step=row["on_step"],
                stuck=row["stuck"],
                share_of_stuck=row["stuck"] / total_stuck if total_stuck else 0.0,
            )
        )
    return sorted(
        shares, key=lambda share: (-share.stuck, -share.on_step, share.path_name, share.step_number)
    )
