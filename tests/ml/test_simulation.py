"""The simulator: it writes what it reports, the same rows under the same seed, and its planted
effects (analysts on their path, small companies at integration steps, the best hour of a nudge)
are in the rows; the logged choices carry the right propensities, the rules' real choice and the
features the history recomputes; the simulated A/B tells a better policy from the rules."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from ml.demo import DEMO_PREFIX, demo_seed
from ml.features.history import features_as_of
from ml.models import ModelVersion, PathChoice
from ml.simulation import world
from ml.simulation.ab import rules_only, simulated_ab
from ml.simulation.journey import zone_of
from ml.simulation.writer import paths_document, simulate, simulation_paths_ensure
from ml.training.services import MODEL_NAMES
from nudges.models import Nudge
from onboarding.demo.services import demo_paths_import
from onboarding.models import Enrollment, Event, StepCompletion
from paths import planner
from paths.models import PathVersion
from tenancy.models import EndUser

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MATURE = timedelta(days=14)


def _simulated(workspace, people, **options):
    return simulate(workspace=workspace, people=people, start=START, days=options.pop("days", 60), **options)


def _rate(rows) -> float:
    rows = list(rows)
    return sum(1 for each in rows if each["enrollment__status"] == Enrollment.Status.COMPLETED) / len(rows)


def test_it_writes_what_it_reports(tenant):
    workspace = tenant[0]
    report = _simulated(workspace, 300, seed=3)

    assert report.people == EndUser.objects.filter(workspace=workspace).count() == 300
    assert report.enrollments == Enrollment.objects.filter(workspace=workspace).count() == 300
    assert report.path_choices == PathChoice.objects.filter(workspace=workspace).count() == 300
    assert report.events == Event.objects.filter(workspace=workspace).count() > 300
    assert report.completions == StepCompletion.objects.filter(enrollment__workspace=workspace).count() > 0
    assert report.nudges == Nudge.objects.filter(workspace=workspace).count() > 0
    assert report.completed == Enrollment.objects.filter(workspace=workspace, status="completed").count() > 0
    assert report.abandoned == Enrollment.objects.filter(workspace=workspace, status="abandoned").count() > 0
    # Simulated moments, not the writing moment: sign-ups spread over the days.
    created = EndUser.objects.filter(workspace=workspace).values_list("created_at", flat=True)
    assert min(created) >= START and max(created) < START + timedelta(days=60)
    for enrollment in Enrollment.objects.filter(workspace=workspace, status="completed")[:50]:
        done = dict(enrollment.completions.values_list("step_key", "completed_at"))
        required = world.required_steps(enrollment.path_version.path.key)
        assert set(required) <= set(done) and enrollment.completed_at == max(done[key] for key in required)


def _snapshot(workspace) -> list:
    choices = PathChoice.objects.filter(workspace=workspace).select_related("enrollment", "end_user")
    return sorted(
        (
            each.end_user.external_id,
            each.path_key,
            each.policy,
            each.propensity,
            each.enrollment.status,
            each.enrollment.completed_at,
            each.enrollment.current_step_key,
            tuple(sorted(each.features.items())),
            Event.objects.filter(end_user=each.end_user).count(),
        )
        for each in choices
    )


def test_the_same_seed_writes_the_same_rows(tenant, other_tenant):
    _simulated(tenant[0], 150, seed=5, exploration_share=0.5)
    _simulated(other_tenant[0], 150, seed=5, exploration_share=0.5)
    first, second = _snapshot(tenant[0]), _snapshot(other_tenant[0])
    assert first == second

    _simulated(tenant[0], 150, seed=6, exploration_share=0.5, prefix="other")
    third = [row for row in _snapshot(tenant[0]) if row[0].startswith("other")]
    assert [row[1:] for row in third] != [row[1:] for row in first]


def _matured(workspace):
    end = START + timedelta(days=60)
    return PathChoice.objects.filter(workspace=workspace, decided_at__lte=end - MATURE).values(
        "path_key", "rules_path_key", "eligible", "features", "enrollment__status"
    )


def test_analysts_activate_twice_as_often_on_the_path_built_for_them(tenant):
    workspace = tenant[0]
    _simulated(workspace, 5000, seed=11, exploration_share=1.0)
    analysts = [row for row in _matured(workspace) if row["features"]["persona"] == world.ANALYST]

    # The rules never put an analyst on analyst-insights, though it is eligible for them.
    assert {row["rules_path_key"] for row in analysts} == {world.DEVELOPER_SETUP}
    assert all(world.ANALYST_INSIGHTS in row["eligible"] for row in analysts)
    theirs = _rate(row for row in analysts if row["path_key"] == world.ANALYST_INSIGHTS)
    rules = _rate(row for row in analysts if row["path_key"] == world.DEVELOPER_SETUP)
    assert 1.5 < theirs / rules < 3.0

    developers = [row for row in _matured(workspace) if row["features"]["persona"] == "developer"]
    on_setup = _rate(row for row in developers if row["path_key"] == world.DEVELOPER_SETUP)
    on_default = _rate(row for row in developers if row["path_key"] == world.GET_STARTED)
    assert abs(on_setup - on_default) < 0.07
    assert 0.30 < _rate(_matured(workspace)) < 0.45


def test_small_companies_abandon_integration_steps_more_often(tenant):
    workspace = tenant[0]
    _simulated(workspace, 4000, seed=12)
    reached = defaultdict(lambda: [0, 0])  # small company? -> [reached the integration step, stopped there]
    enrollments = Enrollment.objects.filter(
        workspace=workspace,
        path_version__path__key=world.DEVELOPER_SETUP,
        enrolled_at__lte=START + timedelta(days=40),
    ).select_related("end_user")
    for enrollment in enrollments.prefetch_related("completions"):
        done = {each.step_key for each in enrollment.completions.all()}
        if "create-project" not in done:
            continue
        small = enrollment.end_user.company_size == world.SMALL_COMPANY
        reached[small][0] += 1
        stopped = enrollment.status == Enrollment.Status.ABANDONED
        reached[small][1] += stopped and enrollment.current_step_key == "connect-integration"
    small_share = reached[True][1] / reached[True][0]
    other_share = reached[False][1] / reached[False][0]
    assert small_share > 1.6 * other_share

    # Abandoners were less engaged already when their path was chosen.
    scores = defaultdict(list)
    for row in _matured(workspace):
        scores[row["enrollment__status"]].append(row["features"]["engagement_score"])
    mean = {status: sum(values) / len(values) for status, values in scores.items()}
    assert mean[Enrollment.Status.ABANDONED] < mean[Enrollment.Status.COMPLETED]


def test_nudges_convert_best_at_the_planted_local_hour(tenant):
    workspace = tenant[0]
    _simulated(workspace, 5000, seed=13)
    by_hour = defaultdict(lambda: [0, 0])
    for nudge in Nudge.objects.filter(workspace=workspace).select_related("end_user"):
        hour = nudge.sent_at.astimezone(zone_of(nudge.end_user.timezone)).hour
        by_hour[hour][0] += 1
        by_hour[hour][1] += nudge.converted_at is not None
    assert set(by_hour) == set(range(24))  # every hour is tried

    def window(centre: int) -> float:
        hours = [(centre + offset) % 24 for offset in (-1, 0, 1)]
        return sum(by_hour[hour][1] for hour in hours) / sum(by_hour[hour][0] for hour in hours)

    best = max(range(24), key=window)
    assert abs(best - world.BEST_HOUR) <= 1
    assert window(world.BEST_HOUR) > 2 * window((world.BEST_HOUR + 12) % 24)
    assert world.best_hour("email") == world.BEST_HOUR == 10


def test_propensities_follow_the_logging_policy(tenant):
    workspace = tenant[0]
    share = 0.3
    report = _simulated(workspace, 1500, seed=14, exploration_share=share)
    choices = list(PathChoice.objects.filter(workspace=workspace))

    assert report.explored == sum(1 for each in choices if each.policy == PathChoice.Policy.EXPLORE)
    assert 0.25 < report.explored / len(choices) < 0.35
    for each in choices:
        expected = share / len(each.eligible) + (1 - share) * (each.path_key == each.rules_path_key)
        assert each.propensity == pytest.approx(expected)
        assert each.path_key in each.eligible
        if each.policy == PathChoice.Policy.RULES:
            assert each.path_key == each.rules_path_key
    assert {each.propensity for each in choices if len(each.eligible) == 1} == {1.0}


def test_the_rules_choice_recorded_is_the_planners(tenant):
    workspace = tenant[0]
    _simulated(workspace, 400, seed=15, exploration_share=0.5)
    published = planner.published_versions(workspace_id=workspace.pk)
    for each in PathChoice.objects.filter(workspace=workspace).select_related("end_user"):
        decision = planner.choose_by_rules(end_user=each.end_user, published=published)
        eligible = planner.eligible_versions(end_user=each.end_user, published=published)
        assert decision.path_version.path.key == each.rules_path_key
        assert [version.path.key for version in eligible] == each.eligible


def test_logged_features_are_the_ones_the_history_recomputes(tenant):
    workspace = tenant[0]
    _simulated(workspace, 200, seed=16)
    choices = list(PathChoice.objects.filter(workspace=workspace).select_related("end_user")[:60])
    recomputed = features_as_of(workspace.pk, [(each.end_user, each.decided_at) for each in choices])
    assert [each.features for each in choices] == recomputed
    assert any(row["session_count"] > 1 for row in recomputed)  # not all the same trivial row


def test_the_simulation_paths_leave_the_demo_paths_as_they_are(tenant):
    workspace = tenant[0]
    demo_paths_import(workspace=workspace)
    published = simulation_paths_ensure(workspace=workspace)

    assert [version.path.key for version in published] == [
        world.DEVELOPER_SETUP,
        world.ANALYST_INSIGHTS,
        world.GET_STARTED,
    ]
    assert PathVersion.objects.filter(path__workspace=workspace).count() == 3  # no new version
    for version in published:
        steps = [(step.key, step.event_name, step.optional) for step in version.steps.order_by("order")]
        assert tuple(steps) == world.PATH_STEPS[version.path.key]
    assert len(paths_document()["paths"]) == 3


def _oracle(end_user, features, eligible):
    """The policy that knows the truth: each person's best eligible path."""
    best = world.best_path(features, [version.path.key for version in eligible])
    return next(version for version in eligible if version.path.key == best)


def test_the_simulated_ab_tells_a_better_policy_from_the_rules(tenant):
    workspace = tenant[0]
    simulation_paths_ensure(workspace=workspace)

    better = simulated_ab(workspace=workspace, choose_model=_oracle, people=16000, seed=21)
    assert better.people_rules == better.people_model == 8000
    assert better.difference == pytest.approx(better.rate_model - better.rate_rules)
    assert better.ci[0] > 0 and better.excludes_zero

    same = rules_only(workspace=workspace, people=16000, seed=21)
    assert same.ci[0] < 0 < same.ci[1]
    assert not EndUser.objects.filter(workspace=workspace).exists()  # nobody written


def test_the_demo_seed_writes_its_people_once_and_trains_or_says_why_not(tenant):
    workspace = tenant[0]
    demo_paths_import(workspace=workspace)
    now = START + timedelta(days=90)

    seeded = demo_seed(workspace=workspace, people=300, now=now, train=True)

    assert (
        seeded.simulation.people == EndUser.objects.filter(external_id__startswith=DEMO_PREFIX).count() == 300
    )
    assert len(seeded.trained) + len(seeded.refused) == len(MODEL_NAMES)
    assert all("too little data" in reason for reason in seeded.refused)
    assert ModelVersion.objects.filter(workspace=workspace).count() == len(seeded.trained)
    assert max(Enrollment.objects.filter(workspace=workspace).values_list("enrolled_at", flat=True)) < now
    assert demo_seed(workspace=workspace, people=300, now=now) is None
    assert EndUser.objects.filter(workspace=workspace).count() == 300
