"""Prepared queries return what their querysets return, on SQLite and PostgreSQL alike."""

import pytest
from django.db import transaction
from django.forms.models import model_to_dict

from core.db.prepared import PreparedQuery
from onboarding.models import Enrollment
from onboarding.progress import selectors as progress_selectors
from tenancy.models import ApiKey
from tenancy.selectors import api_key_get_by_key
from tests.onboarding.progress_setup import enrol, published_path

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {**model_to_dict(instance), "pk": instance.pk}


def _with_related(enrollment: Enrollment) -> tuple:
    return (
        _fields(enrollment),
        _fields(enrollment.end_user),
        _fields(enrollment.path_version),
        _fields(enrollment.path_version.path),
    )


@pytest.fixture
def two_workspaces(tenant, other_tenant):
    """The same user id in two workspaces, each enrolled, with traits and answers to convert."""
    enrolled = []
    for workspace, write_key, _ in (tenant, other_tenant):
        published_path(workspace)
        enrollment = enrol(write_key, "ada", workspace)
        enrollment.answers = {"profile": {"role": "admin", "team_size": 3}}
        enrollment.save()
        enrollment.end_user.traits = {"plan": "pro", "seats": 4}
        enrollment.end_user.save()
        enrolled.append(enrollment)
    return enrolled


def test_the_enrollment_lookup_returns_what_the_orm_returns(two_workspaces):
    for enrollment in two_workspaces:
        orm = Enrollment.objects.select_related("path_version__path", "end_user").get(pk=enrollment.pk)

        prepared = progress_selectors.enrollment_get_for_user(workspace=enrollment.workspace, user_id="ada")

        assert _with_related(prepared) == _with_related(orm)
        assert prepared.answers == {"profile": {"role": "admin", "team_size": 3}}
        assert prepared.end_user.traits == {"plan": "pro", "seats": 4}
        assert prepared.enrolled_at == orm.enrolled_at and prepared.enrolled_at.tzinfo is not None


def test_each_value_is_bound_in_its_own_place_and_the_workspace_scopes_the_lookup(two_workspaces, tenant):
    first, second = two_workspaces

    assert (
        progress_selectors.enrollment_get_for_user(workspace=second.workspace, user_id="ada").pk == second.pk
    )
    assert progress_selectors.enrollment_get_for_user(workspace=tenant[0], user_id="ada").pk == first.pk
    assert progress_selectors.enrollment_get_for_user(workspace=tenant[0], user_id="grace") is None


def test_a_locking_query_runs_in_the_callers_transaction(two_workspaces):
    locked = PreparedQuery(lambda pk: Enrollment.objects.select_for_update().filter(pk=pk).order_by(), -1)
    with transaction.atomic():
        [row] = locked.all(two_workspaces[0].pk)

    assert row.pk == two_workspaces[0].pk


def test_the_api_key_lookup_returns_the_key_with_its_workspace(tenant):
    workspace, write_key, _ = tenant

    found = api_key_get_by_key(key=write_key)

    assert _fields(found) == _fields(ApiKey.objects.get(pk=found.pk))
    assert _fields(found.workspace) == _fields(workspace)
    assert api_key_get_by_key(key="wk_unknown") is None


def test_placeholders_must_be_distinct_and_all_bound():
    same_twice = PreparedQuery(lambda a, b: Enrollment.objects.filter(pk=a, end_user_id=b), 1, 1)
    unused = PreparedQuery(lambda a, b: Enrollment.objects.filter(pk=a), 1, 2)

    for query in (same_twice, unused):
        with pytest.raises(ValueError, match="placeholders"):
            query.all(5, 6)


def test_one_persons_events_read_through_the_prepared_query_equal_the_orms(tenant, other_tenant):
    from onboarding.progress.inputs import load_events
    from tests.onboarding.progress_setup import track

    workspace, write_key, _ = tenant
    published_path(workspace)
    published_path(other_tenant[0])
    first, second = (enrol(write_key, user_id, workspace) for user_id in ("ada", "grace"))
    for user_id in ("ada", "grace"):
        assert track(write_key, user_id, "Project Created", plan={"tier": "pro"}, seats=4) == 200
        assert track(write_key, user_id, "Report Shared") == 200
    enrol(other_tenant[1], "ada", other_tenant[0])
    assert track(other_tenant[1], "ada", "Project Created") == 200
    names = ["Project Created", "Report Shared", "Never Sent"]

    alone = load_events(workspace_id=workspace.pk, end_user_ids=[first.end_user_id], names=names)
    together = load_events(
        workspace_id=workspace.pk, end_user_ids=[first.end_user_id, second.end_user_id], names=names
    )

    assert dict(alone) == {key: events for key, events in together.items() if key[0] == first.end_user_id}
    [created] = alone[(first.end_user_id, "Project Created")]
    assert created.properties == {"plan": {"tier": "pro"}, "seats": 4}
    assert created.timestamp.tzinfo is not None
    assert len(alone) == 2  # nothing for a name never sent


def test_a_values_list_query_gives_rows_not_instances(two_workspaces):
    enrollment = two_workspaces[0]
    statuses = PreparedQuery(lambda pk: Enrollment.objects.filter(pk=pk).values_list("pk", "answers"), -1)

    assert statuses.rows(enrollment.pk) == [[enrollment.pk, {"profile": {"role": "admin", "team_size": 3}}]]
    with pytest.raises(TypeError, match="rows"):
        statuses.all(enrollment.pk)
