"""Fixtures shared by the rate-limit and abuse-detection tests."""

import time
from types import SimpleNamespace

import pytest
import redis

from guardrails.abuse import ratelimit, token_misuse


def clear_abuse_counters(url: str) -> None:
    """Drop the limiter's and detector's Redis keys, so each test starts from zero."""
    client = redis.Redis.from_url(url)
    for key in client.scan_iter("abuse:*"):
        client.delete(key)


@pytest.fixture(params=["process", "redis"])
def limiter(request, settings):
    """Each test runs on the in-process limiter and, when Redis is reachable, on the Lua one."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        clear_abuse_counters(url)
        settings.REDIS_URL = url
        yield request.param
        clear_abuse_counters(url)
    else:
        settings.REDIS_URL = ""
        yield request.param


@pytest.fixture
def at_minute(monkeypatch):
    """Sets the limiter's clock to a minute: at_minute(m). Counting tests pin it, or a minute
    boundary falling between two requests would split their counts."""

    def set_minute(minute: int) -> None:
        monkeypatch.setattr(ratelimit, "current_minute", lambda: minute)

    return set_minute


@pytest.fixture
def one_misuse_window(monkeypatch):
    """Holds the token-misuse counter's clock at the current instant: its windows turn every
    WINDOW_SECONDS, and a turn falling between a test's refusals would split their count."""
    now = time.time()
    monkeypatch.setattr(token_misuse, "time", SimpleNamespace(time=lambda: now))
