"""Rebuild enrollments' progress from their events and explicit completions, or check it.

The live state is kept incrementally by the progress engine; this recomputes it from scratch
with the same `derive`, so any difference is a bug (or a failed evaluation) to repair.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from onboarding.models import Enrollment
from onboarding.progress import engine as progress
from onboarding.progress.saving import save
from onboarding.progress.state import CompletionState, Derived
from tenancy.models import TOMBSTONE_PREFIX, Workspace

CHUNK_SIZE = 500


@dataclass
class RebuildReport:
    enrollments: int = 0
    differences: dict[int, list[str]] = field(default_factory=dict)


def _moment(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "none"


def _describe(row: CompletionState | None) -> str:
    if row is None:
        return "none"
    text = f"{row.method} at {row.completed_at.isoformat()}"
    if row.event_id is not None:
        text += f" (event {row.event_id})"
    if row.reverted_at is not None:
        text += f", reverted at {row.reverted_at.isoformat()}"
    return text


def differences(enrollment: Enrollment, before: dict, derived: Derived) -> list[str]:
    """What the live state has that the rebuilt one has not, field by field."""
    found = []
    for key in sorted(before.keys() | derived.completions.keys()):
        old, new = before.get(key), derived.completions.get(key)
        if old != new:
            found.append(f"step {key}: live {_describe(old)}, rebuilt {_describe(new)}")
    for name, live, rebuilt in (
        ("status", enrollment.status, derived.status),
        ("current step", enrollment.current_step_key or "none", derived.current_step_key or "none"),
        ("step entered at", _moment(enrollment.step_entered_at), _moment(derived.step_entered_at)),
        ("completed at", _moment(enrollment.completed_at), _moment(derived.completed_at)),
    ):
        if live != rebuilt:
            found.append(f"{name}: live {live}, rebuilt {rebuilt}")
    return found


def _chunks(workspace: Workspace | None) -> Iterator[tuple[int, list[int]]]:
    """(workspace id, enrollment ids) in pk order; abandoned enrollments are left as they are, and
    so are those of erased people (their events lost the properties the rules read)."""
    queryset = (
        Enrollment.objects.filter(status__in=progress.LIVE_STATUSES)
        .exclude(end_user__external_id__startswith=TOMBSTONE_PREFIX)
        .order_by("pk")
    )
    if workspace is not None:
        queryset = queryset.filter(workspace=workspace)
    last = 0
    while True:
        rows = list(queryset.filter(pk__gt=last).values_list("pk", "workspace_id")[:CHUNK_SIZE])
        if not rows:
            return
        last = rows[-1][0]
        by_workspace: dict[int, list[int]] = {}
        for pk, workspace_id in rows:
            by_workspace.setdefault(workspace_id, []).append(pk)
        yield from by_workspace.items()


def enrollments_count(*, workspace: Workspace | None = None) -> int:
    queryset = Enrollment.objects.filter(status__in=progress.LIVE_STATUSES)
    return (queryset.filter(workspace=workspace) if workspace else queryset).count()


def rebuild_progress(
    *,
    workspace: Workspace | None = None,
    repair: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> RebuildReport:
    """Recompute every live enrollment (of one workspace, or all); with repair, write the
    rebuilt state where it differs (a new revision, pushed to the user). Returns the differences
    found, which after a repair were fixed."""
    report = RebuildReport()
    for workspace_id, enrollment_ids in _chunks(workspace):
        with transaction.atomic():
            results = progress.evaluate(
                dict.fromkeys(enrollment_ids), workspace_id=workspace_id, commit=False, lock=repair
            )
            for enrollment, before, derived in results.values():
                found = differences(enrollment, before, derived)
                if found:
                    report.differences[enrollment.pk] = found
                    if repair:
                        save(enrollment, before=before, derived=derived, force=True)
        report.enrollments += len(enrollment_ids)
        if on_progress is not None:
            on_progress(report.enrollments)
    return report


def rebuild(*, enrollment: Enrollment, repair: bool = True) -> list[str]:
    """Rebuild one enrollment; returns its differences from the live state."""
    with transaction.atomic():
        results = progress.evaluate(
            {enrollment.pk: None}, workspace_id=enrollment.workspace_id, lock=repair, commit=False
        )
        if enrollment.pk not in results:
            return []
        live, before, derived = results[enrollment.pk]
        found = differences(live, before, derived)
        if found and repair:
            save(live, before=before, derived=derived, force=True)
    return found
