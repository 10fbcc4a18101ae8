"""AnyOf (core/db/lookups.py) selects what `__in` selects, on the primary key and on a foreign key,
with one array parameter on PostgreSQL."""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from core.db.lookups import AnyOf
from tenancy.models import EndUser
from tests.factories import EndUserFactory, EnrollmentFactory

pytestmark = pytest.mark.django_db


def test_any_of_selects_the_rows_in_the_list_and_binds_one_parameter_on_postgresql(tenant):
    people = [EndUserFactory(workspace=tenant[0]) for _ in range(4)]
    wanted = [people[0].pk, people[2].pk, 10**12]

    with CaptureQueriesContext(connection) as queries:
        found = sorted(EndUser.objects.filter(AnyOf(F("pk"), wanted)).values_list("pk", flat=True))

    assert found == [people[0].pk, people[2].pk]
    if connection.vendor == "postgresql":
        assert "= ANY(" in queries[0]["sql"]
    assert list(EndUser.objects.filter(AnyOf(F("pk"), []))) == []


def test_any_of_on_a_foreign_key(tenant):
    enrollments = [EnrollmentFactory(end_user=EndUserFactory(workspace=tenant[0])) for _ in range(3)]
    people = [enrollments[1].end_user_id]

    found = type(enrollments[0]).objects.filter(AnyOf(F("end_user_id"), people))

    assert [enrollment.pk for enrollment in found] == [enrollments[1].pk]
