"""Reads of paths, each scoped by workspace."""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, Model, Q, QuerySet
from django.utils import timezone

from paths.models import Path, PathVersion, Step
from tenancy.models import EndUser, Workspace

logger = logging.getLogger(__name__)

KNOWN_EVENTS_DAYS = 90
KNOWN_EVENTS_LIMIT = 5000
KNOWN_EVENTS_CACHE_SECONDS = 300


def paths_for_workspace(*, workspace: Workspace) -> QuerySet[Path]:
    return Path.objects.filter(workspace=workspace).prefetch_related("versions")


def path_get(*, workspace: Workspace, key: str) -> Path | None:
    return Path.objects.filter(workspace=workspace, key=key).first()


def path_versions(*, workspace: Workspace, path: Path) -> QuerySet[PathVersion]:
    """Newest first."""
    return PathVersion.objects.filter(path__workspace=workspace, path=path).order_by("-number")


def published_versions(*, workspace: Workspace) -> QuerySet[PathVersion]:
    """The workspace's published versions (at most one per path), with their path, by path key."""
    return (
        PathVersion.objects.filter(path__workspace=workspace, status=PathVersion.Status.PUBLISHED)
        .select_related("path")
        .order_by("path__key")
    )


def steps_of_version(*, workspace: Workspace, path_version: PathVersion) -> QuerySet[Step]:
    return Step.objects.filter(path_version__path__workspace=workspace, path_version=path_version).order_by(
        "order", "pk"
    )


def _enrollment_model() -> type[Model]:
    """Enrollment, reached through PathVersion.enrollments: onboarding sits above paths, so
    paths names its model only through the relation onboarding declared."""
    return PathVersion._meta.get_field("enrollments").related_model


def _event_model() -> type[Model]:
    """Event, reached through EndUser.events, for the same reason."""
    return EndUser._meta.get_field("events").related_model


def enrollment_statuses() -> list[str]:
    """An enrollment's statuses (active, completed, abandoned), in their declared order."""
    return _enrollment_model().Status.values


def with_enrollment_counts(queryset: QuerySet[PathVersion]) -> QuerySet[PathVersion]:
    """Annotate each version of an already scoped queryset with enrolled_<status> counts."""
    return queryset.annotate(
        # distinct: callers may join other to-many relations (steps) into the same query.
        enrolled_total=Count("enrollments", distinct=True),
        **{
            f"enrolled_{status}": Count("enrollments", filter=Q(enrollments__status=status), distinct=True)
            for status in enrollment_statuses()
        },
    )


def version_enrollment_counts(*, workspace: Workspace, path: Path | None = None) -> dict[int, dict[str, int]]:
    """{path version id: {status: count}} for versions with at least one enrollment."""
    enrollments = _enrollment_model().objects.filter(workspace=workspace)
    if path is not None:
        enrollments = enrollments.filter(path_version__path=path)
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in enrollments.values("path_version_id", "status").annotate(count=Count("pk")).order_by():
        counts[row["path_version_id"]][row["status"]] = row["count"]
    return dict(counts)


def known_event_names(*, workspace: Workspace) -> frozenset[str]:
    """Names of track events the workspace sent in the last 90 days, cached for 5 minutes.

    Used to flag probable typos in the path editor, so a recent window is enough and keeps the
    query on the (workspace, name, timestamp) index short on large event tables.
    """
    cache_key = _known_events_key(workspace)
    try:
        names = cache.get(cache_key)
    except Exception:  # Redis down: read the database instead
        logger.warning("paths.known_events.cache_unavailable", exc_info=True)
        names = None
    if names is None:
        since = timezone.now() - timedelta(days=KNOWN_EVENTS_DAYS)
        event_model = _event_model()
        names = sorted(
            event_model.objects.filter(workspace=workspace, type=event_model.Type.TRACK, timestamp__gte=since)
            .exclude(name="")
            .order_by("name")
            .values_list("name", flat=True)
            .distinct()[:KNOWN_EVENTS_LIMIT]
        )
        try:
            cache.set(cache_key, names, KNOWN_EVENTS_CACHE_SECONDS)
        except Exception:
            logger.warning("paths.known_events.cache_unavailable", exc_info=True)
    return frozenset(names)


def _known_events_key(workspace: Workspace) -> str:
    # created_at keeps keys distinct if a workspace id is ever reused (test databases roll back).
    return f"paths:known-events:{workspace.pk}:{workspace.created_at.timestamp()}"


def steps_of_versions(*, workspace: Workspace, path_version_ids: Iterable[int]) -> dict[int, list[Step]]:
    """{path version id: its steps in order} for the workspace's versions among the ids."""
    steps: dict[int, list[Step]] = defaultdict(list)
    for step in Step.objects.filter(
        path_version__path__workspace=workspace, path_version_id__in=list(path_version_ids)
    ).order_by("path_version_id", "order", "pk"):
        steps[step.path_version_id].append(step)
    return steps
