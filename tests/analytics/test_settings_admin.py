"""The activation window N in the admin: an admin who may change a workspace sets it, the rollups
are rebuilt with it by a queued job (not in the request), and the activation rollups then count with
the new N; an admin who may only view cannot change it, and nobody sees another tenant's row."""

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Sum

from analytics.models import AnalyticsSettings, EnrollmentRollup
from analytics.rollups.services import rollups_rebuild
from tenancy import services as tenancy_services
from tests.analytics.rollup_data import DAY_2, build_history
from tests.conftest import listed, verified_client
from tests.factories import AdminUserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db
ADD = "/admin/analytics/analyticssettings/add/"
CHANGELIST = "/admin/analytics/analyticssettings/"


@pytest.fixture
def acme():
    workspace = WorkspaceFactory(name="Acme")
    build_history(workspace)
    rollups_rebuild(workspace=workspace)
    return workspace


def _admin(workspace, *, can_change: bool):
    user = AdminUserFactory(username="grace" if can_change else "vic")
    tenancy_services.workspace_grant(workspace=workspace, user=user, can_change=can_change)
    user.user_permissions.add(*Permission.objects.filter(codename__endswith="analyticssettings"))
    return verified_client(user)


def _activated_on(workspace, day) -> int:
    rows = EnrollmentRollup.objects.filter(workspace=workspace, day=day)
    return rows.aggregate(total=Sum("activated"))["total"] or 0


def test_setting_the_window_rebuilds_the_rollups_with_it(acme, settings, django_capture_on_commit_callbacks):
    settings.JOBS_RUN_INLINE = True
    # e6 (DAY_2) completed its path 20 days after enrolment: not activated within 14 days.
    assert _activated_on(acme, DAY_2) == 0
    client = _admin(acme, can_change=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(ADD, {"workspace": acme.pk, "activation_window_days": 30}, follow=True)
    assert response.status_code == 200
    assert "Activation window set to 30 days" in response.content.decode()
    assert AnalyticsSettings.objects.get(workspace=acme).activation_window_days == 30
    assert _activated_on(acme, DAY_2) == 1
    assert set(
        EnrollmentRollup.objects.filter(workspace=acme).values_list("activation_window_days", flat=True)
    ) == {30}


def test_a_view_only_admin_cannot_set_it_and_no_one_sees_another_workspace(acme):
    AnalyticsSettings.objects.create(workspace=WorkspaceFactory(name="Globex"), activation_window_days=7)
    AnalyticsSettings.objects.create(workspace=acme, activation_window_days=21)
    client = _admin(acme, can_change=False)
    assert [row.workspace for row in listed(client.get(CHANGELIST))] == [acme]
    response = client.post(ADD, {"workspace": acme.pk, "activation_window_days": 30})
    assert response.status_code == 403
    assert AnalyticsSettings.objects.get(workspace=acme).activation_window_days == 21
