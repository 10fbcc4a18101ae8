"""seed_demo: the demo workspace, its admin with TOTP, its keys and simulated users."""

import io
import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from analytics.models import EnrollmentRollup
from experiments.demo import DEMO_EXPERIMENT_KEY
from experiments.models import Assignment, Experiment
from onboarding.demo import funnel as demo_funnel
from onboarding.demo import journeys, population
from onboarding.models import AnonymousIdentity, Contact, Enrollment, Event
from tenancy.keys import key_digest
from tenancy.models import ApiKey, EndUser, Workspace
from tests.conftest import basic_auth
from tests.factories import AdminUserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

PEOPLE = 40


def seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", users=PEOPLE, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


@pytest.fixture
def seeded(var_dir):
    """(credentials as saved, what the first run printed)."""
    output = seed()
    return json.loads((var_dir / "demo-credentials.json").read_text()), output


def row_counts() -> dict[str, int]:
    models = (Workspace, get_user_model(), TOTPDevice, ApiKey, EndUser, AnonymousIdentity, Contact, Event)
    return {model.__name__: model.objects.count() for model in models}


def current_token(secret_hex: str) -> str:
    return f"{TOTP(bytes.fromhex(secret_hex)).token():06d}"


def test_creates_the_workspace_and_a_staff_admin_with_a_confirmed_totp_device(seeded):
    credentials, _ = seeded
    workspace = Workspace.objects.get(pk=credentials["workspace_id"])
    admin = get_user_model().objects.get(username="demo")
    device = TOTPDevice.objects.get(user=admin)

    assert (workspace.name, workspace.slug) == ("Demo SaaS", "demo-saas")
    assert (admin.is_staff, admin.is_superuser, admin.is_active) == (True, False, True)
    assert admin.check_password(credentials["password"])
    assert device.confirmed is True
    assert credentials["otpauth_uri"] == device.config_url
    assert f"secret={credentials['totp_secret']}&" in device.config_url


def test_the_admin_may_view_and_change_the_demo_workspace_only(seeded):
    credentials, _ = seeded
    workspace = Workspace.objects.get(pk=credentials["workspace_id"])
    other = WorkspaceFactory()
    admin = get_user_model().objects.get(username="demo")

    assert admin.has_perm("onboarding.view_workspace", workspace)
    assert admin.has_perm("onboarding.change_workspace", workspace)
    assert not admin.has_perm("onboarding.view_workspace", other)


def test_the_admin_logs_in_with_password_and_totp_code(seeded, client):
    credentials, _ = seeded
    device = TOTPDevice.objects.get(user__username="demo")
    login = {"username": "demo", "password": credentials["password"], "next": "/admin/"}

    without_code = client.post("/admin/login/", login)
    assert without_code.status_code == 200  # the form again, asking for the code
    assert client.get("/admin/").status_code == 302

    with_code = client.post("/admin/login/", {**login, "otp_token": current_token(device.key)})
    assert with_code.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_prints_the_login_the_totp_enrolment_and_the_keys(seeded):
    credentials, output = seeded

    assert "http://127.0.0.1:8000/admin/" in output
    assert f"Login:     demo\nPassword:  {credentials['password']}" in output
    assert credentials["otpauth_uri"] in output
    assert credentials["totp_secret"] in output
    assert "█" in output  # the QR code
    assert credentials["write_key"] in output and credentials["secret_key"] in output
    assert "http://127.0.0.1:8000/v1/track" in output
    assert "events ingested:" in output and "(100%)" in output


def test_credentials_file_is_readable_by_its_owner_only(seeded, var_dir):
    mode = stat.S_IMODE((var_dir / "demo-credentials.json").stat().st_mode)
    assert mode == 0o600


def test_the_demo_keys_authenticate_and_are_stored_hashed(seeded, api_client):
    credentials, _ = seeded
    workspace = Workspace.objects.get(pk=credentials["workspace_id"])
    event = {"userId": "user-00001", "event": "Report Viewed", "messageId": "from-the-test"}

    for key in (credentials["write_key"], credentials["secret_key"]):
        response = api_client.post("/v1/track", event, format="json", HTTP_AUTHORIZATION=basic_auth(key))
        assert response.status_code == 200, response.content
    digests = set(ApiKey.objects.filter(workspace=workspace).values_list("key_digest", flat=True))
    assert digests == {key_digest(credentials["write_key"]), key_digest(credentials["secret_key"])}
    assert credentials["write_key"] not in digests


def test_simulated_users_have_event_histories_with_a_funnel(seeded):
    credentials, _ = seeded
    workspace = Workspace.objects.get(pk=credentials["workspace_id"])
    counts = credentials["seeded_counts"]
    clock = datetime.fromisoformat(credentials["simulation"]["clock"])

    assert Event.objects.filter(workspace=workspace).count() == counts["events"]
    identified = EndUser.objects.filter(workspace=workspace, external_id__isnull=False)
    assert identified.count() == counts["signed_up"] > 0
    assert Contact.objects.filter(end_user__workspace=workspace).count() == counts["signed_up"]
    assert not identified.filter(persona="").exists()
    for personas, funnel in (
        (demo_funnel.DEVELOPER_PERSONAS, demo_funnel.DEVELOPER_FUNNEL),
        (set(population.PERSONAS) - set(demo_funnel.DEVELOPER_PERSONAS), demo_funnel.FUNNEL),
    ):
        events = Event.objects.filter(workspace=workspace, end_user__persona__in=personas)
        users_per_step = [events.filter(name=step).values("end_user").distinct().count() for step in funnel]
        assert users_per_step[0] == identified.filter(persona__in=personas).count() > 0
        assert users_per_step == sorted(users_per_step, reverse=True)
    # Anonymous visitors who later identified: their earlier page views belong to the same user.
    assert Event.objects.filter(
        workspace=workspace, end_user__external_id__isnull=False, user_id="", type="page"
    ).exists()
    timestamps = Event.objects.filter(workspace=workspace).values_list("timestamp", flat=True)
    days = credentials["simulation"]["days"]
    assert clock - timedelta(days=days + 1) < min(timestamps) and max(timestamps) < clock


def test_signups_spread_over_the_simulated_weeks_and_the_rollups_are_built(seeded):
    """Each person's EndUser.created_at is their first call, not the seeding run, so signup-week
    cohorts span the simulated ten weeks; the Overview's rollups exist straight after seeding."""
    credentials, output = seeded
    workspace = Workspace.objects.get(pk=credentials["workspace_id"])
    clock = datetime.fromisoformat(credentials["simulation"]["clock"])
    assert credentials["simulation"]["days"] == 70
    for end_user in EndUser.objects.filter(workspace=workspace):
        first_call = Event.objects.filter(end_user=end_user).order_by("timestamp").first()
        assert end_user.created_at == first_call.timestamp < clock
    signup_weeks = {
        (clock - created).days // 7
        for created in EndUser.objects.filter(workspace=workspace).values_list("created_at", flat=True)
    }
    assert len(signup_weeks) >= 6
    assert EnrollmentRollup.objects.filter(workspace=workspace).exists()
    assert "Built the analytics rollups" in output


def test_a_second_run_creates_nothing_and_prints_the_same_login(seeded):
    credentials, _ = seeded
    before = row_counts()

    output = seed()

    assert row_counts() == before
    assert "exists already; nothing to do" in output
    assert f"Password:  {credentials['password']}" in output
    assert credentials["write_key"] in output


def test_an_interrupted_seeding_resumes_to_the_same_events(seeded, var_dir):
    credentials, _ = seeded
    path = var_dir / "demo-credentials.json"
    before = row_counts()
    Event.objects.filter(pk__in=Event.objects.order_by("-timestamp").values("pk")[:50]).delete()
    path.write_text(json.dumps({**credentials, "seeded": False}))

    output = seed()

    assert "Resuming" in output
    assert row_counts() == before
    assert json.loads(path.read_text())["seeded"] is True


def test_without_its_credentials_file_it_explains_instead_of_reseeding(seeded, var_dir):
    (var_dir / "demo-credentials.json").unlink()
    before = row_counts()

    output = seed()

    assert row_counts() == before
    assert "otp_enrol --username <username> --reset" in output


def test_refuses_to_take_over_an_existing_user(var_dir):
    AdminUserFactory(username="demo")

    with pytest.raises(CommandError, match="exists already"):
        seed()

    assert not Workspace.objects.exists()


def test_the_simulation_is_deterministic():
    clock = datetime(2026, 11, 1, 12, tzinfo=UTC)

    first = journeys.calls_in_time_order(people=25, seed=7, now=clock)
    again = journeys.calls_in_time_order(people=25, seed=7, now=clock)
    other = journeys.calls_in_time_order(people=25, seed=8, now=clock)

    assert first == again
    assert first != other
    assert len({call["messageId"] for _, call in first}) == len(first)
    assert [moment for moment, _ in first] == sorted(moment for moment, _ in first)


def test_a_user_who_signs_up_in_the_demo_gets_a_welcome_nudge_in_the_inbox(
    seeded, api_client, django_capture_on_commit_callbacks, settings
):
    """The demo's in-app nudges: the simulated history is written as history (nudges.demo_history),
    and a new sign-up is welcomed by the real pipeline."""
    from nudges.models import ChannelProvider, Nudge
    from nudges.triggers import receivers as hooks

    settings.JOBS_RUN_INLINE = True  # as in the demo (no Redis): the welcome job runs at once
    credentials, output = seeded
    assert "Created the demo's in-app nudges" in output
    history = Nudge.objects.all()
    assert history.exists()
    assert all(nudge.trace[-1]["stage"] == "demo" for nudge in history)
    assert not ChannelProvider.objects.exists()  # in-app is built in: the demo configures none
    hooks.forget()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/v1/identify",
            {"userId": "new-sign-up", "traits": {"persona": "developer"}},
            format="json",
            HTTP_AUTHORIZATION=basic_auth(credentials["write_key"]),
        )
    assert response.status_code == 200, response.content
    inbox = api_client.get(
        "/api/v1/users/new-sign-up/nudges", HTTP_AUTHORIZATION=f"Bearer {credentials['secret_key']}"
    )
    assert inbox.status_code == 200, inbox.content
    [item] = inbox.json()["results"]
    assert item["subject"] in ("Welcome aboard", "Good to see you")
    assert item["status"] == "delivered"
    # The button leads to the demo product's first step, not to this server.
    assert item["cta_text"] in ("Let's go", "Start")
    click = api_client.get(item["cta_url"].removeprefix(settings.PUBLIC_BASE_URL))
    assert (click.status_code, click["Location"]) == (302, "https://demo-saas.example/app/projects/new")


def test_the_demo_runs_an_experiment_that_assigned_its_developers_consistently(seeded, client):
    workspace = Workspace.objects.get(slug="demo-saas")
    experiment = Experiment.objects.get(workspace=workspace, key=DEMO_EXPERIMENT_KEY)
    assignments = Assignment.objects.filter(experiment=experiment).select_related("variant", "enrollment")
    on_the_path = Enrollment.objects.filter(workspace=workspace, path_version__path=experiment.path)

    assert experiment.status == "running"
    assert assignments.count() == on_the_path.count() > 0
    assert {row.variant.key for row in assignments} <= {"A", "B"}
    assert all(row.enrollment.path_version_id == row.variant.path_version_id for row in assignments)
    body = client.get("/metrics").content.decode()
    assert (
        f'experiment_allocation_consistency{{experiment="{DEMO_EXPERIMENT_KEY}",workspace="demo-saas"}} 1.0'
        in body
    )
