"""An end user's timeline for the admin: events, enrollments, steps, signals and nudges, newest first.

Each nudge comes with its decision trace ("policy: email denied: daily_cap: daily cap of 1
reached at 09:12 Europe/Paris"), each enrollment with the planner's reason, each stuck signal
with its reason: the answer to "why did or didn't this user get X?". Event properties and
contact data are not shown (an identify's traits are the user's profile).
"""

from dataclasses import dataclass, field
from datetime import datetime

from nudges.models import Nudge
from onboarding.models import Enrollment, EnrollmentSignal, Event, StepCompletion
from tenancy.models import EndUser, Workspace

LIMIT = 100


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # event, enrollment, step, signal, nudge
    title: str
    lines: tuple[str, ...] = field(default=())
    link_pk: int | None = None  # the nudge's id, for a link to its page


def _parsed(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def trace_lines(nudge: Nudge) -> tuple[str, ...]:
    """The nudge's decision trace as lines: "09:12:05 policy: email denied: ..."."""
    lines = []
    for entry in nudge.trace or []:
        if not isinstance(entry, dict):
            continue
        at = _parsed(entry.get("at", ""))
        when = f"{at:%Y-%m-%d %H:%M:%S} " if at else ""
        lines.append(f"{when}{entry.get('stage', '')}: {entry.get('message', '')}")
    return tuple(lines)


def _events(workspace: Workspace, end_user: EndUser, limit: int) -> list[TimelineItem]:
    rows = (
        Event.objects.filter(workspace=workspace, end_user=end_user)
        .order_by("-timestamp", "-pk")
        .values("timestamp", "type", "name")[:limit]
    )
    return [
        TimelineItem(at=row["timestamp"], kind="event", title=f"{row['type']} {row['name']}".strip())
        for row in rows
    ]


def _enrollments(workspace: Workspace, end_user: EndUser, limit: int) -> list[TimelineItem]:
    rows = (
        Enrollment.objects.filter(workspace=workspace, end_user=end_user)
        .select_related("path_version__path")
        .order_by("-enrolled_at")[:limit]
    )
    return [
        TimelineItem(
            at=row.enrolled_at,
            kind="enrollment",
            title=f"enrolled on {row.path_version.path.name} v{row.path_version.number} ({row.status})",
            lines=(row.decision_reason,) if row.decision_reason else (),
        )
        for row in rows
    ]


def _steps(workspace: Workspace, end_user: EndUser, limit: int) -> list[TimelineItem]:
    rows = (
        StepCompletion.objects.filter(enrollment__workspace=workspace, enrollment__end_user=end_user)
        .order_by("-completed_at", "-pk")
        .values("completed_at", "step_key", "method", "reverted_at")[:limit]
    )
    items = []
    for row in rows:
        done = "skipped" if row["method"] == StepCompletion.Method.SKIP else f"completed ({row['method']})"
        reverted = f", reverted at {row['reverted_at']:%Y-%m-%d %H:%M}" if row["reverted_at"] else ""
        items.append(
            TimelineItem(
                at=row["completed_at"], kind="step", title=f"step {row['step_key']} {done}{reverted}"
            )
        )
    return items


def _signals(workspace: Workspace, end_user: EndUser, limit: int) -> list[TimelineItem]:
    rows = (
        EnrollmentSignal.objects.filter(enrollment__workspace=workspace, enrollment__end_user=end_user)
        .order_by("-created_at", "-pk")
        .values("created_at", "kind", "step_key", "reason")[:limit]
    )
    return [
        TimelineItem(
            at=row["created_at"],
            kind="signal",
            title=f"{row['kind']} at step {row['step_key']}",
            lines=(row["reason"],) if row["reason"] else (),
        )
        for row in rows
    ]


def _nudges(workspace: Workspace, end_user: EndUser, limit: int) -> list[TimelineItem]:
    rows = (
        Nudge.objects.filter(workspace=workspace, end_user=end_user)
        .select_related("trigger")
        .only("created_at", "status", "channel", "trace", "trigger__name")
        .order_by("-created_at", "-pk")[:limit]
    )
    return [
        TimelineItem(
            at=row.created_at,
            kind="nudge",
            title=f"nudge “{row.trigger.name}”: {row.status}" + (f" on {row.channel}" if row.channel else ""),
            lines=trace_lines(row),
            link_pk=row.pk,
        )
        for row in rows
    ]


def end_user_timeline(*, workspace: Workspace, end_user: EndUser, limit: int = LIMIT) -> list[TimelineItem]:
    """The user's last `limit` items of every kind, merged, newest first."""
    items = [
        *_events(workspace, end_user, limit),
        *_enrollments(workspace, end_user, limit),
        *_steps(workspace, end_user, limit),
        *_signals(workspace, end_user, limit),
        *_nudges(workspace, end_user, limit),
    ]
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]
