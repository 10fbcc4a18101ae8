"""Survey signals: POST /api/v1/signals, the object stores (a directory, and S3 through a local moto
server), stage isolation, and the nightly merge's figures computed by hand on crafted sessions."""

import json
import re
import socket
from datetime import UTC, date, datetime, timedelta

import boto3
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from moto.server import ThreadedMotoServer

from analytics.signals import selectors, services
from analytics.signals.jobs import merge_signals_job
from analytics.signals.storage import EnvironmentStorage, LocalDirectoryStorage, S3Storage, signals_storage
from config.cron import SCHEDULE
from guardrails.abuse import ratelimit
from tenancy import services as tenancy_services
from tenancy.models import EndUser
from tests.conftest import end_user_client, key_client, verified_client
from tests.factories import AdminUserFactory

DAY = date(2026, 3, 10)


@pytest.fixture
def local_store(tmp_path, settings):
    settings.SIGNALS_STORAGE_URL = str(tmp_path / "signals")
    settings.ANALYTICS_ENVIRONMENT = "dev"
    return signals_storage()


def stored_keys(store: EnvironmentStorage) -> list[str]:
    return list(store.backend.list_keys(""))


def pre_signal(**fields) -> dict:
    return {
        "stage": "pre",
        "user_id": "u-1",
        "session_id": "s-1",
        "intent": "evaluate",
        "confidence": 2,
        **fields,
    }


def post_signal(**fields) -> dict:
    return {
        "stage": "post",
        "user_id": "u-1",
        "session_id": "s-1",
        "confidence": 4,
        "goal_completed": True,
        "experience_score": 8,
        **fields,
    }


# --- The API ---------------------------------------------------------------------------------------


def test_a_pre_signal_with_the_write_key_is_stored_as_one_object_under_the_stage(tenant, local_store):
    workspace, write_key, _ = tenant

    response = key_client(write_key).post(
        "/api/v1/signals", pre_signal(goal="Ship my first dashboard"), format="json"
    )

    assert response.status_code == 202, response.json()
    assert response.json()["correlation_key"] == "u-1-s-1"
    [key] = stored_keys(local_store)
    today = datetime.now(UTC).date()
    # A "-" inside the user id is written %2D: the first "-" of the name ends the user id.
    assert key.startswith(f"dev/signals/{workspace.pk}/{today:%Y/%m/%d}/pre/u%2D1-s-1-")
    document = json.loads(local_store.backend.get(key))
    assert document["correlation_key"] == "u-1-s-1"
    assert document["confidence"] == 2
    assert document["goal"] == "Ship my first dashboard"
    assert document["workspace_id"] == workspace.pk
    assert document["environment"] == "dev"


def test_an_end_user_token_sends_signals_of_its_own_user_only(tenant, local_store):
    workspace, _, _ = tenant
    end_user = EndUser.objects.create(workspace=workspace, external_id="u-1")
    client = end_user_client(end_user)

    accepted = client.post("/api/v1/signals", post_signal(), format="json")
    refused = client.post("/api/v1/signals", post_signal(user_id="u-2"), format="json")

    assert accepted.status_code == 202
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This end-user token is for another user."
    [key] = stored_keys(local_store)
    assert "/post/u%2D1-s-1-" in key


def test_no_credentials_no_signal(api_client, local_store, db):
    response = api_client.post("/api/v1/signals", pre_signal(), format="json")

    assert response.status_code in (401, 403)
    assert stored_keys(local_store) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"text": "Great, mail me at jane.doe@example.com"}, "text"),
        ({"goal": "call me on +1 415 555 0100"}, "goal"),
        ({"user_id": "jane.doe@example.com"}, "user_id"),
    ],
)
def test_a_signal_carrying_pii_is_refused_naming_the_field_and_nothing_is_stored(
    tenant, local_store, fields, field
):
    response = key_client(tenant[1]).post("/api/v1/signals", pre_signal(**fields), format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert "personal data" in response.json()["errors"][0]["reason"]
    assert stored_keys(local_store) == []


def test_random_looking_ids_are_not_taken_for_secrets(tenant, local_store):
    signal = pre_signal(user_id="01HZX3K9QW8E7R6T5Y4U3I2O1P", session_id="sess_2abcDEF123ghiJKL456mnoPQR")

    response = key_client(tenant[1]).post("/api/v1/signals", signal, format="json")

    assert response.status_code == 202
    assert len(stored_keys(local_store)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (pre_signal(confidence=7), "confidence"),
        (pre_signal(stage="during"), "stage"),
        (pre_signal(email="x"), "email"),
        (pre_signal(experience_score=5), "experience_score"),
        ({k: v for k, v in post_signal().items() if k != "goal_completed"}, "goal_completed"),
        (post_signal(experience_score=11), "experience_score"),
        ({k: v for k, v in pre_signal().items() if k != "session_id"}, "session_id"),
        (pre_signal(text="x" * 2001), "text"),
    ],
)
def test_a_malformed_signal_is_refused_naming_the_field(tenant, local_store, body, field):
    response = key_client(tenant[1]).post("/api/v1/signals", body, format="json")

    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]
    assert stored_keys(local_store) == []


def test_a_body_that_is_not_json_is_refused(tenant, local_store):
    response = key_client(tenant[1]).post("/api/v1/signals", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["detail"]
    assert stored_keys(local_store) == []


def test_an_oversized_body_is_refused_with_413_and_nothing_is_stored(tenant, local_store, settings):
    body = json.dumps({**pre_signal(), "text": "a" * (17 * 1024)})

    response = key_client(tenant[1]).post("/api/v1/signals", body, content_type="application/json")

    assert response.status_code == 413
    assert "16 KB" in response.json()["detail"]
    assert stored_keys(local_store) == []


def test_a_key_over_its_event_rate_limit_gets_429_and_nothing_more_is_stored(tenant, local_store, settings):
    settings.REDIS_URL = ""  # the in-process limiter
    settings.INGEST_RATE_LIMIT_EVENTS_PER_SECOND = 0.001
    settings.INGEST_RATE_LIMIT_EVENTS_BURST = 2
    ratelimit.reset_for_tests()
    client = key_client(tenant[1])

    answers = [
        client.post("/api/v1/signals", pre_signal(session_id=f"s-{n}"), format="json") for n in range(3)
    ]

    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert "Retry-After" in answers[2]
    assert len(stored_keys(local_store)) == 2
    ratelimit.reset_for_tests()


# --- The local directory store ---------------------------------------------------------------------


def test_the_directory_store_writes_lists_and_reads_objects(tmp_path):
    store = LocalDirectoryStorage(tmp_path)
    store.put("dev/signals/1/2026/03/10/pre/a-1.json", b"{}", content_type="application/json")
    store.put("dev/signals/2/2026/03/10/post/b-2.json", b"[]", content_type="application/json")

    assert list(store.list_keys("dev/signals/1")) == ["dev/signals/1/2026/03/10/pre/a-1.json"]
    assert store.children("dev/signals") == ["1", "2"]
    assert store.get("dev/signals/2/2026/03/10/post/b-2.json") == b"[]"
    with pytest.raises(KeyError):
        store.get("dev/signals/3/none.json")
    with pytest.raises(ValueError, match="Invalid object key"):
        store.put("dev/../../etc/passwd", b"", content_type="text/plain")


def test_the_directory_store_keeps_stages_apart(tmp_path):
    dev = EnvironmentStorage(LocalDirectoryStorage(tmp_path), "dev")
    prod = EnvironmentStorage(LocalDirectoryStorage(tmp_path), "prod")
    dev.put("signals/1/2026/03/10/pre/a-1.json", b"{}", content_type="application/json")

    assert list(dev.list_keys("signals/")) == ["signals/1/2026/03/10/pre/a-1.json"]
    assert list(prod.list_keys("signals/")) == []
    assert selectors.signal_workspace_ids(storage=prod) == []


# --- S3 through a local moto server ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_CREDENTIALS = {"region": "us-east-1", "access_key_id": "testing", "secret_access_key": "testing"}


@pytest.fixture
def bucket(s3_endpoint, request):
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=name)
    return name


def s3_stage(endpoint: str, bucket: str, environment: str) -> EnvironmentStorage:
    return EnvironmentStorage(
        S3Storage(bucket=bucket, prefix="feedback", endpoint_url=endpoint, **S3_CREDENTIALS), environment
    )


def test_the_s3_store_writes_lists_and_reads_objects_under_its_prefix(s3_endpoint, bucket):
    store = S3Storage(bucket=bucket, prefix="feedback", endpoint_url=s3_endpoint, **S3_CREDENTIALS)
    store.put("dev/signals/7/2026/03/10/pre/a-1.json", b'{"a": 1}', content_type="application/json")
    store.put("dev/signals/8/2026/03/10/post/b-2.json", b"{}", content_type="application/json")

    assert list(store.list_keys("dev/signals/7")) == ["dev/signals/7/2026/03/10/pre/a-1.json"]
    assert store.children("dev/signals") == ["7", "8"]
    assert store.get("dev/signals/7/2026/03/10/pre/a-1.json") == b'{"a": 1}'
    with pytest.raises(KeyError):
        store.get("dev/signals/9/none.json")
    raw = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys = [item["Key"] for item in raw.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == [
        "feedback/dev/signals/7/2026/03/10/pre/a-1.json",
        "feedback/dev/signals/8/2026/03/10/post/b-2.json",
    ]


def test_objects_of_dev_are_never_read_by_prod_on_the_same_bucket(s3_endpoint, bucket):
    dev = s3_stage(s3_endpoint, bucket, "dev")
    prod = s3_stage(s3_endpoint, bucket, "prod")
    received = datetime(2026, 3, 10, 9, tzinfo=UTC)
    services.signal_record(storage=dev, workspace_id=1, payload=pre_signal(), received_at=received)
    services.signal_record(
        storage=prod, workspace_id=1, payload=pre_signal(confidence=5), received_at=received
    )

    dev_report = services.signals_report_write(storage=dev, workspace_id=1, day=DAY)
    prod_report = services.signals_report_write(storage=prod, workspace_id=1, day=DAY)

    assert [json.loads(dev.get(key))["confidence"] for key in dev.list_keys("signals/")] == [2]
    assert [json.loads(prod.get(key))["environment"] for key in prod.list_keys("signals/")] == ["prod"]
    assert dev_report.summary_key.startswith("dev/reports/1/2026-03-10/")
    assert prod_report.summary_key.startswith("prod/reports/1/2026-03-10/")
    assert json.loads(prod.get("reports/1/2026-03-10/summary.json"))["environment"] == "prod"
    staging = s3_stage(s3_endpoint, bucket, "staging")
    assert list(staging.list_keys("")) == []
    assert services.signals_reports_write(storage=staging, day=DAY) == []


def test_the_api_writes_to_the_configured_s3_bucket(tenant, settings, s3_endpoint, bucket):
    settings.SIGNALS_STORAGE_URL = f"s3://{bucket}/feedback"
    settings.SIGNALS_S3_ENDPOINT_URL = s3_endpoint
    settings.SIGNALS_S3_ACCESS_KEY_ID = settings.SIGNALS_S3_SECRET_ACCESS_KEY = "testing"
    settings.ANALYTICS_ENVIRONMENT = "staging"

    response = key_client(tenant[1]).post("/api/v1/signals", pre_signal(), format="json")

    assert response.status_code == 202
    [key] = list(S3Storage(bucket=bucket, endpoint_url=s3_endpoint, **S3_CREDENTIALS).list_keys(""))
    assert key.startswith(f"feedback/staging/signals/{tenant[0].pk}/")


# --- The merge ---------------------------------------------------------------------------------------


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def record(store, payload: dict, received_at: datetime, workspace_id: int = 1) -> None:
    services.signal_record(
        storage=store,
        workspace_id=workspace_id,
        payload={**payload, "timestamp": received_at},
        received_at=received_at,
    )


@pytest.fixture
def crafted_sessions(local_store):
    """Sessions of DAY, each with its known outcome:
    a: pre 2, post 4 (goal, score 8)            lift +2
    b: pre 3, post 2 (no goal, score 4)         lift -1
    c: pre 1 at 23:50, post 4 at 00:10 next day lift +3 (crossed midnight)
    d: pre 4, no post                           abandoned
    e: post only (goal, score 6, no confidence)
    f: pre the day before, post on DAY          belongs to the day before
    g: pre 5 then pre 2 (resubmitted), post 3   lift +1 (latest pre counts)
    """
    store = local_store
    before, after = DAY - timedelta(days=1), DAY + timedelta(days=1)
    sessions = {
        "a": [
            (pre_signal(confidence=2), at(DAY, 9)),
            (post_signal(confidence=4, experience_score=8), at(DAY, 10)),
        ],
        "b": [
            (pre_signal(confidence=3), at(DAY, 9)),
            (
                post_signal(confidence=2, goal_completed=False, experience_score=4, text="Too many steps"),
                at(DAY, 11),
            ),
        ],
        "c": [
            (pre_signal(confidence=1), at(DAY, 23, 50)),
            (post_signal(confidence=4, experience_score=9), at(after, 0, 10)),
        ],
        "d": [(pre_signal(confidence=4), at(DAY, 12))],
        "e": [({**post_signal(experience_score=6), "confidence": None}, at(DAY, 13))],
        "f": [
            (pre_signal(confidence=1), at(before, 22)),
            (post_signal(confidence=5, experience_score=10), at(DAY, 1)),
        ],
        "g": [
            (pre_signal(confidence=5), at(DAY, 9)),
            (pre_signal(confidence=2), at(DAY, 10)),
            (post_signal(confidence=3, experience_score=7), at(DAY, 12)),
        ],
    }
    for session, signals in sessions.items():
        for payload, received_at in signals:
            if payload.get("confidence") is None:
                payload = {key: value for key, value in payload.items() if key != "confidence"}
            record(store, {**payload, "session_id": session}, received_at)
    return store


def test_the_days_merge_gives_the_figures_computed_by_hand(crafted_sessions):
    written = services.signals_report_write(storage=crafted_sessions, workspace_id=1, day=DAY)
    summary = written.summary

    # pre: a b c d g; pairs: a b c g (lifts 2, -1, 3, 1); d abandoned; e post only; f is the day before's.
    assert summary["counts"] == {
        "pre": 5,
        "post": 5,
        "pairs": 4,
        "pre_without_post": 1,
        "post_without_pre": 1,
    }
    assert summary["confidence_lift"]["n"] == 4
    assert summary["confidence_lift"]["mean"] == 1.25
    assert summary["confidence_lift"]["median"] == 1.5
    assert summary["confidence_lift"]["distribution"] == {"-1": 1, "1": 1, "2": 1, "3": 1}
    assert summary["abandonment"]["share"] == 0.2
    assert summary["abandonment"]["adjusted_confidence_lift_mean"] == 0.8  # (2 - 1 + 3 + 1 - 1) / 5
    assert summary["experience_score_post_without_pre"] == {"n": 1, "mean": 6}
    assert summary["experience_score_all_posts"] == {"n": 5, "mean": 6.8}  # (8 + 4 + 9 + 6 + 7) / 5
    assert summary["goal_completion"] == {"completed": 4, "posts": 5, "rate": 0.8}
    assert [item["text"] for item in summary["feedback"]] == ["Too many steps"]
    assert json.loads(crafted_sessions.get("reports/1/2026-03-10/summary.json")) == summary


def test_each_signal_counts_in_one_daily_report_only(crafted_sessions):
    before = services.signals_report_write(
        storage=crafted_sessions, workspace_id=1, day=DAY - timedelta(days=1)
    )
    after = services.signals_report_write(
        storage=crafted_sessions, workspace_id=1, day=DAY + timedelta(days=1)
    )
    everything = services.signals_report_write(storage=crafted_sessions, workspace_id=1, day=None)

    # f: pre the day before, its post on DAY: a pair of the day before.
    assert before.summary["counts"] == {
        "pre": 1,
        "post": 1,
        "pairs": 1,
        "pre_without_post": 0,
        "post_without_pre": 0,
    }
    assert before.summary["confidence_lift"]["mean"] == 4
    # c's post arrived after midnight: it answers DAY's pre, so the next day counts nothing.
    assert after.summary["counts"]["post"] == 0
    assert everything.summary["counts"] == {
        "pre": 6,
        "post": 6,
        "pairs": 5,
        "pre_without_post": 1,
        "post_without_pre": 1,
    }
    assert everything.report_key == "dev/reports/1/all/report.html"


def test_the_report_is_one_self_contained_html_file(crafted_sessions):
    services.signals_report_write(storage=crafted_sessions, workspace_id=1, day=DAY)

    html = crafted_sessions.get("reports/1/2026-03-10/report.html").decode()
    files = [key for key in crafted_sessions.list_keys("reports/1/2026-03-10/")]

    assert files == ["reports/1/2026-03-10/report.html", "reports/1/2026-03-10/summary.json"]
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.IGNORECASE)
    assert "@import" not in html and "url(http" not in html
    assert "<svg" in html
    # Every figure is written out as text, so the page reads without its colours.
    for text in ("1.25", "20.0%", "80.0%", "Too many steps", "+3", "-1"):
        assert text in html


def test_free_text_is_escaped_in_the_report(local_store):
    record(local_store, post_signal(text="<script>alert(1)</script>"), at(DAY, 9))

    services.signals_report_write(storage=local_store, workspace_id=1, day=DAY)

    html = local_store.get("reports/1/2026-03-10/report.html").decode()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_command_merges_a_day_for_every_workspace(crafted_sessions, capsys, db):
    record(crafted_sessions, pre_signal(), at(DAY, 9), workspace_id=2)

    call_command("merge_signals", "--date", "2026-03-10")

    output = capsys.readouterr().out
    assert "workspace 1 (2026-03-10): 5 pre, 5 post, 4 pairs" in output
    assert "workspace 2 (2026-03-10): 1 pre, 0 post, 0 pairs" in output
    assert (
        json.loads(crafted_sessions.get("reports/2/2026-03-10/summary.json"))["abandonment"]["share"] == 1.0
    )
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("merge_signals", "--date", "10/03/2026")


def test_the_nightly_job_merges_yesterday_and_is_scheduled(crafted_sessions, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: at(DAY + timedelta(days=1), 2))

    result = merge_signals_job()

    assert result == {"workspaces": 1, "pairs": 4}
    assert crafted_sessions.get("reports/1/2026-03-10/report.html")
    assert merge_signals_job in [periodic.func for periodic in SCHEDULE]


def test_browsers_may_send_signals_from_any_origin(api_client, db):
    response = api_client.options(
        "/api/v1/signals",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )

    assert response["Access-Control-Allow-Origin"] in ("*", "https://app.example.com")


def test_the_signals_api_is_in_the_openapi_schema(server):
    schema = server.get("/api/schema", HTTP_ACCEPT="application/json").json()

    operation = schema["paths"]["/api/v1/signals"]["post"]
    assert set(operation["responses"]) == {"202", "400", "413", "429", "503"}


# --- The admin's way to the reports ------------------------------------------------------------------


@pytest.fixture
def acme_admin(tenant):
    """An admin granted the tenant's workspace, and nothing else."""
    user = AdminUserFactory(username="signals-admin")
    tenancy_services.workspace_grant(workspace=tenant[0], user=user, can_change=False)
    return user


def test_an_admin_lists_and_opens_the_reports_of_their_workspace_only(
    tenant, other_tenant, acme_admin, local_store
):
    acme, globex = tenant[0], other_tenant[0]
    record(local_store, pre_signal(), at(DAY, 9), workspace_id=acme.pk)
    record(local_store, pre_signal(), at(DAY, 9), workspace_id=globex.pk)
    services.signals_reports_write(storage=local_store, day=DAY)
    client = verified_client(acme_admin)

    listing = client.get("/admin/analytics/signals/")
    report = client.get(f"/admin/analytics/signals/{acme.pk}/2026-03-10/report.html")
    theirs = client.get(f"/admin/analytics/signals/{globex.pk}/2026-03-10/report.html")
    missing = client.get(f"/admin/analytics/signals/{acme.pk}/2026-03-11/report.html")

    assert listing.status_code == 200
    assert f"/admin/analytics/signals/{acme.pk}/2026-03-10/report.html" in listing.content.decode()
    assert f"/admin/analytics/signals/{globex.pk}/" not in listing.content.decode()
    assert report.status_code == 200
    assert report.content == local_store.get(f"reports/{acme.pk}/2026-03-10/report.html")
    assert "script-src" not in report["Content-Security-Policy"]
    assert "default-src 'none'" in report["Content-Security-Policy"]
    assert theirs.status_code == 404
    assert missing.status_code == 404


def test_the_reports_need_a_verified_admin(tenant, acme_admin, local_store):
    client = Client()
    client.force_login(acme_admin)  # password only, no TOTP device verified

    response = client.get("/admin/analytics/signals/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
