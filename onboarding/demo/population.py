"""Who the demo's simulated people are: traits drawn with realistic weights, one person at a time."""

import random
from dataclasses import dataclass

PERSONAS = {
    "developer": 30,
    "product_manager": 25,
    "marketer": 15,
    "founder": 12,
    "data_analyst": 12,
    "designer": 6,
}
SIGNUP_SOURCES = {
    "organic_search": 30,
    "paid_search": 20,
    "referral": 15,
    "social": 12,
    "direct": 13,
    "product_hunt": 5,
    "partner": 5,
}
COMPANY_SIZES = {"1-10": 30, "11-50": 28, "51-200": 20, "201-1000": 13, "1000+": 9}
USE_CASES = {
    "product_analytics": 35,
    "customer_onboarding": 25,
    "marketing_attribution": 15,
    "experimentation": 15,
    "data_warehouse": 10,
}
# (locale, IANA timezone, UTC offset in hours, weight); fixed offsets keep this free of tzdata.
LOCALES = [
    ("en-US", "America/New_York", -5, 22),
    ("en-US", "America/Los_Angeles", -8, 14),
    ("en-GB", "Europe/London", 0, 12),
    ("de-DE", "Europe/Berlin", 1, 10),
    ("fr-FR", "Europe/Paris", 1, 8),
    ("es-ES", "Europe/Madrid", 1, 5),
    ("pt-BR", "America/Sao_Paulo", -3, 8),
    ("en-IN", "Asia/Kolkata", 5.5, 9),
    ("ja-JP", "Asia/Tokyo", 9, 6),
    ("en-AU", "Australia/Sydney", 10, 6),
]
FIRST_NAMES = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Radia",
    "Tim",
    "Katherine",
    "Guido",
    "Frances",
    "Edsger",
    "Hedy",
    "Donald",
    "Annie",
    "John",
    "Sophie",
    "Yukihiro",
    "Anita",
    "Bjarne",
    "Shafi",
    "Leslie",
    "Joan",
    "Niklaus",
    "Jean",
    "Tony",
]
LAST_NAMES = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Johnson",
    "Rossum",
    "Allen",
    "Dijkstra",
    "Lamarr",
    "Knuth",
    "Easley",
    "McCarthy",
    "Wilson",
    "Matsumoto",
    "Borg",
    "Stroustrup",
    "Goldwasser",
    "Lamport",
    "Clarke",
    "Wirth",
    "Sammet",
    "Hoare",
]
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

SHARE_OF_VISITORS_WHO_SIGN_UP = 0.82


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    anonymous_id: str
    user_id: str
    traits: dict[str, str]
    utc_offset: float
    signs_up: bool


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def draw_person(rng: random.Random, index: int) -> Person:
    """The person numbered `index`, their traits drawn from `rng`."""
    locale, timezone, utc_offset, _ = rng.choices(LOCALES, weights=[row[3] for row in LOCALES])[0]
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    domain = rng.choice(EMAIL_DOMAINS)
    traits = {
        "persona": _weighted(rng, PERSONAS),
        "signup_source": _weighted(rng, SIGNUP_SOURCES),
        "company_size": _weighted(rng, COMPANY_SIZES),
        "use_case": _weighted(rng, USE_CASES),
        "locale": locale,
        "timezone": timezone,
        "name": f"{first} {last}",
        "email": f"{first}.{last}.{index}@{domain}".lower(),
    }
    return Person(
        index=index,
        anonymous_id=f"anon-{rng.getrandbits(64):016x}",
        user_id=f"user-{index:05d}",
        traits=traits,
        utc_offset=utc_offset,
        signs_up=rng.random() < SHARE_OF_VISITORS_WHO_SIGN_UP,
    )
