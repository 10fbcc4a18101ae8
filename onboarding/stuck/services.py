"""Writes for enrollment signals: the stuck pass, resolving, and flags for human review.

A `stuck` signal is recorded once per stay on a step: while it is open, and also after an admin
resolved it, until the user moves on. `Enrollment.stuck_at` is set exactly while the enrollment
has an open stuck signal on its current step.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from onboarding.models import Enrollment, EnrollmentSignal, Event, StepCompletion
from onboarding.progress.state import active_completions
from onboarding.stuck import risk
from onboarding.stuck import rules as stuck
from paths.models import Step
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1000
PAIRS_PER_QUERY = 100


@dataclass
class StuckReport:
    """What one pass over a workspace did."""

    workspace: Workspace
    active: int = 0  # active enrollments on a step
    flagged: int = 0  # newly recorded stuck signals (the early ones included)
    flagged_early: int = 0  # of those, flagged before their limit on a risk provider's word (risk.py)
    away: int = 0  # over the limit, but without any event for stuck.AWAY_AFTER: not flagged
    resolved: int = 0  # stuck signals closed because the user moved on or left
    not_judged: int = 0  # enrollments on steps with neither an expected duration nor enough samples
    not_judged_steps: list[str] = field(default_factory=list)


def _limits(
    *, workspace: Workspace, on_step: dict[tuple[int, str], int]
) -> dict[tuple[int, str], stuck.Limit]:
    """The limit of every (path version, step) some active enrollment is on."""
    path_version_ids = {path_version_id for path_version_id, _ in on_step}
    expected = {
        (path_version_id, key): duration
        for path_version_id, key, duration in Step.objects.filter(
            path_version_id__in=path_version_ids
        ).values_list("path_version_id", "key", "expected_duration")
    }
    needs_samples = {pair for pair in on_step if expected.get(pair) is None}
    samples: dict[tuple[int, str], list[float]] = {}
    if needs_samples:
        rows = (
            StepCompletion.objects.filter(
                enrollment__workspace=workspace,
                enrollment__path_version_id__in={path_version_id for path_version_id, _ in needs_samples},
            )
            .filter(active_completions())
            .order_by("enrollment_id", "completed_at", "pk")
            .values_list(
                "enrollment__path_version_id",
                "enrollment_id",
                "enrollment__enrolled_at",
                "step_key",
                "method",
                "completed_at",
            )
        )
        samples = stuck.completion_durations(
            (
                (path_version_id, enrollment_id, enrolled_at, key, method == StepCompletion.Method.SKIP, at)
                for path_version_id, enrollment_id, enrolled_at, key, method, at in rows.iterator(
                    chunk_size=5000
                )
            ),
            wanted=needs_samples,
        )
    return {
        pair: stuck.step_limit(
            step_key=pair[1], expected_duration=expected.get(pair), samples=samples.get(pair, [])
        )
        for pair in on_step
    }


def _flag(
    *,
    candidates: list[tuple[int, int, str, datetime]],
    limits: dict[tuple[int, str], stuck.Limit],
    now: datetime,
    reasons: dict[int, str] | None = None,
) -> None:
    """One transaction per chunk: a long pass never holds many row locks for long. `reasons`
    replaces the time-based reason of some enrollments (the early flags')."""
    signals = [
        EnrollmentSignal(
            enrollment_id=enrollment_id,
            kind=EnrollmentSignal.Kind.STUCK,
            step_key=step_key,
            reason=(reasons or {}).get(enrollment_id)
            or stuck.stuck_reason(
                step_key=step_key,
                time_on_step=now - entered_at,
                limit=limits[(path_version_id, step_key)],
            ),
        )
        for enrollment_id, path_version_id, step_key, entered_at in candidates
    ]
    with transaction.atomic():
        # The one-open-signal constraint makes a concurrent pass's duplicate a no-op.
        EnrollmentSignal.objects.bulk_create(signals, ignore_conflicts=True)
        Enrollment.objects.filter(
            pk__in=[candidate[0] for candidate in candidates],
            status=Enrollment.Status.ACTIVE,
            stuck_at__isnull=True,
        ).update(stuck_at=now)


def _open_stuck_on_current_step() -> Exists:
    return Exists(
        EnrollmentSignal.objects.filter(
            enrollment=OuterRef("pk"),
            kind=EnrollmentSignal.Kind.STUCK,
            step_key=OuterRef("current_step_key"),
            resolved_at__isnull=True,
        )
    )


def _resolve_moved_on(*, signals: QuerySet[EnrollmentSignal], now: datetime) -> int:
    moved_on = signals.filter(kind=EnrollmentSignal.Kind.STUCK, resolved_at__isnull=True).filter(
        ~Q(enrollment__status=Enrollment.Status.ACTIVE) | ~Q(step_key=F("enrollment__current_step_key"))
    )
    return moved_on.update(resolved_at=now)


def _resolve_away(*, signals: QuerySet[EnrollmentSignal], now: datetime) -> int:
    """Open stuck signals of people seen before but not for stuck.AWAY_AFTER: they left."""
    events = Event.objects.filter(end_user_id=OuterRef("enrollment__end_user_id"))
    away = (
        signals.filter(kind=EnrollmentSignal.Kind.STUCK, resolved_at__isnull=True)
        .filter(Exists(events))
        .exclude(Exists(events.filter(timestamp__gte=now - stuck.AWAY_AFTER)))
    )
    return EnrollmentSignal.objects.filter(pk__in=list(away.values_list("pk", flat=True))).update(
        resolved_at=now
    )


def _clear_stuck_at(*, enrollments: QuerySet[Enrollment]) -> None:
    enrollments.filter(stuck_at__isnull=False).exclude(_open_stuck_on_current_step()).update(stuck_at=None)


def stuck_detect(
    *,
    workspace: Workspace,
    now: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> StuckReport:
    """One pass over a workspace: flag enrollments over their step's limit, resolve the moved on.

    Set-based: one grouped count, one read of the step definitions, one streamed read of
    completions for steps judged by p75, and per batch of (path version, step) pairs one query
    returning only the overdue enrollments not yet flagged on this stay. Running it twice records
    nothing new.
    """
    now = now or timezone.now()
    report = StuckReport(workspace=workspace)
    active = Enrollment.objects.filter(workspace=workspace, status=Enrollment.Status.ACTIVE).exclude(
        current_step_key=""
    )
    on_step = {
        (row["path_version_id"], row["current_step_key"]): row["count"]
        for row in active.values("path_version_id", "current_step_key").annotate(count=Count("pk")).order_by()
    }
    report.active = sum(on_step.values())
    limits = _limits(workspace=workspace, on_step=on_step)
    for pair, limit in sorted(limits.items()):
        if not limit.is_judged:
            report.not_judged += on_step[pair]
            report.not_judged_steps.append(limit.describe())
    judged = sorted(pair for pair, limit in limits.items() if limit.is_judged)
    done = report.not_judged
    for start in range(0, len(judged), PAIRS_PER_QUERY):
        batch = judged[start : start + PAIRS_PER_QUERY]
        _flag_overdue(active, batch=batch, limits=limits, now=now, report=report)
        done += sum(on_step[pair] for pair in batch)
        if on_progress:
            on_progress(done, report.active)
    if risk.providers_registered():
        _flag_early(active, judged=judged, limits=limits, now=now, report=report)
    with transaction.atomic():
        signals = EnrollmentSignal.objects.filter(enrollment__workspace=workspace)
        report.resolved = _resolve_moved_on(signals=signals, now=now) + _resolve_away(
            signals=signals, now=now
        )
        _clear_stuck_at(enrollments=Enrollment.objects.filter(workspace=workspace))
    logger.info(
        "stuck.pass.done",
        extra={
            "workspace_id": workspace.pk,
            "active": report.active,
            "flagged": report.flagged,
            "flagged_early": report.flagged_early,
            "away": report.away,
            "resolved": report.resolved,
            "not_judged": report.not_judged,
        },
    )
    return report


def _unflagged(enrollments: QuerySet) -> QuerySet:
    """Those not yet flagged on this stay, with their user's last event time."""
    flagged_this_stay = Exists(
        EnrollmentSignal.objects.filter(
            enrollment=OuterRef("pk"), kind=EnrollmentSignal.Kind.STUCK, step_key=OuterRef("current_step_key")
        ).filter(Q(resolved_at__isnull=True) | Q(created_at__gte=OuterRef("step_entered_at")))
    )
    last_event = (
        Event.objects.filter(end_user_id=OuterRef("end_user_id"))
        .order_by("-timestamp")
        .values("timestamp")[:1]
    )
    return enrollments.exclude(flagged_this_stay).annotate(last_event_at=Subquery(last_event))


def _overdue_rows(active: QuerySet, *, batch: list[tuple[int, str]], limits: dict, now: datetime) -> QuerySet:
    """The active enrollments on the batch's (path version, step) pairs past their limit, not yet
    flagged on this stay, with their user's last event time."""
    overdue = Q()
    for path_version_id, step_key in batch:
        overdue |= Q(
            path_version_id=path_version_id,
            current_step_key=step_key,
            step_entered_at__lt=now - limits[(path_version_id, step_key)].duration,
        )
    return (
        _unflagged(active.filter(overdue))
        .order_by("pk")
        .values_list("pk", "path_version_id", "current_step_key", "step_entered_at", "last_event_at")
    )


def _flag_early(
    active: QuerySet, *, judged: list[tuple[int, str]], limits: dict, now: datetime, report: StuckReport
) -> None:
    """Flag the enrollments past risk.EARLY_FRACTION of their limit (not yet past it) that a risk
    provider judges likely to abandon; up to risk.MAX_SCORED_PER_PASS, longest on their step first."""
    candidates: list[Enrollment] = []
    for start in range(0, len(judged), PAIRS_PER_QUERY):
        early = Q()
        for path_version_id, step_key in judged[start : start + PAIRS_PER_QUERY]:
            limit = limits[(path_version_id, step_key)].duration
            early |= Q(
                path_version_id=path_version_id,
                current_step_key=step_key,
                step_entered_at__lt=now - limit * risk.EARLY_FRACTION,
                step_entered_at__gte=now - limit,
            )
        rows = _unflagged(active.filter(early)).select_related("end_user").order_by("step_entered_at", "pk")
        candidates += rows[: risk.MAX_SCORED_PER_PASS - len(candidates)]
        if len(candidates) >= risk.MAX_SCORED_PER_PASS:
            break
    candidates = [each for each in candidates if not stuck.is_away(last_event_at=each.last_event_at, now=now)]
    scored = risk.risks(workspace_id=report.workspace.pk, enrollments=candidates, now=now)
    high = [each for each in candidates if risk.is_high(scored.get(each.pk))]
    reasons = {
        each.pk: risk.early_reason(
            step_key=each.current_step_key,
            risk=scored[each.pk],
            limit=limits[(each.path_version_id, each.current_step_key)],
        )
        for each in high
    }
    rows = [(each.pk, each.path_version_id, each.current_step_key, each.step_entered_at) for each in high]
    for start in range(0, len(rows), CHUNK_SIZE):
        _flag(candidates=rows[start : start + CHUNK_SIZE], limits=limits, now=now, reasons=reasons)
    report.flagged += len(high)
    report.flagged_early += len(high)


def _flag_overdue(
    active: QuerySet, *, batch: list[tuple[int, str]], limits: dict, now: datetime, report: StuckReport
) -> None:
    """Flag the batch's overdue enrollments, CHUNK_SIZE at a time; those whose user went away
    are counted, not flagged."""
    candidates: list[tuple[int, int, str, datetime]] = []
    rows = _overdue_rows(active, batch=batch, limits=limits, now=now)
    for *row, last_event_at in rows.iterator(chunk_size=CHUNK_SIZE):
        if stuck.is_away(last_event_at=last_event_at, now=now):
            report.away += 1
            continue
        candidates.append(tuple(row))
        if len(candidates) == CHUNK_SIZE:
            _flag(candidates=candidates, limits=limits, now=now)
            report.flagged += len(candidates)
            candidates = []
    if candidates:
        _flag(candidates=candidates, limits=limits, now=now)
        report.flagged += len(candidates)


@transaction.atomic
def stuck_signals_resolve(*, enrollment: Enrollment, now: datetime | None = None) -> int:
    """Close the enrollment's stuck signals for steps it has left; the progress engine calls this
    after changing the current step (the periodic pass also catches any it missed)."""
    now = now or timezone.now()
    signals = EnrollmentSignal.objects.filter(
        enrollment=enrollment, kind=EnrollmentSignal.Kind.STUCK, resolved_at__isnull=True
    )
    if enrollment.status == Enrollment.Status.ACTIVE:
        signals = signals.exclude(step_key=enrollment.current_step_key)
    resolved = signals.update(resolved_at=now)
    if enrollment.stuck_at is not None:
        still_stuck = (
            enrollment.status == Enrollment.Status.ACTIVE
            and EnrollmentSignal.objects.filter(
                enrollment=enrollment,
                kind=EnrollmentSignal.Kind.STUCK,
                step_key=enrollment.current_step_key,
                resolved_at__isnull=True,
            ).exists()
        )
        if not still_stuck:
            Enrollment.objects.filter(pk=enrollment.pk).update(stuck_at=None)
            enrollment.stuck_at = None
    return resolved


@transaction.atomic
def signals_resolve(*, signals: QuerySet[EnrollmentSignal], now: datetime | None = None) -> int:
    """Mark signals handled (the admin action). A resolved stuck signal is not raised again
    until the user moves to another step."""
    now = now or timezone.now()
    open_signals = signals.filter(resolved_at__isnull=True)
    enrollment_ids = list(open_signals.values_list("enrollment_id", flat=True).distinct())
    resolved = open_signals.update(resolved_at=now)
    _clear_stuck_at(enrollments=Enrollment.objects.filter(pk__in=enrollment_ids))
    return resolved


def needs_review_flag(*, enrollment: Enrollment, step_key: str, reason: str) -> EnrollmentSignal:
    """Ask a human to look at a step the engine could not decide (an ambiguous answer, say).

    One open flag per (enrollment, step): flagging again returns the open one unchanged.
    """
    open_flag = EnrollmentSignal.objects.filter(
        enrollment=enrollment,
        kind=EnrollmentSignal.Kind.NEEDS_REVIEW,
        step_key=step_key,
        resolved_at__isnull=True,
    )
    existing = open_flag.first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            signal = EnrollmentSignal.objects.create(
                enrollment=enrollment,
                kind=EnrollmentSignal.Kind.NEEDS_REVIEW,
                step_key=step_key,
                reason=reason,
            )
    except IntegrityError:
        return open_flag.get()  # a concurrent call flagged it first
    logger.info("enrollment.needs_review", extra={"enrollment_id": enrollment.pk, "step_key": step_key})
    return signal
