"""The experiment manager as a growth admin uses it: scoped to granted workspaces, new experiments
from a path or a template, start / stop / conclude through the services, refusals shown with their
field and reason, nothing changed when refused."""

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from experiments import services
from experiments.models import Experiment, Variant
from tenancy import services as tenancy_services
from tenancy.models import AuditLog
from tests.conftest import listed, post_action, verified_client
from tests.factories import (
    AdminUserFactory,
    PathFactory,
    PathVersionFactory,
    PublishedPathVersionFactory,
    WorkspaceFactory,
)
from tests.nudges.factories import NudgeTemplateFactory, TemplateVersionFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/experiments/experiment/"
NEW_ON_PATH = f"{CHANGELIST}new/path/"
NEW_ON_TEMPLATE = f"{CHANGELIST}new/template/"


@pytest.fixture
def admin_user(workspace):
    user = AdminUserFactory(username="alice")
    tenancy_services.workspace_grant(workspace=workspace, user=user, can_change=True)
    return user


@pytest.fixture
def client(admin_user):
    return verified_client(admin_user)


@pytest.fixture
def viewer(workspace):
    user = AdminUserFactory(username="victor")
    tenancy_services.workspace_grant(workspace=workspace, user=user, can_change=False)
    return verified_client(user)


@pytest.fixture
def stranger():
    """An admin with change rights on another workspace only."""
    user = AdminUserFactory(username="mallory")
    tenancy_services.workspace_grant(workspace=WorkspaceFactory(), user=user, can_change=True)
    return verified_client(user)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def last_message(response) -> str:
    return messages_of(response)[-1]


def form_data(arms, **overrides) -> dict:
    """The new-experiment form as a person fills it: arms as (version, weight), control first."""
    data = {
        "key": "new-onboarding",
        "name": "New onboarding",
        "hypothesis": "Fewer steps activate more people.",
        "traffic_percent": "80",
        "audience_personas": "developer, analyst",
        "audience_use_cases": "",
        "audience_company_sizes": "",
        "audience_signup_sources": "",
        "primary_metric": "activation_rate",
        "guardrail_metrics": ["onboarding_start_rate"],
        "minimum_sample_per_arm": "500",
        "minimum_duration_days": "7",
        "maximum_duration_days": "28",
        "arms-TOTAL_FORMS": str(len(arms)),
        "arms-INITIAL_FORMS": "0",
        "arms-MIN_NUM_FORMS": "0",
        "arms-MAX_NUM_FORMS": "6",
    }
    for index, (version, weight) in enumerate(arms):
        data[f"arms-{index}-version"] = str(version.pk) if version is not None else ""
        data[f"arms-{index}-weight"] = "" if weight is None else str(weight)
    data.update(overrides)
    return data


# --- The changelist and its actions ------------------------------------------------------------


def test_the_admin_starts_and_stops_an_experiment_from_the_list(client, make_experiment):
    experiment = make_experiment(start=False)

    started = post_action(client, CHANGELIST, "start", [experiment])
    assert last_message(started) == "onboarding-v2 started."
    assert Experiment.objects.get().status == "running"

    stopped = post_action(client, CHANGELIST, "stop", [experiment])
    assert last_message(stopped) == "onboarding-v2 stopped."
    assert Experiment.objects.get().status == "stopped"


def test_a_refused_action_is_shown_with_its_reason_and_nothing_changes(client, make_experiment):
    experiment = make_experiment()
    experiment.refresh_from_db()
    post_action(client, CHANGELIST, "stop", [experiment])

    response = post_action(client, CHANGELIST, "conclude", [experiment])

    assert last_message(response) == (
        "onboarding-v2 was not concluded: status: no user was assigned: there is nothing to conclude from"
    )
    assert Experiment.objects.get().status == "stopped"


def test_the_admin_sees_only_granted_workspaces(client, make_experiment):
    mine = make_experiment(start=False)
    other_workspace = WorkspaceFactory()
    Experiment.objects.create(workspace=other_workspace, key="theirs", name="theirs")

    assert listed(client.get(CHANGELIST)) == [mine]


def test_the_list_offers_new_experiments_and_the_dashboard(client):
    html = client.get(CHANGELIST).content.decode()

    assert f'href="{NEW_ON_PATH}"' in html
    assert f'href="{NEW_ON_TEMPLATE}"' in html
    assert 'href="/admin/analytics/experiments/"' in html


def test_experiments_have_their_own_section_in_the_navigation(client, make_experiment):
    make_experiment(start=False)

    index = client.get("/admin/")

    sections = {section["name"]: section for section in index.context["app_list"]}
    assert [model["object_name"] for model in sections["Experiments"]["models"]] == [
        "Dashboard:experiments",
        "Assignment",
        "Experiment",
    ]


# --- New experiment on a path ------------------------------------------------------------------


def test_the_path_page_lists_the_granted_paths_only(client, path):
    PathFactory(workspace=WorkspaceFactory(), key="theirs")

    response = client.get(NEW_ON_PATH)

    assert response.status_code == 200
    assert list(response.context["owners"]) == [path]


def test_a_chosen_path_offers_its_live_version_as_control_and_the_older_one_as_b(
    client, path, old_version, live_version
):
    PathVersionFactory(path=path, number=3)  # a draft: editable, so never an arm

    response = client.get(NEW_ON_PATH, {"path": path.pk})

    assert response.status_code == 200
    arms = response.context["arms"]
    assert [form.initial for form in arms.forms] == [
        {"version": live_version.pk, "weight": 50},
        {"version": old_version.pk, "weight": 50},
    ]
    offered = list(arms.forms[0].fields["version"].queryset)
    assert offered == [live_version, old_version]
    html = response.content.decode()
    assert "A (control)" in html
    assert f"{path.name} v2 (published)" in html


def test_creating_an_experiment_from_a_path_calls_the_service_with_what_was_typed(
    client, admin_user, path, old_version, live_version
):
    response = client.post(
        f"{NEW_ON_PATH}?path={path.pk}", form_data([(live_version, 70), (old_version, 30)])
    )

    experiment = Experiment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}{experiment.pk}/change/"
    assert last_message(response) == (
        "Experiment new-onboarding created as a draft with 2 arms: check it, then start it."
    )
    assert (experiment.key, experiment.name, experiment.status, experiment.kind) == (
        "new-onboarding",
        "New onboarding",
        "draft",
        "path",
    )
    assert experiment.path == path
    assert experiment.traffic_share == 0.8
    assert experiment.audience_personas == ["developer", "analyst"]
    assert experiment.guardrail_metrics == ["onboarding_start_rate"]
    assert (experiment.minimum_sample_per_arm, experiment.minimum_duration_days) == (500, 7)
    assert experiment.maximum_duration_days == 28
    assert experiment.owner == admin_user
    assert [(arm.key, arm.position, arm.weight, arm.path_version) for arm in experiment.variants.all()] == [
        ("A", 0, 70, live_version),
        ("B", 1, 30, old_version),
    ]
    assert AuditLog.objects.filter(action="admin.add", object_id=str(experiment.pk)).exists()


def test_weights_not_summing_to_100_are_refused_with_the_reason_and_nothing_is_created(
    client, path, old_version, live_version
):
    response = client.post(
        f"{NEW_ON_PATH}?path={path.pk}", form_data([(live_version, 60), (old_version, 30)])
    )

    assert response.status_code == 200
    assert response.context["refusal"] == [("variants", "weights must sum to 100, not 90")]
    assert "weights must sum to 100, not 90" in response.content.decode()
    assert (
        last_message(response) == "The experiment was not created: variants: weights must sum to 100, not 90"
    )
    assert not Experiment.objects.exists()


def test_a_version_of_another_path_is_refused_with_the_reason(client, workspace, path, live_version):
    other_path = PathFactory(workspace=workspace, key="billing")
    theirs = PublishedPathVersionFactory(path=other_path, number=1)

    response = client.post(f"{NEW_ON_PATH}?path={path.pk}", form_data([(live_version, 50), (theirs, 50)]))

    assert response.context["refusal"] == [
        ("variants", "variant B: v1 is a version of 'billing', not 'onboarding'")
    ]
    assert not Experiment.objects.exists()


def test_a_key_used_twice_is_refused_on_the_key_field(
    client, path, old_version, live_version, make_experiment
):
    make_experiment(start=False, key="new-onboarding")

    response = client.post(
        f"{NEW_ON_PATH}?path={path.pk}", form_data([(live_version, 50), (old_version, 50)])
    )

    assert response.context["form"].errors["key"] == [
        "an experiment 'new-onboarding' exists already in this workspace"
    ]
    assert Experiment.objects.count() == 1


def test_a_single_arm_is_refused(client, path, live_version):
    response = client.post(f"{NEW_ON_PATH}?path={path.pk}", form_data([(live_version, 100), (None, None)]))

    assert response.context["refusal"] == [("variants", "an experiment needs at least two variants")]
    assert not Experiment.objects.exists()


def test_another_workspaces_path_is_not_found(stranger, path, live_version):
    assert stranger.get(NEW_ON_PATH, {"path": path.pk}).status_code == 404
    response = stranger.post(f"{NEW_ON_PATH}?path={path.pk}", form_data([(live_version, 100)]))
    assert response.status_code == 404
    assert not Experiment.objects.exists()


def test_an_admin_who_may_only_view_cannot_create(viewer, path):
    assert viewer.get(NEW_ON_PATH).status_code == 403
    assert viewer.get(NEW_ON_PATH, {"path": path.pk}).status_code == 403


# --- New experiment on a template --------------------------------------------------------------


def test_creating_an_experiment_from_a_template_uses_its_approved_versions_as_arms(client, workspace):
    template = NudgeTemplateFactory(workspace=workspace, trigger__workspace=workspace, name="Welcome")
    active = TemplateVersionFactory(template=template, number=1, variant="A")
    approved = TemplateVersionFactory(template=template, number=2, variant="B", status="approved")
    TemplateVersionFactory(template=template, number=3, variant="C", status="draft")

    page = client.get(NEW_ON_TEMPLATE, {"template": template.pk})
    assert [form.initial["version"] for form in page.context["arms"].forms] == [active.pk, approved.pk]
    assert page.context["form"].initial["primary_metric"] == "nudge_conversion_rate"

    response = client.post(
        f"{NEW_ON_TEMPLATE}?template={template.pk}",
        form_data(
            [(active, 50), (approved, 50)],
            key="welcome-copy",
            primary_metric="nudge_conversion_rate",
            guardrail_metrics=[],
            audience_personas="",
        ),
    )

    assert response.status_code == 302
    experiment = Experiment.objects.get()
    assert (experiment.kind, experiment.path) == ("template", None)
    assert [(arm.key, arm.template_version) for arm in experiment.variants.all()] == [
        ("A", active),
        ("B", approved),
    ]


# --- Buttons on the experiment's page ------------------------------------------------------------


def button_url(experiment, step: str) -> str:
    return f"{CHANGELIST}{experiment.pk}/{step}/"


def test_the_change_page_shows_the_arms_and_the_buttons_of_its_status(client, make_experiment):
    experiment = make_experiment(start=False)

    response = client.get(f"{CHANGELIST}{experiment.pk}/change/")

    assert response.status_code == 200
    assert [form.instance.key for form in response.context["inline_admin_formsets"][0].formset.forms] == [
        "A",
        "B",
    ]
    assert [step for step, _, _ in response.context["status_buttons"]] == ["start"]
    html = response.content.decode()
    assert f'action="{button_url(experiment, "start")}"' in html
    assert f'href="{CHANGELIST}{experiment.pk}/results/"' in html


def test_the_buttons_move_the_status_forward(client, make_experiment):
    experiment = make_experiment(start=False)

    started = client.post(button_url(experiment, "start"))
    assert started.status_code == 302 and started["Location"] == f"{CHANGELIST}{experiment.pk}/change/"
    assert last_message(started) == "onboarding-v2 started."
    experiment.refresh_from_db()
    assert experiment.status == "running"
    page = client.get(f"{CHANGELIST}{experiment.pk}/change/")
    assert [step for step, _, _ in page.context["status_buttons"]] == ["stop", "conclude", "rollout"]

    stopped = client.post(button_url(experiment, "stop"))
    assert last_message(stopped) == "onboarding-v2 stopped."
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    assert AuditLog.objects.filter(action="admin.stop", object_id=str(experiment.pk)).exists()


def test_starting_with_an_unpublished_arm_is_refused_with_the_reason(client, path, make_experiment):
    experiment = make_experiment(start=False)
    draft = PathVersionFactory(path=path, number=3)
    Variant.objects.filter(experiment=experiment, key="B").update(path_version=draft)

    response = client.post(button_url(experiment, "start"))

    assert last_message(response) == (
        "onboarding-v2 was not started: variants: variant B: v3 was never published; a draft is "
        "editable, and an arm must not change while it runs: publish it first"
    )
    experiment.refresh_from_db()
    assert experiment.status == "draft"
    refusal = AuditLog.objects.get(action="admin.start_refused")
    assert "was never published" in refusal.changes["reason"]


def test_concluding_without_data_is_refused(client, make_experiment):
    experiment = make_experiment()

    response = client.post(button_url(experiment, "conclude"))

    assert last_message(response) == (
        "onboarding-v2 was not concluded: status: no user was assigned: there is nothing to conclude from"
    )
    experiment.refresh_from_db()
    assert experiment.status == "running"


def test_a_second_running_experiment_on_the_path_for_the_same_audience_is_refused(
    client, path, old_version, live_version, make_experiment
):
    make_experiment()
    second = services.create_path_experiment(path=path, versions=[live_version, old_version], key="second")

    response = client.post(button_url(second, "start"))

    assert last_message(response) == (
        "second was not started: audience: experiment onboarding-v2 is running on path 'onboarding' "
        "for an overlapping audience"
    )
    second.refresh_from_db()
    assert second.status == "draft"


def test_the_buttons_are_posts_only(client, make_experiment):
    experiment = make_experiment(start=False)

    assert client.get(button_url(experiment, "start")).status_code == 405
    experiment.refresh_from_db()
    assert experiment.status == "draft"


def test_an_admin_who_may_only_view_gets_no_buttons_and_a_403(viewer, make_experiment):
    experiment = make_experiment(start=False)

    page = viewer.get(f"{CHANGELIST}{experiment.pk}/change/")
    assert page.status_code == 200
    assert page.context["status_buttons"] == []
    assert viewer.post(button_url(experiment, "start")).status_code == 403
    experiment.refresh_from_db()
    assert experiment.status == "draft"


def test_an_admin_of_another_workspace_finds_nothing(stranger, make_experiment):
    experiment = make_experiment(start=False)

    for step in ("start", "stop", "conclude", "rollout"):
        assert stranger.post(button_url(experiment, step)).status_code == 404
    assert stranger.get(f"{CHANGELIST}{experiment.pk}/results/").status_code == 404
    experiment.refresh_from_db()
    assert experiment.status == "draft"


def test_rolling_out_without_a_winner_is_refused(client, make_experiment):
    experiment = make_experiment()
    experiment.refresh_from_db()
    started_at = experiment.started_at

    response = client.post(button_url(experiment, "rollout"))

    assert last_message(response).startswith("onboarding-v2 was not rolled out and concluded: ")
    experiment.refresh_from_db()
    assert (experiment.status, experiment.started_at) == ("running", started_at)
    assert started_at <= timezone.now()


def test_the_models_add_form_leads_to_the_new_experiment_page(client):
    response = client.get(f"{CHANGELIST}add/")

    assert response.status_code == 302
    assert response["Location"] == NEW_ON_PATH
