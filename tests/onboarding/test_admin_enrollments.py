"""The enrollments list in the admin, as a growth admin reads it: only their workspaces' people,
each filter narrowing the rows, links to the people, read-only, and a bounded number of queries."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onboarding.models import Enrollment
from paths.models import PathVersion, Step
from tenancy import services
from tests.conftest import listed, verified_client
from tests.factories import AdminUserFactory, WorkspaceFactory
from tests.onboarding.enrollment_rows import enrollment, published_version

pytestmark = pytest.mark.django_db

URL = "/admin/onboarding/enrollment/"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

SETUP_V1 = [
    {"key": "create-project", "title": "Create a project"},
    {"key": "invite", "title": "Invite a teammate"},
    {"key": "connect", "title": "Connect data"},
]
SETUP_V2 = [
    {"key": "create-project", "title": "Create a project"},
    {"key": "connect", "title": "Connect your data"},
    {"key": "launch", "title": "Launch"},
]


def _version(workspace, steps, *, key):
    """A path's version 1 (published); steps' titles as given."""
    version = published_version(workspace, [{"key": step["key"]} for step in steps], key=key)
    for step in steps:
        Step.objects.filter(path_version=version, key=step["key"]).update(title=step["title"])
    return version


def _next_version(version, steps):
    """Version 2 of the same path, published; version 1 archived (its enrollments stay on it)."""
    PathVersion.objects.filter(pk=version.pk).update(status=PathVersion.Status.ARCHIVED)
    newer = PathVersion.objects.create(
        path=version.path, number=2, status=PathVersion.Status.PUBLISHED, published_at=NOW
    )
    for order, step in enumerate(steps):
        Step.objects.create(path_version=newer, order=order, **step)
    return newer


def _person(version, user_id, *, days_ago, step="", status=Enrollment.Status.ACTIVE, stuck_since=None):
    enrolled_at = NOW - timedelta(days=days_ago)
    row = enrollment(
        version,
        user_id=user_id,
        current_step_key=step,
        enrolled_at=enrolled_at,
        status=status,
        completed_at=NOW - timedelta(days=3) if status == Enrollment.Status.COMPLETED else None,
    )
    if stuck_since is not None:
        Enrollment.objects.filter(pk=row.pk).update(stuck_at=stuck_since)
        row.refresh_from_db()
    return row


@pytest.fixture
def acme():
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def globex():
    return WorkspaceFactory(name="Globex", slug="globex")


@pytest.fixture
def people(acme, globex):
    """Six people in Acme on two paths (Setup in two versions, Dev), one in Globex."""
    setup_v1 = _version(acme, SETUP_V1, key="setup")
    setup_v2 = _next_version(setup_v1, SETUP_V2)
    dev = _version(
        acme,
        [{"key": "install", "title": "Install the SDK"}, {"key": "first-event", "title": "Send"}],
        key="dev",
    )
    theirs = _version(globex, SETUP_V1, key="setup")
    rows = {
        "ada": _person(setup_v1, "ada", days_ago=10, step="invite", stuck_since=NOW - timedelta(days=1)),
        "bob": _person(setup_v1, "bob", days_ago=9, status=Enrollment.Status.COMPLETED),
        "cy": _person(setup_v2, "cy", days_ago=5, step="connect", stuck_since=NOW - timedelta(hours=5)),
        "dee": _person(
            setup_v2, "dee", days_ago=4, step="create-project", status=Enrollment.Status.ABANDONED
        ),
        "eve": _person(dev, "eve", days_ago=2, step="install"),
        "fay": _person(dev, "fay", days_ago=1, step="first-event", stuck_since=NOW - timedelta(hours=2)),
        "gus": _person(theirs, "gus", days_ago=3, step="invite", stuck_since=NOW - timedelta(days=1)),
    }
    return rows, {"setup_v1": setup_v1, "setup_v2": setup_v2, "dev": dev, "theirs": theirs}


@pytest.fixture
def viewer(acme):
    """An admin granted Acme, to view only."""
    user = AdminUserFactory(username="viewer")
    services.workspace_grant(workspace=acme, user=user, can_change=False)
    return verified_client(user)


def shown(client, **params) -> list[str]:
    return [row.end_user.external_id for row in listed(client.get(URL, params))]


def filter_choices(response, parameter_name: str) -> list[tuple[str, str]]:
    for spec in response.context["cl"].filter_specs:
        if getattr(spec, "parameter_name", None) == parameter_name:
            return [(str(value), str(label)) for value, label in spec.lookup_choices]
    raise AssertionError(f"no filter {parameter_name}")


# --- What is shown ---------------------------------------------------------------------------


def test_the_list_was_a_404_and_now_shows_the_admins_workspaces_people_newest_first(people, viewer):
    assert shown(viewer) == ["fay", "eve", "dee", "cy", "bob", "ada"]


def test_each_row_links_to_the_person_and_says_path_step_and_stuck(people, viewer):
    rows, _ = people

    page = viewer.get(URL).content.decode()

    ada = rows["ada"]
    assert f'<a href="/admin/onboarding/enduser/{ada.end_user_id}/change/">ada</a>' in page
    assert "Setup v1" in page and "Setup v2" in page and "Dev v1" in page
    assert "Invite a teammate" in page  # the current step's title, not its key
    assert "Connect your data" in page  # the title of the version the person is on
    assert "yes, since 2026-03-09 12:00" in page
    assert "gus" not in page and "Globex" not in page


def test_another_workspaces_enrollment_cannot_be_opened(people, viewer):
    rows, _ = people

    response = viewer.get(f"{URL}{rows['gus'].pk}/change/")

    assert response.status_code == 302  # "does not exist", back to the index
    assert viewer.get(f"{URL}{rows['ada'].pk}/change/").status_code == 200


def test_read_only_no_add_no_change(people, acme):
    rows, _ = people
    editor = AdminUserFactory(username="editor")
    services.workspace_grant(workspace=acme, user=editor, can_change=True)
    client = verified_client(editor)
    ada = rows["ada"]

    assert client.get(f"{URL}add/").status_code == 403
    detail = client.get(f"{URL}{ada.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert client.post(f"{URL}{ada.pk}/change/", {"status": "completed"}).status_code == 403
    ada.refresh_from_db()
    assert (ada.status, ada.revision) == (Enrollment.Status.ACTIVE, 1)


def test_a_superuser_sees_every_workspace_and_can_pick_one(people, acme):
    client = verified_client(AdminUserFactory(username="root", is_superuser=True))

    assert "gus" in shown(client)
    assert shown(client, workspace=acme.pk) == ["fay", "eve", "dee", "cy", "bob", "ada"]


# --- Filters ---------------------------------------------------------------------------------


def test_path_version_status_and_stuck_filters_narrow_the_rows(people, viewer):
    _, versions = people
    setup_path = versions["setup_v1"].path_id

    assert shown(viewer, path=setup_path) == ["dee", "cy", "bob", "ada"]
    assert shown(viewer, path_version=versions["setup_v2"].pk) == ["dee", "cy"]
    assert shown(viewer, path_version=versions["dev"].pk) == ["fay", "eve"]
    assert shown(viewer, status="completed") == ["bob"]
    assert shown(viewer, status="abandoned") == ["dee"]
    assert shown(viewer, stuck="yes") == ["fay", "cy", "ada"]
    assert shown(viewer, stuck="no") == ["eve", "dee", "bob"]
    assert shown(viewer, path=setup_path, stuck="yes") == ["cy", "ada"]
    assert shown(viewer, path_version=versions["theirs"].pk) == []  # another tenant's: nothing


def test_the_step_filter_offers_the_steps_of_the_chosen_version_or_path(people, viewer):
    _, versions = people
    setup_path = versions["setup_v1"].path_id

    assert shown(viewer, path_version=versions["setup_v2"].pk, step="connect") == ["cy"]
    assert shown(viewer, path=setup_path, step="invite") == ["ada"]
    assert shown(viewer, path=setup_path, step="connect") == ["cy"]
    assert shown(viewer, path_version=versions["setup_v1"].pk, step="connect") == []

    by_version = viewer.get(URL, {"path_version": versions["setup_v2"].pk})
    assert filter_choices(by_version, "step") == [
        ("create-project", "1. Create a project"),
        ("connect", "2. Connect your data"),
        ("launch", "3. Launch"),
    ]
    by_path = viewer.get(URL, {"path": setup_path})
    assert filter_choices(by_path, "step") == [
        ("create-project", "Create a project"),
        ("connect", "Connect your data"),
        ("launch", "Launch"),
        ("invite", "Invite a teammate"),
    ]
    assert filter_choices(by_path, "path_version") == [
        (str(versions["setup_v2"].pk), "Setup v2"),
        (str(versions["setup_v1"].pk), "Setup v1"),
    ]
    unfiltered = viewer.get(URL).context["cl"].filter_specs
    assert "step" not in [getattr(spec, "parameter_name", None) for spec in unfiltered]  # no path: no step


def test_the_path_filter_lists_the_admins_paths_only(people, viewer):
    _, versions = people

    assert filter_choices(viewer.get(URL), "path") == [
        (str(versions["dev"].path_id), "Dev"),
        (str(versions["setup_v1"].path_id), "Setup"),
    ]


def test_enrolled_date_range_and_exact_external_id_search(people, viewer):
    assert shown(
        viewer, **{"enrolled_at__range__gte": "2026-03-05", "enrolled_at__range__lte": "2026-03-08"}
    ) == [
        "eve",
        "dee",
        "cy",
    ]
    assert shown(viewer, q="cy") == ["cy"]
    assert shown(viewer, q="c") == []  # exact: the index answers it
    assert shown(viewer, q="gus") == []


# --- Cost ------------------------------------------------------------------------------------


def _many(versions, count: int, prefix: str) -> None:
    spread = [
        (versions["setup_v1"], "invite"),
        (versions["setup_v2"], "connect"),
        (versions["setup_v2"], "launch"),
        (versions["dev"], "install"),
    ]
    for number in range(count):
        version, step = spread[number % len(spread)]
        stuck_since = NOW - timedelta(hours=number) if number % 3 == 0 else None
        _person(version, f"{prefix}-{number}", days_ago=number % 20, step=step, stuck_since=stuck_since)


def test_the_changelist_costs_the_same_queries_for_3_or_30_rows(people, viewer, django_assert_num_queries):
    _, versions = people
    params = {"path": versions["setup_v1"].path_id, "path_version": versions["setup_v2"].pk, "stuck": "no"}
    Enrollment.objects.all().delete()
    _many(versions, 3, "few")
    viewer.get(URL)  # the session's and the content types' first reads, out of the count
    with CaptureQueriesContext(connection) as few:
        assert len(listed(viewer.get(URL))) == 3
        viewer.get(URL, params)
    _many(versions, 27, "more")
    on_v2_not_stuck = Enrollment.objects.filter(
        path_version=versions["setup_v2"], stuck_at__isnull=True
    ).count()

    with django_assert_num_queries(len(few.captured_queries)):
        assert len(listed(viewer.get(URL))) == 30
        assert len(listed(viewer.get(URL, params))) == on_v2_not_stuck
