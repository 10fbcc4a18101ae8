"""From a person's profile and behaviour counters to their raw features: the one function both
training (ml/training/datasets.py, as of a past moment) and serving (ml/features/store.py, now)
call, so the two cannot disagree on what a feature means.

Sessions: a run of events less than SESSION_GAP apart; its length runs from its first event to
its last. The engagement score (0-100) weighs four signs of a person using the product, each
capped so that no single one dominates:

    35 x min(1, ln(1 + events in the last 7 days) / ln(1 + 50))
  + 25 x min(1, active days of the last 7 / 5)
  + 20 x min(1, sessions / 10)
  + 20 x min(1, steps completed / 5)

so 50 events over 5 days in 10 sessions with 5 steps done scores 100, and nobody scores below 0.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

SESSION_GAP = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Profile:
    persona: str = ""
    signup_source: str = ""
    company_size: str = ""
    use_case: str = ""
    signed_up_at: datetime | None = None


@dataclass(slots=True)
class Behaviour:
    """A person's counters: real-time ones (from ingestion) and daily-derived ones."""

    event_count: int = 0
    session_count: int = 0
    session_seconds: float = 0.0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    steps_completed: int = 0
    events_7d: int = 0
    active_days_7d: int = 0
    extra: dict = field(default_factory=dict)


def engagement_score(
    *, events_7d: int, active_days_7d: int, session_count: int, steps_completed: int
) -> float:
    score = (
        35 * min(1.0, math.log1p(max(events_7d, 0)) / math.log1p(50))
        + 25 * min(1.0, max(active_days_7d, 0) / 5)
        + 20 * min(1.0, max(session_count, 0) / 10)
        + 20 * min(1.0, max(steps_completed, 0) / 5)
    )
    return round(score, 2)


def _hours(later: datetime, earlier: datetime | None) -> float | None:
    if earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds() / 3600)


def features_of(profile: Profile, behaviour: Behaviour, now: datetime) -> dict:
    """The raw user features (ml/features/schema.USER_FEATURES) at `now`."""
    sessions = behaviour.session_count
    return {
        "persona": profile.persona,
        "signup_source": profile.signup_source,
        "company_size": profile.company_size,
        "use_case": profile.use_case,
        "engagement_score": engagement_score(
            events_7d=behaviour.events_7d,
            active_days_7d=behaviour.active_days_7d,
            session_count=sessions,
            steps_completed=behaviour.steps_completed,
        ),
        "hours_since_signup": _hours(now, profile.signed_up_at),
        "steps_completed": behaviour.steps_completed,
        "session_count": sessions,
        "avg_session_minutes": round(behaviour.session_seconds / sessions / 60, 3) if sessions else 0.0,
        "events_7d": behaviour.events_7d,
        "hours_since_last_event": _hours(now, behaviour.last_event_at),
    }


def behaviour_of(moments: Iterable[datetime], *, now: datetime, steps_completed: int = 0) -> Behaviour:
    """A person's counters from their event times up to `now` (PostgreSQL's recomputation, and
    training's as-of view): the same session rule the real-time store applies event by event."""
    ordered = sorted(moment for moment in moments if moment <= now)
    behaviour = Behaviour(steps_completed=steps_completed)
    if not ordered:
        return behaviour
    week_ago = now - timedelta(days=7)
    days = set()
    previous = None
    for moment in ordered:
        if previous is None or moment - previous >= SESSION_GAP:
            behaviour.session_count += 1
        else:
            behaviour.session_seconds += (moment - previous).total_seconds()
        if moment >= week_ago:
            behaviour.events_7d += 1
            days.add(moment.date())
        previous = moment
    behaviour.event_count = len(ordered)
    behaviour.first_event_at, behaviour.last_event_at = ordered[0], ordered[-1]
    behaviour.active_days_7d = len(days)
    return behaviour
