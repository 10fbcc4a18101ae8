"""One simulated person's onboarding on the path chosen for them: their events, step completions,
enrolment state at the end of the simulation and the nudges sent to them. Pure, drawn from the
person's own generator, so the same person on the same path lives the same journey.

Timeline: an earlier anonymous visit for some (more likely for the engaged), a sign-up session
ending with "Signed Up" at sign-up time, the path decision DECISION_DELAY later (features are
taken then, from the events before it). Activation is drawn first from the ground truth
(world.true_activation_probability), with a uniform number drawn before anything else, so the
same person activates on a better path whenever they activate on a worse one. Steps take an
exponential time (longer for integration steps, shorter for the engaged), each completed in a
session of filler "Page Viewed" events ending with the step's event. Whoever does not activate
stops at a step drawn from world.abandon_weights; after at most one short session there they are
never seen again, and are "abandoned" once ABANDONED_AFTER has passed. Nothing after `end` exists.
"""

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from ml.simulation import world

DECISION_DELAY = timedelta(seconds=2)
ABANDONED_AFTER = timedelta(days=7)
STEP_HOURS = 5.0
INTEGRATION_STEP_HOURS = 12.0
OPTIONAL_STEP_SHARE = 0.3
NUDGE_SHARE = 0.5
PAGE_VIEWED = "Page Viewed"
SIGNED_UP = "Signed Up"

ACTIVE, COMPLETED, ABANDONED = "active", "completed", "abandoned"


@dataclass(frozen=True, slots=True)
class SimulatedNudge:
    channel: str
    sent_at: datetime
    local_hour: int
    target_step_key: str
    converted_at: datetime | None


@dataclass(slots=True)
class Journey:
    decided_at: datetime
    activated: bool  # drawn; completed only if it happened before the end
    stop_step_key: str  # where a non-activator stops ("" for an activator)
    events: list[tuple[datetime, str]] = field(default_factory=list)
    completions: list[tuple[str, datetime]] = field(default_factory=list)
    status: str = ACTIVE
    current_step_key: str = ""
    step_entered_at: datetime | None = None
    completed_at: datetime | None = None
    nudges: list[SimulatedNudge] = field(default_factory=list)

    def times_before_decision(self) -> list[datetime]:
        return [moment for moment, _ in self.events if moment <= self.decided_at]


@lru_cache(maxsize=64)
def zone_of(name: str) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


def _poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _session(rng: random.Random, ending: datetime, name: str, fillers: int) -> list[tuple[datetime, str]]:
    """Filler page views a minute or a few apart, then `name` at `ending`."""
    events, moment = [(ending, name)], ending
    for _ in range(fillers):
        moment -= timedelta(seconds=rng.randint(40, 240))
        events.append((moment, PAGE_VIEWED))
    return events


def _before_decision(rng: random.Random, person: world.Person) -> list[tuple[datetime, str]]:
    z = person.engagement
    events = []
    if rng.random() < min(0.9, max(0.05, 0.35 + 0.15 * z)):
        visit = person.signed_up_at - timedelta(seconds=rng.randint(86400, 5 * 86400))
        events += _session(rng, visit, PAGE_VIEWED, _poisson(rng, 1.0 * math.exp(0.4 * z)))
    events += _session(rng, person.signed_up_at, SIGNED_UP, _poisson(rng, 0.8 * math.exp(0.4 * z)))
    return events


def _step_hours(rng: random.Random, step_key: str, engagement: float) -> float:
    mean = INTEGRATION_STEP_HOURS if world.is_integration_step(step_key) else STEP_HOURS
    return max(0.05, rng.expovariate(1 / mean) * math.exp(-0.3 * engagement))


def _walk(rng: random.Random, person: world.Person, path_key: str, journey: Journey) -> None:
    """Completions and events along the path, before truncation at the end."""
    z, moment = person.engagement, journey.decided_at
    for key, event_name, optional in world.PATH_STEPS[path_key]:
        if key == journey.stop_step_key:
            if rng.random() < 0.5:
                last_seen = moment + timedelta(hours=rng.uniform(0.5, 24))
                journey.events += _session(rng, last_seen, PAGE_VIEWED, _poisson(rng, 0.5))
            return
        if optional and (not journey.activated or rng.random() >= OPTIONAL_STEP_SHARE):
            continue
        moment += timedelta(hours=_step_hours(rng, key, z))
        moment = moment.replace(microsecond=0)
        journey.completions.append((key, moment))
        journey.events += _session(rng, moment, event_name, _poisson(rng, 0.6 * math.exp(0.4 * z)))


def _settle(journey: Journey, path_key: str, end: datetime) -> None:
    """The enrolment's state at `end`: what happened after it is cut."""
    journey.events = sorted(item for item in journey.events if item[0] <= end)
    journey.completions = [item for item in journey.completions if item[1] <= end]
    done = {key: moment for key, moment in journey.completions}
    required = world.required_steps(path_key)
    journey.step_entered_at = max([journey.decided_at, *done.values()])
    current = next((key for key in required if key not in done), None)
    if current is None:
        journey.status, journey.current_step_key = COMPLETED, ""
        journey.completed_at = max(done[key] for key in required)
        return
    journey.current_step_key = current
    stalled = current == journey.stop_step_key and end - journey.step_entered_at > ABANDONED_AFTER
    journey.status = ABANDONED if stalled else ACTIVE


def _step_at(journey: Journey, path_key: str, moment: datetime) -> str:
    done = {key for key, at in journey.completions if at <= moment}
    return next((key for key in world.required_steps(path_key) if key not in done), "")


def _nudges(rng: random.Random, person: world.Person, journey: Journey, path_key: str, end: datetime):
    """Sends at uniformly drawn local hours in the first days; conversions from the ground truth."""
    if rng.random() >= NUDGE_SHARE:
        return
    zone = zone_of(person.traits.get("timezone", ""))
    first_day = journey.decided_at.astimezone(zone).date()
    for _ in range(rng.randint(1, 2)):
        channel = world.draw_channel(rng)
        day = first_day + timedelta(days=rng.randint(0, 3))
        wall = time(rng.randint(0, 23), rng.randint(0, 59))
        sent_at = datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)
        if sent_at < journey.decided_at:
            sent_at += timedelta(days=1)
        target = _step_at(journey, path_key, sent_at)
        draw, delay = rng.random(), timedelta(seconds=rng.randint(120, 4 * 3600))
        if sent_at > end or not target:
            continue
        local_hour = sent_at.astimezone(zone).hour
        converts = draw < world.true_nudge_conversion_probability(channel, local_hour)
        converted_at = sent_at + delay if converts and sent_at + delay <= end else None
        journey.nudges.append(SimulatedNudge(channel, sent_at, local_hour, target, converted_at))


def opening(person: world.Person, *, seed: int) -> tuple[random.Random, float, float, list]:
    """What is drawn before the path matters: (the generator, the activation draw, the stop draw,
    the events before the decision). The simulated A/B reads the first and the last of these."""
    rng = world.person_rng(seed, person.index, "journey")
    activation_draw, stop_draw = rng.random(), rng.random()
    return rng, activation_draw, stop_draw, _before_decision(rng, person)


def journey_of(person: world.Person, path_key: str, *, seed: int, end: datetime) -> Journey:
    """`person`'s journey on `path_key`, as it stands at `end`."""
    rng, activation_draw, stop_draw, before = opening(person, seed=seed)
    activated = activation_draw < world.true_activation_probability(
        person.traits, path_key, person.engagement
    )
    stop_step_key = ""
    if not activated:
        required = world.required_steps(path_key)
        weights = world.abandon_weights(person.traits, path_key)
        stop_step_key = _pick(required, weights, stop_draw)
    journey = Journey(
        decided_at=person.signed_up_at + DECISION_DELAY, activated=activated, stop_step_key=stop_step_key
    )
    journey.events = before
    _walk(rng, person, path_key, journey)
    _settle(journey, path_key, end)
    _nudges(rng, person, journey, path_key, end)
    return journey


def _pick(keys: list[str], weights: list[float], draw: float) -> str:
    """The key where `draw` (uniform in [0, 1)) falls on the cumulated weights."""
    total, cumulated = sum(weights), 0.0
    for key, weight in zip(keys, weights, strict=True):
        cumulated += weight / total
        if draw < cumulated:
            return key
    return keys[-1]
