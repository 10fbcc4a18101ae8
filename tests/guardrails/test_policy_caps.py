"""The daily cap under real concurrency (threads, each on its own connection) and across stores."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from guardrails.models import NudgeCapCounter, PolicyDecision
from guardrails.policy import caps
from guardrails.policy import engine as policy
from guardrails.policy.localtime import local_day, zone_named
from tests.guardrails.policy_setup import (  # noqa: F401  (fixtures)
    _caps_try_redis_again,
    database_caps,
    redis_caps,
    send,
    user_in,
    workspace_policy,
)

TRIGGERS = 50

# Every test here checks one user twice or more and expects the same day's cap: the clock is held
# still, or a midnight (in the user's zone) between two checks would start a new day's cap.
pytestmark = pytest.mark.usefixtures("frozen_now")


def _fifty_at_once(end_user) -> list[policy.Decision]:
    barrier = threading.Barrier(TRIGGERS)

    def trigger(number: int) -> policy.Decision:
        try:
            barrier.wait(timeout=30)
            return send(end_user, "email" if number % 2 else "in_app")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=TRIGGERS) as pool:
        return list(pool.map(trigger, range(TRIGGERS)))


@pytest.fixture
def generous_budget(settings):
    """Fifty checks at once on two shared cores: the budget is not what these tests measure."""
    settings.POLICY_CHECK_TIMEOUT_SECONDS = 30


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cap", [1, 3])
@pytest.mark.usefixtures("database_caps")
def test_fifty_triggers_at_once_on_postgresql_allow_exactly_the_cap(postgres, generous_budget, cap):
    end_user = user_in("Europe/Paris")
    workspace_policy(end_user, daily_nudge_cap=cap)

    decisions = _fifty_at_once(end_user)

    assert sum(decision.allowed for decision in decisions) == cap
    assert {tuple(decision.codes) for decision in decisions if not decision.allowed} == {("daily_cap",)}
    assert NudgeCapCounter.objects.get(end_user=end_user).count == cap
    assert PolicyDecision.objects.filter(end_user=end_user, allowed=True).count() == cap
    assert PolicyDecision.objects.filter(end_user=end_user).count() == TRIGGERS


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cap", [1, 3])
@pytest.mark.usefixtures("redis_caps")
def test_fifty_triggers_at_once_with_redis_allow_exactly_the_cap(postgres, generous_budget, cap):
    end_user = user_in("Europe/Paris")
    workspace_policy(end_user, daily_nudge_cap=cap)

    decisions = _fifty_at_once(end_user)

    assert sum(decision.allowed for decision in decisions) == cap
    assert not NudgeCapCounter.objects.exists()  # Redis counted
    assert PolicyDecision.objects.filter(end_user=end_user, allowed=True).count() == cap


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_caps")
def test_the_redis_counter_expires_an_hour_after_the_user_s_day_ends():
    end_user = user_in("Asia/Tokyo")
    send(end_user)

    day = local_day(timezone.now(), zone_named("Asia/Tokyo"))
    expires_at = time.time() + caps._redis().ttl(caps._key(end_user, day))
    assert abs(expires_at - (day.ends_at.timestamp() + 3600)) < 5


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_caps")
def test_a_counter_missing_in_one_store_starts_from_the_decisions_on_record(settings):
    """Redis flushed, or the database counted while Redis was down: no second cap that day."""
    end_user = user_in("UTC")
    redis_url = settings.REDIS_URL
    settings.REDIS_URL = ""
    assert send(end_user).allowed  # counted in the database

    settings.REDIS_URL = redis_url
    assert send(end_user).codes == ["daily_cap"]  # Redis seeded with 1

    caps._redis().delete(caps._key(end_user, local_day(timezone.now(), zone_named("UTC"))))
    NudgeCapCounter.objects.all().delete()
    assert send(end_user).codes == ["daily_cap"]


class _SilentServer:
    """Accepts connections and never answers: a hanging Redis."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self):
        for conn in self.connections:
            conn.close()
        self.socket.close()


@pytest.mark.django_db
def test_a_hanging_redis_costs_a_fraction_of_the_budget_and_the_database_counts(settings):
    server = _SilentServer()
    settings.REDIS_URL = f"redis://127.0.0.1:{server.port}/0"
    settings.POLICY_CHECK_TIMEOUT_SECONDS = 1.0
    end_user = user_in()
    try:
        started = time.monotonic()
        first = send(end_user)
        elapsed = time.monotonic() - started
        second = send(end_user)  # Redis is skipped for a while: no second wait
    finally:
        server.close()

    assert first.allowed and second.codes == ["daily_cap"]
    assert elapsed < 1.0
    assert NudgeCapCounter.objects.get(end_user=end_user).count == 1


@pytest.mark.django_db
def test_an_unreachable_redis_falls_back_to_the_database(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    end_user = user_in()

    assert send(end_user).allowed
    assert NudgeCapCounter.objects.get(end_user=end_user).count == 1
    assert send(end_user).codes == ["daily_cap"]


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_caps")
def test_release_gives_the_slot_back_in_either_store(settings):
    for redis_url in (settings.REDIS_URL, ""):
        settings.REDIS_URL = redis_url
        end_user = user_in()
        allowed = send(end_user)
        policy.release(allowed)
        assert send(end_user).allowed, redis_url or "database"
        assert send(end_user).codes == ["daily_cap"]
