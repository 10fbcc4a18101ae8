"""The pipeline under real concurrency on PostgreSQL: workers racing for nudges of one user."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from guardrails.models import WorkspacePolicy
from guardrails.policy import caps
from nudges.delivery import pipeline
from nudges.models import ChannelProvider, Nudge, NudgeEvent, Trigger
from tests.factories import EndUserFactory, EventFactory
from tests.nudges.factories import NudgeTemplateFactory, TemplateVersionFactory, TriggerFactory

WORKERS = 10


@pytest.fixture
def generous_budget(settings):
    """Ten workers on two shared cores: the policy's time budget is not what is measured here."""
    settings.POLICY_CHECK_TIMEOUT_SECONDS = 30


@pytest.fixture
def fresh_caps():
    caps._redis_down_until = 0.0
    yield
    caps._clients.clear()


def _queued_nudges(end_user, count: int) -> list[Nudge]:
    ChannelProvider.objects.create(
        workspace=end_user.workspace, channel="in_app", provider=ChannelProvider.Provider.IN_APP
    )
    nudges = []
    for number in range(count):
        trigger = TriggerFactory(workspace=end_user.workspace, kind=Trigger.Kind.STUCK, channels=["in_app"])
        TemplateVersionFactory(template=NudgeTemplateFactory(trigger=trigger, channel="in_app"))
        nudges.append(
            Nudge.objects.create(
                workspace=end_user.workspace,
                end_user=end_user,
                trigger=trigger,
                occasion=f"race-{number}",
                idempotency_key=f"{trigger.pk}:{end_user.pk}:race-{number}",
            )
        )
    return nudges


def _at_once(calls) -> list:
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=30)
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("generous_budget", "fresh_caps")
def test_ten_workers_on_one_nudge_send_it_once(postgres):
    end_user = EndUserFactory(timezone="Europe/Paris")
    [nudge] = _queued_nudges(end_user, 1)

    outcomes = _at_once([lambda: pipeline.nudge_process(nudge_id=nudge.pk)] * WORKERS)

    assert [outcome.status for outcome in outcomes if outcome is not None] == ["sent"]
    nudge.refresh_from_db()
    assert (nudge.status, nudge.attempts) == ("delivered", 1)
    assert NudgeEvent.objects.filter(nudge=nudge, status="sent").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("generous_budget", "fresh_caps", "frozen_now")  # one day: see frozen_now
def test_ten_triggers_for_one_user_at_once_send_only_the_daily_cap(postgres):
    end_user = EndUserFactory(timezone="Europe/Paris")
    for _ in range(3):
        EventFactory(end_user=end_user)
    WorkspacePolicy.objects.create(workspace=end_user.workspace, daily_nudge_cap=2)
    nudges = _queued_nudges(end_user, WORKERS)

    _at_once([lambda nudge=nudge: pipeline.nudge_process(nudge_id=nudge.pk) for nudge in nudges])

    statuses = sorted(Nudge.objects.filter(end_user=end_user).values_list("status", flat=True))
    assert statuses == ["delivered"] * 2 + ["suppressed"] * (WORKERS - 2)
    for suppressed in Nudge.objects.filter(end_user=end_user, status="suppressed"):
        assert suppressed.trace[0]["message"].startswith("in_app denied: daily_cap: daily cap of 2 reached")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("generous_budget", "fresh_caps")
def test_ten_workers_on_one_expired_in_flight_send_reconcile_it_once_and_never_send(postgres):
    end_user = EndUserFactory(timezone="Europe/Paris")
    trigger = TriggerFactory(workspace=end_user.workspace, kind=Trigger.Kind.STUCK, channels=["email"])
    nudge = Nudge.objects.create(
        workspace=end_user.workspace,
        end_user=end_user,
        trigger=trigger,
        occasion="killed",
        idempotency_key=f"{trigger.pk}:{end_user.pk}:killed",
        status=Nudge.Status.IN_FLIGHT,
        channel="email",
        attempts=1,
        attempt_key="nudge-killed-1-email",
        claimed_until=timezone.now() - timedelta(seconds=1),  # its worker died; the lease ran out
    )

    outcomes = _at_once([lambda: pipeline.nudge_process(nudge_id=nudge.pk)] * WORKERS)

    assert [outcome.status for outcome in outcomes if outcome is not None] == ["in_doubt"]
    nudge.refresh_from_db()
    assert (nudge.status, nudge.claimed_until) == ("in_doubt", None)
    assert NudgeEvent.objects.filter(nudge=nudge, status="in_doubt").count() == 1
    assert not NudgeEvent.objects.filter(nudge=nudge, status="sent").exists()
