"""Simulated end users for the demo workspace: the Segment calls a real product would send.

Pure and deterministic for a given seed and clock: it only builds raw calls, which seed_demo
sends through ingestion like any client. Each person visits the marketing site anonymously,
most sign up (identify claims their anonymous profile), then walk the activation funnel with
drop-off that depends on their traits; some who stall on a step come back for days, and some of
those finish it late; activated users come back, some on a second device.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SITE = "https://demo-saas.example"

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
REFERRERS = {
    "organic_search": "https://www.google.com/",
    "paid_search": "https://www.google.com/",
    "referral": "https://news.ycombinator.com/",
    "social": "https://www.linkedin.com/",
    "direct": "",
    "product_hunt": "https://www.producthunt.com/",
    "partner": "https://partners.example.com/",
}
MARKETING_PAGES = [("Home", "/"), ("Pricing", "/pricing"), ("Features", "/features"), ("Blog", "/blog")]
APP_PAGES = [("Dashboard", "/app"), ("Projects", "/app/projects"), ("Reports", "/app/reports")]
WEB_LIBRARY = {"name": "analytics.js", "version": "4.15.3"}
SERVER_LIBRARY = {"name": "analytics-python", "version": "2.4.0"}
IOS_LIBRARY = {"name": "analytics-ios", "version": "4.1.8"}
USER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"

# The activation funnel, in order. A person who fails a step stops progressing.
FUNNEL = (
    "Signed Up",
    "Project Created",
    "Teammate Invited",
    "Integration Connected",
    "Report Viewed",
    "Dashboard Shared",
)
# Developers and data analysts follow the demo's "Developer setup" path (demo_paths.json): an
# integration first, teammates later. Walking the team-first funnel, those who never invited
# anyone sat on "connect an integration" for good, stuck on a step they were never offered.
DEVELOPER_PERSONAS = ("developer", "data_analyst")
DEVELOPER_FUNNEL = (
    "Signed Up",
    "Project Created",
    "Integration Connected",
    "Report Viewed",
    "Teammate Invited",
    "Dashboard Shared",
)


def funnel_for(traits: dict[str, str]) -> tuple[str, ...]:
    return DEVELOPER_FUNNEL if traits["persona"] in DEVELOPER_PERSONAS else FUNNEL


SHARE_OF_VISITORS_WHO_SIGN_UP = 0.82
# Of the people who do not take a step straight away, some keep coming back to the app over the
# next days (the ones a stuck list is for), and some of those get there late; everyone else
# leaves, their last event ending their story. A hard step (connecting an integration) keeps
# more of them trying than an easy one nobody needs help with. Without these, every drop-out
# stayed active on their step for good and stuck detection flagged 93% of the active enrollments.
SHARE_WHO_KEEP_TRYING = {
    "Project Created": 0.15,
    "Teammate Invited": 0.25,
    "Integration Connected": 0.6,
    "Report Viewed": 0.2,
    "Dashboard Shared": 0.1,
}
SHARE_WHO_GET_THERE_LATE = 0.4


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


def _person(rng: random.Random, index: int) -> Person:
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


def _step_chance(step: str, traits: dict[str, str]) -> float:
    """Conversion from the previous funnel step, shaped by who the person is."""
    persona, size, source = traits["persona"], traits["company_size"], traits["signup_source"]
    if step == "Project Created":
        return 0.74 + {"paid_search": -0.14, "referral": 0.08, "product_hunt": -0.08}.get(source, 0)
    if step == "Teammate Invited":
        return {"1-10": 0.30, "11-50": 0.52, "51-200": 0.64, "201-1000": 0.70, "1000+": 0.72}[size]
    if step == "Integration Connected":
        return 0.58 + {"developer": 0.2, "data_analyst": 0.1, "marketer": -0.12, "designer": -0.15}.get(
            persona, 0
        )
    if step == "Report Viewed":
        return 0.8
    if step == "Dashboard Shared":
        return 0.42 + {"product_manager": 0.12, "founder": 0.1}.get(persona, 0)
    return 1.0


def _step_properties(rng: random.Random, step: str, person: Person) -> dict[str, Any]:
    if step == "Signed Up":
        return {"method": rng.choice(("email", "google", "github")), "plan": "trial"}
    if step == "Project Created":
        template = rng.choice(("blank", "web app", "mobile app", "ecommerce", "b2b saas"))
        return {"project_id": f"proj-{person.index:05d}", "template": template}
    if step == "Teammate Invited":
        return {"role": rng.choice(("admin", "member", "member", "viewer")), "invites": rng.randint(1, 4)}
    if step == "Integration Connected":
        integrations = ("Slack", "GitHub", "Salesforce", "HubSpot", "Stripe", "Jira", "Snowflake")
        return {"integration": rng.choice(integrations)}
    if step == "Report Viewed":
        report = rng.choice(("Funnel", "Retention", "Activation", "Revenue"))
        return {"report": report, "seconds_on_report": rng.randint(8, 600)}
    return {"channel": rng.choice(("link", "email", "slack")), "recipients": rng.randint(1, 6)}


class _Journey:
    """Collects one person's calls, numbering their message ids."""

    def __init__(self, person: Person, now: datetime):
        self.person, self.now, self.calls = person, now, []

    def add(self, at: datetime, call: dict[str, Any]) -> None:
        if at >= self.now:
            return  # the future has not happened yet: recent signups are mid-funnel
        call["messageId"] = f"demo-{self.person.index:05d}-{len(self.calls):03d}"
        call["timestamp"] = at.isoformat()
        self.calls.append((at, call))

    def context(self, library: dict, *, page: tuple[str, str] | None = None, **extra) -> dict:
        traits = self.person.traits
        context = {"library": library, "locale": traits["locale"], "timezone": traits["timezone"], **extra}
        if library is WEB_LIBRARY:
            context["userAgent"] = USER_AGENT
        if page is not None:
            context["page"] = {"path": page[1], "url": SITE + page[1], "title": page[0]}
        return context

    def page(self, at: datetime, page: tuple[str, str], *, user_id: str | None, referrer: str = "") -> None:
        name, path = page
        call = {
            "type": "page",
            "anonymousId": self.person.anonymous_id,
            "name": name,
            "properties": {"path": path, "url": SITE + path, "title": name, "referrer": referrer},
            "context": self.context(WEB_LIBRARY, page=page),
        }
        if user_id:
            call["userId"] = user_id
        self.add(at, call)


def _local_daytime(rng: random.Random, day: datetime, utc_offset: float) -> datetime:
    """A moment on that day between 08:00 and 22:00 in the person's own time zone."""
    local_hour = rng.triangular(8, 22, 14)
    midnight = day.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(hours=local_hour - utc_offset, seconds=rng.randint(0, 59))


def _after(rng: random.Random, moment: datetime, median_minutes: float) -> datetime:
    return moment + timedelta(minutes=rng.lognormvariate(0, 1.1) * median_minutes)


def _keep_trying(rng: random.Random, calls: "_Journey", moment: datetime) -> datetime:
    """A few return visits to the app over the following days, without taking the step."""
    for _ in range(rng.randint(1, 4)):
        moment = _local_daytime(rng, moment + timedelta(days=rng.uniform(0.5, 3)), calls.person.utc_offset)
        calls.page(moment, rng.choice(APP_PAGES), user_id=calls.person.user_id)
    return moment


def journey(rng: random.Random, person: Person, *, now: datetime, days: int) -> list[tuple[datetime, dict]]:
    """Every call of one person, as (time, raw call)."""
    calls = _Journey(person, now)
    traits = person.traits
    source = traits["signup_source"]
    start = _local_daytime(rng, now - timedelta(days=rng.uniform(0.3, days)), person.utc_offset)

    # Anonymous visits to the marketing site, sometimes spread over a few days.
    moment = start
    for visit in range(rng.choice((1, 1, 1, 2, 2, 3))):
        if visit:
            moment = _after(rng, moment, 60 * 20)
        referrer = REFERRERS[source] if visit == 0 else ""
        for page in rng.sample(MARKETING_PAGES, rng.randint(1, 3)):
            calls.page(moment, page, user_id=None, referrer=referrer)
            moment += timedelta(seconds=rng.randint(10, 180))
    if not person.signs_up:
        return calls.calls

    # Sign up: identify claims the anonymous profile; contact traits go to Contact on ingestion.
    moment += timedelta(seconds=rng.randint(20, 240))
    user_id = person.user_id
    identify_traits = {**traits, "plan": "trial", "createdAt": moment.isoformat()}
    campaign = {"source": "google", "medium": "cpc", "name": "brand"} if source == "paid_search" else None
    identify_context = calls.context(WEB_LIBRARY, **({"campaign": campaign} if campaign else {}))
    calls.add(
        moment,
        {
            "type": "identify",
            "userId": user_id,
            "anonymousId": person.anonymous_id,
            "traits": identify_traits,
            "context": identify_context,
        },
    )

    # The activation funnel: server-side track calls, app page views in between.
    activated = False
    for step in funnel_for(traits):
        if step != "Signed Up":
            if rng.random() >= _step_chance(step, traits):
                if rng.random() >= SHARE_WHO_KEEP_TRYING[step]:
                    break
                moment = _keep_trying(rng, calls, moment)
                if rng.random() >= SHARE_WHO_GET_THERE_LATE:
                    break
            moment = _after(rng, moment, {"Project Created": 15, "Teammate Invited": 240}.get(step, 90))
            calls.page(moment, rng.choice(APP_PAGES), user_id=user_id)
            moment += timedelta(seconds=rng.randint(5, 120))
        calls.add(
            moment,
            {
                "type": "track",
                "userId": user_id,
                "event": step,
                "properties": _step_properties(rng, step, person),
                "context": calls.context(SERVER_LIBRARY),
            },
        )
        activated = activated or step == "Report Viewed"

    # Activated users come back; some on their phone (a second anonymous id, same user).
    if activated:
        on_mobile = rng.random() < 0.2
        for _ in range(rng.randint(1, 6)):
            later = _local_daytime(rng, _after(rng, moment, 60 * 30), person.utc_offset)
            moment = later if later > moment else later + timedelta(days=1)
            if on_mobile and rng.random() < 0.5:
                calls.add(
                    moment,
                    {
                        "type": "screen",
                        "userId": user_id,
                        "anonymousId": f"ios-{person.anonymous_id[5:]}",
                        "name": "Dashboard",
                        "context": calls.context(IOS_LIBRARY, device={"type": "ios", "model": "iPhone15,2"}),
                    },
                )
                continue
            calls.page(moment, APP_PAGES[2], user_id=user_id)
            calls.add(
                moment + timedelta(seconds=rng.randint(5, 60)),
                {
                    "type": "track",
                    "userId": user_id,
                    "event": "Report Viewed",
                    "properties": _step_properties(rng, "Report Viewed", person),
                    "context": calls.context(WEB_LIBRARY),
                },
            )
    return calls.calls


def calls_in_time_order(
    *, people: int, seed: int, now: datetime, days: int = 30
) -> list[tuple[datetime, dict]]:
    """All calls of all people as (time, raw call), oldest first, as a client fleet sent them.

    The same seed and clock give the same calls, message ids included, so a rerun dedupes.
    """
    rng = random.Random(seed)
    timed = []
    for index in range(1, people + 1):
        timed.extend(journey(rng, _person(rng, index), now=now, days=days))
    timed.sort(key=lambda pair: pair[0])
    return timed
