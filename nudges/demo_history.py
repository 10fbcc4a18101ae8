"""The demo's nudge history (`make run`): what the demo's triggers would have sent over the
simulated weeks, so the Overview and the Nudges dashboard have numbers from the first page.

The demo's triggers are created after the simulated events are ingested (nudges.demo), so the
pipeline never saw those weeks. This writes, for every simulated enrollment, the in-app nudges the
three demo triggers fire on it (welcome on enrolment, "stuck" a day into a step not done,
"halfway" when half the steps are done) with the engagement a seeded random draw gives them
(seen, clicked). Conversions are not drawn: a nudge is converted when its step was really
completed within the workspace's conversion window after it was sent, the rule of
nudges.delivery.conversion. Every row is marked as simulated in its trace.
"""

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F

from nudges.delivery.conversion import conversion_window
from nudges.models import Nudge, NudgeEvent, TemplateVersion, Trigger
from nudges.services import RANK, trace_line
from onboarding.models import Enrollment, StepCompletion
from paths import selectors as paths_selectors
from tenancy.models import Workspace

Status = Nudge.Status
SEEN_SHARE = 0.6  # of the nudges shown, seen
CLICKED_SHARE = 0.35  # of the seen, clicked
STUCK_AFTER = timedelta(hours=24)
WRITE_BATCH_SIZE = 500


@dataclass
class _Drawn:
    """One simulated nudge and the moments of its delivery statuses."""

    trigger: Trigger
    version: TemplateVersion
    enrollment: Enrollment
    occasion: str
    target_step_key: str
    reason: str
    sent_at: datetime
    moments: dict[str, datetime] = field(default_factory=dict)


def _occasions(enrollment: Enrollment, step_keys: list[str], done: dict[str, datetime], clock: datetime):
    """(kind, occasion, target step, reason, sent at) of each nudge the demo triggers fire."""
    first = step_keys[0] if step_keys else ""
    yield Trigger.Kind.WELCOME, "welcome", first, "welcome: enrolled", enrollment.enrolled_at
    entered_at = enrollment.enrolled_at
    for index, key in enumerate(step_keys):
        finished = done.get(key)
        if (finished or clock) - entered_at > STUCK_AFTER:
            yield (
                Trigger.Kind.STUCK,
                f"stuck:{key}",
                key,
                f"stuck: no progress on {key!r} for a day",
                (entered_at + STUCK_AFTER),
            )
        if finished is None:
            break
        if index + 1 == (len(step_keys) + 1) // 2 and index + 1 < len(step_keys):
            reason = "milestone: half the path done"
            yield Trigger.Kind.MILESTONE, "percent:50", step_keys[index + 1], reason, finished
        entered_at = finished


def _draw_engagement(drawn: _Drawn, rng: random.Random, completed_at: datetime | None, window, clock) -> None:
    moments = {Status.SENT: drawn.sent_at, Status.DELIVERED: drawn.sent_at}
    if rng.random() < SEEN_SHARE:
        moments[Status.OPENED] = drawn.sent_at + timedelta(minutes=rng.uniform(1, 360))
        if rng.random() < CLICKED_SHARE:
            moments[Status.CLICKED] = moments[Status.OPENED] + timedelta(seconds=rng.uniform(5, 120))
    if completed_at is not None and drawn.sent_at <= completed_at <= drawn.sent_at + window:
        moments[Status.CONVERTED] = completed_at
    drawn.moments = {status: at for status, at in moments.items() if at <= clock}


def _nudge_row(drawn: _Drawn) -> Nudge:
    moments = drawn.moments
    status = max(moments, key=RANK.__getitem__)
    end_user_id = drawn.enrollment.end_user_id
    return Nudge(
        workspace_id=drawn.trigger.workspace_id,
        end_user_id=end_user_id,
        enrollment=drawn.enrollment,
        trigger=drawn.trigger,
        occasion=f"demo-history:{drawn.enrollment.pk}:{drawn.occasion}",
        idempotency_key=f"{drawn.trigger.pk}:{end_user_id}:demo-history:{drawn.enrollment.pk}:{drawn.occasion}",
        status=status,
        channel="in_app",
        template_version=drawn.version,
        target_step_key=drawn.target_step_key,
        subject=drawn.version.subject,
        body=drawn.version.body,
        cta_text=drawn.version.cta_text,
        trace=[
            trace_line("trigger", drawn.reason, at=drawn.sent_at),
            trace_line("demo", "simulated history written by seed_demo", at=drawn.sent_at),
        ],
        attempts=1,
        sent_at=moments.get(Status.SENT),
        delivered_at=moments.get(Status.DELIVERED),
        opened_at=moments.get(Status.OPENED),
        seen_at=moments.get(Status.OPENED),
        clicked_at=moments.get(Status.CLICKED),
        converted_at=moments.get(Status.CONVERTED),
    )


SOURCES = {
    Status.SENT: "pipeline",
    Status.DELIVERED: "in_app",
    Status.OPENED: "inbox",
    Status.CLICKED: "inbox",
    Status.CONVERTED: "progress",
}


def _write(drawn_nudges: list[_Drawn]) -> None:
    """Nudges and their events, with the simulated moments as their creation times."""
    for start in range(0, len(drawn_nudges), WRITE_BATCH_SIZE):
        batch = drawn_nudges[start : start + WRITE_BATCH_SIZE]
        nudges = Nudge.objects.bulk_create([_nudge_row(drawn) for drawn in batch])
        for nudge, drawn in zip(nudges, batch, strict=True):
            nudge.created_at = drawn.sent_at
        # auto_now_add stamped them now: the history's moments replace it.
        Nudge.objects.bulk_update(nudges, ["created_at"])
        events = [NudgeEvent(nudge=nudge, status=Status.QUEUED, source="trigger") for nudge in nudges]
        moments = [drawn.sent_at for drawn in batch]
        for nudge, drawn in zip(nudges, batch, strict=True):
            for status, at in drawn.moments.items():
                events.append(NudgeEvent(nudge=nudge, status=status, source=SOURCES[status]))
                moments.append(at)
        events = NudgeEvent.objects.bulk_create(events)
        for event, at in zip(events, moments, strict=True):
            event.created_at = at
        NudgeEvent.objects.bulk_update(events, ["created_at"])


@transaction.atomic
def demo_nudge_history_seed(*, workspace: Workspace, seed: int, clock: datetime) -> int:
    """Write the simulated history once (0 when the workspace has nudges already); returns how many."""
    if Nudge.objects.filter(workspace=workspace).exists():
        return 0
    active = Trigger.objects.filter(workspace=workspace, is_active=True)
    triggers = {trigger.kind: trigger for trigger in active}
    versions = defaultdict(list)
    for version in TemplateVersion.objects.filter(
        template__trigger__in=triggers.values(), status=TemplateVersion.Status.ACTIVE
    ).select_related("template"):
        versions[version.template.trigger_id].append(version)
    enrollments = list(Enrollment.objects.filter(workspace=workspace).order_by("pk"))
    steps = paths_selectors.steps_of_versions(
        workspace=workspace, path_version_ids={enrollment.path_version_id for enrollment in enrollments}
    )
    done: dict[int, dict[str, datetime]] = defaultdict(dict)
    for enrollment_id, step_key, completed_at in StepCompletion.objects.filter(
        enrollment__workspace=workspace, reverted_at__isnull=True
    ).values_list("enrollment_id", "step_key", "completed_at"):
        done[enrollment_id][step_key] = completed_at
    rng, window = random.Random(seed), conversion_window(workspace_id=workspace.pk)
    drawn_nudges = []
    for enrollment in enrollments:
        step_keys = [step.key for step in steps.get(enrollment.path_version_id, [])]
        for kind, occasion, target, reason, sent_at in _occasions(
            enrollment, step_keys, done[enrollment.pk], clock
        ):
            trigger = triggers.get(kind)
            if trigger is None or not versions[trigger.pk] or sent_at > clock:
                continue
            drawn = _Drawn(
                trigger, rng.choice(versions[trigger.pk]), enrollment, occasion, target, reason, sent_at
            )
            _draw_engagement(drawn, rng, done[enrollment.pk].get(target), window, clock)
            drawn_nudges.append(drawn)
    _write(drawn_nudges)
    for version in {drawn.version for drawn in drawn_nudges}:
        mine = [drawn for drawn in drawn_nudges if drawn.version is version]
        rewarded = sum(1 for drawn in mine if {Status.CLICKED, Status.CONVERTED} & drawn.moments.keys())
        TemplateVersion.objects.filter(pk=version.pk).update(
            sends=F("sends") + len(mine), rewards=F("rewards") + rewarded
        )
    return len(drawn_nudges)
