"""What a rollup read is about: a workspace, a range of UTC days (`to` inclusive), the path
versions (all, a path's, or one) and segment filters."""

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Q

from analytics.models import SEGMENT_FIELDS
from tenancy.models import Workspace


@dataclass(frozen=True)
class RollupQuery:
    workspace: Workspace
    date_from: date
    date_to: date
    path_version_ids: tuple[int, ...] | None = None  # None: every version of every path
    segments: dict[str, str] = field(default_factory=dict)  # persona, signup_source, ... ('' = unknown)

    def __post_init__(self) -> None:
        unknown = set(self.segments) - set(SEGMENT_FIELDS)
        if unknown:
            raise ValueError(f"Not a segment: {', '.join(sorted(unknown))}")

    def rows(self, model) -> Q:
        """The filter selecting this query's rows of a rollup table."""
        condition = Q(
            workspace=self.workspace, day__gte=self.date_from, day__lte=self.date_to, **self.segments
        )
        if self.path_version_ids is not None:
            condition &= Q(path_version_id__in=self.path_version_ids)
        return condition
