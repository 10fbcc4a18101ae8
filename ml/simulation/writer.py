"""Write a simulated population into a workspace, in bulk: the ML layer's ground truth in rows.

`simulate` creates the simulation's three paths (paths_document: the demo's two and
analyst-insights, through paths' import, so an existing identical path is left alone), then for
each person: an EndUser dated at sign-up, the path decision of a logging policy that follows the
rules (paths.planner.choose_by_rules) except for an `exploration_share` of decisions drawn
uniformly among the eligible paths (paths.planner.eligible_versions), logged as an
ml.models.PathChoice with its propensity and the features it was taken on (ml.features.compute,
from the events before the decision, as ml.features.history recomputes them), the Enrollment as
it stands at the end, its StepCompletions, the person's track events and nudges (sent on the
trigger SIMULATION_TRIGGER, converted per the ground truth). Outcomes follow world.py.

Every row is written with bulk_create in one transaction. auto_now_add dates (EndUser.created_at,
StepCompletion.recorded_at, Nudge.created_at) would be stamped with the writing moment: the
simulated moments are kept by switching the fields' auto_now_add off for the duration of the bulk
insert (_dates_as_given), which is process-wide: run the simulator from a command, a job or a
test, never from a thread serving requests.
"""

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from ml.features import compute
from ml.models import PathChoice
from ml.simulation import world
from ml.simulation.journey import Journey, journey_of
from nudges.models import Nudge, Trigger
from nudges.services import trace_line
from onboarding.demo.services import DEMO_PATHS_FILE
from onboarding.models import Enrollment, Event, StepCompletion
from paths import planner
from paths.models import PathVersion
from paths.transfer import paths_import
from tenancy.models import EndUser, Workspace

SIMULATION_TRIGGER = "Simulated sends (ML ground truth)"
BATCH_SIZE = 5000
ANALYST_PATH = {
    "key": world.ANALYST_INSIGHTS,
    "name": "Analyst insights",
    "description": "For data analysts: their warehouse first, then a query and a report.",
    "audience": {"persona": [world.ANALYST]},
    "priority": 5,
    "is_default": False,
}
STEP_TITLES = {"build-query": "Run your first query", "connect-integration": "Connect your warehouse"}


@dataclass
class SimulationReport:
    people: int = 0
    enrollments: int = 0
    completions: int = 0
    events: int = 0
    path_choices: int = 0
    nudges: int = 0
    explored: int = 0
    completed: int = 0
    abandoned: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(slots=True)
class _Simulated:
    person: world.Person
    end_user: EndUser
    path_version: PathVersion
    policy: str
    rules_path_key: str
    eligible: list[str]
    propensity: float
    reason: str
    journey: Journey
    features: dict


def _step_dict(key: str, event_name: str, optional: bool, order: int, template: dict) -> dict[str, Any]:
    step = dict(template, key=key, order=order, optional=optional, event_name=event_name)
    step["title"] = STEP_TITLES.get(key, step["title"])
    return step


def paths_document() -> dict[str, Any]:
    """The demo's two paths (onboarding/demo/paths.json) and analyst-insights, as a paths import."""
    document = json.loads(DEMO_PATHS_FILE.read_text())
    templates = {step["key"]: step for path in document["paths"] for step in path["versions"][0]["steps"]}
    templates["build-query"] = dict(templates["view-report"], deep_link="/app/queries/new")
    steps = [
        _step_dict(key, event_name, optional, order, templates[key])
        for order, (key, event_name, optional) in enumerate(world.PATH_STEPS[world.ANALYST_INSIGHTS], 1)
    ]
    version = {"number": 1, "status": "published", "changelog": "Simulation path", "steps": steps}
    document["paths"].append({**ANALYST_PATH, "versions": [version]})
    return document


def simulation_paths_ensure(*, workspace: Workspace) -> list[PathVersion]:
    """Import the simulation's paths (idempotent); their published versions in the planner's order."""
    paths_import(workspace=workspace, data=paths_document())
    return [
        version
        for version in planner.published_versions(workspace_id=workspace.pk)
        if version.path.key in world.PATH_STEPS
    ]


@contextmanager
def _dates_as_given(model, *names: str) -> Iterator[None]:
    """Let bulk_create keep the dates set on the instances instead of auto_now_add's now()."""
    fields = [model._meta.get_field(name) for name in names]
    for each in fields:
        each.auto_now_add = False
    try:
        yield
    finally:
        for each in fields:
            each.auto_now_add = True


def _end_user(workspace: Workspace, person: world.Person) -> EndUser:
    traits = person.traits
    return EndUser(
        workspace=workspace,
        external_id=person.external_id,
        traits={key: traits[key] for key in ("persona", "signup_source", "company_size", "use_case")},
        persona=traits["persona"],
        signup_source=traits["signup_source"],
        company_size=traits["company_size"],
        use_case=traits["use_case"],
        locale=traits["locale"],
        timezone=traits["timezone"],
        created_at=person.signed_up_at,
    )


def _decide(workspace, person, *, published, seed: int, share: float, end: datetime) -> _Simulated:
    """The logging policy's choice for one person, and their journey on it."""
    end_user = _end_user(workspace, person)
    decision = planner.choose_by_rules(end_user=end_user, published=published)
    eligible = planner.eligible_versions(end_user=end_user, published=published)
    rng = world.person_rng(seed, person.index, "explore")
    explore_draw, pick_draw = rng.random(), rng.random()
    chosen, policy, reason = decision.path_version, PathChoice.Policy.RULES, decision.reason
    if explore_draw < share:
        chosen = eligible[min(int(pick_draw * len(eligible)), len(eligible) - 1)]
        policy = PathChoice.Policy.EXPLORE
        reason = f"exploration: drawn among {len(eligible)} eligible paths (share {share:g})"
    propensity = share / len(eligible) + (1 - share) * (chosen.pk == decision.path_version.pk)
    journey = journey_of(person, chosen.path.key, seed=seed, end=end)
    profile = compute.Profile(
        persona=end_user.persona,
        signup_source=end_user.signup_source,
        company_size=end_user.company_size,
        use_case=end_user.use_case,
        signed_up_at=person.signed_up_at,
    )
    behaviour = compute.behaviour_of(journey.times_before_decision(), now=journey.decided_at)
    return _Simulated(
        person=person,
        end_user=end_user,
        path_version=chosen,
        policy=policy,
        rules_path_key=decision.path_version.path.key,
        eligible=[version.path.key for version in eligible],
        propensity=propensity,
        reason=reason,
        journey=journey,
        features=compute.features_of(profile, behaviour, journey.decided_at),
    )


def simulate(
    *,
    workspace: Workspace,
    people: int,
    start: datetime,
    days: int,
    seed: int = 0,
    exploration_share: float = 0.1,
    prefix: str = "sim",
) -> SimulationReport:
    """Simulate `people` signing up over `days` from `start` and write them (see the docstring).
    `prefix` starts their external ids and message ids: another prefix writes other people."""
    started = time.monotonic()
    start = start.replace(microsecond=0)
    end = start + timedelta(days=days)
    published = simulation_paths_ensure(workspace=workspace)
    simulated = [
        _decide(
            workspace,
            world.draw_person(seed=seed, index=index, start=start, days=days, prefix=prefix),
            published=published,
            seed=seed,
            share=exploration_share,
            end=end,
        )
        for index in range(people)
    ]
    with transaction.atomic():
        trigger = _trigger(workspace)
        report = _write(workspace, simulated, trigger)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def _trigger(workspace: Workspace) -> Trigger:
    trigger, _ = Trigger.objects.get_or_create(
        workspace=workspace,
        name=SIMULATION_TRIGGER,
        defaults={"kind": Trigger.Kind.STUCK, "channels": list(world.CHANNEL_CONVERSION), "is_active": False},
    )
    return trigger


def _write(workspace: Workspace, simulated: list[_Simulated], trigger: Trigger) -> SimulationReport:
    with _dates_as_given(EndUser, "created_at"):
        EndUser.objects.bulk_create([each.end_user for each in simulated], batch_size=BATCH_SIZE)
    events = Event.objects.bulk_create(_events(workspace, simulated), batch_size=BATCH_SIZE)
    enrollments = Enrollment.objects.bulk_create(
        [_enrollment(workspace, each) for each in simulated], batch_size=BATCH_SIZE
    )
    completions = [
        StepCompletion(
            enrollment=enrollment,
            step_key=key,
            method=StepCompletion.Method.EVENT,
            completed_at=moment,
            recorded_at=moment,
        )
        for enrollment, each in zip(enrollments, simulated, strict=True)
        for key, moment in each.journey.completions
    ]
    with _dates_as_given(StepCompletion, "recorded_at"):
        StepCompletion.objects.bulk_create(completions, batch_size=BATCH_SIZE)
    choices = PathChoice.objects.bulk_create(
        [
            _path_choice(workspace, enrollment, each)
            for enrollment, each in zip(enrollments, simulated, strict=True)
        ],
        batch_size=BATCH_SIZE,
    )
    nudges = [
        _nudge(workspace, trigger, enrollment, each, number, nudge)
        for enrollment, each in zip(enrollments, simulated, strict=True)
        for number, nudge in enumerate(each.journey.nudges)
    ]
    with _dates_as_given(Nudge, "created_at"):
        Nudge.objects.bulk_create(nudges, batch_size=BATCH_SIZE)
    statuses = Counter(each.journey.status for each in simulated)
    return SimulationReport(
        people=len(simulated),
        enrollments=len(enrollments),
        completions=len(completions),
        events=len(events),
        path_choices=len(choices),
        nudges=len(nudges),
        explored=sum(1 for each in simulated if each.policy == PathChoice.Policy.EXPLORE),
        completed=statuses[Enrollment.Status.COMPLETED],
        abandoned=statuses[Enrollment.Status.ABANDONED],
        by_path=dict(Counter(each.path_version.path.key for each in simulated)),
    )


def _events(workspace: Workspace, simulated: list[_Simulated]) -> list[Event]:
    return [
        Event(
            workspace=workspace,
            end_user_id=each.end_user.pk,
            type=Event.Type.TRACK,
            name=name,
            message_id=f"{each.person.external_id}-{number}",
            user_id=each.person.external_id,
            timestamp=moment,
            received_at=moment,
        )
        for each in simulated
        for number, (moment, name) in enumerate(each.journey.events)
    ]


def _enrollment(workspace: Workspace, each: _Simulated) -> Enrollment:
    journey = each.journey
    return Enrollment(
        workspace=workspace,
        end_user_id=each.end_user.pk,
        path_version=each.path_version,
        status=journey.status,
        current_step_key=journey.current_step_key,
        decision_reason=each.reason,
        enrolled_at=journey.decided_at,
        step_entered_at=journey.step_entered_at,
        completed_at=journey.completed_at,
    )


def _path_choice(workspace: Workspace, enrollment: Enrollment, each: _Simulated) -> PathChoice:
    return PathChoice(
        workspace=workspace,
        end_user_id=each.end_user.pk,
        enrollment=enrollment,
        decided_at=each.journey.decided_at,
        policy=each.policy,
        path_key=each.path_version.path.key,
        rules_path_key=each.rules_path_key,
        eligible=each.eligible,
        propensity=each.propensity,
        features=each.features,
        feature_source="postgres",
        reason=each.reason,
    )


def _nudge(workspace, trigger, enrollment, each: _Simulated, number: int, nudge) -> Nudge:
    converted = nudge.converted_at is not None
    key = f"simulated:{each.person.external_id}:{number}"
    return Nudge(
        workspace=workspace,
        end_user_id=each.end_user.pk,
        enrollment=enrollment,
        trigger=trigger,
        occasion=key,
        idempotency_key=f"{trigger.pk}:{key}",
        status=Nudge.Status.CONVERTED if converted else Nudge.Status.DELIVERED,
        channel=nudge.channel,
        target_step_key=nudge.target_step_key,
        trace=[trace_line("simulation", "written by ml.simulation (ground truth)", at=nudge.sent_at)],
        attempts=1,
        created_at=nudge.sent_at,
        sent_at=nudge.sent_at,
        delivered_at=nudge.sent_at,
        converted_at=nudge.converted_at,
    )
