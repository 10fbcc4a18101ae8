"""GDPR erasure: nothing of the person is left in any column of any table, counts and answer
totals do not move, it is idempotent, a re-import stores nothing, and long histories are erased
in batches with progress (inline, from the command, or by an RQ job)."""

import io
import json
import time
from dataclasses import replace

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import DatabaseError, models
from django.test import override_settings
from rest_framework.test import APIClient

from guardrails.gdpr import erased_guard as reimport
from guardrails.gdpr import erasers, erasure, erasure_events
from guardrails.models import ConsentRecord, LLMCall, Preference, Suppression
from guardrails.policy import subjects
from onboarding.models import AnonymousIdentity, AnswerTotal, Contact, Enrollment, Event, StepCompletion
from onboarding.progress import answers, rebuild
from tenancy.models import AuditLog, EndUser
from tests.conftest import basic_auth
from tests.guardrails.gdpr_people import OTTO, ZELDA, build, published_path
from tests.poisoned_times import FUTURE, PAST, poison

pytestmark = pytest.mark.django_db

TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def rows_mentioning(needles) -> list[tuple[str, str, object]]:
    """(model, field, pk) of every text or JSON value, in every table of every app, that holds
    one of the needles."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        fields = [field for field in model._meta.concrete_fields if isinstance(field, TEXT_FIELDS)]
        if not fields:
            continue
        for row in model._base_manager.values_list("pk", *[field.attname for field in fields]):
            for field, value in zip(fields, row[1:], strict=True):
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
                for needle in needles:
                    if needle in text:
                        found.append((model._meta.label, field.name, row[0]))
    return found


def counts(workspace) -> dict:
    """What aggregates are made of: they must not move when someone is erased."""
    return {
        "events": Event.objects.filter(workspace=workspace).count(),
        "events_by_name": sorted(
            Event.objects.filter(workspace=workspace).values_list("type", "name").order_by("type", "name")
        ),
        "distinct_users": Event.objects.filter(workspace=workspace).values("end_user").distinct().count(),
        "end_users": EndUser.objects.filter(workspace=workspace).count(),
        "enrollments": sorted(
            Enrollment.objects.filter(workspace=workspace).values_list("status", flat=True)
        ),
        "completions": sorted(
            StepCompletion.objects.filter(enrollment__workspace=workspace).values_list("step_key", "method")
        ),
        "answer_totals": sorted(
            AnswerTotal.objects.filter(workspace=workspace).values_list(
                "step_key", "question_key", "answer", "count"
            )
        ),
        "consent_records": ConsentRecord.objects.filter(workspace=workspace).count(),
        "llm_tokens": sorted(
            LLMCall.objects.filter(workspace=workspace).values_list("prompt_tokens", "cost_usd")
        ),
    }


@pytest.fixture(autouse=True)
def no_memo(monkeypatch):
    """Ingestion asks the database every time and erasures do not wait for other processes;
    test_other_processes_stop_storing_before_the_user_id_is_freed covers the memo."""
    monkeypatch.setattr(reimport, "MEMO_SECONDS", 0)
    reimport._memo.clear()
    yield
    reimport._memo.clear()


@pytest.fixture
def people(tenant):
    workspace, write_key, secret_key = tenant
    published_path(workspace)
    zelda = build(ZELDA, workspace=workspace, write_key=write_key, secret_key=secret_key)
    otto = build(OTTO, workspace=workspace, write_key=write_key, secret_key=secret_key)
    return zelda, otto


def test_nothing_of_the_person_is_left_in_any_table(tenant, people):
    workspace, _, _ = tenant
    assert {label for label, _, _ in rows_mentioning(ZELDA.needles)} >= {
        "onboarding.EndUser",
        "onboarding.Contact",
        "onboarding.AnonymousIdentity",
        "onboarding.Event",
        "onboarding.Enrollment",
        "onboarding.AnswerSnapshot",
        "onboarding.EnrollmentSignal",
        "guardrails.LLMCall",
        "guardrails.AuditLog",
        "admin.LogEntry",
    }
    otto_before = rows_mentioning(OTTO.needles)

    result = erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")

    assert result.status == "erased"
    assert rows_mentioning(ZELDA.needles) == []
    assert rows_mentioning(OTTO.needles) == otto_before


def test_what_stays_is_tombstoned_and_counted(tenant, people):
    workspace, _, _ = tenant
    zelda, _ = people

    result = erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")

    zelda.refresh_from_db()
    assert zelda.external_id.startswith("erased:") and len(zelda.external_id) == len("erased:") + 32
    assert (zelda.traits, zelda.persona, zelda.locale) == ({}, "", "")
    assert not Contact.objects.filter(end_user=zelda).exists()
    assert not AnonymousIdentity.objects.filter(end_user=zelda).exists()
    assert not Preference.objects.filter(end_user=zelda).exists()
    events = list(
        Event.objects.filter(end_user=zelda)
        .order_by("pk")
        .values("user_id", "anonymous_id", "properties", "context")
    )
    assert events == [
        {"user_id": "", "anonymous_id": zelda.external_id, "properties": {}, "context": {}},
        {"user_id": zelda.external_id, "anonymous_id": zelda.external_id, "properties": {}, "context": {}},
        {"user_id": zelda.external_id, "anonymous_id": "", "properties": {}, "context": {}},
    ]
    enrollment = Enrollment.objects.get(end_user=zelda)
    assert enrollment.answers == {"profile": {"role": "admin", "team_size": 5}}
    assert enrollment.answer_snapshot.answers == {"profile": {"role": "admin", "team_size": 5}}
    assert enrollment.decision_reason == "[erased]"
    assert ConsentRecord.objects.filter(end_user=zelda).count() == 2
    assert LLMCall.objects.get(end_user=zelda).redacted_input == {}
    assert LLMCall.objects.get(end_user=zelda).prompt_tokens == 120
    assert Suppression.objects.filter(workspace=workspace, reason="erased", channel="").count() == 2
    assert Suppression.objects.filter(
        subject_digest=subjects.subject_digest(workspace, subjects.USER_ID, ZELDA.user_id)
    ).exists()
    assert result.as_dict() == {
        "status": "erased",
        "erased": {
            "audit_log": 3,
            "admin_log": 1,
            "suppression": 2,
            "contact": 1,
            "anonymous_identities": 1,
            "profile": 1,
            "enrollments": 1,
            "preferences": 1,
            "llm_calls": 1,
            "nudges": 0,
            "event_rollups": 0,  # no refresh has run: the person has no cohort rows yet
            "rollup_facts": 0,  # no refresh has run: the workspace has no enrollment facts yet
            "signals": 0,
            "ml": 0,  # path exploration is off in tests and no model is active: no path choice logged
        },
        "events": {"total": 3, "erased": 3},
    }


def test_the_erasure_is_audited_with_counts_only(tenant, people):
    workspace, _, _ = tenant
    zelda, _ = people

    erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="privacy desk")

    started = AuditLog.objects.get(action="data.erase")
    assert started.actor_label == "privacy desk"
    assert started.changes["after"]["end_user_id"] == zelda.pk
    assert started.changes["after"]["events"] == 3
    completed = AuditLog.objects.get(action="data.erase.completed")
    assert completed.changes == {"after": {"end_user_id": zelda.pk, "events": 3}}
    consent_ids = [
        str(pk) for pk in ConsentRecord.objects.filter(end_user=zelda).values_list("pk", flat=True)
    ]
    consent_audits = AuditLog.objects.filter(
        object_type="guardrails.ConsentRecord", object_id__in=consent_ids
    )
    assert [row.object_repr for row in consent_audits] == ["[erased]", "[erased]"]


def test_counts_and_answer_totals_do_not_move(tenant, people):
    workspace, _, _ = tenant
    before = counts(workspace)
    assert ("profile", "role", "admin", 2) in before["answer_totals"]

    erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")

    assert counts(workspace) == before
    # The totals can be rebuilt from what is left, and a progress rebuild changes nothing.
    answers.answers_backfill(workspace=workspace)
    report = rebuild.rebuild_progress(workspace=workspace)
    assert report.differences == {}
    assert counts(workspace) == before


def test_erasing_twice_is_fine_and_says_so(tenant, people):
    workspace, _, _ = tenant
    erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")
    before = counts(workspace), AuditLog.objects.count(), Suppression.objects.count()

    again = erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")

    assert again.as_dict() == {"status": "already_erased", "erased": {}, "events": {"total": 0, "erased": 0}}
    assert (counts(workspace), AuditLog.objects.count(), Suppression.objects.count()) == before


def test_an_unknown_user_is_not_found_and_nothing_is_written(tenant, people):
    workspace, _, _ = tenant
    before = counts(workspace), AuditLog.objects.count(), Suppression.objects.count()

    result = erasure.gdpr_erase(workspace=workspace, user_id="never-seen", actor_label="test")

    assert result.status == "not_found"
    assert (counts(workspace), AuditLog.objects.count(), Suppression.objects.count()) == before


def test_a_user_of_another_workspace_is_not_erased(tenant, other_tenant, people):
    other_workspace, _, _ = other_tenant

    result = erasure.gdpr_erase(workspace=other_workspace, user_id=ZELDA.user_id, actor_label="test")

    assert result.status == "not_found"
    assert EndUser.objects.filter(external_id=ZELDA.user_id).count() == 1


def test_a_re_import_of_the_erased_person_stores_nothing(tenant, people, segment):
    workspace, _, _ = tenant
    erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")
    before = counts(workspace)

    response = segment(
        "batch",
        {
            "batch": [
                {"type": "identify", "userId": ZELDA.user_id, "traits": {"email": ZELDA.email}},
                {"type": "track", "userId": ZELDA.user_id, "event": "Project Created"},
                {"type": "page", "anonymousId": ZELDA.anonymous_id, "name": "Home"},
                {"type": "alias", "userId": "someone-new", "previousId": ZELDA.user_id},
            ]
        },
    )

    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert counts(workspace) == before
    assert not EndUser.objects.filter(external_id=ZELDA.user_id).exists()
    assert not AnonymousIdentity.objects.filter(anonymous_id=ZELDA.anonymous_id).exists()
    assert rows_mentioning(ZELDA.needles) == []


def test_someone_else_on_the_erased_persons_device_is_stored_without_that_device_id(tenant, people, segment):
    workspace, _, _ = tenant
    erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")

    response = segment(
        "track", {"userId": "new-person", "anonymousId": ZELDA.anonymous_id, "event": "Signed Up"}
    )

    assert response.status_code == 200
    event = Event.objects.get(user_id="new-person")
    assert event.anonymous_id == ""
    assert not AnonymousIdentity.objects.filter(anonymous_id=ZELDA.anonymous_id).exists()


def test_other_people_are_still_ingested_after_an_erasure(tenant, people, segment):
    workspace, _, _ = tenant
    erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")
    events = Event.objects.count()

    segment("track", {"userId": OTTO.user_id, "event": "Project Created"})

    assert Event.objects.count() == events + 1


def test_long_histories_are_erased_in_batches_with_progress(tenant, people, segment):
    workspace, _, _ = tenant
    for number in range(7):
        segment(
            "track",
            {"userId": ZELDA.user_id, "event": "Clicked", "properties": {"n": number, "by": ZELDA.name}},
        )
    seen = []

    result = erasure.gdpr_erase(
        workspace=workspace,
        user_id=ZELDA.user_id,
        actor_label="test",
        batch_size=4,
        on_progress=lambda *p: seen.append(p),
    )

    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert result.events_erased == 10
    assert rows_mentioning(ZELDA.needles) == []


def test_a_rerun_finishes_an_erasure_whose_job_died(tenant, people):
    workspace, _, _ = tenant
    started = erasure.erasure_start(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")
    assert started.status == "erased"
    assert rows_mentioning((ZELDA.canary,)) != []  # the events still hold it: their job never ran

    again = erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")

    assert again.status == "already_erased"
    assert again.events_erased == 3
    assert rows_mentioning(ZELDA.needles) == []


def test_the_command_erases_with_a_progress_bar(tenant, people):
    workspace, _, _ = tenant
    stdout, stderr = io.StringIO(), io.StringIO()

    call_command(
        "gdpr_erase", "--workspace", workspace.slug, "--user", ZELDA.user_id, stdout=stdout, stderr=stderr
    )

    assert "events erased 3/3 (100%)" in stderr.getvalue()
    assert stdout.getvalue().startswith("Erased: audit_log 3, admin_log 1, suppression 2, contact 1, ")
    assert stdout.getvalue().rstrip().endswith("events 3.")
    assert rows_mentioning(ZELDA.needles) == []

    stdout = io.StringIO()
    call_command("gdpr_erase", "--workspace", str(workspace.pk), "--user", ZELDA.user_id, stdout=stdout)
    assert stdout.getvalue() == "This user was erased already.\n"
    with pytest.raises(CommandError, match="No user 'nobody' in the workspace"):
        call_command("gdpr_erase", "--workspace", workspace.slug, "--user", "nobody")


# --- API ------------------------------------------------------------------------------------------


def delete(key: str, user_id: str):
    return APIClient().delete(f"/api/v1/users/{user_id}", HTTP_AUTHORIZATION=basic_auth(key))


@override_settings(JOBS_RUN_INLINE=True)
def test_delete_erases_inline_and_answers_200(tenant, people):
    _, _, secret_key = tenant

    response = delete(secret_key, ZELDA.user_id)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "erased"
    assert body["events"] == {"total": 3, "erased": 3}
    assert rows_mentioning(ZELDA.needles) == []
    assert AuditLog.objects.get(action="data.erase").actor_label.startswith("api key ")

    again = delete(secret_key, ZELDA.user_id)
    assert again.status_code == 200
    assert again.json()["status"] == "already_erased"
    assert delete(secret_key, "nobody").status_code == 404


def test_delete_refuses_write_keys_tokens_and_other_workspaces(tenant, other_tenant, people):
    from tenancy import tokens

    _, write_key, _ = tenant
    _, _, other_secret_key = other_tenant
    zelda, _ = people
    token, _ = tokens.token_issue(end_user=zelda)
    before = rows_mentioning(ZELDA.needles)

    assert delete(write_key, ZELDA.user_id).status_code == 403
    by_token = APIClient().delete(f"/api/v1/users/{ZELDA.user_id}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert by_token.status_code == 403
    assert delete(other_secret_key, ZELDA.user_id).status_code == 404

    assert rows_mentioning(ZELDA.needles) == before
    assert not AuditLog.objects.filter(action__startswith="data.erase").exists()
    assert not Suppression.objects.exists()


@override_settings(JOBS_RUN_INLINE=False, GDPR_ERASE_INLINE_MAX_EVENTS=2)
def test_delete_of_a_long_history_queues_a_job_that_reports_progress(
    tenant, people, redis_url, django_capture_on_commit_callbacks
):
    import django_rq
    from rq import SimpleWorker

    _, _, secret_key = tenant
    queue = django_rq.get_queue("default")
    queue.empty()

    with django_capture_on_commit_callbacks(execute=True):
        response = delete(secret_key, ZELDA.user_id)

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "erasing"
    assert body["events"] == {"total": 3, "erased": 0}
    job = queue.fetch_job(body["job_id"])
    assert job is not None
    assert job.args == (EndUser.objects.get(external_id__startswith="erased:").pk,)  # no user id in Redis
    assert rows_mentioning((ZELDA.email, ZELDA.phone)) == []  # identity gone before the job runs

    SimpleWorker([queue], connection=queue.connection).work(burst=True)

    job.refresh()
    assert job.is_finished
    assert job.meta["progress"] == {"done": 3, "total": 3}
    assert job.return_value() == {"events": 3}
    assert rows_mentioning(ZELDA.needles) == []


def test_the_erasure_registry_takes_a_later_apps_eraser(tenant, people):
    workspace, _, _ = tenant
    registered = dict(erasers.ERASERS)  # restored after the test: the registry is shared
    seen = []
    try:
        erasers.eraser("experiments")(lambda scope: seen.append(scope.end_user.pk) or 4)

        result = erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")
    finally:
        erasers.ERASERS.clear()
        erasers.ERASERS.update(registered)

    assert result.erased["experiments"] == 4
    assert seen == [result.end_user_ids[0]]


def test_short_identifiers_are_matched_whole():
    """Short user ids are only matched whole in audit rows: "42" must not erase "2042"."""
    assert erasers._mentions("2042-01-01", ("42",)) is False
    assert erasers._mentions("42", ("42",)) is True
    assert erasers._mentions("call zq-user-7731 now", ("zq-user-7731",)) is True
    assert replace(erasers.Identifiers("u", ("a",), ("e",)), user_id="").all == ("a", "e")


def test_other_processes_stop_storing_before_the_user_id_is_freed(tenant, people, segment, monkeypatch):
    """Another process remembers "no erasures here" for up to MEMO_SECONDS: the erasure commits the
    suppression, waits that long, and only then frees the user id."""
    workspace, _, _ = tenant
    monkeypatch.setattr(reimport, "MEMO_SECONDS", 0.3)
    monkeypatch.setattr(reimport, "forget", lambda **kwargs: None)  # as if the memo were elsewhere
    assert reimport._has_erasures(workspace.pk) is False  # remembered now
    freed_at = []
    start = erasure.erasure_start

    def erasure_start(**kwargs):
        freed_at.append(time.monotonic())
        return start(**kwargs)

    monkeypatch.setattr(erasure, "erasure_start", erasure_start)
    began = time.monotonic()
    erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")

    assert freed_at[0] - began >= 0.3
    events = Event.objects.count()
    segment("track", {"userId": ZELDA.user_id, "event": "Project Created"})
    assert Event.objects.count() == events
    assert not EndUser.objects.filter(external_id=ZELDA.user_id).exists()


def test_a_workspace_without_erasures_is_asked_once_per_memo_period(
    tenant, monkeypatch, django_assert_num_queries
):
    workspace, _, _ = tenant
    monkeypatch.setattr(reimport, "MEMO_SECONDS", 60)
    events = [{"user_id": "someone", "anonymous_id": "", "previous_id": ""}]

    with django_assert_num_queries(1):
        for _ in range(5):
            assert reimport.without_erased(workspace_id=workspace.pk, events=events) is events


# --- Rows that cannot be read, failures midway ----------------------------------------------------


def zelda_event_poisoned(workspace, when=FUTURE) -> int:
    """One of Zelda's events gets a time no Python process can read (tests.poisoned_times)."""
    event_id = Event.objects.filter(workspace=workspace, user_id=ZELDA.user_id).order_by("pk").first().pk
    poison(Event, event_id, "timestamp", when)
    return event_id


@pytest.mark.parametrize("when", [FUTURE, PAST])
def test_an_event_time_no_one_can_read_does_not_stop_the_erasure(tenant, people, when):
    workspace, _, _ = tenant
    zelda_event_poisoned(workspace, when)

    result = erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")

    assert (result.status, result.events_erased) == ("erased", 3)
    assert rows_mentioning(ZELDA.needles) == []


@override_settings(JOBS_RUN_INLINE=True)
def test_delete_of_a_person_with_an_unreadable_event_answers_200(tenant, people):
    workspace, _, secret_key = tenant
    zelda_event_poisoned(workspace)

    response = delete(secret_key, ZELDA.user_id)

    assert response.status_code == 200
    assert response.json()["events"] == {"total": 3, "erased": 3}
    assert rows_mentioning(ZELDA.needles) == []


def test_an_erasure_that_fails_midway_leaves_nothing_half_done(tenant, people, monkeypatch):
    workspace, _, _ = tenant

    def scrub_fails(event_ids, tombstone):
        raise DatabaseError("the database went away")

    monkeypatch.setattr(erasure_events, "_scrub_events", scrub_fails)
    with pytest.raises(DatabaseError):
        erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")

    # All or nothing: the profile is not tombstoned while its events still name the person.
    zelda = EndUser.objects.get(workspace=workspace, external_id=ZELDA.user_id)
    assert Contact.objects.filter(end_user=zelda).exists()
    assert not AuditLog.objects.filter(action="data.erase").exists()
    monkeypatch.undo()
    retried = erasure.gdpr_erase(workspace=workspace, user_id=ZELDA.user_id, actor_label="test")
    assert retried.status == "erased"
    assert rows_mentioning(ZELDA.needles) == []


def test_a_repeat_erasure_finishes_an_earlier_one_held_up_by_an_unreadable_event(tenant, people):
    workspace, _, _ = tenant
    erasure.gdpr_erase(workspace=workspace, user_id=OTTO.user_id, actor_label="test")
    assert (
        erasure.erasure_start(workspace=workspace, user_id=ZELDA.user_id).status == "erased"
    )  # its job died
    zelda_event_poisoned(workspace)

    again = erasure.gdpr_erase(workspace=workspace, user_id=OTTO.user_id, actor_label="test")

    assert (again.status, again.events_erased) == ("already_erased", 3)
    assert rows_mentioning(ZELDA.needles) == []


def test_an_earlier_erasure_that_cannot_finish_does_not_fail_a_later_one(tenant, people, monkeypatch, caplog):
    workspace, _, _ = tenant
    erasure.gdpr_erase(workspace=workspace, user_id=OTTO.user_id, actor_label="test")
    zelda = EndUser.objects.get(workspace=workspace, external_id=ZELDA.user_id)
    erasure.erasure_start(workspace=workspace, user_id=ZELDA.user_id)  # its job died
    finish = erasure.erasure_finish

    def finish_fails_for_zelda(*, end_user, **kwargs):
        if end_user.pk == zelda.pk:
            raise DatabaseError("still cannot finish")
        return finish(end_user=end_user, **kwargs)

    monkeypatch.setattr(erasure, "erasure_finish", finish_fails_for_zelda)

    again = erasure.gdpr_erase(workspace=workspace, user_id=OTTO.user_id, actor_label="test")

    assert again.status == "already_erased"
    assert [
        record.end_user_id
        for record in caplog.records
        if record.msg == "guardrails.gdpr.erasure.unfinished_failed"
    ] == [zelda.pk]
    assert erasure_events.unfinished_profiles(workspace=workspace) == [zelda]  # left for the next call
