"""The rollup refresh: what it stores, that it is incremental and idempotent, and that the full
rebuild gives the same rows."""

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Sum
from django.utils import timezone

from analytics.jobs import refresh_rollups_job
from analytics.models import ActivationTimeBucket, EnrollmentRollup, RollupCursor, StepRollup, StepTimeBucket
from analytics.rollups import services
from analytics.rollups.buckets import bucket_of
from config.cron import SCHEDULE
from tests.analytics.rollup_data import DAY_1, DAY_2, Spec, build_history, complete, enroll
from tests.factories import PathFactory, PublishedPathVersionFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

TABLES = (EnrollmentRollup, ActivationTimeBucket, StepRollup, StepTimeBucket)
COUNTS = ("enrolled", "started", "completed", "activated", "entered", "advanced", "count")


def snapshot() -> dict:
    """Every stored rollup row: {(table, key...): (id, counts...)}."""
    rows = {}
    for model in TABLES:
        for row in model.objects.all():
            key = (model.__name__, row.path_version_id, row.day, row.persona, getattr(row, "step_key", ""))
            key += (getattr(row, "bucket", None),)
            rows[key] = (row.pk, *(getattr(row, name, None) for name in COUNTS))
    return rows


def counts(snapshot_rows: dict) -> dict:
    return {key: value[1:] for key, value in snapshot_rows.items()}


@pytest.fixture
def history():
    workspace = WorkspaceFactory()
    version, enrollments = build_history(workspace)
    return workspace, version, enrollments


def test_first_refresh_stores_the_counts_of_the_definitions(history):
    workspace, _, _ = history
    services.rollups_refresh(workspace=workspace)

    dev_day_1 = EnrollmentRollup.objects.get(day=DAY_1, persona="dev")
    # e1, e2 and e5 (whose s1 stands though its s2 was reverted) started; e1 activated.
    assert (dev_day_1.enrolled, dev_day_1.started, dev_day_1.completed, dev_day_1.activated) == (3, 3, 1, 1)
    unknown_day_2 = EnrollmentRollup.objects.get(day=DAY_2, persona="")
    # e6 completed after 20 days: completed, not activated within 14.
    assert (unknown_day_2.enrolled, unknown_day_2.completed, unknown_day_2.activated) == (1, 1, 0)

    steps = {
        (row.persona, row.day, row.step_key): (row.entered, row.advanced, row.completed)
        for row in StepRollup.objects.all()
    }
    assert steps[("dev", DAY_1, "s1")] == (3, 3, 3)
    assert steps[("dev", DAY_1, "s2")] == (3, 2, 1)  # e1 completed, e2 skipped, e5 reverted
    assert steps[("dev", DAY_1, "s3")] == (2, 1, 1)  # entered by e1 and e2 (the skip advanced it)
    # e7 completed s2 without s1: it never entered s2, but advanced past it into s3.
    assert steps[("pm", DAY_2, "s1")] == (1, 0, 0)
    assert ("pm", DAY_2, "s2") not in steps
    assert steps[("pm", DAY_2, "s3")] == (1, 0, 0)

    times = {
        (row.persona, row.step_key, row.bucket): row.count for row in StepTimeBucket.objects.filter(day=DAY_1)
    }
    assert times[("dev", "s1", bucket_of(100))] == 2  # e1 and e5
    assert times[("dev", "s2", bucket_of(1000))] == 1  # e1: 1100 - 100
    assert times[("dev", "s3", bucket_of(3600))] == 1  # e1: 4700 - 1100
    assert sum(times.values()) == 6  # e1 x3, e2 s1, e3 s1, e5 s1: skips and reverts are not timed

    activation = list(ActivationTimeBucket.objects.values_list("day", "persona", "bucket", "count"))
    assert activation == [(DAY_1, "dev", bucket_of(4700), 1)]


def test_second_refresh_changes_only_what_changed_and_a_third_nothing(history):
    workspace, _, enrollments = history
    services.rollups_refresh(workspace=workspace)
    before = snapshot()

    complete(enrollments["e4"], "s1", "api", 300)  # a pm of day 1 starts
    report = services.rollups_refresh(workspace=workspace)
    after = snapshot()

    changed = {key for key in after if after[key] != before.get(key)}
    assert changed == {
        ("EnrollmentRollup", enrollments["e4"].path_version_id, DAY_1, "pm", "", None),
        ("StepRollup", enrollments["e4"].path_version_id, DAY_1, "pm", "s1", None),
        ("StepRollup", enrollments["e4"].path_version_id, DAY_1, "pm", "s2", None),
        ("StepTimeBucket", enrollments["e4"].path_version_id, DAY_1, "pm", "s1", bucket_of(300)),
    }
    assert set(before) - set(after) == set()
    assert (report.written.created, report.written.updated, report.written.deleted) == (1, 3, 0)
    assert EnrollmentRollup.objects.get(day=DAY_1, persona="pm").started == 2

    again = services.rollups_refresh(workspace=workspace)
    assert again.written.changed == 0
    assert snapshot() == after


def test_a_revert_is_seen_by_the_next_refresh(history):
    workspace, _, enrollments = history
    services.rollups_refresh(workspace=workspace)
    e3 = enrollments["e3"]
    e3.completions.update(reverted_at=e3.enrolled_at)
    e3.save()

    services.rollups_refresh(workspace=workspace)

    assert EnrollmentRollup.objects.get(day=DAY_1, persona="pm").started == 0
    assert not StepTimeBucket.objects.filter(day=DAY_1, persona="pm").exists()


def test_rebuild_gives_the_rows_of_the_incremental_refreshes(history):
    workspace, _, enrollments = history
    services.rollups_refresh(workspace=workspace)
    complete(enrollments["e4"], "s1", "api", 300)
    complete(enrollments["e7"], "s1", "api", 100)
    services.rollups_refresh(workspace=workspace)
    incremental = counts(snapshot())

    for model in TABLES:
        model.objects.all().delete()
    services.rollups_rebuild(workspace=workspace)

    assert counts(snapshot()) == incremental


def test_writes_split_into_batches_store_the_same_rows(history, monkeypatch):
    """Rows are created and updated in batches (one UPDATE of thousands of CASE branches took
    PostgreSQL minutes); refreshes writing one row a batch store what a one-batch rebuild does."""
    workspace, _, enrollments = history
    monkeypatch.setattr("analytics.rollups.sync.WRITE_BATCH_SIZE", 1)
    services.rollups_refresh(workspace=workspace)
    complete(enrollments["e4"], "s1", "api", 300)
    complete(enrollments["e7"], "s1", "api", 100)
    services.rollups_refresh(workspace=workspace)
    batched = counts(snapshot())

    monkeypatch.setattr("analytics.rollups.sync.WRITE_BATCH_SIZE", 100_000)
    for model in TABLES:
        model.objects.all().delete()
    services.rollups_rebuild(workspace=workspace)

    assert len(batched) > 2
    assert counts(snapshot()) == batched


def test_rebuild_drops_the_rows_of_deleted_enrollments_and_keeps_other_workspaces(history):
    workspace, _, enrollments = history
    other = WorkspaceFactory()
    build_history(other)
    services.rollups_refresh(workspace=workspace)
    services.rollups_refresh(workspace=other)
    other_rows = EnrollmentRollup.objects.filter(workspace=other).count()

    enrollments["e6"].delete()
    services.rollups_rebuild(workspace=workspace)

    assert not EnrollmentRollup.objects.filter(workspace=workspace, day=DAY_2, persona="").exists()
    assert EnrollmentRollup.objects.filter(workspace=workspace, day=DAY_2, persona="pm").exists()
    assert EnrollmentRollup.objects.filter(workspace=other).count() == other_rows


def test_changing_the_activation_window_recounts_activations(
    history, settings, django_capture_on_commit_callbacks
):
    settings.JOBS_RUN_INLINE = True
    workspace, _, _ = history
    services.rollups_refresh(workspace=workspace)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        services.activation_window_set(workspace=workspace, days=30)
    assert EnrollmentRollup.objects.get(day=DAY_2, persona="").activated == 0  # not in the request
    for callback in queued:
        callback()

    assert EnrollmentRollup.objects.get(day=DAY_2, persona="").activated == 1  # e6: 20 days <= 30
    assert services.activation_window_days(workspace=workspace) == 30


def test_rebuild_rollups_command_rebuilds_the_named_workspace(history):
    workspace, _, _ = history
    stdout, stderr = io.StringIO(), io.StringIO()

    call_command("rebuild_rollups", "--workspace", workspace.slug, stdout=stdout, stderr=stderr)

    assert EnrollmentRollup.objects.filter(workspace=workspace).aggregate(total=Sum("enrolled"))["total"] == 7
    assert f"{workspace.slug}: 2 slices" in stdout.getvalue()  # one version x two days
    assert "(100%)" in stderr.getvalue()


def test_the_periodic_job_refreshes_every_workspace(history):
    workspace, _, _ = history
    other = WorkspaceFactory()
    build_history(other)

    totals = refresh_rollups_job()

    assert totals["failed"] == 0 and totals["workspaces"] >= 2
    assert EnrollmentRollup.objects.filter(workspace=other).aggregate(total=Sum("enrolled"))["total"] == 7
    assert refresh_rollups_job(workspace.pk)["rows_changed"] == 0


def test_the_refresh_is_scheduled_every_five_minutes():
    [entry] = [periodic for periodic in SCHEDULE if periodic.func is refresh_rollups_job]

    assert entry.interval_seconds == 300


def test_a_version_without_steps_counts_its_enrollments_only():
    workspace = WorkspaceFactory()
    version = PublishedPathVersionFactory(path=PathFactory(workspace=workspace))
    enroll(workspace, version, Spec("lone", DAY_1, "dev"))

    services.rollups_refresh(workspace=workspace)

    row = EnrollmentRollup.objects.get(workspace=workspace)
    assert (row.enrolled, row.started, row.completed) == (1, 0, 0)
    assert not StepRollup.objects.filter(workspace=workspace).exists()


def test_an_interrupted_refresh_keeps_its_committed_chunks_and_resumes(history, monkeypatch):
    workspace, _, enrollments = history
    services.rollups_refresh(workspace=workspace)
    complete(enrollments["e4"], "s1", "api", 300)  # day 1 changes first
    complete(enrollments["e7"], "s1", "api", 100)  # then day 2
    monkeypatch.setattr(services, "ENROLLMENTS_PER_CHUNK", 1)
    recompute = services._refresh_chunk

    def failing_on_the_chunk_of_e7(workspace, enrollment_ids, computed=None):
        # Chunks follow the changes' order: those created in the cursor's overlap, then e4, then e7.
        if enrollments["e7"].pk in enrollment_ids:
            raise RuntimeError("worker killed")
        return recompute(workspace, enrollment_ids, computed)

    monkeypatch.setattr(services, "_refresh_chunk", failing_on_the_chunk_of_e7)
    with pytest.raises(RuntimeError):  # with a clock past the horizon's margin: the cursor may move to e4
        services.rollups_refresh(workspace=workspace, now=timezone.now() + services.CURSOR_OVERLAP)

    enrollments["e4"].refresh_from_db()
    assert RollupCursor.objects.get(workspace=workspace).changes_seen_until == enrollments["e4"].updated_at
    assert EnrollmentRollup.objects.get(day=DAY_1, persona="pm").started == 2
    assert EnrollmentRollup.objects.get(day=DAY_2, persona="pm").started == 1  # e7's change not yet counted
    assert StepRollup.objects.get(day=DAY_2, persona="pm", step_key="s1").advanced == 0

    monkeypatch.setattr(services, "_refresh_chunk", recompute)
    services.rollups_refresh(workspace=workspace)

    assert StepRollup.objects.get(day=DAY_2, persona="pm", step_key="s1").advanced == 1


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_after_a_refresh_read_past_it_is_counted_by_the_next(history, monkeypatch):
    """A slow transaction stamps a completion, a refresh runs (and reads newer changes) before it
    commits: the cursor stays behind the open transaction, so the next refresh counts it. No
    margin, so only the open transaction holds the cursor back."""
    if connection.vendor != "postgresql":
        pytest.skip("one writer at a time on SQLite: no transaction stays open beside a refresh")
    monkeypatch.setattr(services, "CURSOR_OVERLAP", timedelta(0))
    workspace, _, enrollments = history
    services.rollups_refresh(workspace=workspace)
    stamped, release = threading.Event(), threading.Event()

    def slow_transaction():
        with transaction.atomic():
            complete(enrollments["e7"], "s1", "api", 100)  # stamped now, committed later
            stamped.set()
            release.wait(10)
        connections.close_all()

    writer = threading.Thread(target=slow_transaction)
    writer.start()
    stamped.wait(10)
    complete(enrollments["e4"], "s1", "api", 300)  # a newer change, committed
    services.rollups_refresh(workspace=workspace)
    release.set()
    writer.join()

    services.rollups_refresh(workspace=workspace)

    assert StepRollup.objects.get(day=DAY_2, persona="pm", step_key="s1").advanced == 1  # e7's change
    assert EnrollmentRollup.objects.get(day=DAY_1, persona="pm").started == 2  # e4's
