"""The model registry in the admin, as a growth admin with a verified authenticator uses it: the
versions list and a version's read-only page (metrics, schema hash, artifact size, transitions,
alerts), the buttons going through the registry's services with refusals shown with their reason,
the override form, "Roll back <name>", alerts acknowledged; scoped to granted workspaces."""

import pytest
from django.contrib.messages import get_messages

from experiments.models import Experiment
from ml.models import ModelAlert, ModelVersion
from ml.registry import services
from tenancy import services as tenancy_services
from tenancy.models import AuditLog
from tests.conftest import listed, post_action, verified_client
from tests.factories import AdminUserFactory, WorkspaceFactory
from tests.ml.conftest import register_tiny

pytestmark = pytest.mark.django_db
Status = ModelVersion.Status
CHANGELIST = "/admin/ml/modelversion/"
ALERTS = "/admin/ml/modelalert/"


@pytest.fixture
def admin_user(ml_workspace):
    user = AdminUserFactory(username="alice")
    tenancy_services.workspace_grant(workspace=ml_workspace, user=user, can_change=True)
    return user


@pytest.fixture
def client(admin_user):
    return verified_client(admin_user)


@pytest.fixture
def viewer(ml_workspace):
    user = AdminUserFactory(username="victor")
    tenancy_services.workspace_grant(workspace=ml_workspace, user=user, can_change=False)
    return verified_client(user)


def page(version) -> str:
    return f"{CHANGELIST}{version.pk}/change/"


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def status_of(version) -> str:
    return ModelVersion.objects.get(pk=version.pk).status


def test_the_list_shows_the_workspaces_versions_with_auc_and_filters_by_status(client, trained):
    first, second = trained(), trained(metrics={"auc": 0.8125})
    services.model_to_shadow(model_version=second)
    elsewhere = WorkspaceFactory(name="Globex")
    register_tiny(elsewhere)
    assert {each.pk for each in listed(client.get(CHANGELIST))} == {first.pk, second.pk}
    assert [each.pk for each in listed(client.get(CHANGELIST, {"status__exact": "shadow"}))] == [second.pk]
    content = client.get(CHANGELIST).content.decode()
    assert "0.812" in content and "0.710" in content


def test_a_versions_page_shows_metrics_schema_artifact_transitions_and_alerts(client, trained):
    version = trained()
    services.model_to_shadow(model_version=version, reason="agreement first")
    ModelAlert.objects.create(
        workspace=version.workspace, model_version=version, kind="drift", message="persona PSI 0.31"
    )
    content = client.get(page(version)).content.decode()
    assert "0.710" in content and "0.620" in content  # AUC, log loss
    assert "<td>0.2-0.3</td><td>0.300</td><td>0.280</td><td>60</td>" in content  # a calibration bin
    assert "expected calibration error 0.021" in content
    assert "<td>model</td><td>0.360</td><td>[0.330, 0.390]</td><td>+0.050 [0.020, 0.080]</td>" in content
    assert version.feature_schema_hash in content
    assert f"({version.artifact_bytes:,} bytes)" in content
    assert "candidate → shadow" in content and "agreement first" in content
    assert "persona PSI 0.31" in content
    assert 'data-step="ab"' in content and 'data-step="override"' in content
    assert 'name="_save"' not in content  # read-only


def test_the_shadow_and_ab_buttons_move_the_version(client, trained):
    version = trained()
    response = client.post(f"{CHANGELIST}{version.pk}/shadow/")
    assert response.status_code == 302 and status_of(version) == Status.SHADOW
    assert messages_of(response) == ["path_classifier@1.0.0 moved to shadow."]
    client.post(f"{CHANGELIST}{version.pk}/ab/")
    assert status_of(version) == Status.AB
    experiment = Experiment.objects.get(kind=Experiment.Kind.MODEL)
    assert experiment.status == Experiment.Status.RUNNING
    assert AuditLog.objects.filter(action="ml.model_ab_start", actor__username="alice").count() == 1


def test_promote_without_an_ab_is_refused_with_the_reason_shown_and_audited(client, trained):
    version = trained()
    response = client.post(f"{CHANGELIST}{version.pk}/promote/")
    (message,) = messages_of(response)
    assert message.startswith(
        "path_classifier@1.0.0 was not promoted: promotion: path_classifier@1.0.0 has no A/B"
    )
    assert status_of(version) == Status.CANDIDATE
    (refused,) = AuditLog.objects.filter(action="admin.promote_refused")
    assert "no A/B result" in refused.changes["reason"]


def test_promote_with_override_asks_for_the_reason_then_promotes_audited(client, trained):
    version = trained()
    url = f"{CHANGELIST}{version.pk}/override/"
    form = client.get(url).content.decode()
    assert "refused" in form and "has no A/B result" in form
    response = client.post(url, {"reason": "   "})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    assert status_of(version) == Status.CANDIDATE
    response = client.post(url, {"reason": "launch tomorrow, A/B after"})
    assert messages_of(response) == ["path_classifier@1.0.0 promoted with an override."]
    assert status_of(version) == Status.ACTIVE
    (row,) = AuditLog.objects.filter(action="ml.model_promote_override")
    assert row.changes["reason"] == "launch tomorrow, A/B after" and row.actor.username == "alice"


def test_roll_back_is_offered_on_the_list_and_restores_the_previous_active(client, trained):
    first, second = trained(), trained()
    services.model_promote(model_version=first, override_reason="first")
    services.model_promote(model_version=second, override_reason="second")
    content = client.get(CHANGELIST).content.decode()
    assert "Roll back path_classifier (to 1.0.0), Acme" in content
    response = client.post(f"{CHANGELIST}{second.pk}/rollback/")
    assert response.status_code == 302 and response["Location"] == page(first)
    assert messages_of(response) == ["path_classifier@1.1.0 retired, path_classifier@1.0.0 is active again."]
    assert (status_of(first), status_of(second)) == (Status.ACTIVE, Status.RETIRED)
    assert AuditLog.objects.filter(action="ml.model_rollback").count() == 2
    response = client.post(f"{CHANGELIST}{first.pk}/rollback/")
    assert "replaced no version" in messages_of(response)[-1]


def test_the_rollback_action_on_the_list(client, trained):
    first, second = trained(), trained()
    services.model_promote(model_version=first, override_reason="first")
    services.model_promote(model_version=second, override_reason="second")
    response = post_action(client, CHANGELIST, "rollback_models", [second])
    assert messages_of(response) == ["path_classifier: path_classifier@1.0.0 is active again."]
    assert status_of(first) == Status.ACTIVE


def test_a_viewer_sees_no_buttons_and_may_not_press_them(viewer, trained):
    version = trained()
    assert 'data-step="' not in viewer.get(page(version)).content.decode()
    assert viewer.post(f"{CHANGELIST}{version.pk}/retire/").status_code == 403
    assert viewer.get(f"{CHANGELIST}{version.pk}/override/").status_code == 403
    assert status_of(version) == Status.CANDIDATE


def test_another_workspaces_version_is_not_found(trained):
    version = trained()
    stranger = AdminUserFactory(username="mallory")
    tenancy_services.workspace_grant(workspace=WorkspaceFactory(), user=stranger, can_change=True)
    client = verified_client(stranger)
    assert client.get(page(version)).status_code == 302  # the admin redirects a missing object
    assert client.post(f"{CHANGELIST}{version.pk}/retire/").status_code == 404
    assert status_of(version) == Status.CANDIDATE


def test_alerts_are_listed_and_acknowledged_by_the_action(client, trained, ml_workspace):
    version = trained()
    alert = ModelAlert.objects.create(
        workspace=ml_workspace, model_version=version, kind="schema_mismatch", message="refused at load"
    )
    assert [each.pk for each in listed(client.get(ALERTS, {"acknowledged": "no"}))] == [alert.pk]
    response = post_action(client, ALERTS, "acknowledge", [alert])
    assert messages_of(response) == ["1 alert(s) acknowledged."]
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    assert listed(client.get(ALERTS, {"acknowledged": "no"})) == []


def test_a_model_the_planner_does_not_ab_test_offers_no_ab_button(client, trained):
    stuck = trained("stuck_detector")
    content = client.get(page(stuck)).content.decode()
    assert 'data-step="shadow"' in content and 'data-step="ab"' not in content
