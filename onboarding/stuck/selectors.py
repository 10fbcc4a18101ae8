"""Reads of stuck detection's outcomes, for the admin: where the stuck are, per step."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

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
    path_id: int | None = None
    path_version_id: int | None = None
    # The median of how long the stuck ones have been on the step so far (None: nobody stuck).
    median_time_in_step: timedelta | None = None
    path_key: str = ""

    @property
    def share_of_step(self) -> float:
        return self.stuck / self.on_step if self.on_step else 0.0


def _active_on_a_step(workspaces: Iterable[Workspace]) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(workspace__in=workspaces, status=Enrollment.Status.ACTIVE).exclude(
        current_step_key=""
    )


def _steps_described(path_version_ids: set[int]) -> dict[tuple[int, str], tuple]:
    """(path version, step key) -> (workspace, path id, path name, version number, position, title,
    path key)."""
    steps = (
        Step.objects.filter(path_version_id__in=path_version_ids)
        .order_by("path_version_id", "order", "pk")
        .values_list(
            "path_version_id",
            "key",
            "title",
            "path_version__number",
            "path_version__path_id",
            "path_version__path__name",
            "path_version__path__workspace__name",
            "path_version__path__key",
        )
    )
    described: dict[tuple[int, str], tuple] = {}
    positions: dict[int, int] = {}
    for path_version_id, key, title, version_number, path_id, path_name, workspace_name, path_key in steps:
        positions[path_version_id] = positions.get(path_version_id, 0) + 1
        described[(path_version_id, key)] = (
            workspace_name,
            path_id,
            path_name,
            version_number,
            positions[path_version_id],
            title,
            path_key,
        )
    return described


def median_stuck_times_in_step(
    *, workspaces: Iterable[Workspace], now: datetime | None = None
) -> dict[tuple[int, str], timedelta]:
    """(path version id, step key) -> median time on the step of the enrollments stuck on it.

    Computed in the database and portable (SQLite too): a window numbers the stuck of each step
    by when they entered it, and only the one or two middle rows of each step are read, so the
    answer costs one query and two rows per step however many people are stuck.
    """
    now = now or timezone.now()
    partition = [F("path_version_id"), F("current_step_key")]
    middle_rows = (
        _active_on_a_step(workspaces)
        .filter(stuck_at__isnull=False)
        .annotate(
            position=Window(
                RowNumber(), partition_by=partition, order_by=[F("step_entered_at").asc(), F("pk").asc()]
            ),
            stuck_on_step=Window(Count("pk"), partition_by=partition),
        )
        # The middle of n rows: position (n + 1) / 2 when n is odd, n / 2 and n / 2 + 1 when even.
        .filter(stuck_on_step__lte=F("position") * 2, stuck_on_step__gte=F("position") * 2 - 2)
        .values_list("path_version_id", "current_step_key", "step_entered_at")
    )
    entered: dict[tuple[int, str], list[datetime]] = {}
    for path_version_id, step_key, step_entered_at in middle_rows:
        entered.setdefault((path_version_id, step_key), []).append(step_entered_at)
    medians = {}
    for pair, moments in entered.items():
        earliest, latest = min(moments), max(moments)
        medians[pair] = now - (earliest + (latest - earliest) / 2)
    return medians


def stuck_shares_by_step(
    *, workspaces: Iterable[Workspace], now: datetime | None = None
) -> list[StepStuckShare]:
    """Every step active enrollments are on, the most stuck first, with how long the stuck have
    been there: where a growth team should look ("step 3 of Developer setup holds 41% of the
    stuck users, stuck there for a median of 4 days"). Three queries, whatever the volume."""
    counts = list(
        _active_on_a_step(workspaces)
        .values("path_version_id", "current_step_key")
        .annotate(on_step=Count("pk"), stuck=Count("pk", filter=Q(stuck_at__isnull=False)))
        .order_by()
    )
    described = _steps_described({row["path_version_id"] for row in counts})
    medians = (
        median_stuck_times_in_step(workspaces=workspaces, now=now) if any(r["stuck"] for r in counts) else {}
    )
    total_stuck = sum(row["stuck"] for row in counts)
    shares = []
    for row in counts:
        pair = (row["path_version_id"], row["current_step_key"])
        workspace_name, path_id, path_name, version_number, position, title, path_key = described.get(
            pair, ("", None, "", 0, 0, row["current_step_key"], "")
        )
        shares.append(
            StepStuckShare(
                workspace_name=workspace_name,
                path_name=path_name,
                path_version_number=version_number,
                step_number=position,
                step_key=row["current_step_key"],
                step_title=title,
                on_step=row["on_step"],
                stuck=row["stuck"],
                share_of_stuck=row["stuck"] / total_stuck if total_stuck else 0.0,
                path_id=path_id,
                path_version_id=row["path_version_id"],
                median_time_in_step=medians.get(pair),
                path_key=path_key,
            )
        )
    return sorted(
        shares, key=lambda share: (-share.stuck, -share.on_step, share.path_name, share.step_number)
    )
