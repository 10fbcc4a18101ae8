"""Stuck by step: per path version and step, how many are stuck, their share of all the stuck and
their median time in the step, as the selector returns it and the stuck list shows it, each row
linked to the enrollments list of exactly those people."""

import html
import re
import statistics
from datetime import timedelta

import pytest
from django.utils import timezone

from onboarding.models import Enrollment
from onboarding.stuck import selectors as stuck_selectors
from paths.models import Path
from tenancy import services
from tests.conftest import listed, verified_client
from tests.factories import AdminUserFactory, WorkspaceFactory
from tests.onboarding.enrollment_rows import enrollment, published_version

pytestmark = pytest.mark.django_db

SIGNALS = "/admin/onboarding/enrollmentsignal/"

# Hours on the step of the stuck people, per (path key, step key); and how many on it are not stuck.
STUCK_HOURS = {
    ("developer-setup", "first-event"): [10, 20, 44, 80],  # even: the median is (20 + 44) / 2 = 32
    ("developer-setup", "api-key"): [5, 100, 7],  # odd: 7
    ("sales-demo", "attend"): [50],
}
NOT_STUCK = {
    ("developer-setup", "first-event"): 2,
    ("developer-setup", "api-key"): 1,
    ("developer-setup", "install"): 3,
}
STEPS = {
    "developer-setup": ["install", "api-key", "first-event", "dashboard"],
    "sales-demo": ["book", "attend"],
}
NAMES = {"developer-setup": "Developer setup", "sales-demo": "Sales demo"}


def _path(workspace, key: str):
    version = published_version(workspace, [{"key": step} for step in STEPS[key]], key=key)
    Path.objects.filter(pk=version.path_id).update(name=NAMES[key])
    return version


def _on_step(version, user_id: str, step: str, *, hours: float, stuck: bool, now, **extra) -> Enrollment:
    row = enrollment(
        version, user_id=user_id, current_step_key=step, step_entered_at=now - timedelta(hours=hours), **extra
    )
    if stuck:
        Enrollment.objects.filter(pk=row.pk).update(stuck_at=now - timedelta(minutes=1))
    return row


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def acme():
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def stuck_people(acme, now):
    """Acme's people as STUCK_HOURS and NOT_STUCK say, a completed one with a stale stuck_at, and
    Globex's five stuck on a step of the same name (never counted for Acme)."""
    versions = {key: _path(acme, key) for key in STEPS}
    for (path_key, step), hours in STUCK_HOURS.items():
        for number, each in enumerate(hours):
            _on_step(versions[path_key], f"stuck-{step}-{number}", step, hours=each, stuck=True, now=now)
    for (path_key, step), count in NOT_STUCK.items():
        for number in range(count):
            _on_step(versions[path_key], f"fine-{step}-{number}", step, hours=1, stuck=False, now=now)
    _on_step(
        versions["developer-setup"],
        "done",
        "first-event",
        hours=500,
        stuck=True,
        now=now,
        status=Enrollment.Status.COMPLETED,
    )
    globex = WorkspaceFactory(name="Globex", slug="globex")
    theirs = _path(globex, "developer-setup")
    for number in range(5):
        _on_step(theirs, f"globex-{number}", "first-event", hours=900, stuck=True, now=now)
    return versions


def expected_rows() -> list[tuple]:
    """(path, step position, step, stuck, share of all the stuck, median), computed here."""
    total = sum(len(hours) for hours in STUCK_HOURS.values())
    rows = [
        (
            NAMES[path_key],
            STEPS[path_key].index(step) + 1,
            step,
            len(hours),
            len(hours) / total,
            timedelta(hours=statistics.median(hours)),
        )
        for (path_key, step), hours in STUCK_HOURS.items()
    ]
    return sorted(rows, key=lambda row: -row[3])


def test_stuck_count_share_position_and_median_per_step(acme, stuck_people, now):
    shares = stuck_selectors.stuck_shares_by_step(workspaces=[acme], now=now)

    stuck_rows = [
        (
            share.path_name,
            share.step_number,
            share.step_title,
            share.stuck,
            share.share_of_stuck,
            share.median_time_in_step,
        )
        for share in shares
        if share.stuck
    ]
    assert stuck_rows == expected_rows()
    assert stuck_rows[0][:5] == ("Developer setup", 3, "first-event", 4, 0.5)
    assert stuck_rows[0][5] == timedelta(hours=32)
    nobody_stuck = [share for share in shares if not share.stuck]
    assert [(share.step_key, share.on_step, share.median_time_in_step) for share in nobody_stuck] == [
        ("install", 3, None)
    ]
    assert {share.path_version_id for share in shares} == {stuck_people[key].pk for key in STEPS}


def test_the_medians_read_two_rows_per_step_whatever_the_volume(acme, stuck_people, now):
    medians = stuck_selectors.median_stuck_times_in_step(workspaces=[acme], now=now)

    developer = stuck_people["developer-setup"].pk
    assert medians == {
        (developer, "first-event"): timedelta(hours=32),
        (developer, "api-key"): timedelta(hours=7),
        (stuck_people["sales-demo"].pk, "attend"): timedelta(hours=50),
    }


def test_the_summary_costs_three_queries_for_any_number_of_stuck(
    acme, stuck_people, now, django_assert_num_queries
):
    for number in range(40):
        _on_step(stuck_people["sales-demo"], f"more-{number}", "book", hours=number + 1, stuck=True, now=now)

    with django_assert_num_queries(3):
        shares = stuck_selectors.stuck_shares_by_step(workspaces=[acme], now=now)

    book = next(share for share in shares if share.step_key == "book")
    assert (book.stuck, book.median_time_in_step) == (40, timedelta(hours=statistics.median(range(1, 41))))


@pytest.fixture
def viewer(acme):
    user = AdminUserFactory(username="viewer")
    services.workspace_grant(workspace=acme, user=user, can_change=False)
    return verified_client(user)


def test_the_stuck_list_opens_with_the_step_that_holds_the_most_stuck(stuck_people, viewer):
    page = viewer.get(SIGNALS).content.decode()

    assert "Step 3 of Developer setup holds 50% of the stuck users." in page
    assert "They have been on it for a median of 1.3 days." in page  # 32 hours
    assert "<td>Developer setup v1</td><td>2. api-key</td>" in page
    assert "3 of 4</a></td><td>75%</td><td>38%</td><td>7.0 hours</td>" in page
    assert "1 of 1</a></td><td>100%</td><td>12%</td><td>2.1 days</td>" in page  # 50 hours
    assert "Globex" not in page and "globex-" not in page


def test_each_row_links_to_the_list_of_exactly_its_stuck_people(stuck_people, viewer):
    page = viewer.get(SIGNALS).content.decode()
    links = [
        html.unescape(link) for link in re.findall(r'href="(/admin/onboarding/enrollment/\?[^"]+)"', page)
    ]

    landed = {}
    for link in links:
        people = [row.end_user.external_id for row in listed(viewer.get(link))]
        step = re.search(r"step=([\w-]+)", link).group(1)
        landed[step] = sorted(people)

    assert landed == {
        step: sorted(f"stuck-{step}-{number}" for number in range(len(hours)))
        for (_, step), hours in STUCK_HOURS.items()
    }


def test_a_superuser_sees_each_workspace_named_and_counted(stuck_people):
    client = verified_client(AdminUserFactory(username="root", is_superuser=True))

    page = client.get(SIGNALS).content.decode()

    total = sum(len(hours) for hours in STUCK_HOURS.values()) + 5
    assert f"Step 3 of Developer setup holds {round(100 * 5 / total)}% of the stuck users." in page
    assert "<td>Globex</td>" in page and "<td>Acme</td>" in page
