"""The pipeline end to end: a stuck user's nudge through policy, template, personalisation and a
provider answering as SendGrid's API does, with every decision in the nudge's trace."""

import json
import time as time_module
from datetime import time, timedelta

import pytest
from django.utils import timezone
from werkzeug import Response

from guardrails.models import PolicyDecision, WorkspacePolicy
from guardrails.policy import services as policy_services
from guardrails.secrets.services import workspace_secret_set
from nudges.delivery import attempts, dispatch, leases, pipeline, webhook_events
from nudges.delivery import failover as delivery
from nudges.models import ChannelProvider, Nudge, NudgeEvent, Trigger
from nudges.triggers import engine as triggers
from nudges.triggers import receivers as hooks
from onboarding.models import EnrollmentSignal
from tenancy import services as tenancy_services
from tenancy.models import AuditLog
from tests.factories import CANARY_EMAIL, CANARY_FIRST_NAME, ContactFactory
from tests.nudges.factories import (
    NudgeSettingsFactory,
    NudgeTemplateFactory,
    TemplateVersionFactory,
    TriggerFactory,
)
from tests.onboarding.progress_setup import enrol, published_path, track

pytestmark = pytest.mark.django_db

SENDGRID_PATH = "/v3/mail/send"


@pytest.fixture
def setup(httpserver, monkeypatch):
    """A workspace with a path, a stuck trigger on email then in-app, templates for both, SendGrid
    pointed at the local server, and a user with contact data and three events."""
    hooks.forget()
    monkeypatch.setattr(dispatch, "enqueue", lambda *args, **kwargs: None)  # the test runs the pipeline
    workspace, write_key, _ = tenancy_services.workspace_create(name="Acme")
    published_path(workspace)
    workspace.refresh_from_db()
    NudgeSettingsFactory(workspace=workspace)
    trigger = TriggerFactory(workspace=workspace, kind=Trigger.Kind.STUCK, channels=["email", "in_app"])
    email = TemplateVersionFactory(
        template=NudgeTemplateFactory(trigger=trigger, channel="email", name="Stuck email"),
        subject="Finish {{ step_title }}",
        body="Hi {{ first_name }}, you are {{ percent_complete }}% through {{ path_name }}.",
        cta_url="https://app.example.com/projects/new",
    )
    in_app = TemplateVersionFactory(
        template=NudgeTemplateFactory(trigger=trigger, channel="in_app", name="Stuck tooltip"),
        subject="",
        body="Create your first project to get going.",
        cta_url="https://app.example.com/projects/new",
    )
    workspace_secret_set(workspace=workspace, name="sendgrid_api_key", value="SG.test-key")
    ChannelProvider.objects.create(
        workspace=workspace,
        channel="email",
        provider=ChannelProvider.Provider.SENDGRID,
        settings={"from_email": "hello@acme.example", "api_url": httpserver.url_for("/v3")},
        secret_name="sendgrid_api_key",
    )
    ChannelProvider.objects.create(
        workspace=workspace, channel="in_app", provider=ChannelProvider.Provider.IN_APP
    )
    enrollment = enrol(write_key.key, "u-1", workspace)
    ContactFactory(end_user=enrollment.end_user)
    for name in ("Dashboard Viewed", "Report Viewed", "Settings Opened"):
        track(write_key.key, "u-1", name)
    yield {
        "workspace": workspace,
        "trigger": trigger,
        "enrollment": enrollment,
        "email": email,
        "in_app": in_app,
    }
    hooks.forget()


def _stuck(enrollment) -> Nudge:
    EnrollmentSignal.objects.create(
        enrollment=enrollment,
        kind=EnrollmentSignal.Kind.STUCK,
        step_key="create-project",
        reason="3 h on step",
    )
    triggers.scan(workspace=enrollment.workspace)
    return Nudge.objects.get(end_user=enrollment.end_user)


def _accept(httpserver, message_id="sg-message-1"):
    httpserver.expect_request(SENDGRID_PATH, method="POST").respond_with_response(
        Response("", status=202, headers={"X-Message-Id": message_id})
    )


def _stages(nudge):
    return [line["stage"] for line in nudge.trace]


def test_a_stuck_user_gets_an_email_with_every_decision_traced(setup, httpserver):
    _accept(httpserver)
    nudge = _stuck(setup["enrollment"])

    outcome = pipeline.nudge_process(nudge_id=nudge.pk)

    assert outcome.status == Nudge.Status.SENT
    nudge.refresh_from_db()
    assert (nudge.status, nudge.channel) == ("sent", "email")
    assert nudge.template_version == setup["email"]
    assert _stages(nudge) == ["trigger", "template", "personalisation", "delivery", "delivery"]
    assert nudge.trace[1]["message"] == "Stuck email: variant A: the only active variant"
    assert nudge.trace[2]["message"].startswith("static template (")
    assert nudge.trace[3]["message"] == f"in flight on email (attempt {nudge.attempt_key})"
    assert nudge.trace[4]["message"].startswith("sent by SendGrid in ")
    # What is stored keeps the contact variable as a placeholder: no contact data in the row.
    assert nudge.subject == "Finish Create a project"
    assert nudge.body == "Hi {{ first_name }}, you are 0% through Main path."
    assert setup["email"].__class__.objects.get(pk=setup["email"].pk).sends == 1
    assert list(NudgeEvent.objects.filter(nudge=nudge).values_list("status", flat=True)) == ["queued", "sent"]

    [(request, _)] = httpserver.log
    sent = json.loads(request.data)
    assert request.headers["Authorization"] == "Bearer SG.test-key"
    # Anymail's id for the message, which SendGrid's webhook events carry back.
    assert sent["personalizations"][0]["custom_args"]["anymail_id"] == nudge.provider_message_id != ""
    assert sent["custom_args"]["nudge_id"] == str(nudge.pk)
    assert sent["personalizations"][0]["to"][0]["email"] == CANARY_EMAIL
    text = next(part["value"] for part in sent["content"] if part["type"] == "text/plain")
    assert text.startswith(f"Hi {CANARY_FIRST_NAME}, you are 0% through Main path.")
    assert "Acme Inc., 1 Market Street" in text and "Unsubscribe: http" in text
    assert "/n/c/" in text  # the call to action goes through the click-tracking link
    html = next(part["value"] for part in sent["content"] if part["type"] == "text/html")
    assert "/n/o/" in html  # the open pixel
    assert sent["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_running_the_job_twice_sends_once(setup, httpserver):
    _accept(httpserver)
    nudge = _stuck(setup["enrollment"])
    pipeline.nudge_process(nudge_id=nudge.pk)
    assert pipeline.nudge_process(nudge_id=nudge.pk) is None
    assert len(httpserver.log) == 1


def test_without_email_consent_the_next_channel_is_used_and_the_denial_is_traced(setup, httpserver):
    end_user = setup["enrollment"].end_user
    policy_services.consent_record(
        end_user=end_user, channel="email", purpose="onboarding", granted=False, source="api"
    )
    nudge = _stuck(setup["enrollment"])

    outcome = pipeline.nudge_process(nudge_id=nudge.pk)

    nudge.refresh_from_db()
    assert (outcome.status, nudge.status, nudge.channel) == ("sent", "delivered", "in_app")
    assert nudge.trace[1]["stage"] == "policy"
    assert nudge.trace[1]["message"].startswith("email denied: consent")
    assert httpserver.log == []


@pytest.mark.usefixtures("frozen_now")  # a midnight between the two would start a new cap
def test_the_daily_cap_suppresses_the_second_nudge_of_the_day_and_says_so(setup, httpserver):
    _accept(httpserver)
    first = _stuck(setup["enrollment"])
    pipeline.nudge_process(nudge_id=first.pk)
    welcome = TriggerFactory(workspace=setup["workspace"], kind=Trigger.Kind.WELCOME, channels=["email"])
    TemplateVersionFactory(template=NudgeTemplateFactory(trigger=welcome, channel="email"))
    [second] = triggers.on_progress(enrollment_id=setup["enrollment"].pk, created=True, step_keys=[])

    outcome = pipeline.nudge_process(nudge_id=second.pk)

    second.refresh_from_db()
    assert (outcome.status, second.status) == ("suppressed", "suppressed")
    assert second.trace[1]["message"].startswith("email denied: daily_cap: daily cap of 1 reached at ")
    assert second.trace[-1]["message"] == "no channel could send it (see above)"
    assert len(httpserver.log) == 1
    assert PolicyDecision.objects.filter(end_user=second.end_user, allowed=False).exists()


def test_quiet_hours_defer_the_nudge_to_their_end_then_it_is_sent(setup, httpserver):
    _accept(httpserver)
    # From the start of this hour (UTC: the user has no time zone) for two hours: at least an
    # hour of quiet ahead, whatever the time of day the test runs at.
    hour = timezone.now().hour
    WorkspacePolicy.objects.update_or_create(
        workspace=setup["workspace"],
        defaults={"quiet_hours_start": time(hour), "quiet_hours_end": time((hour + 2) % 24)},
    )
    setup["trigger"].channels = ["email"]
    setup["trigger"].save()
    nudge = _stuck(setup["enrollment"])

    outcome = pipeline.nudge_process(nudge_id=nudge.pk)

    nudge.refresh_from_db()
    assert (outcome.status, nudge.status) == ("deferred", "deferred")
    assert nudge.send_after is not None and nudge.send_after > timezone.now()
    assert "quiet_hours" in nudge.trace[-1]["message"]
    assert httpserver.log == []
    assert pipeline.nudge_process(nudge_id=nudge.pk) is None  # not due yet

    WorkspacePolicy.objects.filter(workspace=setup["workspace"]).update(
        quiet_hours_start=None, quiet_hours_end=None
    )
    assert pipeline.process_due(now=nudge.send_after + timedelta(seconds=1)) == 1
    outcome = pipeline.nudge_process(nudge_id=nudge.pk, now=nudge.send_after + timedelta(seconds=1))
    assert outcome.status == "sent"
    assert len(httpserver.log) == 1


def test_a_provider_that_is_down_is_retried_with_backoff_then_dead_lettered(setup, httpserver):
    httpserver.expect_request(SENDGRID_PATH, method="POST").respond_with_data("upstream down", status=503)
    setup["trigger"].channels = ["email"]
    setup["trigger"].save()
    nudge = _stuck(setup["enrollment"])
    now = timezone.now()
    retries = []
    for _ in range(pipeline.MAX_ATTEMPTS):
        outcome = pipeline.nudge_process(nudge_id=nudge.pk, now=now)
        nudge.refresh_from_db()
        if outcome.status == "deferred":
            retries.append((nudge.send_after - now).total_seconds())
            now = nudge.send_after + timedelta(seconds=1)

    assert (outcome.status, nudge.status, nudge.attempts) == ("failed", "failed", pipeline.MAX_ATTEMPTS)
    # Exponential backoff with up to +50% jitter.
    for waited, base in zip(retries, pipeline.BACKOFF_SECONDS, strict=True):
        assert base <= waited <= base * 1.5
    assert "gave up after 4 attempts" in nudge.last_error, nudge.last_error
    # Three consecutive failures opened SendGrid's circuit breaker: the fourth attempt found no
    # provider to try (there is no backup) and did not call it.
    assert len(httpserver.log) == 3
    assert "circuit" in nudge.last_error or "breaker" in nudge.last_error, nudge.last_error
    # The cap slot was given back each time: the user can still get another nudge today.
    assert (
        PolicyDecision.objects.filter(end_user=nudge.end_user, allowed=True).count() == pipeline.MAX_ATTEMPTS
    )


def test_a_provider_refusal_fails_the_nudge_at_once(setup, httpserver):
    httpserver.expect_request(SENDGRID_PATH, method="POST").respond_with_json(
        {
            "errors": [
                {"message": "Does not contain a valid address.", "field": "personalizations.0.to.0.email"}
            ]
        },
        status=400,
    )
    setup["trigger"].channels = ["email"]
    setup["trigger"].save()
    nudge = _stuck(setup["enrollment"])

    outcome = pipeline.nudge_process(nudge_id=nudge.pk)

    nudge.refresh_from_db()
    assert (outcome.status, nudge.status, nudge.attempts) == ("failed", "failed", 1)
    assert "valid address" in nudge.last_error
    assert CANARY_EMAIL not in nudge.last_error


def test_no_template_for_any_channel_suppresses(setup, httpserver):
    setup["email"].template.delete()
    setup["in_app"].template.delete()
    nudge = _stuck(setup["enrollment"])
    assert pipeline.nudge_process(nudge_id=nudge.pk).status == "suppressed"
    nudge.refresh_from_db()
    assert [line["message"] for line in nudge.trace[1:3]] == [
        "email: no active template fits",
        "in_app: no active template fits",
    ]


def test_new_users_get_the_rule_based_variant_and_no_llm(setup, httpserver, monkeypatch):
    _accept(httpserver)
    TemplateVersionFactory(template=setup["email"].template, variant="B", sends=10, rewards=9)
    end_user = setup["enrollment"].end_user
    end_user.events.exclude(type="identify").delete()  # one event: a cold start
    called = []
    monkeypatch.setattr(pipeline.personalize, "personalise", lambda **kwargs: called.append(kwargs))
    nudge = _stuck(setup["enrollment"])

    pipeline.nudge_process(nudge_id=nudge.pk)

    nudge.refresh_from_db()
    assert called == []
    assert nudge.template_version.variant == "A"
    assert "cold start (fewer than 3 events): rule-based" in nudge.trace[1]["message"]
    assert nudge.trace[2]["message"] == "static template (cold_start)"


def test_a_persona_template_wins_over_the_generic_one(setup, httpserver):
    _accept(httpserver)
    end_user = setup["enrollment"].end_user  # persona "admin" (identify in progress_setup)
    admin_only = TemplateVersionFactory(
        template=NudgeTemplateFactory(
            trigger=setup["trigger"], channel="email", persona="admin", name="For admins"
        ),
        subject="Admins: finish {{ step_title }}",
    )
    nudge = _stuck(setup["enrollment"])
    pipeline.nudge_process(nudge_id=nudge.pk)
    nudge.refresh_from_db()
    assert (nudge.template_version, end_user.persona) == (admin_only, "admin")


def test_the_latency_metric_is_recorded(setup, httpserver):
    _accept(httpserver)
    before = pipeline.LATENCY.labels(channel="email", personalised="false")._sum.get()
    nudge = _stuck(setup["enrollment"])
    Nudge.objects.filter(pk=nudge.pk).update(created_at=timezone.now() - timedelta(seconds=2))
    pipeline.nudge_process(nudge_id=nudge.pk)
    assert pipeline.LATENCY.labels(channel="email", personalised="false")._sum.get() - before >= 2


# --- A worker killed mid-send: in flight, then reconciled; never a second send ---------------------


REAL_DELIVER = delivery.deliver


class WorkerKilled(BaseException):
    """The worker's process dying right after the provider answered (nothing after it runs)."""


@pytest.fixture
def killed_after_provider(monkeypatch):
    """The provider gets the nudge, then the worker dies before recording its answer. Records
    the nudge's stored status and attempt key as the provider is called."""
    seen = []
    real = pipeline.delivery.deliver

    def deliver_then_die(**kwargs):
        stored = Nudge.objects.get(pk=kwargs["message"].nudge_id)
        seen.append((stored.status, stored.attempt_key, kwargs["message"].idempotency_key))
        real(**kwargs)
        raise WorkerKilled

    monkeypatch.setattr(pipeline.delivery, "deliver", deliver_then_die)
    yield seen
    monkeypatch.setattr(pipeline.delivery, "deliver", real)


@pytest.fixture
def queued_jobs(monkeypatch):
    """The jobs the due sweep queues (not the triggers'), each with its batch of nudge ids."""
    jobs = []

    def pipeline_enqueue(nudge_ids):
        batch = dispatch.PIPELINE_BATCH
        jobs.extend(nudge_ids[start : start + batch] for start in range(0, len(nudge_ids), batch))

    monkeypatch.setattr(leases, "pipeline_enqueue", pipeline_enqueue)
    return jobs


def _email_only(setup):
    setup["trigger"].channels = ["email"]
    setup["trigger"].save()


def _killed_mid_send(setup, httpserver, killed_after_provider, monkeypatch) -> Nudge:
    _accept(httpserver)
    _email_only(setup)
    nudge = _stuck(setup["enrollment"])
    with pytest.raises(WorkerKilled):
        pipeline.nudge_process(nudge_id=nudge.pk)
    monkeypatch.setattr(delivery, "deliver", REAL_DELIVER)  # the next worker lives
    nudge.refresh_from_db()
    return nudge


@pytest.mark.usefixtures("frozen_now")
def test_the_send_is_recorded_in_flight_with_its_key_before_the_provider_is_called(
    setup, httpserver, killed_after_provider, monkeypatch
):
    nudge = _killed_mid_send(setup, httpserver, killed_after_provider, monkeypatch)

    [(status, stored_key, sent_key)] = killed_after_provider
    assert status == "in_flight"
    assert stored_key == sent_key == nudge.attempt_key != ""
    assert nudge.status == "in_flight"
    [(request, _)] = httpserver.log
    assert json.loads(request.data)["custom_args"]["idempotency_key"] == nudge.attempt_key


@pytest.mark.usefixtures("frozen_now")
def test_an_expired_lease_on_an_in_flight_send_puts_it_in_doubt_without_sending_again(
    setup, httpserver, killed_after_provider, monkeypatch, queued_jobs
):
    nudge = _killed_mid_send(setup, httpserver, killed_after_provider, monkeypatch)
    assert pipeline.process_due(now=nudge.claimed_until - timedelta(seconds=1)) == 0
    after = nudge.claimed_until + timedelta(seconds=1)

    assert pipeline.process_due(now=after) == 1
    assert queued_jobs == [[nudge.pk]]
    outcome = pipeline.nudge_process(nudge_id=nudge.pk, now=after)

    nudge.refresh_from_db()
    assert (outcome.status, nudge.status) == ("in_doubt", "in_doubt")
    assert len(httpserver.log) == 1  # never a second provider call
    assert nudge.trace[-1]["stage"] == "in_doubt"
    assert "mark as delivered, or send again" in nudge.trace[-1]["message"]
    # The cap counted the delivery once, and the retry was not refused by it (never suppressed).
    assert PolicyDecision.objects.filter(end_user=nudge.end_user, allowed=True).count() == 1
    assert not PolicyDecision.objects.filter(end_user=nudge.end_user, allowed=False).exists()
    assert "suppressed" not in set(NudgeEvent.objects.filter(nudge=nudge).values_list("status", flat=True))
    assert pipeline.nudge_process(nudge_id=nudge.pk, now=after) is None  # settled: nothing to run


@pytest.mark.usefixtures("frozen_now")
def test_a_delivery_webhook_naming_the_nudge_settles_the_send_in_flight(
    setup, httpserver, killed_after_provider, monkeypatch, queued_jobs
):
    nudge = _killed_mid_send(setup, httpserver, killed_after_provider, monkeypatch)

    counts = webhook_events.sendgrid_events_apply(
        workspace=setup["workspace"],
        events=[{"event": "delivered", "nudge_id": str(nudge.pk), "sg_event_id": "ev-1", "timestamp": 1}],
    )

    nudge.refresh_from_db()
    assert (counts["applied"], nudge.status, nudge.claimed_until) == (1, "delivered", None)
    assert (
        nudge.trace[-1]["message"]
        == "SendGrid reported it delivered: the attempt in flight reached the provider"
    )
    assert pipeline.process_due(now=timezone.now() + timedelta(hours=1)) == 0
    assert len(httpserver.log) == 1


@pytest.mark.usefixtures("frozen_now")
def test_where_the_provider_deduplicates_the_same_attempt_is_sent_again_with_its_key(
    setup, httpserver, killed_after_provider, monkeypatch
):
    nudge = _killed_mid_send(setup, httpserver, killed_after_provider, monkeypatch)
    monkeypatch.setattr(attempts, "idempotent_resend", lambda provider_code: True)

    outcome = pipeline.nudge_process(nudge_id=nudge.pk, now=nudge.claimed_until + timedelta(seconds=1))

    nudge.refresh_from_db()
    assert (outcome.status, nudge.status) == ("sent", "sent")
    first, second = (json.loads(request.data)["custom_args"] for request, _ in httpserver.log)
    assert first["idempotency_key"] == second["idempotency_key"] == nudge.attempt_key
    assert PolicyDecision.objects.filter(end_user=nudge.end_user, allowed=True).count() == 1


def test_a_killed_jobs_nudges_are_queued_again_as_soon_as_its_lease_runs_out(setup, queued_jobs):
    _email_only(setup)
    nudge = _stuck(setup["enrollment"])
    now = timezone.now()
    leases.lease_batch([nudge.pk], now)  # the job started, then its worker died

    assert pipeline.process_due(now=now + leases.lease() - timedelta(seconds=1)) == 0
    assert pipeline.process_due(now=now + leases.lease() + timedelta(seconds=1)) == 1
    assert queued_jobs == [[nudge.pk]]


def test_in_app_is_never_in_flight_its_send_and_status_are_one_write(setup, httpserver):
    setup["trigger"].channels = ["in_app"]
    setup["trigger"].save()
    nudge = _stuck(setup["enrollment"])

    outcome = pipeline.nudge_process(nudge_id=nudge.pk)

    nudge.refresh_from_db()
    assert (outcome.status, nudge.status, nudge.attempt_key) == ("sent", "delivered", "")
    assert "in flight" not in " ".join(line["message"] for line in nudge.trace)


# --- In doubt: a person decides -----------------------------------------------------------------


@pytest.mark.usefixtures("frozen_now")
def test_send_again_sends_once_more_without_taking_a_second_cap_slot(
    setup, httpserver, killed_after_provider, monkeypatch, admin_user
):
    nudge = _killed_mid_send(setup, httpserver, killed_after_provider, monkeypatch)
    pipeline.nudge_process(nudge_id=nudge.pk, now=nudge.claimed_until + timedelta(seconds=1))

    outcome = attempts.nudge_send_again(nudge=Nudge.objects.get(pk=nudge.pk), actor=admin_user)

    nudge.refresh_from_db()
    assert (outcome.status, nudge.status) == ("sent", "sent")
    assert len(httpserver.log) == 2
    first, second = (json.loads(request.data)["custom_args"] for request, _ in httpserver.log)
    assert first["idempotency_key"] != second["idempotency_key"] == nudge.attempt_key
    assert PolicyDecision.objects.filter(end_user=nudge.end_user, allowed=True).count() == 1
    assert AuditLog.objects.filter(action="nudge.send_again", object_id=str(nudge.pk)).count() == 1
    assert attempts.nudge_send_again(nudge=nudge, actor=admin_user) is None  # no longer in doubt


@pytest.mark.usefixtures("frozen_now")
def test_mark_as_delivered_settles_it_without_a_provider_call(
    setup, httpserver, killed_after_provider, monkeypatch, admin_user
):
    nudge = _killed_mid_send(setup, httpserver, killed_after_provider, monkeypatch)
    pipeline.nudge_process(nudge_id=nudge.pk, now=nudge.claimed_until + timedelta(seconds=1))

    assert attempts.nudge_mark_delivered(nudge=Nudge.objects.get(pk=nudge.pk), actor=admin_user)

    nudge.refresh_from_db()
    assert nudge.status == "delivered"
    assert len(httpserver.log) == 1
    assert AuditLog.objects.filter(action="nudge.mark_delivered", object_id=str(nudge.pk)).count() == 1
    assert not attempts.nudge_mark_delivered(nudge=nudge, actor=admin_user)


@pytest.mark.usefixtures("frozen_now")
def test_send_again_is_refused_when_a_rule_other_than_the_cap_denies_it(
    setup, httpserver, killed_after_provider, monkeypatch, admin_user
):
    nudge = _killed_mid_send(setup, httpserver, killed_after_provider, monkeypatch)
    pipeline.nudge_process(nudge_id=nudge.pk, now=nudge.claimed_until + timedelta(seconds=1))
    policy_services.consent_record(
        end_user=nudge.end_user, channel="email", purpose="onboarding", granted=False, source="api"
    )

    outcome = attempts.nudge_send_again(nudge=Nudge.objects.get(pk=nudge.pk), actor=admin_user)

    nudge.refresh_from_db()
    assert (outcome.status, nudge.status) == ("in_doubt", "in_doubt")
    assert outcome.detail.startswith("consent")
    assert len(httpserver.log) == 1
    assert (
        AuditLog.objects.get(action="nudge.send_again", object_id=str(nudge.pk)).changes["after"]["status"]
        == "in_doubt"
    )


@pytest.mark.usefixtures("frozen_now")
def test_a_provider_that_takes_the_request_but_never_answers_leaves_it_in_doubt_not_retried(
    setup, httpserver, settings, queued_jobs
):
    settings.NUDGE_PROVIDER_TIMEOUT_SECONDS = 0.3

    calls = []

    def answer_too_late(request):
        calls.append(request.path)
        time_module.sleep(1)
        return Response("", status=202, headers={"X-Message-Id": "late"})

    httpserver.expect_request(SENDGRID_PATH, method="POST").respond_with_handler(answer_too_late)
    _email_only(setup)
    nudge = _stuck(setup["enrollment"])

    outcome = pipeline.nudge_process(nudge_id=nudge.pk)

    nudge.refresh_from_db()
    assert (outcome.status, nudge.status, nudge.send_after) == ("in_doubt", "in_doubt", None)
    assert "may have been accepted" in nudge.trace[-1]["message"]
    assert pipeline.process_due(now=timezone.now() + timedelta(days=1)) == 0  # never retried
    assert calls == [SENDGRID_PATH]
    assert PolicyDecision.objects.filter(end_user=nudge.end_user, allowed=True).count() == 1
