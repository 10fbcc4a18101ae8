"""How the demo's people move through activation: the funnel per persona, each step's chance and
its event properties, and who keeps trying after a stall."""

import random
from typing import Any

from onboarding.demo.population import Person

# The activation funnel, in order. A person who fails a step stops progressing.
FUNNEL = (
    "Signed Up",
    "Project Created",
    "Teammate Invited",
    "Integration Connected",
    "Report Viewed",
    "Dashboard Shared",
)
# Developers and data analysts follow the demo's "Developer setup" path (onboarding/demo/paths.json): an
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


def step_chance(step: str, traits: dict[str, str]) -> float:
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


def step_properties(rng: random.Random, step: str, person: Person) -> dict[str, Any]:
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
