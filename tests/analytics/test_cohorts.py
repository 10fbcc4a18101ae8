"""Cohort retention and activation cohorts over known users, events and enrollments; the
expected matrices are worked out by hand in each test. "Any event" is read from the event
rollups, refreshed here before each request as the scheduler would have."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.events import raw
from analytics.events.rollups import LAG, event_rollups_refresh
from analytics.rollups.services import rollups_refresh
from onboarding.models import Enrollment
from tenancy.models import EndUser
from tests.conftest import key_client
from tests.factories import EndUserFactory, EnrollmentFactory, EventFactory, PublishedPathVersionFactory

URL = "/api/v1/analytics/cohorts"
RANGE = {"from": "2026-10-05", "to": "2026-10-18"}  # two whole weeks, Monday to Sunday


def _at(day: int, hour: int = 12, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def _signed_up(workspace, when: datetime, **traits) -> EndUser:
    end_user = EndUserFactory(workspace=workspace, **traits)
    EndUser.objects.filter(pk=end_user.pk).update(created_at=when)  # auto_now_add ignores a value
    return end_user


def _get(tenant, params: dict):
    """The cohorts API once the event rollups have seen everything stored so far."""
    rollups_refresh(workspace=tenant[0])
    # A second on: with the clock frozen (frozen_now), EventFactory still stamps received_at by
    # the real one, which it holds from before the freeze.
    event_rollups_refresh(workspace=tenant[0], now=timezone.now() + LAG + timedelta(seconds=1))
    return key_client(tenant[2]).get(URL, params)


def _did(end_user, name: str, when: datetime) -> None:
    EventFactory(end_user=end_user, name=name, timestamp=when)


@pytest.fixture
def signups(tenant):
    """Week of 5 Oct: a1, a2, a3 (a3 late on Sunday); week of 12 Oct: b1, b2; c1 after the range."""
    workspace = tenant[0]
    a1 = _signed_up(workspace, _at(5), persona="dev")
    a2 = _signed_up(workspace, _at(7))
    a3 = _signed_up(workspace, _at(11, hour=23))
    b1 = _signed_up(workspace, _at(12, hour=0), persona="dev")
    _signed_up(workspace, _at(14))  # b2: never seen again
    c1 = _signed_up(workspace, _at(20))
    _did(a1, "Login", _at(6))  # week 0
    _did(a1, "Login", _at(14))  # week 1
    _did(a1, "Export", _at(27))  # week 3 (Monday 26 Oct starts it)
    _did(a2, "Login", _at(20))  # week 2
    _did(a3, "Login", _at(12, hour=0))  # week 1: the Monday right after a Sunday signup
    _did(b1, "Login", _at(13))  # week 0
    _did(b1, "Login", _at(15))  # week 0 again: counted once
    _did(b1, "Login", _at(3, month=11))  # week 3
    _did(c1, "Login", _at(20))  # not in a cohort of the range
    return tenant


def test_signup_cohorts_count_users_active_in_each_week_since(signups):
    response = _get(signups, {"by": "signup", "weeks": 4, **RANGE})

    assert response.status_code == 200, response.json()
    cohorts = response.json()["cohorts"]
    assert [(cohort["week_start"], cohort["size"]) for cohort in cohorts] == [
        ("2026-10-05", 3),
        ("2026-10-12", 2),
    ]
    assert cohorts[0]["retained"] == [1, 2, 1, 1, 0]
    assert cohorts[1]["retained"] == [1, 0, 0, 1, 0]
    assert cohorts[0]["retention"] == [0.3333, 0.6667, 0.3333, 0.3333, 0.0]
    assert cohorts[1]["retention"] == [0.5, 0.0, 0.0, 0.5, 0.0]


def test_a_chosen_event_counts_only_that_event(signups):
    cohorts = _get(signups, {"event": "Login", "weeks": 4, **RANGE}).json()["cohorts"]

    assert cohorts[0]["retained"] == [1, 2, 1, 0, 0]  # a1's week-3 event was an Export


def test_segment_filters_narrow_the_cohorts(signups):
    cohorts = _get(signups, {"persona": "dev", "weeks": 4, **RANGE}).json()["cohorts"]

    assert [(cohort["size"], cohort["retained"]) for cohort in cohorts] == [
        (1, [1, 1, 0, 1, 0]),
        (1, [1, 0, 0, 1, 0]),
    ]


def test_weeks_that_have_not_begun_are_null(tenant, frozen_now):
    this_week = raw.week_start(raw.week_number_of(frozen_now.timestamp()))
    end_user = _signed_up(tenant[0], frozen_now)
    _did(end_user, "Login", frozen_now)

    body = _get(tenant, {"weeks": 3, "from": this_week}).json()

    assert body["cohorts"] == [
        {
            "week_start": this_week,
            "size": 1,
            "retained": [1, None, None, None],
            "retention": [1.0, None, None, None],
        }
    ]


def _enrolled(workspace, version, when: datetime, *, completed: datetime | None = None) -> Enrollment:
    end_user = _signed_up(workspace, when)
    status = Enrollment.Status.COMPLETED if completed else Enrollment.Status.ACTIVE
    return EnrollmentFactory(
        end_user=end_user, path_version=version, enrolled_at=when, completed_at=completed, status=status
    )


@pytest.fixture
def enrollments(tenant):
    """Week of 5 Oct: three enrolled, one completed the same week, one two weeks later; week of
    12 Oct: one, not completed. One enrolled on 20 Oct, outside the range."""
    workspace = tenant[0]
    version = PublishedPathVersionFactory(path__workspace=workspace)
    first = _enrolled(workspace, version, _at(5), completed=_at(9))
    _enrolled(workspace, version, _at(6), completed=_at(21))
    _enrolled(workspace, version, _at(8))
    _enrolled(workspace, version, _at(13))
    _enrolled(workspace, version, _at(20), completed=_at(21))
    _did(first.end_user, "Login", _at(13))
    return tenant


def test_activation_cohorts_share_of_each_enrolment_week_completed(enrollments):
    body = _get(enrollments, {"weeks": 3, **RANGE}).json()

    assert body["activation"] == [
        {
            "week_start": "2026-10-05",
            "enrollments": 3,
            "activated": 2,
            "activation_share": 0.6667,
            "activated_by_week": [1, 1, 2, 2],
            "activated_share_by_week": [0.3333, 0.3333, 0.6667, 0.6667],
        },
        {
            "week_start": "2026-10-12",
            "enrollments": 1,
            "activated": 0,
            "activation_share": 0.0,
            "activated_by_week": [0, 0, 0, 0],
            "activated_share_by_week": [0.0, 0.0, 0.0, 0.0],
        },
    ]


def test_enrolment_cohorts_group_users_by_their_first_enrolment_week(enrollments):
    body = _get(enrollments, {"by": "enrollment", "weeks": 2, **RANGE}).json()

    assert [(cohort["week_start"], cohort["size"], cohort["retained"]) for cohort in body["cohorts"]] == [
        ("2026-10-05", 3, [0, 1, 0]),  # the first enrolled user logged in the next week
        ("2026-10-12", 1, [0, 0, 0]),
    ]


def test_a_timed_out_query_returns_the_last_cohorts_marked_stale(signups, monkeypatch):
    client = key_client(signups[2])
    fresh = _get(signups, {"weeks": 4, **RANGE}).json()

    def timed_out(compute):
        raise raw.QueryTimedOut("canceling statement due to statement timeout")

    monkeypatch.setattr(raw, "execute_with_timeout", timed_out)
    stale = client.get(URL, {"weeks": 4, **RANGE}).json()
    uncached = client.get(URL, {"weeks": 5, **RANGE})

    assert stale["stale"] is True and stale["cohorts"] == fresh["cohorts"]
    assert uncached.status_code == 503


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"by": "birthday"}, "by"),
        ({"weeks": 13}, "weeks"),
        ({"weeks": 0}, "weeks"),
        ({"from": "2026-10-19", "to": "2026-10-18"}, "to"),
        ({"from": "2025-01-01", "to": "2026-10-18"}, "from"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(tenant, query, field):
    response = _get(tenant, query)

    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]


def test_another_workspace_sees_none_of_these_cohorts(signups, other_tenant):
    body = _get(other_tenant, {"weeks": 4, **RANGE}).json()

    assert body["cohorts"] == [] and body["activation"] == []
