"""GDPR export: the bundle holds every section of the person's data and nothing of anyone else's;
the API takes secret keys only, within their workspace; the command writes the same bundle."""

import io
import json
from dataclasses import replace

import orjson
import pytest
from django.core.management import CommandError, call_command

from guardrails.gdpr import export as gdpr
from onboarding.models import Event
from tenancy import tokens
from tenancy.models import AuditLog
from tests.conftest import basic_auth
from tests.guardrails.gdpr_people import OTTO, ZELDA, build, published_path
from tests.poisoned_times import FUTURE, PAST, poison

pytestmark = pytest.mark.django_db

SECTIONS = [
    "profile",
    "contact",
    "anonymous_identities",
    "events",
    "enrollments",
    "consent_history",
    "preferences",
    "policy_decisions",
    "llm_calls",
    "audit_log",
    "nudges",
    "push_subscriptions",
    "signals",
    "experiments",
    "ml",
]


@pytest.fixture
def people(tenant, other_tenant):
    workspace, write_key, secret_key = tenant
    published_path(workspace)
    zelda = build(ZELDA, workspace=workspace, write_key=write_key, secret_key=secret_key)
    otto = build(OTTO, workspace=workspace, write_key=write_key, secret_key=secret_key)
    other_workspace, other_write_key, other_secret_key = other_tenant
    published_path(other_workspace)
    build(
        replace(ZELDA, user_id="zq-elsewhere", anonymous_id="anon-elsewhere"),
        workspace=other_workspace,
        write_key=other_write_key,
        secret_key=other_secret_key,
    )
    return zelda, otto


def export(api_client, key: str, user_id: str):
    return api_client.post(f"/api/v1/users/{user_id}/data-export", HTTP_AUTHORIZATION=basic_auth(key))


def test_the_bundle_holds_every_section_of_the_person(api_client, tenant, people):
    workspace, _, secret_key = tenant
    zelda, _ = people

    response = export(api_client, secret_key, ZELDA.user_id)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="data-export-{workspace.slug}-{zelda.pk}.json"'
    )
    bundle = json.loads(response.content)
    assert bundle["format"] == "onboarding-platform.gdpr-export"
    assert bundle["format_version"] == 1
    assert bundle["workspace"] == {"id": workspace.pk, "slug": workspace.slug}
    assert bundle["user_id"] == ZELDA.user_id
    assert bundle["generated_at"]
    assert bundle["sections"] == SECTIONS
    assert [key for key in bundle if key in SECTIONS] == SECTIONS

    assert bundle["profile"]["user_id"] == ZELDA.user_id
    assert bundle["profile"]["traits"] == {"persona": "admin", "favourite_snack": ZELDA.canary}
    assert bundle["profile"]["persona"] == "admin"
    contact = bundle["contact"]
    assert (contact["email"], contact["phone"], contact["name"]) == (ZELDA.email, ZELDA.phone, ZELDA.name)
    assert [row["anonymous_id"] for row in bundle["anonymous_identities"]] == [ZELDA.anonymous_id]

    events = bundle["events"]
    assert [(event["type"], event["name"]) for event in events] == [
        ("page", "Pricing"),
        ("identify", ""),
        ("track", "Project Created"),
    ]
    assert set(events[0]) == set(gdpr.EVENT_FIELDS)
    assert events[0]["properties"] == {"referrer": ZELDA.canary}
    assert events[2]["properties"] == {"plan": "pro", "note": ZELDA.canary}
    assert events[2]["context"] == {"traits": {"favourite_snack": ZELDA.canary}}

    [enrollment] = bundle["enrollments"]
    assert enrollment["path"] == "main"
    assert enrollment["status"] == "completed"
    assert enrollment["answers"] == {
        "profile": {"role": "admin", "team_size": 5, "about": f"{ZELDA.name}, {ZELDA.phone}"}
    }
    assert sorted(completion["step"] for completion in enrollment["step_completions"]) == [
        "create-project",
        "profile",
    ]
    assert enrollment["answers_at_completion"]["answers"] == enrollment["answers"]
    assert [signal["kind"] for signal in enrollment["signals"]] == ["needs_review"]

    assert [(row["channel"], row["purpose"], row["granted"]) for row in bundle["consent_history"]] == [
        ("email", "marketing", True),
        ("email", "marketing", False),
    ]
    assert bundle["preferences"]["snooze_until"]
    assert [row["allowed"] for row in bundle["policy_decisions"]] == [False]
    [llm_call] = bundle["llm_calls"]
    assert llm_call["redacted_input"]["traits"] == {"favourite_snack": ZELDA.canary}
    assert llm_call["cost_usd"] == "0.000450"
    assert {row["action"] for row in bundle["audit_log"]} >= {"admin.change"}
    assert all("actor_label" not in row for row in bundle["audit_log"])


def test_the_bundle_holds_nothing_of_another_person_or_workspace(api_client, tenant, people):
    _, _, secret_key = tenant

    text = export(api_client, secret_key, ZELDA.user_id).content.decode()

    for needle in (*OTTO.needles, "zq-elsewhere", "anon-elsewhere"):
        assert needle not in text


def test_an_export_is_audited_without_the_persons_identifiers(api_client, tenant, people):
    workspace, _, secret_key = tenant
    zelda, _ = people

    export(api_client, secret_key, ZELDA.user_id)

    row = AuditLog.objects.get(action="data.export")
    assert row.workspace == workspace
    assert row.actor_label.startswith("api key ")
    assert row.changes["after"]["end_user_id"] == zelda.pk
    assert row.changes["after"]["sections"] == SECTIONS
    assert row.changes["after"]["events"] == 3
    stored = orjson.dumps(row.changes).decode() + row.object_repr
    assert not any(needle in stored for needle in ZELDA.needles)


def test_a_write_key_may_not_export(api_client, tenant, people):
    _, write_key, _ = tenant

    response = export(api_client, write_key, ZELDA.user_id)

    assert response.status_code == 403
    assert "secret key" in response.json()["detail"]
    assert not AuditLog.objects.filter(action="data.export").exists()


def test_an_end_user_token_may_not_export_even_its_own_data(api_client, tenant, people):
    zelda, _ = people
    token, _ = tokens.token_issue(end_user=zelda)

    response = api_client.post(
        f"/api/v1/users/{ZELDA.user_id}/data-export", HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert response.status_code == 403
    assert response.json()["detail"] == (
        "End-user tokens cannot export or erase data: use a secret key from your server."
    )
    assert not AuditLog.objects.filter(action="data.export").exists()


def test_a_key_of_another_workspace_gets_404(api_client, other_tenant, people):
    _, _, other_secret_key = other_tenant

    response = export(api_client, other_secret_key, ZELDA.user_id)

    assert response.status_code == 404
    assert not AuditLog.objects.filter(action="data.export").exists()


def test_no_credentials_get_401(api_client, people):
    response = api_client.post(f"/api/v1/users/{ZELDA.user_id}/data-export")

    assert response.status_code == 401


def test_the_command_writes_the_same_bundle_with_progress(tenant, people, tmp_path):
    workspace, _, _ = tenant
    out = tmp_path / "zelda.json"
    stdout, stderr = io.StringIO(), io.StringIO()

    call_command(
        "gdpr_export", "--workspace", workspace.slug, "--user", ZELDA.user_id, "--out", str(out),
        stdout=stdout, stderr=stderr,
    )  # fmt: skip

    bundle = json.loads(out.read_bytes())
    assert bundle["sections"] == SECTIONS
    assert len(bundle["events"]) == 3
    assert bundle["contact"]["email"] == ZELDA.email
    assert "events exported 3/3 (100%)" in stderr.getvalue()
    assert stdout.getvalue().startswith("Exported 15 section(s), 3 event(s), ")
    assert AuditLog.objects.get(action="data.export").actor_label == "manage.py gdpr_export"
    assert not list(tmp_path.glob(".*.partial"))


def test_the_command_takes_a_workspace_id_and_refuses_unknown_users(tenant, people, tmp_path):
    workspace, _, _ = tenant
    out = tmp_path / "nobody.json"

    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("gdpr_export", "--workspace", str(workspace.pk), "--user", "nobody", "--out", str(out))
    with pytest.raises(CommandError, match="No workspace with the slug or id 'nope'"):
        call_command("gdpr_export", "--workspace", "nope", "--user", ZELDA.user_id, "--out", str(out))

    assert not out.exists()
    assert not AuditLog.objects.filter(action="data.export").exists()


def test_long_histories_stream_in_chunks(tenant, people, monkeypatch):
    workspace, _, _ = tenant
    zelda, _ = people
    monkeypatch.setattr(gdpr, "EVENT_CHUNK_SIZE", 2)
    seen = []

    stream = io.BytesIO()
    report = gdpr.gdpr_export(workspace=workspace, end_user=zelda, stream=stream, on_event=seen.append)

    assert seen == [2, 3]
    assert report.events == 3
    assert report.bytes_written == len(stream.getvalue())
    assert len(json.loads(stream.getvalue())["events"]) == 3


def test_a_registered_exporter_adds_its_section(tenant, people, monkeypatch):
    workspace, _, _ = tenant
    zelda, _ = people
    monkeypatch.setattr(gdpr, "EXPORTERS", dict(gdpr.EXPORTERS))
    gdpr.exporter("later_app")(lambda subject: [{"end_user_id": subject.end_user.pk}])

    stream = io.BytesIO()
    gdpr.gdpr_export(workspace=workspace, end_user=zelda, stream=stream)

    bundle = json.loads(stream.getvalue())
    assert bundle["sections"] == [*SECTIONS, "later_app"]
    assert bundle["later_app"] == [{"end_user_id": zelda.pk}]


def test_the_export_of_a_person_whose_event_time_was_unreadable_works_once_repaired(
    api_client, tenant, people
):
    """Ingestion once stored year 10000 (tests.poisoned_times); `repair_event_times` rewrites it
    in SQL to the time the server received the event, and the export reads every row again."""
    workspace, _, secret_key = tenant
    event = Event.objects.filter(workspace=workspace, user_id=ZELDA.user_id).order_by("pk").first()
    received_at = event.received_at
    poison(Event, event.pk, "timestamp", FUTURE)
    poison(Event, event.pk, "sent_at", PAST)

    call_command("repair_event_times", stdout=io.StringIO())
    response = export(api_client, secret_key, ZELDA.user_id)

    assert response.status_code == 200
    [exported] = [row for row in orjson.loads(response.content)["events"] if row["id"] == event.pk]
    assert (exported["timestamp"], exported["sent_at"]) == (received_at.isoformat(), None)


@pytest.mark.parametrize("when", [FUTURE, PAST])
def test_an_event_time_no_one_can_read_is_exported_as_null_and_the_rest_whole(
    api_client, tenant, people, when
):
    workspace, _, secret_key = tenant
    events = list(
        Event.objects.filter(workspace=workspace, end_user__external_id=ZELDA.user_id).order_by("pk")
    )
    poison(Event, events[0].pk, "timestamp", when)

    response = export(api_client, secret_key, ZELDA.user_id)

    assert response.status_code == 200
    exported = {row["id"]: row for row in orjson.loads(response.content)["events"]}
    assert exported.keys() == {event.pk for event in events}
    assert exported[events[0].pk]["timestamp"] is None
    assert exported[events[0].pk]["received_at"] == events[0].received_at.isoformat()
    assert [exported[event.pk]["timestamp"] for event in events[1:]] == [
        event.timestamp.isoformat() for event in events[1:]
    ]
