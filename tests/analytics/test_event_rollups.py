"""The event rollups (analytics/events/rollups.py): cohorts read from them equal the raw SQL over
the events on generated data; an incremental refresh after new events, new people, trait
changes, a first enrolment and a merge stores what a rebuild stores; activation cohorts read from
the enrollment facts equal the raw SQL over enrollments; a refresh run again adds
nothing; events inside the lag wait for the next refresh; an erasure leaves no segment value of
the person in them; the event funnel builder lists the event names with their volume."""

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from analytics.events import cohorts
from analytics.events.cohorts import CohortQuery
from analytics.events.rollups import LAG, event_rollups_rebuild, event_rollups_refresh
from analytics.events.volumes import event_names_by_volume
from analytics.models import ActivityWeek, CohortCount, CohortMember, EventDayRollup
from analytics.rollups.services import rollups_refresh
from guardrails.gdpr.erasure import erasure_start
from onboarding.identity.resolution import merge_end_users
from onboarding.models import Enrollment, Event
from tenancy import services as tenancy_services
from tenancy.models import EndUser
from tests.analytics.test_dashboards import PRODUCT, _shown_rows
from tests.conftest import verified_client
from tests.factories import (
    AdminUserFactory,
    EndUserFactory,
    EnrollmentFactory,
    EventFactory,
    PublishedPathVersionFactory,
)

pytestmark = pytest.mark.django_db

START = datetime(2026, 9, 2, tzinfo=UTC)  # a Wednesday: the first cohort week starts before it
PERSONAS = ("dev", "pm", "")
NAMES = ("Login", "Export", "Invite")


def _refreshed(workspace) -> None:
    """A refresh once everything stored so far is older than the lag."""
    event_rollups_refresh(workspace=workspace, now=timezone.now() + LAG)


def _person(workspace, rng: random.Random, version) -> EndUser:
    signed_up = START + timedelta(hours=rng.randrange(0, 24 * 7 * 6))
    end_user = EndUserFactory(
        workspace=workspace, persona=rng.choice(PERSONAS), use_case=rng.choice(("a", "b"))
    )
    EndUser.objects.filter(pk=end_user.pk).update(created_at=signed_up)
    for _ in range(rng.choice((0, 1, 1, 2))):
        enrolled = signed_up + timedelta(hours=rng.randrange(-12, 24 * 20))
        status = rng.choice((Enrollment.Status.COMPLETED, Enrollment.Status.ABANDONED))
        EnrollmentFactory(
            end_user=end_user,
            path_version=version,
            enrolled_at=enrolled,
            status=status,
            completed_at=enrolled + timedelta(days=3) if status == "completed" else None,
        )
    return end_user


def _events(end_user, rng: random.Random, count: int, received_at: datetime) -> None:
    for _ in range(count):
        created_at = EndUser.objects.get(pk=end_user.pk).created_at
        moment = created_at + timedelta(hours=rng.randrange(-72, 24 * 7 * 9))
        EventFactory(end_user=end_user, name=rng.choice(NAMES), timestamp=moment, received_at=received_at)


@pytest.fixture
def generated(tenant):
    """40 people over 6 weeks from a Wednesday, half with an enrollment or two, 0-8 events each
    from 3 days before their signup to 9 weeks after, received over the last 3 days."""
    workspace = tenant[0]
    rng = random.Random(14)
    version = PublishedPathVersionFactory(path__workspace=workspace)
    people = [_person(workspace, rng, version) for _ in range(40)]
    now = timezone.now()
    for end_user in people:
        _events(end_user, rng, rng.randrange(0, 9), now - timedelta(minutes=rng.randrange(10, 3 * 24 * 60)))
    return tenant, people, version, rng


def _oracle(query: CohortQuery) -> list[tuple]:
    """The retention rows of the raw SQL over the events (the definition)."""
    sql, params = cohorts.retention_statement(query)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted((int(week), int(since), int(users)) for week, since, users in cursor.fetchall())


def _from_rollups(query: CohortQuery) -> list[tuple]:
    return sorted(
        (int(week), int(since), int(users))
        for week, since, users in cohorts.retention_rows_from_rollups(query)
    )


@pytest.mark.parametrize("by", ["signup", "enrollment"])
@pytest.mark.parametrize("segment", [{}, {"persona": "dev"}, {"persona": "pm", "use_case": "b"}])
@pytest.mark.parametrize(("first", "days", "weeks"), [(0, 42, 8), (9, 17, 4), (15, 40, 12)])
def test_cohorts_from_the_rollups_equal_the_raw_sql_over_events(generated, by, segment, first, days, weeks):
    workspace = generated[0][0]
    _refreshed(workspace)
    start = START + timedelta(days=first)
    query = CohortQuery(workspace, by, weeks, start, start + timedelta(days=days), None, segment)

    expected = _oracle(query)

    assert expected and _from_rollups(query) == expected


@pytest.mark.parametrize("segment", [{}, {"persona": "dev"}])
@pytest.mark.parametrize(("first", "days"), [(0, 60), (9, 17)])
def test_activation_cohorts_from_the_enrollment_facts_equal_the_raw_sql(generated, segment, first, days):
    workspace = generated[0][0]
    rollups_refresh(workspace=workspace)
    start = START + timedelta(days=first)
    query = CohortQuery(workspace, "signup", 8, start, start + timedelta(days=days), None, segment)
    sql, params = cohorts.activation_statement(query)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        expected = sorted((int(week), int(since), int(count)) for week, since, count in cursor.fetchall())

    assert expected and sorted(cohorts.activation_rows_from_facts(query)) == expected


def _stored(workspace) -> dict[str, list]:
    columns = (
        "end_user_id",
        "signup_day",
        "signup_week",
        "first_enrolled_day",
        "first_enrolled_week",
        "persona",
        "use_case",
    )
    return {
        "members": sorted(CohortMember.objects.filter(workspace=workspace).values_list(*columns)),
        "weeks": sorted(ActivityWeek.objects.filter(workspace=workspace).values_list("week", *columns)),
        "matrices": sorted(
            CohortCount.objects.filter(workspace=workspace, users__gt=0).values_list(
                "kind", "cohort_day", "cohort_week", "since", "persona", "use_case", "users"
            )
        ),
        "volumes": sorted(
            EventDayRollup.objects.filter(workspace=workspace).values_list("day", "event_name", "events")
        ),
    }


def test_an_incremental_refresh_stores_what_a_rebuild_does(generated):
    (workspace, *_), people, version, rng = generated
    _refreshed(workspace)
    received = timezone.now()
    newcomers = [_person(workspace, rng, version) for _ in range(5)]
    for end_user in [*people[:10], *newcomers]:
        _events(end_user, rng, 3, received)
    people[10].persona, people[11].use_case = "pm", "a"  # trait changes, saved as identify does
    people[10].save()
    people[11].save()
    never_enrolled = next(
        person for person in people if not Enrollment.objects.filter(end_user=person).exists()
    )
    EnrollmentFactory(end_user=never_enrolled, path_version=version, enrolled_at=START + timedelta(days=20))
    merged_into = merge_end_users(source=people[12], target=people[13])
    _events(merged_into, rng, 1, received)
    enrolled_again = next(
        person
        for person in people[14:]
        if Enrollment.objects.filter(end_user=person).exists() and person != never_enrolled
    )
    EnrollmentFactory(end_user=enrolled_again, path_version=version, enrolled_at=START - timedelta(days=3))
    progressed = Enrollment.objects.exclude(end_user=enrolled_again).filter(end_user__in=people[14:]).first()
    progressed.save()  # a step completed: saved, its person's first enrolment unmoved
    missed = EndUserFactory(workspace=workspace, persona="dev")  # a profile whose save no window saw
    EndUser.objects.filter(pk=missed.pk).update(created_at=START, updated_at=START)
    _events(missed, rng, 2, received)

    _refreshed(workspace)
    incremental = _stored(workspace)
    event_rollups_rebuild(workspace=workspace, now=timezone.now() + LAG)

    assert incremental == _stored(workspace)
    assert not CohortMember.objects.filter(end_user_id=people[12].pk).exists()
    assert CohortMember.objects.get(end_user_id=people[10].pk).persona == "pm"
    assert CohortMember.objects.get(end_user_id=never_enrolled.pk).first_enrolled_day == date(2026, 9, 22)
    assert CohortMember.objects.get(end_user_id=enrolled_again.pk).first_enrolled_day == date(2026, 8, 30)
    assert CohortMember.objects.get(end_user_id=missed.pk).persona == "dev"


def test_a_refresh_run_again_counts_nothing_twice(generated):
    workspace = generated[0][0]
    _refreshed(workspace)
    before = _stored(workspace)

    _refreshed(workspace)
    _refreshed(workspace)

    assert _stored(workspace) == before
    total = EventDayRollup.objects.filter(workspace=workspace).aggregate(total=Sum("events"))["total"]
    assert total == Event.objects.filter(workspace=workspace).count()


def test_events_younger_than_the_lag_wait_for_a_later_refresh(tenant):
    workspace = tenant[0]
    now = timezone.now()
    EventFactory(end_user=EndUserFactory(workspace=workspace), name="Login", received_at=now, timestamp=now)

    event_rollups_refresh(workspace=workspace, now=now)
    assert not EventDayRollup.objects.filter(workspace=workspace).exists()

    event_rollups_refresh(workspace=workspace, now=now + LAG + timedelta(seconds=1))
    event_rollups_refresh(workspace=workspace, now=now + 2 * LAG)
    assert list(EventDayRollup.objects.filter(workspace=workspace).values_list("event_name", "events")) == [
        ("Login", 1)
    ]


def test_an_erasure_leaves_the_persons_weeks_without_their_segment(generated):
    (workspace, *_), people, _, _ = generated
    _refreshed(workspace)
    person = next(
        p for p in people if p.persona == "dev" and ActivityWeek.objects.filter(end_user_id=p.pk).exists()
    )
    everyone = CohortQuery(workspace, "signup", 8, START, START + timedelta(days=42))
    developers = CohortQuery(
        workspace, "signup", 8, START, START + timedelta(days=42), None, {"persona": "dev"}
    )
    before, developers_before = _from_rollups(everyone), _from_rollups(developers)

    erasure_start(workspace=workspace, user_id=person.external_id)

    for model in (CohortMember, ActivityWeek):
        rows = model.objects.filter(end_user_id=person.pk)
        assert set(rows.values_list("persona", "use_case")) == {("", "")}
    assert _from_rollups(everyone) == before  # counts do not move, as with the kept events
    assert _from_rollups(developers) != developers_before
    _refreshed(workspace)
    assert _from_rollups(developers) == _oracle(developers)


def test_the_event_funnel_builder_lists_the_event_names_by_volume(tenant):
    workspace = tenant[0]
    end_user = EndUserFactory(workspace=workspace)
    day = datetime(2026, 10, 6, 9, tzinfo=UTC)
    for name, count in (("Login", 3), ("Export", 1)):
        for _ in range(count):
            EventFactory(end_user=end_user, name=name, timestamp=day)
    EventFactory(end_user=end_user, name="Login", timestamp=day + timedelta(days=30))  # outside the range
    EventFactory(end_user=end_user, name="", type=Event.Type.IDENTIFY, timestamp=day)  # nameless
    _refreshed(workspace)
    admin = AdminUserFactory(username="ada")
    tenancy_services.workspace_grant(workspace=workspace, user=admin, can_change=False)

    response = verified_client(admin).get(PRODUCT, {"from": "2026-10-01", "to": "2026-10-31"})

    assert response.status_code == 200
    assert _shown_rows(response, "event_names") == [["Login", "3"], ["Export", "1"]]
    assert event_names_by_volume(
        workspace=workspace, first_day=date(2026, 10, 1), last_day=date(2026, 11, 30)
    ) == [
        ("Login", 4),
        ("Export", 1),
    ]
