"""Stuck detection: the expected-duration and p75 limits, idempotency, resolving, the command,
review flags and the signals admin."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from onboarding.models import Enrollment, EnrollmentSignal, StepCompletion
from onboarding.stuck import rules as stuck
from onboarding.stuck import selectors as stuck_selectors
from onboarding.stuck import services as enrollment_signals
from tenancy import services
from tests.conftest import post_action, verified_client
from tests.factories import AdminUserFactory, EventFactory, WorkspaceFactory
from tests.onboarding.enrollment_rows import complete, enrollment, published_version

pytestmark = pytest.mark.django_db

STEPS = [
    {"key": "create-project"},
    {"key": "invite", "expected_duration": timedelta(days=1)},
    {"key": "connect"},
]


@pytest.fixture
def acme():
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def version(acme):
    return published_version(acme, STEPS)


@pytest.fixture
def now():
    return timezone.now()


def on_step(version, user_id, step_key, since):
    return enrollment(version, user_id=user_id, current_step_key=step_key, step_entered_at=since)


def finished_connect(version, now, hours: list[int]):
    """Completed enrollments whose 'connect' took each of `hours`, after two earlier steps."""
    for number, took in enumerate(hours):
        start = now - timedelta(days=10)
        done = enrollment(
            version, user_id=f"done-{number}", status=Enrollment.Status.COMPLETED, enrolled_at=start
        )
        complete(done, "create-project", start + timedelta(hours=1))
        complete(done, "invite", start + timedelta(hours=2))
        complete(done, "connect", start + timedelta(hours=2 + took))


def stuck_rows():
    return list(
        EnrollmentSignal.objects.filter(kind=EnrollmentSignal.Kind.STUCK)
        .order_by("pk")
        .values_list("enrollment__end_user__external_id", "step_key", "reason", "resolved_at")
    )


# --- The engine ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(days=3, hours=4, minutes=5), "3 days 4 h"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=2, minutes=10, seconds=59), "2 h 10 min"),
        (timedelta(minutes=45), "45 min"),
        (timedelta(seconds=30), "less than 1 min"),
    ],
)
def test_durations_read_in_two_units(duration, text):
    assert stuck.format_duration(duration) == text


def test_p75_interpolates_between_ranks():
    assert stuck.percentile_75([float(hours) for hours in range(1, 21)]) == 15.25
    assert stuck.percentile_75([7.0]) == 7.0


# --- The expected-duration rule -------------------------------------------------------------------


def test_over_the_expected_duration_is_stuck_with_the_reason(acme, version, now):
    late = on_step(version, "late", "invite", now - timedelta(days=3, hours=4))
    on_time = on_step(version, "on-time", "invite", now - timedelta(hours=23))

    report = enrollment_signals.stuck_detect(workspace=acme, now=now)

    assert (report.active, report.flagged, report.resolved, report.not_judged) == (2, 1, 0, 0)
    assert stuck_rows() == [("late", "invite", "on 'invite' for 3 days 4 h; expected 1 day", None)]
    late.refresh_from_db()
    on_time.refresh_from_db()
    assert late.stuck_at == now
    assert on_time.stuck_at is None


def test_a_person_away_for_a_week_is_not_stuck_but_one_still_around_is(acme, version, now):
    away = on_step(version, "away", "invite", now - timedelta(days=12))
    EventFactory(end_user=away.end_user, timestamp=now - timedelta(days=7, minutes=1))
    around = on_step(version, "around", "invite", now - timedelta(days=12))
    EventFactory(end_user=around.end_user, timestamp=now - timedelta(days=8))
    EventFactory(end_user=around.end_user, name="Report Viewed", timestamp=now - timedelta(hours=5))

    report = enrollment_signals.stuck_detect(workspace=acme, now=now)

    assert (report.active, report.flagged, report.away) == (2, 1, 1)
    assert [row[:2] for row in stuck_rows()] == [("around", "invite")]


def test_a_stuck_person_who_goes_away_leaves_the_stuck_list(acme, version, now):
    late = on_step(version, "late", "invite", now - timedelta(days=2))
    EventFactory(end_user=late.end_user, timestamp=now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=acme, now=now)

    report = enrollment_signals.stuck_detect(workspace=acme, now=now + timedelta(days=5, hours=1))

    assert report.resolved == 1
    assert stuck_rows() == [
        ("late", "invite", "on 'invite' for 2 days; expected 1 day", now + timedelta(days=5, hours=1))
    ]
    late.refresh_from_db()
    assert late.stuck_at is None


def test_other_workspaces_are_not_touched(acme, version, now):
    globex = WorkspaceFactory(name="Globex", slug="globex")
    other = published_version(globex, STEPS)
    on_step(other, "elsewhere", "invite", now - timedelta(days=5))

    report = enrollment_signals.stuck_detect(workspace=acme, now=now)

    assert (report.active, report.flagged) == (0, 0)
    assert stuck_rows() == []


def test_finished_and_abandoned_enrollments_are_not_judged(acme, version, now):
    enrollment(
        version,
        user_id="gone",
        status=Enrollment.Status.ABANDONED,
        current_step_key="invite",
        step_entered_at=now - timedelta(days=9),
    )

    report = enrollment_signals.stuck_detect(workspace=acme, now=now)

    assert (report.active, report.flagged) == (0, 0)
    assert stuck_rows() == []


# --- The p75 rule -------------------------------------------------------------------------------


def test_without_expected_duration_the_p75_of_completions_is_the_limit(acme, version, now):
    finished_connect(version, now, hours=list(range(1, 21)))  # p75 = 15.25 h
    on_step(version, "slow", "connect", now - timedelta(hours=16))
    on_step(version, "normal", "connect", now - timedelta(hours=15))

    report = enrollment_signals.stuck_detect(workspace=acme, now=now)

    assert (report.active, report.flagged, report.not_judged) == (2, 1, 0)
    assert stuck_rows() == [
        ("slow", "connect", "on 'connect' for 16 h; p75 15 h 15 min over 20 completions", None)
    ]


def test_with_too_few_completions_the_step_is_not_judged(acme, version, now):
    finished_connect(version, now, hours=list(range(1, 20)))  # 19 samples
    # Neither a skip nor a reverted completion is a sample of how long the step takes.
    skipped = enrollment(version, user_id="skipped", status=Enrollment.Status.COMPLETED)
    complete(skipped, "connect", now - timedelta(days=2), method=StepCompletion.Method.SKIP)
    reverted = enrollment(version, user_id="reverted", current_step_key="invite", step_entered_at=now)
    complete(reverted, "connect", now - timedelta(days=2), reverted_at=now - timedelta(days=1))
    on_step(version, "waiting", "connect", now - timedelta(days=30))

    report = enrollment_signals.stuck_detect(workspace=acme, now=now)

    assert (report.active, report.flagged, report.not_judged) == (2, 0, 1)
    assert report.not_judged_steps == [
        "'connect' not judged: no expected duration and 19 completion(s), 20 needed for a p75"
    ]
    assert stuck_rows() == []


def test_a_step_starts_when_the_previous_completion_happened():
    start = timezone.now()
    rows = [
        (1, 10, start, "a", False, start + timedelta(hours=1)),
        (1, 10, start, "b", True, start + timedelta(hours=3)),  # skipped: an anchor, not a sample
        (1, 10, start, "c", False, start + timedelta(hours=4)),
        (1, 11, start, "c", False, start + timedelta(hours=2)),  # first completion: from enrolment
    ]

    durations = stuck.completion_durations(rows, wanted={(1, "a"), (1, "b"), (1, "c")})

    assert durations == {(1, "a"): [3600.0], (1, "c"): [3600.0, 7200.0]}


# --- Idempotency and resolving --------------------------------------------------------------------


def test_a_second_pass_records_nothing_new(acme, version, now):
    late = on_step(version, "late", "invite", now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=acme, now=now)

    report = enrollment_signals.stuck_detect(workspace=acme, now=now + timedelta(hours=1))

    assert (report.flagged, report.resolved) == (0, 0)
    assert stuck_rows() == [("late", "invite", "on 'invite' for 2 days; expected 1 day", None)]
    late.refresh_from_db()
    assert late.stuck_at == now


def test_a_signal_resolved_by_an_admin_is_not_raised_again_on_the_same_stay(acme, version, now):
    on_step(version, "late", "invite", now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=acme, now=now)
    enrollment_signals.signals_resolve(signals=EnrollmentSignal.objects.all(), now=now)

    report = enrollment_signals.stuck_detect(workspace=acme, now=now + timedelta(hours=1))

    assert report.flagged == 0
    assert stuck_rows() == [("late", "invite", "on 'invite' for 2 days; expected 1 day", now)]
    assert Enrollment.objects.get().stuck_at is None


def test_moving_on_resolves_the_old_steps_signal_in_the_next_pass(acme, version, now):
    late = on_step(version, "late", "invite", now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=acme, now=now)
    Enrollment.objects.filter(pk=late.pk).update(current_step_key="connect", step_entered_at=now)

    report = enrollment_signals.stuck_detect(workspace=acme, now=now + timedelta(minutes=5))

    assert (report.flagged, report.resolved, report.not_judged) == (0, 1, 1)
    assert stuck_rows() == [
        ("late", "invite", "on 'invite' for 2 days; expected 1 day", now + timedelta(minutes=5))
    ]
    late.refresh_from_db()
    assert late.stuck_at is None


def test_the_engine_resolves_on_moving_on(acme, version, now):
    late = on_step(version, "late", "invite", now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=acme, now=now)
    late.refresh_from_db()
    late.current_step_key, late.step_entered_at = "connect", now
    late.save()

    assert enrollment_signals.stuck_signals_resolve(enrollment=late, now=now) == 1
    assert enrollment_signals.stuck_signals_resolve(enrollment=late, now=now) == 0

    assert stuck_rows() == [("late", "invite", "on 'invite' for 2 days; expected 1 day", now)]
    assert late.stuck_at is None
    assert Enrollment.objects.get().stuck_at is None


def test_the_engine_keeps_the_signal_of_the_step_still_current(acme, version, now):
    late = on_step(version, "late", "invite", now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=acme, now=now)
    late.refresh_from_db()

    assert enrollment_signals.stuck_signals_resolve(enrollment=late, now=now) == 0

    assert stuck_rows() == [("late", "invite", "on 'invite' for 2 days; expected 1 day", None)]
    assert Enrollment.objects.get().stuck_at == now


def test_coming_back_to_a_step_after_moving_on_can_be_flagged_again(acme, version, now):
    late = on_step(version, "late", "invite", now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=acme, now=now)
    Enrollment.objects.filter(pk=late.pk).update(current_step_key="connect")
    enrollment_signals.stuck_detect(workspace=acme, now=now)
    back_at = now + timedelta(minutes=1)  # after the first signal was written
    Enrollment.objects.filter(pk=late.pk).update(current_step_key="invite", step_entered_at=back_at)

    report = enrollment_signals.stuck_detect(workspace=acme, now=back_at + timedelta(days=1, hours=1))

    assert report.flagged == 1
    assert [row[:3] for row in stuck_rows()] == [
        ("late", "invite", "on 'invite' for 2 days; expected 1 day"),
        ("late", "invite", "on 'invite' for 1 day 1 h; expected 1 day"),
    ]


# --- The command ----------------------------------------------------------------------------------


def test_detect_stuck_prints_counts_per_workspace(acme, version):
    now = timezone.now()
    on_step(version, "late", "invite", now - timedelta(days=3, hours=4))
    on_step(version, "fine", "invite", now - timedelta(hours=2))
    on_step(version, "unjudged", "connect", now - timedelta(days=40))
    out, err = io.StringIO(), io.StringIO()

    call_command("detect_stuck", "--workspace", "acme", stdout=out, stderr=err)

    assert out.getvalue().splitlines() == [
        "acme: 3 active on a step, 1 newly stuck, 0 over the limit but away (no event for 7 days), "
        "0 resolved, 1 not judged",
        "  'connect' not judged: no expected duration and 0 completion(s), 20 needed for a p75",
        "Done: 1 newly stuck, 0 resolved in 1 workspace(s).",
    ]
    assert err.getvalue() == "\racme: enrollments 3/3 (100%)\n"
    assert stuck_rows() == [("late", "invite", "on 'invite' for 3 days 4 h; expected 1 day", None)]

    out = io.StringIO()
    call_command("detect_stuck", stdout=out, stderr=io.StringIO())
    assert out.getvalue().splitlines() == [
        "acme: 3 active on a step, 0 newly stuck, 0 over the limit but away (no event for 7 days), "
        "0 resolved, 1 not judged",
        "  'connect' not judged: no expected duration and 0 completion(s), 20 needed for a p75",
        "Done: 0 newly stuck, 0 resolved in 1 workspace(s).",
    ]


def test_detect_stuck_refuses_an_unknown_workspace(acme):
    with pytest.raises(CommandError, match="No workspace with slug 'nope'"):
        call_command("detect_stuck", "--workspace", "nope", stdout=io.StringIO())


# --- Review flags and the admin -------------------------------------------------------------------


def test_needs_review_is_flagged_once_while_open(acme, version, now):
    person = on_step(version, "ada", "connect", now)

    first = enrollment_signals.needs_review_flag(
        enrollment=person, step_key="connect", reason="answer 'maybe' fits two choices"
    )
    again = enrollment_signals.needs_review_flag(enrollment=person, step_key="connect", reason="other")

    assert again.pk == first.pk
    assert list(EnrollmentSignal.objects.values_list("kind", "step_key", "reason", "resolved_at")) == [
        ("needs_review", "connect", "answer 'maybe' fits two choices", None)
    ]


def test_admin_lists_signals_and_resolves_them(acme, version, now):
    late = on_step(version, "late", "invite", now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=acme, now=now)
    review = enrollment_signals.needs_review_flag(enrollment=late, step_key="invite", reason="ambiguous")
    client = verified_client(AdminUserFactory(is_superuser=True))
    path = "/admin/onboarding/enrollmentsignal/"

    response = client.get(path, {"kind": "needs_review", "status": "open"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [review]

    response = post_action(client, path, "mark_resolved", [review])
    assert response.status_code == 302
    review.refresh_from_db()
    assert review.resolved_at is not None
    assert EnrollmentSignal.objects.filter(resolved_at__isnull=True).count() == 1


def test_admin_shows_signals_of_granted_workspaces_only(acme, version, now):
    from tenancy import services

    on_step(version, "late", "invite", now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=acme, now=now)
    globex = WorkspaceFactory(name="Globex", slug="globex")
    on_step(published_version(globex, STEPS), "theirs", "invite", now - timedelta(days=2))
    enrollment_signals.stuck_detect(workspace=globex, now=now)
    viewer = AdminUserFactory()
    services.workspace_grant(workspace=acme, user=viewer, can_change=False)
    client = verified_client(viewer)

    response = client.get("/admin/onboarding/enrollmentsignal/")

    assert response.status_code == 200
    assert [signal.enrollment.end_user.external_id for signal in response.context["cl"].result_list] == [
        "late"
    ]
    assert "Globex" not in response.content.decode()
    assert "mark_resolved" not in response.content.decode()  # view only: no resolve action


def test_a_pass_costs_the_same_queries_for_3_or_60_enrollments(acme, version, now):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    finished_connect(version, now, hours=list(range(1, 21)))

    def queries_for(count: int, prefix: str) -> int:
        for number in range(count):
            on_step(version, f"{prefix}-late-{number}", "invite", now - timedelta(days=2))
            on_step(version, f"{prefix}-slow-{number}", "connect", now - timedelta(days=2))
        with CaptureQueriesContext(connection) as captured:
            report = enrollment_signals.stuck_detect(workspace=acme, now=now)
        assert report.flagged == 2 * count
        return len(captured.captured_queries)

    assert queries_for(3, "small") == queries_for(30, "large")


# --- Where people are stuck: the share per step ------------------------------------------------


def _stuck_on(version, count: int, step_key: str, *, prefix: str, stuck: bool, now) -> None:
    for number in range(count):
        row = on_step(version, f"{prefix}-{step_key}-{number}", step_key, now - timedelta(days=2))
        if stuck:
            Enrollment.objects.filter(pk=row.pk).update(stuck_at=now)


def _shares_setup(acme, version, now):
    developer = published_version(acme, [{"key": "create"}, {"key": "connect"}, {"key": "report"}], key="dev")
    _stuck_on(version, 2, "invite", prefix="s", stuck=True, now=now)
    _stuck_on(version, 2, "invite", prefix="ok", stuck=False, now=now)
    _stuck_on(developer, 3, "report", prefix="s", stuck=True, now=now)
    _stuck_on(developer, 1, "report", prefix="ok", stuck=False, now=now)
    _stuck_on(developer, 5, "create", prefix="ok", stuck=False, now=now)
    other = WorkspaceFactory()
    _stuck_on(published_version(other, STEPS), 9, "invite", prefix="other", stuck=True, now=now)


def test_the_share_stuck_per_step_counts_the_steps_people_are_on(acme, version, now):
    _shares_setup(acme, version, now)

    shares = stuck_selectors.stuck_shares_by_step(workspaces=[acme])

    assert [
        (
            share.path_name,
            share.step_number,
            share.step_title,
            share.on_step,
            share.stuck,
            share.share_of_stuck,
        )
        for share in shares
    ] == [
        ("Dev", 3, "report", 4, 3, 0.6),
        ("Main", 2, "invite", 4, 2, 0.4),
        ("Dev", 1, "create", 5, 0, 0.0),
    ]
    assert shares[0].share_of_step == 0.75


def test_the_signals_admin_says_which_step_holds_the_stuck(acme, version, now):
    _shares_setup(acme, version, now)
    admin_user = AdminUserFactory()
    services.workspace_grant(workspace=acme, user=admin_user, can_change=False)

    page = verified_client(admin_user).get("/admin/onboarding/enrollmentsignal/").content.decode()

    assert "Step 3 of Dev holds 60% of the stuck users." in page
    assert "<td>Main v1</td><td>2. invite</td><td><a href=" in page  # its count links to the people
    assert "2 of 4</a></td><td>50%</td><td>40%</td><td>2.0 days</td>" in page
    assert "other-invite" not in page and ">9 of 9<" not in page
