"""Anomaly alerts: what raises one (and what does not), its score, deduplication, notification by
email and webhook, failure counting, the audit trail and the admin list."""

import io
import json
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from analytics.alerts import detection, services
from analytics.alerts.jobs import detect_anomalies_job
from analytics.models import Alert, EnrollmentRollup, StepRollup
from analytics.rollups import services as rollups
from tenancy import services as tenancy_services
from tenancy.models import AuditLog
from tests.analytics.rollup_data import Spec, enroll
from tests.conftest import listed, post_action, verified_client
from tests.factories import AdminUserFactory, PathFactory, PublishedPathVersionFactory, StepFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
JUDGED = date(2026, 2, 27)  # drop-off: today - 1 - DROP_OFF_SETTLE_DAYS
ACTIVATION_JUDGED = date(2026, 2, 14)  # the last mature day: today - (14 + 1)
# s2's drop-offs (of 50 entering) on ten baseline days: median 0.20, MAD 0.02 (worked out by hand:
# sorted values .16 .18 .18 .20 .20 .20 .20 .22 .22 .24; deviations 0 0 0 0 .02 .02 .02 .02 .04 .04).
BASELINE_DROPPED = (10, 11, 9, 10, 12, 8, 10, 11, 9, 10)
CHANGELIST = "/admin/analytics/alert/"


def make_version(workspace, key="setup"):
    version = PublishedPathVersionFactory(path=PathFactory(workspace=workspace, key=key), number=1)
    for order, step_key in enumerate(("s1", "s2")):
        StepFactory(path_version=version, key=step_key, order=order)
    return version


def step_day(version, day, step_key, entered, dropped):
    StepRollup.objects.create(
        workspace=version.path.workspace,
        path_version=version,
        day=day,
        step_key=step_key,
        entered=entered,
        advanced=entered - dropped,
        completed=entered - dropped,
    )


def drop_off_history(version, *, judged_entered=50, judged_dropped=30):
    """s1: nobody drops, every day. s2: BASELINE_DROPPED on the ten days before JUDGED, then
    `judged_dropped` of `judged_entered` on JUDGED."""
    for offset, dropped in enumerate(BASELINE_DROPPED, start=1):
        day = JUDGED - timedelta(days=offset)
        step_day(version, day, "s1", 50, 0)
        step_day(version, day, "s2", 50, dropped)
    step_day(version, JUDGED, "s1", 50, 0)
    step_day(version, JUDGED, "s2", judged_entered, judged_dropped)


@pytest.fixture
def acme(tenant):
    return tenant[0]


@pytest.fixture
def version(acme):
    return make_version(acme)


@pytest.fixture(autouse=True)
def _no_channels(settings):
    settings.ANALYTICS_ALERT_EMAILS = []
    settings.ANALYTICS_ALERT_WEBHOOK_URL = ""


class Hook:
    """A Slack-like incoming webhook on a local port: records each POST, answers `status`/`body`."""

    def __init__(self, status=200, body="ok"):
        self.status, self.body, self.received = status, body, []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                hook.received.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(hook.body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/XXXX"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(settings):
    started = Hook()
    settings.ANALYTICS_ALERT_WEBHOOK_URL = started.url
    yield started
    started.close()


def test_a_drop_off_spike_raises_one_alert_with_the_robust_score(acme, version):
    drop_off_history(version)

    report = services.alerts_detect(workspace=acme, now=NOW)

    assert (report.raised, report.failures) == (1, 0)
    [alert] = Alert.objects.all()
    assert (alert.metric, alert.step_key, alert.day) == ("drop_off_rate_by_step", "s2", JUDGED)
    assert (alert.value, alert.numerator, alert.denominator) == (0.6, 30, 50)
    assert alert.baseline_median == pytest.approx(0.20)
    assert alert.baseline_mad == pytest.approx(0.02)
    assert alert.baseline_days == 10
    assert alert.score == pytest.approx((0.6 - 0.20) / (1.4826 * 0.02))  # 13.49
    assert alert.status == Alert.Status.OPEN


def test_below_the_minimum_volume_nothing_is_raised(acme, version):
    drop_off_history(version, judged_entered=20, judged_dropped=12)  # 60% of 20 < 30 entering

    assert services.alerts_detect(workspace=acme, now=NOW).raised == 0
    assert not Alert.objects.exists()


def test_too_few_baseline_days_raise_nothing(acme, version):
    for offset in range(1, 7):  # six days with data, seven needed
        step_day(version, JUDGED - timedelta(days=offset), "s2", 50, 10)
    step_day(version, JUDGED, "s2", 50, 40)

    assert services.alerts_detect(workspace=acme, now=NOW).raised == 0


def test_an_improvement_raises_nothing(acme, version):
    drop_off_history(version, judged_dropped=1)  # 2% drop-off against 20%: score -6.1

    assert services.alerts_detect(workspace=acme, now=NOW).raised == 0


def test_an_activation_fall_alerts_and_a_rise_does_not(acme, version, other_tenant):
    for offset, activated in enumerate((25, 26, 24, 25, 27, 23, 25, 26), start=1):
        EnrollmentRollup.objects.create(
            workspace=acme,
            path_version=version,
            day=ACTIVATION_JUDGED - timedelta(days=offset),
            enrolled=50,
            activated=activated,
            activation_window_days=14,
        )
    EnrollmentRollup.objects.create(
        workspace=acme,
        path_version=version,
        day=ACTIVATION_JUDGED,
        enrolled=50,
        activated=5,
        activation_window_days=14,
    )

    services.alerts_detect(workspace=acme, now=NOW)

    [alert] = Alert.objects.all()
    assert (alert.metric, alert.step_key, alert.day, alert.value) == (
        "activation_rate",
        "",
        ACTIVATION_JUDGED,
        0.1,
    )
    # Baseline rates .46 .48 .50 .50 .50 .52 .52 .54: median .50, deviations 0 0 0 .02 .02 .02 .02 .04.
    assert alert.score == pytest.approx((0.1 - 0.5) / (1.4826 * 0.02))
    EnrollmentRollup.objects.filter(day=ACTIVATION_JUDGED).update(activated=45)
    Alert.objects.all().delete()
    services.alerts_detect(workspace=acme, now=NOW)
    assert not Alert.objects.exists()


def test_the_real_refresh_path_raises_the_alert(acme, monkeypatch):
    """Enrollments through the rollup refresh, with the volume minimums lowered to fit a small
    history: three baseline days where 1 of 4 stops at s1, then a day where all 4 do."""
    monkeypatch.setattr(detection, "MIN_DENOMINATOR", 3)
    monkeypatch.setattr(detection, "MIN_BASELINE_DAYS", 3)
    version = make_version(acme)
    for offset in (1, 2, 3):
        day = JUDGED - timedelta(days=offset)
        for index in range(3):
            enroll(
                acme, version, Spec(f"d{offset}-{index}", day, "dev", (("s1", "api", 60), ("s2", "api", 120)))
            )
        enroll(acme, version, Spec(f"d{offset}-stop", day, "dev"))
    for index in range(4):
        enroll(acme, version, Spec(f"judged-{index}", JUDGED, "dev"))
    rollups.rollups_refresh(workspace=acme)

    services.alerts_detect(workspace=acme, now=NOW)

    [alert] = Alert.objects.all()
    assert (alert.step_key, alert.value, alert.denominator, alert.baseline_median) == ("s1", 1.0, 4, 0.25)
    # MAD 0: the floor of one point is the scale.
    assert alert.score == pytest.approx((1.0 - 0.25) / detection.MIN_SCALE)


def test_running_again_raises_and_notifies_nothing_new(acme, version, settings):
    settings.ANALYTICS_ALERT_EMAILS = ["ops@example.com"]
    drop_off_history(version)

    services.alerts_detect(workspace=acme, now=NOW)
    second = services.alerts_detect(workspace=acme, now=NOW + timedelta(hours=1))

    assert second.raised == 0
    assert Alert.objects.count() == 1
    assert len(mail.outbox) == 1
    assert AuditLog.objects.filter(action="analytics.alert_raised").count() == 1


def test_a_new_alert_is_emailed_and_posted_without_personal_data(acme, version, settings, hook):
    settings.ANALYTICS_ALERT_EMAILS = ["ops@example.com", "growth@example.com"]
    settings.SERVER_EMAIL = "alerts@onboarding.example.com"
    drop_off_history(version)

    services.alerts_detect(workspace=acme, now=NOW)

    [email] = mail.outbox
    assert email.from_email == "alerts@onboarding.example.com"
    assert email.to == ["ops@example.com", "growth@example.com"]
    assert email.subject == f"[{acme.slug}] Anomaly: drop-off at step s2 of setup v1 on 2026-02-27"
    assert "rose to 60.0% (30 of 50 enrollments) against a median of 20.0% over 10 days" in email.body
    [posted] = hook.received
    assert posted == {"text": email.body}
    alert = Alert.objects.get()
    assert f"/admin/analytics/alert/{alert.pk}/change/" in email.body
    assert alert.notifications["email"]["outcome"] == "sent"
    assert alert.notifications["webhook"]["outcome"] == "sent"
    assert alert.notifications["webhook"]["detail"] == "200 ok"
    assert hook.url not in json.dumps(alert.notifications)


def test_a_failing_webhook_is_recorded_and_the_alert_kept(acme, version, settings, hook):
    hook.status, hook.body = 500, "no_service"
    settings.ANALYTICS_ALERT_EMAILS = ["ops@example.com"]
    drop_off_history(version)

    report = services.alerts_detect(workspace=acme, now=NOW)

    assert report.raised == 1
    alert = Alert.objects.get()
    assert alert.notifications["webhook"]["outcome"] == "failed"
    assert alert.notifications["webhook"]["detail"] == "500 no_service"
    assert alert.notifications["email"]["outcome"] == "sent"
    assert len(hook.received) == 1 and len(mail.outbox) == 1
    assert alert.notifications["webhook"]["attempts"] == 1


def test_a_failed_channel_is_tried_again_by_the_next_runs_up_to_three_times(acme, version, settings, hook):
    hook.status, hook.body = 500, "no_service"
    settings.ANALYTICS_ALERT_EMAILS = ["ops@example.com"]
    drop_off_history(version)

    for hour in range(4):
        services.alerts_detect(workspace=acme, now=NOW + timedelta(hours=hour))

    assert len(hook.received) == 3  # three attempts, then no more
    assert len(mail.outbox) == 1  # the email was sent the first time: never again
    webhook = Alert.objects.get().notifications["webhook"]
    assert (webhook["outcome"], webhook["attempts"]) == ("failed", 3)


def test_a_retried_channel_that_succeeds_is_recorded_as_sent(acme, version, hook):
    hook.status, hook.body = 500, "no_service"
    drop_off_history(version)
    services.alerts_detect(workspace=acme, now=NOW)
    hook.status, hook.body = 200, "ok"

    services.alerts_detect(workspace=acme, now=NOW + timedelta(hours=1))
    services.alerts_detect(workspace=acme, now=NOW + timedelta(hours=2))

    assert len(hook.received) == 2
    webhook = Alert.objects.get().notifications["webhook"]
    assert (webhook["outcome"], webhook["detail"], webhook["attempts"]) == ("sent", "200 ok", 2)


def test_an_unreachable_webhook_is_recorded_as_failed(acme, version, settings):
    hook = Hook()
    hook.close()  # nothing listens on that port any more
    settings.ANALYTICS_ALERT_WEBHOOK_URL = hook.url
    drop_off_history(version)

    services.alerts_detect(workspace=acme, now=NOW)

    assert Alert.objects.get().notifications["webhook"]["outcome"] == "failed"


def test_a_failing_series_is_counted_and_the_others_still_run(acme, version, monkeypatch):
    broken = make_version(acme, key="billing")
    drop_off_history(version)
    drop_off_history(broken)
    real = detection.drop_off_series

    def drop_off_series(*, workspace, path_version, last):
        if path_version.pk == broken.pk:
            raise RuntimeError("the rollups could not be read")
        return real(workspace=workspace, path_version=path_version, last=last)

    monkeypatch.setattr(detection, "drop_off_series", drop_off_series)
    failures = services.DETECTION_FAILURES.labels(metric="drop_off_rate_by_step")
    before = failures._value.get()

    report = services.alerts_detect(workspace=acme, now=NOW)

    assert (report.raised, report.failures, report.series) == (1, 1, 4)
    assert failures._value.get() == before + 1
    assert Alert.objects.get().path_version == version


def test_the_job_and_the_command_run_detection(acme, version, monkeypatch, other_tenant):
    drop_off_history(version)
    monkeypatch.setattr(timezone, "now", lambda: NOW)

    totals = detect_anomalies_job()
    out = io.StringIO()
    call_command("detect_anomalies", "--workspace", acme.slug, stdout=out)

    assert totals == {"workspaces": 2, "series": 2, "raised": 1, "failures": 0}
    assert f"{acme.slug}: 2 series judged, 0 alert(s) raised, 0 failed" in out.getvalue()


@pytest.fixture
def alice(acme):
    user = AdminUserFactory(username="alice")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=True)
    return user


def test_raising_and_acknowledging_are_audited(acme, version, alice):
    drop_off_history(version)
    services.alerts_detect(workspace=acme, now=NOW)
    alert = Alert.objects.get()

    response = post_action(verified_client(alice), CHANGELIST, "acknowledge", [alert])

    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and alert.acknowledged_at is not None
    raised = AuditLog.objects.get(action="analytics.alert_raised")
    assert (raised.actor_label, raised.object_id, raised.workspace) == ("system", str(alert.pk), acme)
    acknowledged = AuditLog.objects.get(action="admin.action.acknowledge")
    assert acknowledged.actor == alice and acknowledged.object_id == str(alert.pk)
    assert acknowledged.changes["before"]["status"] == "open"
    assert acknowledged.changes["after"]["status"] == "acknowledged"


def test_the_admin_lists_only_the_alerts_of_granted_workspaces(acme, version, alice, other_tenant):
    drop_off_history(version)
    globex_version = make_version(other_tenant[0], key="globex-path")
    drop_off_history(globex_version)
    services.alerts_detect(workspace=acme, now=NOW)
    services.alerts_detect(workspace=other_tenant[0], now=NOW)
    ours = Alert.objects.get(workspace=acme)
    theirs = Alert.objects.get(workspace=other_tenant[0])
    client = verified_client(alice)

    assert listed(client.get(CHANGELIST)) == [ours]
    assert listed(client.get(CHANGELIST, {"status": "resolved"})) == []
    assert "globex-path" not in client.get(CHANGELIST).content.decode()
    assert listed(client.get(CHANGELIST, {"path": "setup", "metric": "drop_off_rate_by_step"})) == [ours]
    assert listed(client.get(CHANGELIST, {"metric": "activation_rate"})) == []
    page = client.get(f"{CHANGELIST}{ours.pk}/change/")
    assert page.status_code == 200
    assert "drop-off by step" in page.content.decode()
    post_action(client, CHANGELIST, "resolve", [theirs])
    theirs.refresh_from_db()
    assert theirs.status == Alert.Status.OPEN
    assert (
        client.get(f"{CHANGELIST}{theirs.pk}/change/").status_code == 302
    )  # "does not exist", back to the index
