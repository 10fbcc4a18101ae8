"""The incremental refresh on enrollment facts stores exactly what a rebuild from scratch stores,
after any mix of changes (completions, reverts, skips, status and trait changes, new and deleted
enrollments), after an interrupted refresh, and after a GDPR erasure; a second refresh writes
nothing."""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection

from analytics.models import (
    ActivationTimeBucket,
    EnrollmentFact,
    EnrollmentRollup,
    StepFact,
    StepRollup,
    StepTimeBucket,
)
from analytics.rollups import services
from guardrails.gdpr import erased_guard, erasure
from onboarding.models import Enrollment, StepCompletion
from tests.analytics.rollup_data import DAY_1, DAY_2, Spec, build_history, complete, enroll
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

ROLLUPS = (EnrollmentRollup, ActivationTimeBucket, StepRollup, StepTimeBucket)
STORED = (*ROLLUPS, EnrollmentFact, StepFact)
DAY_3 = DAY_2 + timedelta(days=1)
PERSONAS = ("dev", "pm", "")


def stored(workspace) -> dict:
    """Every rollup and fact row of the workspace, without ids: {model name: sorted rows}."""
    found = {}
    for model in STORED:
        names = [f.attname for f in model._meta.concrete_fields if f.name != "id"]
        found[model.__name__] = sorted(
            model.objects.filter(workspace=workspace).values_list(*names), key=repr
        )
    return found


def rebuilt_from_scratch(workspace) -> dict:
    for model in STORED:
        model.objects.filter(workspace=workspace).delete()
    services.rollups_rebuild(workspace=workspace)
    return stored(workspace)


def _complete_a_step(rng, enrollment):
    done = set(enrollment.completions.values_list("step_key", flat=True))
    left = [key for key in ("s1", "s2", "s3") if key not in done]
    if left:
        complete(enrollment, rng.choice(left), rng.choice(["api", "event", "skip"]), rng.randint(1, 10**6))


def _revert_or_restore(rng, enrollment):
    completion = enrollment.completions.order_by("?").first()
    if completion is None:
        return
    completion.reverted_at = None if completion.reverted_at else completion.completed_at
    completion.save()
    enrollment.save()


def _change_status(rng, enrollment):
    if rng.random() < 0.6:
        enrollment.status = Enrollment.Status.COMPLETED
        enrollment.completed_at = enrollment.enrolled_at + timedelta(seconds=rng.randint(60, 30 * 86400))
    else:
        enrollment.status = Enrollment.Status.ABANDONED
        enrollment.completed_at = None
    enrollment.save()


def _change_traits(rng, enrollment):
    end_user = enrollment.end_user
    end_user.persona = rng.choice(PERSONAS)
    end_user.signup_source = rng.choice(("ads", "organic", ""))
    end_user.save()


def random_changes(rng: random.Random, workspace, version, count: int) -> None:
    changes = (_complete_a_step, _complete_a_step, _revert_or_restore, _change_status, _change_traits)
    for number in range(count):
        enrollments = list(Enrollment.objects.filter(workspace=workspace).select_related("end_user"))
        roll = rng.random()
        if roll < 0.1 or not enrollments:
            spec = Spec(f"new-{number}", rng.choice((DAY_1, DAY_2, DAY_3)), rng.choice(PERSONAS))
            enroll(workspace, version, spec)
        elif roll < 0.15:
            rng.choice(enrollments).delete()
        elif roll < 0.18:
            rng.choice(enrollments).end_user.delete()  # the enrollments go with the profile
        else:
            rng.choice(changes)(rng, rng.choice(enrollments))


@pytest.fixture
def history():
    workspace = WorkspaceFactory()
    version, _ = build_history(workspace)
    for number in range(12):
        day = (DAY_1, DAY_2, DAY_3)[number % 3]
        enroll(workspace, version, Spec(f"x{number}", day, PERSONAS[number % 3]))
    return workspace, version


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_refreshes_after_random_changes_store_what_a_rebuild_from_scratch_stores(history, seed):
    workspace, version = history
    rng = random.Random(seed)
    services.rollups_refresh(workspace=workspace)
    for _ in range(3):
        random_changes(rng, workspace, version, 25)
        services.rollups_refresh(workspace=workspace)
    refreshed = stored(workspace)

    again = services.rollups_refresh(workspace=workspace)

    assert again.written.changed == 0  # what it re-read (within the overlap) moved nothing
    assert stored(workspace) == refreshed
    assert rebuilt_from_scratch(workspace) == refreshed
    assert services.rollups_rebuild(workspace=workspace).written.changed == 0


def test_a_deleted_enrollment_leaves_the_rollups_at_the_next_refresh(history):
    workspace, _ = history
    services.rollups_refresh(workspace=workspace)
    enrollment = Enrollment.objects.filter(workspace=workspace, end_user__persona="pm").first()
    pm_day = enrollment.enrolled_at.date()
    before = EnrollmentRollup.objects.get(workspace=workspace, day=pm_day, persona="pm").enrolled

    enrollment.delete()
    report = services.rollups_refresh(workspace=workspace)

    assert report.enrollments >= 1
    assert EnrollmentRollup.objects.get(workspace=workspace, day=pm_day, persona="pm").enrolled == before - 1
    assert not EnrollmentFact.objects.filter(enrollment_id=enrollment.pk).exists()
    assert not StepFact.objects.filter(enrollment_id=enrollment.pk).exists()


def test_an_interrupted_refresh_then_run_again_stores_what_a_rebuild_stores(history, monkeypatch):
    workspace, version = history
    services.rollups_refresh(workspace=workspace)
    random_changes(random.Random(7), workspace, version, 30)
    monkeypatch.setattr(services, "ENROLLMENTS_PER_CHUNK", 3)
    refresh_chunk, calls = services._refresh_chunk, []

    def failing_on_the_third_chunk(*args):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return refresh_chunk(*args)

    monkeypatch.setattr(services, "_refresh_chunk", failing_on_the_third_chunk)
    with pytest.raises(RuntimeError):
        services.rollups_refresh(workspace=workspace)
    monkeypatch.setattr(services, "_refresh_chunk", refresh_chunk)
    services.rollups_refresh(workspace=workspace)
    refreshed = stored(workspace)

    assert rebuilt_from_scratch(workspace) == refreshed


def test_rows_whose_counts_fall_to_zero_are_deleted(history):
    workspace, version = history
    lone = enroll(workspace, version, Spec("lone", DAY_3, "solo", (("s1", "api", 30),)))
    services.rollups_refresh(workspace=workspace)
    assert StepTimeBucket.objects.filter(workspace=workspace, persona="solo").exists()

    StepCompletion.objects.filter(enrollment=lone).update(reverted_at=lone.enrolled_at)
    lone.save()
    services.rollups_refresh(workspace=workspace)
    assert not StepTimeBucket.objects.filter(workspace=workspace, persona="solo").exists()
    assert StepRollup.objects.get(workspace=workspace, persona="solo", step_key="s1").advanced == 0

    lone.end_user.delete()
    services.rollups_refresh(workspace=workspace)
    for model in ROLLUPS:
        assert not model.objects.filter(workspace=workspace, persona="solo").exists()


def test_a_gdpr_erasure_moves_the_persons_counts_to_the_unknown_segment(history, monkeypatch):
    monkeypatch.setattr(erased_guard, "MEMO_SECONDS", 0)
    workspace, version = history
    person = enroll(workspace, version, Spec("erased", DAY_3, "solo", (("s1", "api", 30),)))
    services.rollups_refresh(workspace=workspace)

    erasure.gdpr_erase(workspace=workspace, user_id=person.end_user.external_id, actor_label="test")

    assert EnrollmentFact.objects.get(enrollment_id=person.pk).persona == ""
    assert not StepFact.objects.filter(workspace=workspace, persona="solo").exists()
    assert not EnrollmentRollup.objects.filter(workspace=workspace, persona="solo").exists()
    refreshed = stored(workspace)
    assert rebuilt_from_scratch(workspace) == refreshed


@pytest.mark.django_db(transaction=True)
def test_a_refresh_reading_the_next_chunks_facts_ahead_stores_what_a_rebuild_stores(monkeypatch):
    """Outside a transaction, on PostgreSQL, each chunk's facts are computed on a second thread
    while the previous chunk is written: same rows as a rebuild, and the reader did run."""
    workspace = WorkspaceFactory()
    version, _ = build_history(workspace)
    rng = random.Random(7)
    services.rollups_refresh(workspace=workspace)
    random_changes(rng, workspace, version, 30)
    monkeypatch.setattr(services, "ENROLLMENTS_PER_CHUNK", 2)
    threads = []
    facts_now = services._facts_now

    def spied(*args):
        threads.append(threading.current_thread().name)
        return facts_now(*args)

    monkeypatch.setattr(services, "_facts_now", spied)

    services.rollups_refresh(workspace=workspace)

    refreshed = stored(workspace)
    assert rebuilt_from_scratch(workspace) == refreshed
    if connection.vendor == "postgresql":
        assert len(threads) > 2 and all(name.startswith("facts-read-ahead") for name in threads)
    else:
        assert threads == []  # SQLite: read in the writer's thread, as part of each chunk
