"""The simulated world's people and its ground truth, with effects planted for the models to find.

Pure (no database): the writer (writer.py) turns its people and journeys into rows, the simulated
A/B (ab.py) draws outcomes from the same truth. People's traits follow the demo population's
weights (onboarding/demo/population.py); each person is drawn from their own seeded generator, so
person i is the same whatever the number of people.

Paths (writer.paths_document): `get-started` (default, no audience), `developer-setup` (personas
developer and data_analyst, priority 10) and `analyst-insights` (persona data_analyst, priority 5).
The rules (paths.planner.choose_by_rules) put every analyst on developer-setup, yet analyst-insights
is eligible for them (paths.planner.eligible_versions): analysts have three eligible paths,
developers two, everyone else one.

Planted effects:

* Path. Activation (all required steps done) has probability
  BASE_ACTIVATION x SOURCE_EFFECT[signup source] x exp(ENGAGEMENT_EFFECT z - ENGAGEMENT_EFFECT^2 / 2)
  where z ~ N(0, 1) is the person's latent engagement (mean multiplier 1; about 0.37 overall).
  Data analysts get x1.4 on analyst-insights and x0.7 on any other path: twice as often (0.53 vs
  0.27) on the path built for them as on the one the rules give them. Everyone else is indifferent.
* Stuck. Whoever does not activate stops at one required step, drawn with weight
  INTEGRATION_ABANDON_WEIGHT for an integration step (key containing "integration") if the
  company size is "1-10", weight 1 otherwise: on developer-setup, 80% of small companies' stops
  are at connect-integration against 33% for others (hazard there about 0.5 vs 0.26). Abandoners
  show lower engagement before: fewer filler events per session, at most one short session on the
  step they stop at, and a lower z on average (z drives activation).
* Nudges. A send converts with probability
  CHANNEL_CONVERSION[channel] x (HOUR_FLOOR + (1 - HOUR_FLOOR) x exp(-d^2 / (2 x HOUR_SPREAD^2)))
  with d the circular distance in hours between the send's local hour and BEST_HOUR (10:00 in the
  person's time zone, every channel): 0.22 for an email at 10:00, 0.066 at 22:00; in-app 0.30,
  push 0.16, sms 0.12 at best.
"""

import bisect
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from onboarding.demo.population import COMPANY_SIZES, LOCALES, PERSONAS, SIGNUP_SOURCES, USE_CASES

GET_STARTED = "get-started"
DEVELOPER_SETUP = "developer-setup"
ANALYST_INSIGHTS = "analyst-insights"

# (step key, event that completes it, optional), in order; the demo's paths.json for the first two.
PATH_STEPS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    GET_STARTED: (
        ("create-project", "Project Created", False),
        ("invite-teammate", "Teammate Invited", False),
        ("view-report", "Report Viewed", False),
        ("share-dashboard", "Dashboard Shared", True),
    ),
    DEVELOPER_SETUP: (
        ("create-project", "Project Created", False),
        ("connect-integration", "Integration Connected", False),
        ("view-report", "Report Viewed", False),
        ("invite-teammate", "Teammate Invited", True),
    ),
    ANALYST_INSIGHTS: (
        ("connect-integration", "Integration Connected", False),
        ("build-query", "Query Run", False),
        ("view-report", "Report Viewed", False),
        ("share-dashboard", "Dashboard Shared", True),
    ),
}

ANALYST = "data_analyst"
SMALL_COMPANY = "1-10"
BASE_ACTIVATION = 0.38
SOURCE_EFFECT = {
    "referral": 1.15,
    "partner": 1.1,
    "direct": 1.05,
    "organic_search": 1.0,
    "social": 0.95,
    "paid_search": 0.9,
    "product_hunt": 0.85,
}
ENGAGEMENT_EFFECT = 0.25
ANALYST_ON_THEIR_PATH = 1.4
ANALYST_ELSEWHERE = 0.7
INTEGRATION_ABANDON_WEIGHT = 8.0

CHANNEL_CONVERSION = {"email": 0.22, "in_app": 0.30, "push": 0.16, "sms": 0.12}
CHANNEL_SHARE = {"email": 40, "in_app": 30, "push": 20, "sms": 10}
BEST_HOUR = 10
HOUR_FLOOR = 0.3
HOUR_SPREAD = 2.0
LOCALE_WEIGHTS = {str(index): row[3] for index, row in enumerate(LOCALES)}


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    external_id: str
    traits: dict[str, str]  # persona, signup_source, company_size, use_case, locale, timezone
    engagement: float  # latent z ~ N(0, 1)
    signed_up_at: datetime
    policy_draws: tuple[float, float]  # the logging policy's: explore or not, which eligible path


def person_rng(seed: int, index: int, purpose: str = "") -> random.Random:
    """Person `index`'s own generator: the same person whatever the population's size."""
    return random.Random(f"{seed}:{index}:{purpose}")


@lru_cache(maxsize=32)
def _cumulated(items: tuple[tuple[str, float], ...]) -> tuple[list[str], list[float]]:
    keys, total, cumulated = [], 0.0, []
    for key, weight in items:
        keys.append(key)
        total += weight
        cumulated.append(total)
    return keys, cumulated


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    keys, cumulated = _cumulated(tuple(weights.items()))
    return keys[bisect.bisect(cumulated, rng.random() * cumulated[-1])]


def draw_person(*, seed: int, index: int, start: datetime, days: float, prefix: str = "sim") -> Person:
    """Person `index`: traits with the demo's weights, signed up uniformly over the days."""
    rng = person_rng(seed, index)
    locale, timezone, _, _ = LOCALES[int(_weighted(rng, LOCALE_WEIGHTS))]
    traits = {
        "persona": _weighted(rng, PERSONAS),
        "signup_source": _weighted(rng, SIGNUP_SOURCES),
        "company_size": _weighted(rng, COMPANY_SIZES),
        "use_case": _weighted(rng, USE_CASES),
        "locale": locale,
        "timezone": timezone,
    }
    seconds = int(rng.random() * days * 86400)
    return Person(
        index=index,
        external_id=f"{prefix}{seed}-{index:06d}",
        traits=traits,
        engagement=rng.gauss(0.0, 1.0),
        signed_up_at=start + timedelta(seconds=seconds),
        policy_draws=(rng.random(), rng.random()),
    )


def true_activation_probability(traits: dict, path_key: str, engagement: float = 0.0) -> float:
    """The probability that this person completes `path_key`'s required steps (see the docstring)."""
    probability = BASE_ACTIVATION * SOURCE_EFFECT.get(traits.get("signup_source", ""), 1.0)
    probability *= math.exp(ENGAGEMENT_EFFECT * engagement - ENGAGEMENT_EFFECT**2 / 2)
    if traits.get("persona") == ANALYST:
        probability *= ANALYST_ON_THEIR_PATH if path_key == ANALYST_INSIGHTS else ANALYST_ELSEWHERE
    return min(0.95, max(0.02, probability))


def is_integration_step(step_key: str) -> bool:
    return "integration" in step_key


def required_steps(path_key: str) -> list[str]:
    return [key for key, _, optional in PATH_STEPS[path_key] if not optional]


def abandon_weights(traits: dict, path_key: str) -> list[float]:
    """Given that the person does not activate, the weight of stopping at each required step."""
    small = traits.get("company_size") == SMALL_COMPANY
    return [
        INTEGRATION_ABANDON_WEIGHT if small and is_integration_step(key) else 1.0
        for key in required_steps(path_key)
    ]


def step_abandon_share(traits: dict, path_key: str, engagement: float = 0.0) -> dict[str, float]:
    """The true probability of stopping at each required step, for those who reach it (hazard)."""
    failing = 1 - true_activation_probability(traits, path_key, engagement)
    weights = abandon_weights(traits, path_key)
    total = sum(weights)
    reached, hazards = 1.0, {}
    for key, weight in zip(required_steps(path_key), weights, strict=True):
        stop = failing * weight / total
        hazards[key] = stop / reached if reached > 0 else 0.0
        reached -= stop
    return hazards


def _hour_distance(hour: float, best: float) -> float:
    distance = abs(hour - best) % 24
    return min(distance, 24 - distance)


def true_nudge_conversion_probability(channel: str, local_hour: float) -> float:
    """The probability that a send on `channel` at `local_hour` (0-23, the person's time) converts."""
    bump = math.exp(-(_hour_distance(local_hour, BEST_HOUR) ** 2) / (2 * HOUR_SPREAD**2))
    return CHANNEL_CONVERSION[channel] * (HOUR_FLOOR + (1 - HOUR_FLOOR) * bump)


def best_hour(channel: str) -> int:
    """The planted best local hour of a send on `channel` (the same for every channel)."""
    return max(range(24), key=lambda hour: true_nudge_conversion_probability(channel, hour))


def draw_channel(rng: random.Random) -> str:
    return _weighted(rng, CHANNEL_SHARE)


def best_path(traits: dict, eligible_keys: list[str]) -> str:
    """The eligible path with the highest true activation (the first of the ties, in order)."""
    return max(eligible_keys, key=lambda key: true_activation_probability(traits, key))
