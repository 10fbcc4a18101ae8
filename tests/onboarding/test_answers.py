"""Answer aggregation: exact totals, re-completion, multi-choice, export and backfill."""

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from onboarding.models import AnswerSnapshot, AnswerTotal, Enrollment
from onboarding.progress import answers
from tests.conftest import verified_client
from tests.factories import AdminUserFactory, WorkspaceFactory
from tests.onboarding.enrollment_rows import enrollment, published_version

pytestmark = pytest.mark.django_db

COMPLETED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
STEPS = [
    {
        "key": "profile",
        "completion": "form",
        "questions": [
            {"key": "role", "label": "Role", "type": "choice", "required": True, "choices": ["admin", "dev"]},
            {"key": "team_size", "label": "Team size", "type": "number", "required": True},
            {"key": "newsletter", "label": "Newsletter", "type": "boolean", "required": False},
            {"key": "tools", "label": "Tools", "type": "multi_choice", "choices": ["slack", "jira"]},
            {"key": "about", "label": "About you", "type": "text", "required": False},
        ],
    },
    {"key": "invite", "completion": "api"},
]
ADA = {
    "profile": {
        "role": "admin",
        "team_size": 5,
        "newsletter": True,
        "tools": ["slack", "jira"],
        "about": "ops",
    }
}
GRACE = {"profile": {"role": "dev", "team_size": 5, "newsletter": False, "tools": ["slack", "slack"]}}
LINUS = {"profile": {"role": "admin", "team_size": 2.5, "tools": []}, "not-a-step": {"x": "y"}}


@pytest.fixture
def acme():
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def version(acme):
    return published_version(acme, STEPS)


def completed(version, user_id, given, *, completed_at=COMPLETED_AT):
    return enrollment(
        version, user_id=user_id, status=Enrollment.Status.COMPLETED, answers=given, completed_at=completed_at
    )


def totals(version=None):
    rows = AnswerTotal.objects.all()
    if version is not None:
        rows = rows.filter(path_version=version)
    return sorted(rows.values_list("step_key", "question_key", "answer", "count"))


THREE_USERS = [
    ("profile", "newsletter", "false", 1),
    ("profile", "newsletter", "true", 1),
    ("profile", "role", "admin", 2),
    ("profile", "role", "dev", 1),
    ("profile", "team_size", "2.5", 1),
    ("profile", "team_size", "5", 2),
    ("profile", "tools", "jira", 1),
    ("profile", "tools", "slack", 2),
]


def test_totals_count_each_answer_of_each_completion(version):
    for user_id, given in (("ada", ADA), ("grace", GRACE), ("linus", LINUS)):
        answers.answers_snapshot_record(enrollment=completed(version, user_id, given))

    # Free text ("about") and questions no step defines are not counted.
    assert totals() == THREE_USERS
    assert set(AnswerTotal.objects.values_list("workspace__slug", flat=True)) == {"acme"}


def test_the_snapshot_keeps_the_answers_and_what_they_added(version):
    ada = completed(version, "ada", ADA)

    snapshot = answers.answers_snapshot_record(enrollment=ada)

    snapshot.refresh_from_db()
    assert snapshot.enrollment == ada
    assert snapshot.path_version == version
    assert snapshot.answers == ADA
    assert snapshot.completed_at == COMPLETED_AT
    assert snapshot.schema_version == answers.SCHEMA_VERSION == 1
    assert snapshot.contribution == [
        ["profile", "newsletter", "true"],
        ["profile", "role", "admin"],
        ["profile", "team_size", "5"],
        ["profile", "tools", "jira"],
        ["profile", "tools", "slack"],
    ]


def test_recording_the_same_completion_twice_counts_it_once(version):
    ada = completed(version, "ada", ADA)
    answers.answers_snapshot_record(enrollment=ada)
    answers.answers_snapshot_record(enrollment=ada)

    assert AnswerSnapshot.objects.count() == 1
    assert totals() == [
        ("profile", "newsletter", "true", 1),
        ("profile", "role", "admin", 1),
        ("profile", "team_size", "5", 1),
        ("profile", "tools", "jira", 1),
        ("profile", "tools", "slack", 1),
    ]


def test_a_re_completion_replaces_its_own_contribution(version):
    answers.answers_snapshot_record(enrollment=completed(version, "grace", GRACE))
    ada = completed(version, "ada", ADA)
    answers.answers_snapshot_record(enrollment=ada)

    ada.answers = {"profile": {"role": "dev", "team_size": 5, "tools": ["jira"]}}
    ada.completed_at = datetime(2025, 2, 1, tzinfo=UTC)
    ada.save()
    answers.answers_snapshot_record(enrollment=ada)

    # Ada's "admin", "true" and "slack" are gone; rows that reached 0 are deleted.
    assert totals() == [
        ("profile", "newsletter", "false", 1),
        ("profile", "role", "dev", 2),
        ("profile", "team_size", "5", 2),
        ("profile", "tools", "jira", 1),
        ("profile", "tools", "slack", 1),
    ]
    assert AnswerSnapshot.objects.get(enrollment=ada).completed_at == datetime(2025, 2, 1, tzinfo=UTC)


def test_removing_a_snapshot_takes_its_answers_out(version):
    ada = completed(version, "ada", ADA)
    answers.answers_snapshot_record(enrollment=ada)

    assert answers.answers_snapshot_remove(enrollment=ada) is True
    assert answers.answers_snapshot_remove(enrollment=ada) is False
    assert totals() == []
    assert AnswerSnapshot.objects.count() == 0


@pytest.mark.parametrize(
    ("value", "question_type", "texts"),
    [
        (["slack", "jira", "slack"], "multi_choice", ["slack", "jira"]),
        ("slack", "multi_choice", ["slack"]),
        ([], "multi_choice", []),
        ([1, True], "multi_choice", ["1", "true"]),
        (True, "boolean", ["true"]),
        (False, "boolean", ["false"]),
        (0, "number", ["0"]),
        (2.5, "number", ["2.5"]),
        ("admin", "choice", ["admin"]),
        (None, "choice", []),
        ("", "choice", []),
    ],
)
def test_answer_texts(value, question_type, texts):
    assert answers.answer_texts(value, question_type) == texts


def test_multi_choice_counts_each_choice_once_per_person(version):
    answers.answers_snapshot_record(
        enrollment=completed(version, "ada", {"profile": {"tools": ["slack", "jira", "slack"]}})
    )
    answers.answers_snapshot_record(enrollment=completed(version, "grace", {"profile": {"tools": ["jira"]}}))

    assert totals() == [("profile", "tools", "jira", 2), ("profile", "tools", "slack", 1)]


def test_totals_are_kept_per_path_version(acme, version):
    other = published_version(acme, STEPS, key="other")
    answers.answers_snapshot_record(enrollment=completed(version, "ada", {"profile": {"role": "admin"}}))
    answers.answers_snapshot_record(enrollment=completed(other, "grace", {"profile": {"role": "admin"}}))

    assert totals(version) == [("profile", "role", "admin", 1)]
    assert totals(other) == [("profile", "role", "admin", 1)]


# --- Export ---------------------------------------------------------------------------------------


def test_export_answers_writes_one_json_line_per_snapshot(acme, version, tmp_path):
    for user_id, given in (("ada", ADA), ("grace", GRACE)):
        answers.answers_snapshot_record(enrollment=completed(version, user_id, given))
    globex = WorkspaceFactory(name="Globex", slug="globex")
    answers.answers_snapshot_record(enrollment=completed(published_version(globex, STEPS), "theirs", GRACE))
    target = tmp_path / "answers.ndjson"
    out, err = io.StringIO(), io.StringIO()

    call_command("export_answers", "--out", str(target), "--workspace", "acme", stdout=out, stderr=err)

    ada, grace = Enrollment.objects.filter(workspace=acme).order_by("pk")
    assert [json.loads(line) for line in target.read_text().splitlines()] == [
        {
            "schema_version": 1,
            "workspace": "acme",
            "enrollment_id": ada.pk,
            "user_id": "ada",
            "path": "main",
            "path_version": 1,
            "completed_at": "2025-01-02T03:04:05+00:00",
            "answers": ADA,
        },
        {
            "schema_version": 1,
            "workspace": "acme",
            "enrollment_id": grace.pk,
            "user_id": "grace",
            "path": "main",
            "path_version": 1,
            "completed_at": "2025-01-02T03:04:05+00:00",
            "answers": GRACE,
        },
    ]
    assert out.getvalue() == f"Exported 2 answer snapshot(s) to {target}.\n"
    assert err.getvalue() == "\rexported 2/2 (100%)\n"
    assert [path.name for path in tmp_path.iterdir()] == ["answers.ndjson"]  # no partial file left


def test_export_answers_of_every_workspace(acme, version, tmp_path):
    answers.answers_snapshot_record(enrollment=completed(version, "ada", ADA))
    globex = WorkspaceFactory(name="Globex", slug="globex")
    answers.answers_snapshot_record(enrollment=completed(published_version(globex, STEPS), "theirs", GRACE))
    target = tmp_path / "all.ndjson"

    call_command("export_answers", "--out", str(target), stdout=io.StringIO(), stderr=io.StringIO())

    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(line["workspace"], line["user_id"]) for line in lines] == [("acme", "ada"), ("globex", "theirs")]


# --- Backfill -------------------------------------------------------------------------------------


def test_backfill_replays_completed_enrollments_and_is_idempotent(version):
    for user_id, given in (("ada", ADA), ("grace", GRACE), ("linus", LINUS)):
        completed(version, user_id, given)
    reopened = completed(version, "reopened", {"profile": {"role": "dev"}})
    answers.answers_snapshot_record(enrollment=reopened)
    Enrollment.objects.filter(pk=reopened.pk).update(status=Enrollment.Status.ACTIVE)
    enrollment(version, user_id="active", answers={"profile": {"role": "dev"}})

    first, err = io.StringIO(), io.StringIO()
    call_command("backfill_answers", stdout=first, stderr=err)
    after_first = totals()
    second = io.StringIO()
    call_command("backfill_answers", "--workspace", "acme", stdout=second, stderr=io.StringIO())

    assert first.getvalue() == (
        "Recorded 3 completed enrollment(s); removed 1 snapshot(s) of enrollments no longer completed.\n"
    )
    assert err.getvalue() == "\rreplayed 3/3 (100%)\n"
    assert second.getvalue() == (
        "Recorded 3 completed enrollment(s); removed 0 snapshot(s) of enrollments no longer completed.\n"
    )
    assert after_first == totals() == THREE_USERS
    assert AnswerSnapshot.objects.count() == 3


# --- Admin ----------------------------------------------------------------------------------------


def test_admin_shows_totals_per_path_version(acme, version):
    answers.answers_snapshot_record(enrollment=completed(version, "ada", ADA))
    other = published_version(acme, STEPS, key="other")
    answers.answers_snapshot_record(enrollment=completed(other, "grace", GRACE))
    client = verified_client(AdminUserFactory(is_superuser=True))

    response = client.get("/admin/onboarding/answertotal/", {"path_version": version.pk})

    assert response.status_code == 200
    shown = [(row.question_key, row.answer, row.count) for row in response.context["cl"].result_list]
    assert shown == [
        ("newsletter", "true", 1),
        ("role", "admin", 1),
        ("team_size", "5", 1),
        ("tools", "jira", 1),
        ("tools", "slack", 1),
    ]


def test_admin_totals_of_other_workspaces_stay_hidden(acme, version):
    from tenancy import services

    answers.answers_snapshot_record(enrollment=completed(version, "ada", ADA))
    globex = WorkspaceFactory(name="Globex", slug="globex")
    answers.answers_snapshot_record(enrollment=completed(published_version(globex, STEPS), "theirs", GRACE))
    viewer = AdminUserFactory()
    services.workspace_grant(workspace=acme, user=viewer, can_change=False)

    response = verified_client(viewer).get("/admin/onboarding/answertotal/")

    assert response.status_code == 200
    assert {row.workspace_id for row in response.context["cl"].result_list} == {acme.pk}
    assert "Globex" not in response.content.decode()


# --- Concurrency (PostgreSQL) ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_completions_count_exactly(postgres):
    import threading

    from django.db import connection

    version = published_version(WorkspaceFactory(name="Acme", slug="acme"), STEPS)
    people = [completed(version, f"user-{number}", ADA if number % 2 else GRACE) for number in range(16)]
    people.append(people[0])  # the same completion recorded twice at once still counts once
    barrier = threading.Barrier(len(people))
    errors = []

    def record(person):
        try:
            barrier.wait()
            answers.answers_snapshot_record(enrollment=person)
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert AnswerSnapshot.objects.count() == 16
    assert totals() == [
        ("profile", "newsletter", "false", 8),
        ("profile", "newsletter", "true", 8),
        ("profile", "role", "admin", 8),
        ("profile", "role", "dev", 8),
        ("profile", "team_size", "5", 16),
        ("profile", "tools", "jira", 8),
        ("profile", "tools", "slack", 16),
    ]
