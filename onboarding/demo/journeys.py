"""The demo's simulated journeys: the Segment calls a real product would send, in time order.

Pure and deterministic for a given seed and clock: it only builds raw calls, which the demo
seeding (onboarding.demo.services) sends through ingestion like any client. Each person visits the
marketing site anonymously, most sign up (identify claims their anonymous profile), then walk the
activation funnel with drop-off that depends on their traits; some who stall on a step come back
for days, and some of those finish it late; activated users come back, some on a second device.
"""

import random
from datetime import datetime, timedelta
from typing import Any

from onboarding.demo.funnel import (
    SHARE_WHO_GET_THERE_LATE,
    SHARE_WHO_KEEP_TRYING,
    funnel_for,
    step_chance,
    step_properties,
)
from onboarding.demo.population import Person, draw_person

SITE = "https://demo-saas.example"

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


def _keep_trying(rng: random.Random, calls: _Journey, moment: datetime) -> datetime:
    """A few return visits to the app over the following days, without taking the step."""
    for _ in range(rng.randint(1, 4)):
        moment = _local_daytime(rng, moment + timedelta(days=rng.uniform(0.5, 3)), calls.person.utc_offset)
        calls.page(moment, rng.choice(APP_PAGES), user_id=calls.person.user_id)
    return moment


def journey(rng: random.Random, person: Person, *, now: datetime, days: int) -> list[tuple[datetime, dict]]:
    """Every call of one person, as (time, raw call)."""
    calls = _Journey(person, now)
    start = _local_daytime(rng, now - timedelta(days=rng.uniform(0.3, days)), person.utc_offset)
    moment = _visit_the_marketing_site(rng, calls, start)
    if not person.signs_up:
        return calls.calls
    moment = _sign_up(rng, calls, moment)
    moment, activated = _walk_the_funnel(rng, calls, moment)
    if activated:
        _come_back(rng, calls, moment)
    return calls.calls


def _visit_the_marketing_site(rng: random.Random, calls: _Journey, moment: datetime) -> datetime:
    """Anonymous visits to the marketing site, sometimes spread over a few days."""
    source = calls.person.traits["signup_source"]
    for visit in range(rng.choice((1, 1, 1, 2, 2, 3))):
        if visit:
            moment = _after(rng, moment, 60 * 20)
        referrer = REFERRERS[source] if visit == 0 else ""
        for page in rng.sample(MARKETING_PAGES, rng.randint(1, 3)):
            calls.page(moment, page, user_id=None, referrer=referrer)
            moment += timedelta(seconds=rng.randint(10, 180))
    return moment


def _sign_up(rng: random.Random, calls: _Journey, moment: datetime) -> datetime:
    """Identify claims the anonymous profile; contact traits go to Contact on ingestion."""
    person = calls.person
    moment += timedelta(seconds=rng.randint(20, 240))
    identify_traits = {**person.traits, "plan": "trial", "createdAt": moment.isoformat()}
    paid = person.traits["signup_source"] == "paid_search"
    campaign = {"source": "google", "medium": "cpc", "name": "brand"} if paid else None
    identify_context = calls.context(WEB_LIBRARY, **({"campaign": campaign} if campaign else {}))
    calls.add(
        moment,
        {
            "type": "identify",
            "userId": person.user_id,
            "anonymousId": person.anonymous_id,
            "traits": identify_traits,
            "context": identify_context,
        },
    )
    return moment


def _walk_the_funnel(rng: random.Random, calls: _Journey, moment: datetime) -> tuple[datetime, bool]:
    """The activation funnel: server-side track calls, app page views in between. Returns the
    last moment and whether the person activated (viewed a report)."""
    person = calls.person
    activated = False
    for step in funnel_for(person.traits):
        if step != "Signed Up":
            if rng.random() >= step_chance(step, person.traits):
                if rng.random() >= SHARE_WHO_KEEP_TRYING[step]:
                    break
                moment = _keep_trying(rng, calls, moment)
                if rng.random() >= SHARE_WHO_GET_THERE_LATE:
                    break
            moment = _after(rng, moment, {"Project Created": 15, "Teammate Invited": 240}.get(step, 90))
            calls.page(moment, rng.choice(APP_PAGES), user_id=person.user_id)
            moment += timedelta(seconds=rng.randint(5, 120))
        calls.add(
            moment,
            {
                "type": "track",
                "userId": person.user_id,
                "event": step,
                "properties": step_properties(rng, step, person),
                "context": calls.context(SERVER_LIBRARY),
            },
        )
        activated = activated or step == "Report Viewed"
    return moment, activated


def _come_back(rng: random.Random, calls: _Journey, moment: datetime) -> None:
    """Activated users come back; some on their phone (a second anonymous id, same user)."""
    person = calls.person
    on_mobile = rng.random() < 0.2
    for _ in range(rng.randint(1, 6)):
        later = _local_daytime(rng, _after(rng, moment, 60 * 30), person.utc_offset)
        moment = later if later > moment else later + timedelta(days=1)
        if on_mobile and rng.random() < 0.5:
            calls.add(
                moment,
                {
                    "type": "screen",
                    "userId": person.user_id,
                    "anonymousId": f"ios-{person.anonymous_id[5:]}",
                    "name": "Dashboard",
                    "context": calls.context(IOS_LIBRARY, device={"type": "ios", "model": "iPhone15,2"}),
                },
            )
            continue
        calls.page(moment, APP_PAGES[2], user_id=person.user_id)
        calls.add(
            moment + timedelta(seconds=rng.randint(5, 60)),
            {
                "type": "track",
                "userId": person.user_id,
                "event": "Report Viewed",
                "properties": step_properties(rng, "Report Viewed", person),
                "context": calls.context(WEB_LIBRARY),
            },
        )


def calls_in_time_order(
    *, people: int, seed: int, now: datetime, days: int = 30
) -> list[tuple[datetime, dict]]:
    """All calls of all people as (time, raw call), oldest first, as a client fleet sent them.

    The same seed and clock give the same calls, message ids included, so a rerun dedupes.
    """
    rng = random.Random(seed)
    timed = []
    for index in range(1, people + 1):
        timed.extend(journey(rng, draw_person(rng, index), now=now, days=days))
    timed.sort(key=lambda pair: pair[0])
    return timed
