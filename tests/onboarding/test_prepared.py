"""Prepared queries return what their querysets return, on SQLite and PostgreSQL alike."""

import pytest
from django.db import transaction
from django.forms.models import model_to_dict

from onboarding import enrollments
from onboarding.models import ApiKey, Enrollment
from onboarding.prepared import PreparedQuery
from onboarding.selectors import api_key_get_by_key
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

        prepared = enrollments.enrollment_get_for_user(workspace=enrollment.workspace, user_id="ada")

        assert _with_related(prepared) == _with_related(orm)
        assert prepared.answers == {"profile": {"role": "admin", "team_size": 3}}
        assert prepared.end_user.traits == {"plan": "pro", "seats": 4}
        assert prepared.enrolled_at == orm.enrolled_at and prepared.enrolled_at.tzinfo is not None


def test_each_value_is_bound_in_its_own_place_and_the_workspace_scopes_the_lookup(two_workspaces, tenant):
    first, second = two_workspaces

    assert enrollments.enrollment_get_for_user(workspace=second.workspace, user_id="ada").pk == second.pk
    assert enrollments.enrollment_get_for_user(workspace=tenant[0], user_id="ada").pk == first.pk
    assert enrollments.enrollment_get_for_user(workspace=tenant[0], user_id="grace") is None


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
