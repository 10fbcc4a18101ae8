"""The experiment manager as a growth admin uses it: scoped to granted workspaces, start and
stop through the services, refusals shown with their reason."""

import pytest
from django.contrib.messages import get_messages

from experiments.models import Experiment
from tenancy import services as tenancy_services
from tests.conftest import listed, post_action, verified_client
from tests.factories import AdminUserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/experiments/experiment/"


@pytest.fixture
def client(workspace):
    user = AdminUserFactory(username="alice")
    tenancy_services.workspace_grant(workspace=workspace, user=user, can_change=True)
    return verified_client(user)


def last_message(response) -> str:
    return [str(message) for message in get_messages(response.wsgi_request)][-1]


def test_the_admin_starts_and_stops_an_experiment(client, make_experiment):
    experiment = make_experiment(start=False)

    started = post_action(client, CHANGELIST, "start", [experiment])
    assert last_message(started) == "onboarding-v2 started."
    assert Experiment.objects.get().status == "running"

    stopped = post_action(client, CHANGELIST, "stop", [experiment])
    assert last_message(stopped) == "onboarding-v2 stopped."
    assert Experiment.objects.get().status == "stopped"


def test_a_refusal_is_shown_with_its_reason_and_nothing_changes(client, make_experiment):
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


def test_the_change_page_shows_the_arms(client, make_experiment):
    experiment = make_experiment()

    response = client.get(f"{CHANGELIST}{experiment.pk}/change/")

    assert response.status_code == 200
    assert [form.instance.key for form in response.context["inline_admin_formsets"][0].formset.forms] == [
        "A",
        "B",
    ]


def test_experiments_have_their_own_section_in_the_navigation(client, make_experiment):
    make_experiment(start=False)

    index = client.get("/admin/")

    sections = {section["name"]: section for section in index.context["app_list"]}
    assert [model["object_name"] for model in sections["Experiments"]["models"]] == [
        "Assignment",
        "Experiment",
    ]
