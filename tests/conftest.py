"""Shared fixtures. Tests talk to real PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set;
with REQUIRE_SERVICES=1 (CI) a missing service fails the run instead of skipping tests."""

import base64
import logging
import os
import re
import uuid
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from core.logging import JsonFormatter
from tenancy import services, tokens
from tests.factories import PII_CANARIES, PII_CANARY_DIGITS

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _missing(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    """Threads of async consumers and the live server must not keep connections open, or the
    test database cannot be dropped at the end."""
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session", autouse=True)
def _services_present(django_db_setup, django_db_blocker):
    if REQUIRE_SERVICES and settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("REQUIRE_SERVICES=1 but DATABASE_URL does not point at PostgreSQL", pytrace=False)
    yield
    if connection.vendor == "postgresql":
        # Worker threads of async tests keep idle connections that would block DROP DATABASE.
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


# Each canary as written, and percent-encoded as request paths in access lines carry it.
_CANARY_FORMS = tuple(
    {form.lower() for canary in PII_CANARIES for form in (canary, quote(canary), quote(canary, safe=""))}
)


class _PiiCanaryHandler(logging.Handler):
    """Formats every record as production would (JSON, extra fields included) and keeps the
    lines that carry a PII canary of tests/factories.py."""

    def __init__(self):
        super().__init__(level=logging.NOTSET)
        self.setFormatter(JsonFormatter())
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is not a leak; say so though
            line = f"unformattable record from {record.name}: {record.msg!r}"
        lowered = line.lower()
        if any(canary in lowered for canary in _CANARY_FORMS) or PII_CANARY_DIGITS in re.sub(r"\D", "", line):
            self.leaks.append(line)


@pytest.fixture(scope="session", autouse=True)
def _no_pii_canary_in_logs():
    """No log line written during the suite may contain a PII canary planted in test data."""
    handler = _PiiCanaryHandler()
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)
    if handler.leaks:
        pytest.fail(
            f"{len(handler.leaks)} log line(s) contain a PII canary:\n" + "\n".join(handler.leaks[:20]),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _static_files_without_collectstatic(settings):
    """Admin pages render from the source static files; the hashed manifest is a deploy step."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _signals_in_a_temporary_directory(settings, tmp_path_factory):
    """Survey signals that any test posts (the schema fuzzer too) land in a directory of the test
    run, never in $VAR_DIR/signals beside a developer's own."""
    settings.SIGNALS_STORAGE_URL = str(tmp_path_factory.mktemp("signals"))


# This run's cache keys carry a prefix of their own, so that a Redis shared with another test run
# (or a developer's own data) is never read or emptied by this one. Set before any cache is built.
CACHE_KEY_PREFIX = f"test-{uuid.uuid4().hex[:12]}"
for _cache_settings in settings.CACHES.values():
    _cache_settings["KEY_PREFIX"] = CACHE_KEY_PREFIX


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache. Cached completions are keyed by enrollment id,
    revision and enrolment time: on SQLite a rolled-back test's ids are given out again, and with
    fixed event times the next test's enrollment met the last one's entries. On Redis only this
    run's keys go: a flush emptied the whole database, another run's job queues with it."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches["default"]
    assert cache.key_prefix == CACHE_KEY_PREFIX, "a cache was built before conftest set its prefix"
    if not isinstance(cache, RedisCache):
        cache.clear()  # the local memory cache: this process's own
        return
    client = cache._cache.get_client(write=True)
    stale = list(client.scan_iter(match=f"{CACHE_KEY_PREFIX}:*", count=1000))
    if stale:
        client.delete(*stale)


@pytest.fixture(autouse=True)
def _fresh_debugger_listener_checks():
    """Each process remembers for a second whether anyone listens; tests start unremembered."""
    from onboarding.ingestion import debugger as live

    live._listening.clear()
    yield
    live._listening.clear()


@pytest.fixture
def frozen_now(monkeypatch):
    """Stops django.utils.timezone.now, which the code and the auto_now(_add) fields read, at the
    current instant, and returns it. Tests that count per calendar day (the daily cap, the LLM
    budget) use it: a midnight falling between two checks, or between a row's timestamp and the
    check that reads it, would put them on different days."""
    instant = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: instant)
    return instant


@pytest.fixture
def postgres():
    """For tests of real concurrency: they need PostgreSQL's row locks."""
    if connection.vendor != "postgresql":
        _missing("PostgreSQL is not configured (set DATABASE_URL)")


@pytest.fixture
def redis_url():
    url = settings.REDIS_URL
    if not url:
        _missing("Redis is not configured (set REDIS_URL)")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        _missing(f"Redis at {url} is not reachable: {error}")
    return url


@pytest.fixture
def tenant(db):
    """A workspace with its plain keys: (workspace, write_key, secret_key)."""
    workspace, write_key, secret_key = services.workspace_create(name="Acme")
    return workspace, write_key.key, secret_key.key


@pytest.fixture
def other_tenant(db):
    workspace, write_key, secret_key = services.workspace_create(name="Globex")
    return workspace, write_key.key, secret_key.key


# --- Clients -------------------------------------------------------------------------------------


def basic_auth(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def key_client(key: str) -> APIClient:
    """An API client sending `key` (a write key or a secret key) as Basic credentials."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(key))
    return client


def token_client(token: str) -> APIClient:
    """An API client sending `token` (an end-user token, or a key) as Bearer credentials."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def end_user_client(end_user) -> APIClient:
    """An API client as the end user's browser or app: a fresh end-user token of theirs."""
    token, _ = tokens.token_issue(end_user=end_user)
    return token_client(token)


def verified_client(user) -> Client:
    """An admin client logged in as `user` whose session is verified by a confirmed TOTP device."""
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def listed(response) -> list:
    """The objects an admin changelist response shows."""
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def post_action(client: Client, path: str, action: str, objects) -> object:
    """Run the changelist action `action` at `path` on `objects`."""
    return client.post(path, {"action": action, "_selected_action": [obj.pk for obj in objects]})


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def server(tenant) -> APIClient:
    """An API client as the customer's server: the tenant's secret key."""
    return key_client(tenant[2])


@pytest.fixture
def segment(api_client, tenant):
    """POST a Segment call with the tenant's write key: segment("track", {...})."""
    _, write_key, _ = tenant

    def send(call_type: str, body, *, key: str | None = write_key, **extra):
        headers = {"HTTP_AUTHORIZATION": basic_auth(key)} if key else {}
        return api_client.post(f"/v1/{call_type}", body, format="json", **headers, **extra)

    return send


@pytest.fixture(autouse=True)
def _model_artifacts_in_a_temporary_directory(settings, tmp_path_factory):
    """Model artifacts a test trains land in a directory of the test run, not in $VAR_DIR/ml."""
    settings.STORAGES = {
        **settings.STORAGES,
        "ml_artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path_factory.mktemp("ml"))},
        },
    }


@pytest.fixture(autouse=True)
def _no_path_exploration(settings):
    """The model decider explores a share of path choices at random: off in tests, so a planner
    test gets the rules' choice; tests of exploration set their own share."""
    settings.ML_EXPLORATION_SHARE = 0.0
