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

Every row is written in one transaction through bulk.insert (COPY on PostgreSQL), the simulated
moments kept in the auto_now_add dates (EndUser.created_at = sign-up, StepCompletion.recorded_at =
completed_at, Nudge.created_at = sent_at).
"""

import gc
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
from ml.simulation import bulk, world
from ml.simulation.journey import Journey, journey_of
from nudges.models import Nudge, Trigger
from nudges.services import trace_line
from onboarding.demo.services import DEMO_PATHS_FILE
from onboarding.models import Enrollment, Event, StepCompletion
from paths import planner
from paths.models import Path, PathVersion
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
TRAITS = ("persona", "signup_source", "company_size", "use_case")
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
    seconds_writing: float = 0.0


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


def end_user_of(workspace: Workspace, person: world.Person) -> EndUser:
    """The person's EndUser row, unsaved (the writer inserts them in bulk; the A/B keeps them in memory)."""
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


def _decide(workspace, person, *, rules, seed: int, share: float, end: datetime) -> _Simulated:
    """The logging policy's choice for one person, and their journey on it."""
    end_user = end_user_of(workspace, person)
    decision, eligible = rules(end_user)
    explore_draw, pick_draw = person.policy_draws
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


def _rules_of(published: list[PathVersion]):
    """paths.planner's rules choice and eligible versions of an end user, computed once per
    combination of the four audience features (the only ones the rules read)."""
    known: dict[tuple, tuple] = {}

    def rules(end_user: EndUser) -> tuple:
        key = tuple(getattr(end_user, feature) for feature in Path.AUDIENCE_FIELDS)
        if key not in known:
            known[key] = (
                planner.choose_by_rules(end_user=end_user, published=published),
                planner.eligible_versions(end_user=end_user, published=published),
            )
        return known[key]

    return rules


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
    with _collector_paused():
        return _simulate(
            workspace=workspace,
            people=people,
            start=start,
            days=days,
            seed=seed,
            share=exploration_share,
            prefix=prefix,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Millions of small objects that all live to the end: the cyclic garbage collector's passes
    over them, ever longer as they pile up, made 100k people take twice the time of 5 x 20k."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _simulate(*, workspace, people: int, start: datetime, days: int, seed: int, share: float, prefix: str):
    started = time.monotonic()
    start = start.replace(microsecond=0)
    end = start + timedelta(days=days)
    rules = _rules_of(simulation_paths_ensure(workspace=workspace))
    simulated = [
        _decide(
            workspace,
            world.draw_person(seed=seed, index=index, start=start, days=days, prefix=prefix),
            rules=rules,
            seed=seed,
            share=share,
            end=end,
        )
        for index in range(people)
    ]
    writing = time.monotonic()
    with transaction.atomic():
        trigger = _trigger(workspace)
        report = _write(workspace, simulated, trigger)
    report.seconds = round(time.monotonic() - started, 2)
    report.seconds_writing = round(time.monotonic() - writing, 2)
    return report


def _trigger(workspace: Workspace) -> Trigger:
    trigger, _ = Trigger.objects.get_or_create(
        workspace=workspace,
        name=SIMULATION_TRIGGER,
        defaults={"kind": Trigger.Kind.STUCK, "channels": list(world.CHANNEL_CONVERSION), "is_active": False},
    )
    return trigger


def _write(workspace: Workspace, simulated: list[_Simulated], trigger: Trigger) -> SimulationReport:
    end_user_ids = bulk.insert(
        EndUser, [_end_user_row(workspace, each.person) for each in simulated], ids=True
    )
    events = [
        _event_row(workspace, end_user_id, each, number, moment, name)
        for end_user_id, each in zip(end_user_ids, simulated, strict=True)
        for number, (moment, name) in enumerate(each.journey.events)
    ]
    bulk.insert(Event, events)
    enrollment_ids = bulk.insert(
        Enrollment,
        [
            _enrollment_row(workspace, end_user_id, each)
            for end_user_id, each in zip(end_user_ids, simulated, strict=True)
        ],
        ids=True,
    )
    pairs = list(zip(end_user_ids, enrollment_ids, simulated, strict=True))
    completions = [
        {
            "enrollment_id": enrollment_id,
            "step_key": key,
            "method": StepCompletion.Method.EVENT,
            "completed_at": moment,
            "recorded_at": moment,
        }
        for _, enrollment_id, each in pairs
        for key, moment in each.journey.completions
    ]
    bulk.insert(StepCompletion, completions)
    bulk.insert(PathChoice, [_path_choice_row(workspace, *pair) for pair in pairs])
    nudges = [
        _nudge_row(workspace, trigger, pair, number, nudge)
        for pair in pairs
        for number, nudge in enumerate(pair[2].journey.nudges)
    ]
    bulk.insert(Nudge, nudges)
    statuses = Counter(each.journey.status for each in simulated)
    return SimulationReport(
        people=len(simulated),
        enrollments=len(enrollment_ids),
        completions=len(completions),
        events=len(events),
        path_choices=len(pairs),
        nudges=len(nudges),
        explored=sum(1 for each in simulated if each.policy == PathChoice.Policy.EXPLORE),
        completed=statuses[Enrollment.Status.COMPLETED],
        abandoned=statuses[Enrollment.Status.ABANDONED],
        by_path=dict(Counter(each.path_version.path.key for each in simulated)),
    )


def _end_user_row(workspace: Workspace, person: world.Person) -> dict:
    traits = person.traits
    return {
        "workspace_id": workspace.pk,
        "external_id": person.external_id,
        "traits": {key: traits[key] for key in TRAITS},
        **{key: traits[key] for key in (*TRAITS, "locale", "timezone")},
        "created_at": person.signed_up_at,
    }


def _event_row(workspace, end_user_id: int, each: _Simulated, number: int, moment, name: str) -> dict:
    return {
        "workspace_id": workspace.pk,
        "end_user_id": end_user_id,
        "type": Event.Type.TRACK,
        "name": name,
        "message_id": f"{each.person.external_id}-{number}",
        "user_id": each.person.external_id,
        "timestamp": moment,
        "received_at": moment,
    }


def _enrollment_row(workspace: Workspace, end_user_id: int, each: _Simulated) -> dict:
    journey = each.journey
    return {
        "workspace_id": workspace.pk,
        "end_user_id": end_user_id,
        "path_version_id": each.path_version.pk,
        "status": journey.status,
        "current_step_key": journey.current_step_key,
        "decision_reason": each.reason,
        "enrolled_at": journey.decided_at,
        "step_entered_at": journey.step_entered_at,
        "completed_at": journey.completed_at,
    }


def _path_choice_row(workspace: Workspace, end_user_id: int, enrollment_id: int, each: _Simulated) -> dict:
    return {
        "workspace_id": workspace.pk,
        "end_user_id": end_user_id,
        "enrollment_id": enrollment_id,
        "decided_at": each.journey.decided_at,
        "policy": each.policy,
        "path_key": each.path_version.path.key,
        "rules_path_key": each.rules_path_key,
        "eligible": each.eligible,
        "propensity": each.propensity,
        "features": each.features,
        "feature_source": "postgres",
        "reason": each.reason,
    }


def _nudge_row(workspace: Workspace, trigger: Trigger, pair: tuple, number: int, nudge) -> dict:
    end_user_id, enrollment_id, each = pair
    key = f"simulated:{each.person.external_id}:{number}"
    return {
        "workspace_id": workspace.pk,
        "end_user_id": end_user_id,
        "enrollment_id": enrollment_id,
        "trigger_id": trigger.pk,
        "occasion": key,
        "idempotency_key": f"{trigger.pk}:{key}",
        "status": Nudge.Status.CONVERTED if nudge.converted_at else Nudge.Status.DELIVERED,
        "channel": nudge.channel,
        "target_step_key": nudge.target_step_key,
        "trace": [trace_line("simulation", "written by ml.simulation (ground truth)", at=nudge.sent_at)],
        "attempts": 1,
        "created_at": nudge.sent_at,
        "sent_at": nudge.sent_at,
        "delivered_at": nudge.sent_at,
        "converted_at": nudge.converted_at,
    }
