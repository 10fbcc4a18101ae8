"""Abuse detection: bursts far over an API key's own baseline, repeated invalid payloads, rate
limits reached, and identify storms on one end user. A periodic pass (guardrails.jobs, every
minute; `manage.py detect_abuse` runs one) reads the per-minute counters ingestion keeps in the
same Redis call as its rate limit (guardrails.abuse.counters), so the request path does no more.

Thresholds, per API key, judged on the last RECENT_MINUTES complete minutes:

* event_rate: a minute's events exceed BURST_RATIO (10) times the key's baseline and at least
  EVENT_BURST_FLOOR_PER_MINUTE (3,000 = 50/s). The baseline is the 95th percentile of the key's
  per-minute counts over the BASELINE_MINUTES (60) before, silent minutes counting as 0: one
  earlier spike does not raise it, and a client that uploads in bulk every few minutes does not
  look like an attack. A key with no history has a baseline of 0, so only the floor applies.
* identify_rate: the same rule on identify calls, floor IDENTIFY_BURST_FLOOR_PER_MINUTE (600).
* invalid_payloads: at least INVALID_FLOOR (100) events rejected as invalid in the recent
  minutes, and at least INVALID_SHARE (20%) of what the key sent.
* rate_limited: the key had events refused by its rate limit in the recent minutes.

Per end user: more than USER_IDENTIFIES_PER_MINUTE (30) identify calls for one user in one minute,
read from the events table with one grouped query per workspace whose keys sent that many
identifies in a recent minute at all. That flag names the end user, which stops their nudges.

Flags keep the rates and the baseline in `detail`, never payloads. If the counters cannot be
read, the pass logs, counts the detector as unavailable, and flags nothing.
"""

import logging
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from django.db.models import Count
from django.db.models.functions import TruncMinute

from guardrails.abuse import ratelimit
from guardrails.abuse.counters import MinuteCounts
from guardrails.abuse.flags import abuse_flag_record
from guardrails.models import AbuseFlag
from onboarding.models import Event
from tenancy.models import ApiKey, EndUser, Workspace

logger = logging.getLogger(__name__)

RECENT_MINUTES = 5
BASELINE_MINUTES = 60
BURST_RATIO = 10.0
EVENT_BURST_FLOOR_PER_MINUTE = 3_000
IDENTIFY_BURST_FLOOR_PER_MINUTE = 600
INVALID_FLOOR = 100
INVALID_SHARE = 0.2
USER_IDENTIFIES_PER_MINUTE = 30


# --- Judgements (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Burst:
    peak_per_minute: int
    baseline_per_minute: float
    peak_minute_index: int  # position in the recent minutes


def baseline(history: Sequence[int]) -> float:
    """The 95th percentile of the per-minute counts (0 without history)."""
    if not history:
        return 0.0
    if len(history) == 1:
        return float(history[0])
    return statistics.quantiles(history, n=20, method="inclusive")[-1]


def burst_over_baseline(*, recent: Sequence[int], history: Sequence[int], floor: int) -> Burst | None:
    """The recent minute with the most calls, when it is a burst by the rule above."""
    if not recent:
        return None
    peak_index = max(range(len(recent)), key=lambda index: recent[index])
    peak = recent[peak_index]
    usual = baseline(history)
    if peak >= floor and peak > BURST_RATIO * usual:
        return Burst(peak_per_minute=peak, baseline_per_minute=usual, peak_minute_index=peak_index)
    return None


def invalid_payloads(recent: Sequence[MinuteCounts]) -> dict | None:
    invalid = sum(minute.invalid for minute in recent)
    sent = sum(minute.events for minute in recent)
    if invalid >= INVALID_FLOOR and invalid >= INVALID_SHARE * max(sent, 1):
        return {"invalid_events": invalid, "events": sent, "invalid_share": round(invalid / max(sent, 1), 3)}
    return None


# --- The pass ----------------------------------------------------------------------------------


@dataclass
class DetectionReport:
    api_keys: int = 0
    flagged: Counter = field(default_factory=Counter)
    unavailable: bool = False


def _minute_start(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=UTC)


def _burst_detail(burst: Burst, *, recent_minutes: list[int], floor: int, unit: str) -> dict:
    ratio = burst.peak_per_minute / burst.baseline_per_minute if burst.baseline_per_minute else None
    return {
        f"peak_{unit}_per_minute": burst.peak_per_minute,
        f"baseline_{unit}_per_minute": round(burst.baseline_per_minute, 2),
        "ratio": round(ratio, 1) if ratio is not None else None,
        "threshold_ratio": BURST_RATIO,
        "floor_per_minute": floor,
        "minute": _minute_start(recent_minutes[burst.peak_minute_index]).isoformat(),
        "baseline_minutes": BASELINE_MINUTES,
    }


def _judge_key(
    *, api_key: ApiKey, counts: list[MinuteCounts], recent_minutes: list[int], report: DetectionReport
) -> None:
    history, recent = counts[:BASELINE_MINUTES], counts[BASELINE_MINUTES:]
    window = {"recent_minutes": RECENT_MINUTES, "since": _minute_start(recent_minutes[0]).isoformat()}
    findings: list[tuple[str, dict]] = []
    for kind, unit, floor in (
        (AbuseFlag.Kind.EVENT_RATE, "events", EVENT_BURST_FLOOR_PER_MINUTE),
        (AbuseFlag.Kind.IDENTIFY_RATE, "identifies", IDENTIFY_BURST_FLOOR_PER_MINUTE),
    ):
        burst = burst_over_baseline(
            recent=[getattr(minute, unit) for minute in recent],
            history=[getattr(minute, unit) for minute in history],
            floor=floor,
        )
        if burst:
            detail = _burst_detail(burst, recent_minutes=recent_minutes, floor=floor, unit=unit)
            findings.append((kind, detail))
    invalid = invalid_payloads(recent)
    if invalid:
        findings.append(
            (
                AbuseFlag.Kind.INVALID_PAYLOADS,
                {**invalid, "floor": INVALID_FLOOR, "share_threshold": INVALID_SHARE},
            )
        )
    refused = sum(minute.limited for minute in recent)
    if refused:
        limits = ratelimit.limits_for(api_key)
        findings.append(
            (
                AbuseFlag.Kind.RATE_LIMITED,
                {
                    "refused_events": refused,
                    "events": sum(minute.events for minute in recent),
                    "limit_events_per_second": limits.events_per_second,
                    "limit_identifies_per_second": limits.identifies_per_second,
                },
            )
        )
    for kind, detail in findings:
        flag = abuse_flag_record(
            workspace=api_key.workspace, api_key=api_key, kind=kind, detail={**detail, **window}
        )
        if flag is not None:
            report.flagged[kind] += 1


def _identify_storms(*, workspace: Workspace, since: datetime, until: datetime) -> dict[int, int]:
    """Each end user's most identify calls in one minute, for those over the threshold."""
    # name="" (identify events have no name) lets the (workspace, name, timestamp) index serve it.
    rows = (
        Event.objects.filter(
            workspace=workspace, name="", type=Event.Type.IDENTIFY, timestamp__gte=since, timestamp__lt=until
        )
        .annotate(minute=TruncMinute("timestamp"))
        .values("end_user_id", "minute")
        .annotate(calls=Count("pk"))
        .filter(calls__gt=USER_IDENTIFIES_PER_MINUTE)
    )
    peaks: dict[int, int] = {}
    for row in rows:
        peaks[row["end_user_id"]] = max(peaks.get(row["end_user_id"], 0), row["calls"])
    return peaks


def _judge_end_users(*, workspace: Workspace, recent_minutes: list[int], report: DetectionReport) -> None:
    since, until = _minute_start(recent_minutes[0]), _minute_start(recent_minutes[-1] + 1)
    peaks = _identify_storms(workspace=workspace, since=since, until=until)
    for end_user in EndUser.objects.filter(workspace=workspace, pk__in=list(peaks)):
        flag = abuse_flag_record(
            workspace=workspace,
            end_user=end_user,
            kind=AbuseFlag.Kind.IDENTIFY_RATE,
            detail={
                "scope": "end_user",
                "peak_identifies_per_minute": peaks[end_user.pk],
                "threshold_per_minute": USER_IDENTIFIES_PER_MINUTE,
                "recent_minutes": RECENT_MINUTES,
                "since": since.isoformat(),
            },
        )
        if flag is not None:
            report.flagged["identify_rate_end_user"] += 1


def abuse_detect(*, minute: int | None = None) -> DetectionReport:
    """One pass over every API key active in the recent minutes (before `minute`, default now)."""
    current = ratelimit.current_minute() if minute is None else minute
    recent_minutes = list(range(current - RECENT_MINUTES, current))
    history_minutes = list(range(recent_minutes[0] - BASELINE_MINUTES, recent_minutes[0]))
    report = DetectionReport()
    store = ratelimit.counters()
    try:
        active = sorted(store.active_key_ids(minutes=recent_minutes))
        counts = store.minute_counts(api_key_ids=active, minutes=history_minutes + recent_minutes)
    except redis.RedisError as error:
        ratelimit.detector_unavailable(component="detector", error=error)
        report.unavailable = True
        return report
    # Identifies per workspace and recent minute, all its keys together: no user of a workspace
    # can be over the per-user threshold in a minute when the whole workspace was not.
    identifies_by_workspace: dict[int, list[int]] = defaultdict(lambda: [0] * RECENT_MINUTES)
    for api_key in ApiKey.objects.filter(pk__in=active).select_related("workspace").order_by("pk"):
        report.api_keys += 1
        key_counts = counts[api_key.pk]
        _judge_key(api_key=api_key, counts=key_counts, recent_minutes=recent_minutes, report=report)
        for index, minute_counts in enumerate(key_counts[BASELINE_MINUTES:]):
            identifies_by_workspace[api_key.workspace_id][index] += minute_counts.identifies
    candidates = [
        pk
        for pk, per_minute in identifies_by_workspace.items()
        if max(per_minute) > USER_IDENTIFIES_PER_MINUTE
    ]
    for workspace in Workspace.objects.filter(pk__in=candidates).order_by("pk"):
        _judge_end_users(workspace=workspace, recent_minutes=recent_minutes, report=report)
    logger.info(
        "guardrails.abuse.detection.detected",
        extra={"api_keys": report.api_keys, "flagged": dict(report.flagged), "minute": current},
    )
    return report
