"""A small synthetic history written straight as rows (people, events, enrollments, completions,
logged path choices, sent nudges), for the training tests that do not need the simulator.

Effects: analysts activate more on the `analyst` path; small companies abandon at
`connect-integration`; nudges sent at 10:00 local convert most."""

import random
from datetime import datetime, timedelta

from guardrails.policy.localtime import zone_named
from ml.features import compute
from ml.models import PathChoice
from nudges.models import Nudge, Trigger
from onboarding.models import Enrollment, Event, StepCompletion
from paths.models import Step
from tenancy.models import EndUser, Workspace
from tests.factories import PathFactory, PublishedPathVersionFactory

STEPS = ("create-project", "connect-integration", "view-report")
PATHS = ("get-started", "analyst")


def _paths(workspace: Workspace) -> dict:
    versions = {}
    for key in PATHS:
        version = PublishedPathVersionFactory(path=PathFactory(workspace=workspace, key=key))
        for order, step in enumerate(STEPS):
            Step.objects.create(path_version=version, key=step, title=step, order=order, event_name=step)
        versions[key] = version
    return versions


def _person(rng: random.Random, index: int) -> dict:
    return {
        "persona": rng.choice(["analyst", "developer", "marketer"]),
        "company_size": rng.choice(["1-10", "11-50", "51-200"]),
        "signup_source": rng.choice(["organic", "paid_search"]),
        "use_case": "product_analytics",
        "timezone": rng.choice(["Europe/Paris", "America/New_York", ""]),
        "index": index,
    }


def populate(
    workspace: Workspace, *, people: int, start: datetime, days: int, seed: int = 1, explore: float = 0.3
) -> None:
    """`people` sign up evenly over `days` from `start`; each is enrolled, logged and lives a
    journey (see the module's docstring)."""
    rng = random.Random(seed)
    versions = _paths(workspace)
    trigger = Trigger.objects.create(workspace=workspace, name="stuck", kind="stuck", channels=["email"])
    traits = [_person(rng, index) for index in range(people)]
    users = EndUser.objects.bulk_create(
        EndUser(
            workspace=workspace,
            external_id=f"u{each['index']}",
            **{key: value for key, value in each.items() if key != "index"},
        )
        for each in traits
    )
    signups = [start + timedelta(days=days) * index / people for index in range(people)]
    for user, signed_up in zip(users, signups, strict=True):
        user.created_at = signed_up
    EndUser.objects.bulk_update(users, ["created_at"])
    events, enrollments, choices, completions, nudges = [], [], [], [], []
    for user, signed_up in zip(users, signups, strict=True):
        moments = [signed_up + timedelta(minutes=rng.uniform(0, 90)) for _ in range(rng.randint(1, 6))]
        events += [
            Event(
                workspace=workspace,
                end_user=user,
                type="track",
                name="Page Viewed",
                message_id=f"m{user.pk}-{number}",
                timestamp=moment,
                received_at=moment,
            )
            for number, moment in enumerate(moments)
        ]
        decided = signed_up + timedelta(hours=2)
        eligible = list(PATHS) if user.persona == "analyst" else ["get-started"]
        rules = "get-started"
        explored = len(eligible) > 1 and rng.random() < explore
        chosen = rng.choice(eligible) if explored else rules
        share = explore if len(eligible) > 1 else 0.0
        propensity = share / len(eligible) + (1 - share) * (chosen == rules)
        journey = _journey(rng, user, chosen, decided)
        enrollments.append(
            Enrollment(
                workspace=workspace,
                end_user=user,
                path_version=versions[chosen],
                status=journey["status"],
                current_step_key=journey["current"],
                enrolled_at=decided,
                step_entered_at=decided,
                completed_at=journey["completed_at"],
            )
        )
        features = compute.features_of(
            compute.Profile(user.persona, user.signup_source, user.company_size, user.use_case, signed_up),
            compute.behaviour_of(moments, now=decided),
            decided,
        )
        choices.append((user, decided, chosen, rules, eligible, propensity, explored, features))
        completions.append(journey["completions"])
        nudges.append(_nudge(rng, workspace, trigger, user, decided))
    Event.objects.bulk_create(events, batch_size=2000)
    Enrollment.objects.bulk_create(enrollments, batch_size=2000)
    PathChoice.objects.bulk_create(
        PathChoice(
            workspace=workspace,
            end_user=user,
            enrollment=enrollment,
            decided_at=decided,
            policy=PathChoice.Policy.EXPLORE if explored else PathChoice.Policy.RULES,
            path_key=chosen,
            rules_path_key=rules,
            eligible=eligible,
            propensity=propensity,
            features=features,
        )
        for enrollment, (user, decided, chosen, rules, eligible, propensity, explored, features) in zip(
            enrollments, choices, strict=True
        )
    )
    StepCompletion.objects.bulk_create(
        StepCompletion(enrollment=enrollment, step_key=key, method="api", completed_at=at)
        for enrollment, done in zip(enrollments, completions, strict=True)
        for key, at in done
    )
    Nudge.objects.bulk_create(nudges, batch_size=2000)


def _journey(rng: random.Random, user: EndUser, path: str, decided: datetime) -> dict:
    chance = 0.6 if (user.persona == "analyst" and path == "analyst") else 0.3
    done, at = [], decided
    if rng.random() < chance:
        for key in STEPS:
            at += timedelta(hours=rng.uniform(1, 20))
            done.append((key, at))
        return {"status": "completed", "current": "", "completed_at": at, "completions": done}
    small = user.company_size == "1-10"
    stop = rng.choices(STEPS, weights=(1, 8 if small else 1, 1))[0]
    for key in STEPS[: STEPS.index(stop)]:
        at += timedelta(hours=rng.uniform(1, 20))
        done.append((key, at))
    return {"status": "abandoned", "current": stop, "completed_at": None, "completions": done}


def _nudge(
    rng: random.Random, workspace: Workspace, trigger: Trigger, user: EndUser, decided: datetime
) -> Nudge:
    sent_at = decided + timedelta(hours=rng.uniform(1, 48))
    zone = zone_named(user.timezone)
    local_hour = sent_at.astimezone(zone).hour
    distance = min(abs(local_hour - 10), 24 - abs(local_hour - 10))
    converted = rng.random() < 0.05 + 0.5 * (distance <= 1)
    return Nudge(
        workspace=workspace,
        end_user=user,
        trigger=trigger,
        occasion=f"stuck {user.pk}",
        idempotency_key=f"nudge-{user.pk}",
        status="converted" if converted else "sent",
        channel="email",
        sent_at=sent_at,
        converted_at=sent_at + timedelta(hours=1) if converted else None,
    )
