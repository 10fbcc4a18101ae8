"""Stuck detection, the engine: when is time on a step too long, and how to say why.

Plain functions over plain values; `onboarding.stuck.services.stuck_detect` feeds them rows
and writes the signals. A step's limit is its expected duration when it has one, else the p75 of
how long this path version's users took to complete it, judged only on enough completions.

Stuck means over that limit and still around: a person whose last event is more than AWAY_AFTER
old has left, and the inactivity and re-engagement triggers are for them; a stuck list counting
everyone who ever dropped out (93% of the demo's active enrollments) says nothing. A person with
no event at all (progress written through the API only) is judged on time alone.
"""

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_SAMPLE = 20
AWAY_AFTER = timedelta(days=7)
"""Without any event for this long, a person over a step's limit is away, not stuck."""
"""Completions of a step needed before its p75 is trusted; below this the step is not judged."""


@dataclass(frozen=True)
class Limit:
    """How long a step may take before an enrollment on it counts as stuck."""

    step_key: str
    duration: timedelta | None
    source: str  # "expected", "p75", or "too_few" (not judged)
    sample_size: int = 0

    @property
    def is_judged(self) -> bool:
        return self.duration is not None

    def describe(self) -> str:
        if self.source == "expected":
            return f"expected {format_duration(self.duration)}"
        if self.source == "p75":
            return f"p75 {format_duration(self.duration)} over {self.sample_size} completions"
        return (
            f"'{self.step_key}' not judged: no expected duration and {self.sample_size} "
            f"completion(s), {MIN_SAMPLE} needed for a p75"
        )


def format_duration(duration: timedelta) -> str:
    """The two largest units: "3 days 4 h", "1 day", "2 h 10 min", "45 min", "less than 1 min"."""
    minutes = int(duration.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if days:
        parts.append(f"{days} day" + ("s" if days > 1 else ""))
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    return " ".join(parts[:2]) or "less than 1 min"


def percentile_75(seconds: list[float]) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont, numpy's default)."""
    if len(seconds) == 1:
        return seconds[0]
    return statistics.quantiles(seconds, n=4, method="inclusive")[2]


def step_limit(*, step_key: str, expected_duration: timedelta | None, samples: list[float]) -> Limit:
    if expected_duration is not None:
        return Limit(step_key=step_key, duration=expected_duration, source="expected")
    if len(samples) < MIN_SAMPLE:
        return Limit(step_key=step_key, duration=None, source="too_few", sample_size=len(samples))
    return Limit(
        step_key=step_key,
        duration=timedelta(seconds=percentile_75(samples)),
        source="p75",
        sample_size=len(samples),
    )


def completion_durations(
    rows: Iterable[tuple[int, int, datetime, str, bool, datetime]],
    *,
    wanted: set[tuple[int, str]],
) -> dict[tuple[int, str], list[float]]:
    """Seconds each step took, per (path version id, step key) in `wanted`.

    `rows`: (path_version_id, enrollment_id, enrolled_at, step_key, is_skip, completed_at), ordered
    by enrollment then completed_at, reverted completions left out. A step's clock starts when it
    became current: the enrollment's previous completion (skips included), else its enrollment.
    Skips end a step but are not samples of how long completing it takes.
    """
    durations: dict[tuple[int, str], list[float]] = defaultdict(list)
    current_enrollment, anchor = None, None
    for path_version_id, enrollment_id, enrolled_at, step_key, is_skip, completed_at in rows:
        if enrollment_id != current_enrollment:
            current_enrollment, anchor = enrollment_id, enrolled_at
        if not is_skip and (path_version_id, step_key) in wanted:
            durations[(path_version_id, step_key)].append(max((completed_at - anchor).total_seconds(), 0.0))
        anchor = max(anchor, completed_at)
    return durations


def is_away(*, last_event_at: datetime | None, now: datetime) -> bool:
    return last_event_at is not None and now - last_event_at > AWAY_AFTER


def stuck_reason(*, step_key: str, time_on_step: timedelta, limit: Limit) -> str:
    """The decision trace shown in the admin: "on 'invite' for 3 days 4 h; expected 1 day"."""
    return f"on '{step_key}' for {format_duration(time_on_step)}; {limit.describe()}"
