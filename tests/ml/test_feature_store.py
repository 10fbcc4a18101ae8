"""The feature store: real-time Redis counters fed by ingestion agree with PostgreSQL's
recomputation (what training reads), cost one round trip per batch, survive Redis being down, and
are repaired by the daily job."""

import socket
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from ml.features import history, jobs, realtime, receivers, store
from ml.models import FeatureSnapshot
from onboarding.models import Event
from tenancy.models import EndUser
from tests.conftest import key_client
from tests.onboarding.progress_setup import published_path

PEOPLE = ["ana", "ben", "cleo"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    store.forget()
    receivers.forget()
    yield
    store.forget()
    receivers.forget()


@pytest.fixture
def feature_redis(redis_url, settings):
    """The feature store on the test's Redis db, emptied."""
    settings.REDIS_URL = redis_url
    settings.ML_FEATURE_STORE_REALTIME = True
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def _post(write_key, events, capture):
    """POST /v1/batch and run the after-commit work, as a committed request would."""
    with capture(execute=True):
        response = key_client(write_key).post("/v1/batch", {"batch": events}, format="json")
    assert response.status_code == 200, response.content
    return response


def _track(user_id, name, moment, number):
    return {
        "type": "track",
        "userId": user_id,
        "event": name,
        "messageId": f"{user_id}-{number}",
        "timestamp": _iso(moment),
    }


def _people_enrolled(write_key, workspace, start, capture):
    """Identify everyone at `start` (the planner enrols them on the published path)."""
    published_path(workspace)
    identifies = [
        {
            "type": "identify",
            "userId": name,
            "messageId": f"{name}-identify",
            "timestamp": _iso(start),
            "traits": {"persona": "developer", "company_size": "11-50"},
        }
        for name in PEOPLE
    ]
    _post(write_key, identifies, capture)
    return list(EndUser.objects.filter(workspace=workspace, external_id__in=PEOPLE).order_by("pk"))


def _first_batch(start):
    """Sessions of different shapes: gaps under, at and over 30 min, days apart, a step done."""
    offsets = {
        "ana": [5, 20, 49, 49 + 30, 60 * 26, 60 * 26 + 29],  # the 79th minute: exactly 30 min on
        "ben": [60 * 24 * 2, 60 * 24 * 2 + 1],
        "cleo": [1, 2, 3],
    }
    events = [
        _track(name, "Page Viewed", start + timedelta(minutes=minutes), number)
        for name, moments in offsets.items()
        for number, minutes in enumerate(moments)
    ]
    events.append(_track("ana", "Project Created", start + timedelta(minutes=60 * 26 + 30), 99))
    return events


def _second_batch(start):
    return [
        _track("ana", "Page Viewed", start + timedelta(days=5), 100),
        _track("ben", "Project Created", start + timedelta(days=5, minutes=10), 101),
        _track("ben", "Page Viewed", start + timedelta(days=5, minutes=45), 102),
        _track("cleo", "Page Viewed", start + timedelta(days=6), 103),
    ]


@pytest.fixture
def ingested(tenant, feature_redis, frozen_now, django_capture_on_commit_callbacks):
    """Three people identified 9 days ago, two batches of their events since."""
    workspace, write_key, _ = tenant
    start = frozen_now - timedelta(days=9)
    people = _people_enrolled(write_key, workspace, start, django_capture_on_commit_callbacks)
    _post(write_key, _first_batch(start), django_capture_on_commit_callbacks)
    # The first read completes the counters created by ingestion from PostgreSQL, once.
    store.features_for(workspace_id=workspace.pk, end_users=people, now=frozen_now)
    _post(write_key, _second_batch(start), django_capture_on_commit_callbacks)
    return workspace, write_key, people, start


def test_real_time_features_equal_postgres_recomputation(ingested, frozen_now):
    workspace, _, people, _ = ingested

    read = store.features_for(workspace_id=workspace.pk, end_users=people, now=frozen_now)

    assert read.source == "redis"
    assert read.describe() == "features from redis"
    assert read.rows == history.features_now(workspace.pk, people, frozen_now)
    ana, ben, cleo = (read.rows[person.pk] for person in people)
    # ana: identify, 5, 20, 49 min (49 min long); 79 min (exactly 30 min later: a new one); 26 h,
    # 26 h 29, 26 h 30 (30 min long); day 5.
    assert (ana["session_count"], ana["avg_session_minutes"], ana["steps_completed"]) == (4, 79 / 4, 1)
    # ben: identify; day 2 (its first instant is exactly 7 days ago: in events_7d) and a minute
    # later; day 5 + 10 min; + 45 min (35 min on: a new one).
    assert (ben["session_count"], ben["avg_session_minutes"], ben["steps_completed"]) == (4, 0.25, 1)
    assert ben["events_7d"] == 4
    assert (cleo["session_count"], cleo["avg_session_minutes"], cleo["events_7d"]) == (2, 1.5, 1)


def test_a_batch_costs_one_round_trip_however_many_events_and_people(
    ingested, frozen_now, django_capture_on_commit_callbacks
):
    workspace, write_key, people, start = ingested
    pool = realtime.client().connection_pool
    pool.reset()
    sends = []
    make_connection = pool.make_connection

    def counting_connection():
        connection = make_connection()
        send = connection.send_packed_command

        def counted(command, *args, **kwargs):
            sends.append(command)
            return send(command, *args, **kwargs)

        connection.send_packed_command = counted
        return connection

    pool.make_connection = counting_connection
    try:
        realtime.client().ping()  # the connection's handshake is not the batch's
        sends.clear()
        batch = [
            _track(name, "Page Viewed", start + timedelta(days=8, minutes=number), 200 + number)
            for number in range(30)
            for name in PEOPLE
        ]
        batch.append(_track("cleo", "Project Created", start + timedelta(days=8, hours=1), 299))  # a step
        _post(write_key, batch, django_capture_on_commit_callbacks)
        assert len(sends) == 1  # 91 events for 3 people and a step completed: one pipeline

        read = store.features_for(workspace_id=workspace.pk, end_users=people, now=frozen_now)
        assert len(sends) == 2  # and one for reading all three
    finally:
        pool.make_connection = make_connection
        pool.reset()
    assert read.source == "redis"
    assert read.rows == history.features_now(workspace.pk, people, frozen_now)
    assert read.rows[people[0].pk]["events_7d"] == 1 + 30
    assert read.rows[people[2].pk]["steps_completed"] == 1


def test_a_late_event_is_counted_and_its_person_recomputed_once(
    ingested, frozen_now, django_capture_on_commit_callbacks
):
    workspace, write_key, people, start = ingested
    late = _track("ben", "Page Viewed", start + timedelta(days=2, minutes=20), 300)  # in a past session

    _post(write_key, [late], django_capture_on_commit_callbacks)
    first = store.features_for(workspace_id=workspace.pk, end_users=people, now=frozen_now)
    second = store.features_for(workspace_id=workspace.pk, end_users=people, now=frozen_now)

    expected = history.features_now(workspace.pk, people, frozen_now)
    assert first.rows == expected and second.rows == expected
    assert first.sources == {people[0].pk: "redis", people[1].pk: "postgres", people[2].pk: "redis"}
    assert first.describe() == "features from postgres (2 from redis, 1 from postgres)"
    assert second.source == "redis"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_redis_down_ingestion_goes_on_and_reads_fall_back_to_the_cache_then_postgres(
    ingested, redis_url, settings, monkeypatch, frozen_now, django_capture_on_commit_callbacks
):
    workspace, write_key, people, start = ingested
    store.features_for(workspace_id=workspace.pk, end_users=people, now=frozen_now)  # fills the cache
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/3"

    _post(
        write_key,
        [_track("ana", "Page Viewed", start + timedelta(days=8), 400)],
        django_capture_on_commit_callbacks,
    )
    assert Event.objects.filter(workspace=workspace, message_id="ana-400").exists()

    later = frozen_now + timedelta(seconds=120)
    monkeypatch.setattr(timezone, "now", lambda: later)
    cached = store.features_for(workspace_id=workspace.pk, end_users=people, now=later)
    assert cached.source == "cache"
    assert cached.describe() == "features from the cache, 120 s old (Redis unavailable)"
    assert cached.rows[people[0].pk]["events_7d"] == 1  # the event stored meanwhile is not in it yet
    assert cached.rows[people[0].pk]["hours_since_signup"] == pytest.approx(120 / 3600)  # but time moved

    much_later = frozen_now + timedelta(seconds=301)
    monkeypatch.setattr(timezone, "now", lambda: much_later)
    recomputed = store.features_for(workspace_id=workspace.pk, end_users=people, now=much_later)
    assert recomputed.source == "postgres"
    assert recomputed.describe() == "features from postgres"
    assert recomputed.rows == history.features_now(workspace.pk, people, much_later)
    assert recomputed.rows[people[0].pk]["events_7d"] == 2

    # Redis is back: the next batch that reaches it marks ana (whose update was lost) dirty.
    settings.REDIS_URL = redis_url
    cleo_event = _track("cleo", "Page Viewed", start + timedelta(days=8, minutes=1), 401)
    _post(write_key, [cleo_event], django_capture_on_commit_callbacks)
    back = store.features_for(workspace_id=workspace.pk, end_users=people, now=much_later)
    assert back.sources == {people[0].pk: "postgres", people[1].pk: "redis", people[2].pk: "redis"}
    assert back.rows == history.features_now(workspace.pk, people, much_later)


def test_the_daily_job_writes_snapshots_and_repairs_tampered_counters(ingested, feature_redis, frozen_now):
    workspace, _, people, _ = ingested
    ana = people[0]
    feature_redis.hset(realtime.counters_key(workspace.pk, ana.pk), mapping={"n": 999, "s": 0, "st": 4})
    tampered = store.features_for(workspace_id=workspace.pk, end_users=[ana], now=frozen_now)
    assert tampered.source == "redis" and tampered.rows[ana.pk]["session_count"] == 0

    assert jobs.derive_features_job() == {"workspaces": 1, "people": 3}

    behaviours = history.behaviours_at(workspace.pk, [ana.pk], frozen_now)
    snapshot = FeatureSnapshot.objects.get(end_user=ana)
    assert (snapshot.event_count, snapshot.session_count, snapshot.steps_completed) == (
        behaviours[ana.pk].event_count,
        4,
        1,
    )
    assert snapshot.events_7d == 1 and snapshot.computed_at == frozen_now
    assert FeatureSnapshot.objects.filter(workspace=workspace).count() == 3
    repaired = store.features_for(workspace_id=workspace.pk, end_users=people, now=frozen_now)
    assert repaired.source == "redis"
    assert repaired.rows == history.features_now(workspace.pk, people, frozen_now)


@pytest.mark.django_db
def test_the_embedded_default_reads_postgres(
    tenant, settings, frozen_now, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = ""
    workspace, write_key, _ = tenant
    start = frozen_now - timedelta(days=3)
    people = _people_enrolled(write_key, workspace, start, django_capture_on_commit_callbacks)
    _post(write_key, _first_batch(start), django_capture_on_commit_callbacks)

    read = store.features_for(workspace_id=workspace.pk, end_users=people, now=frozen_now)

    assert read.source == "postgres"
    assert read.describe() == "features from postgres"
    assert read.rows == history.features_now(workspace.pk, people, frozen_now)
    assert read.rows[people[0].pk]["session_count"] == 3


def test_a_person_newer_than_the_store_is_read_from_redis_and_an_older_one_from_postgres(
    tenant, feature_redis, django_assert_num_queries
):
    """No counters in Redis means no event yet only for people created after the store's birth;
    for anyone older the store cannot know, and recomputes them from PostgreSQL."""
    workspace, _, _ = tenant
    now = timezone.now()
    older = EndUser.objects.create(workspace=workspace, external_id="older", persona="developer")
    feature_redis.set(realtime.SINCE_KEY, realtime.micros(now - timedelta(minutes=10)))
    EndUser.objects.filter(pk=older.pk).update(created_at=now - timedelta(hours=1))
    older.refresh_from_db()
    newer = EndUser.objects.create(workspace=workspace, external_id="newer", persona="marketer")

    with django_assert_num_queries(0):
        read = store.features_for(workspace_id=workspace.pk, end_users=[newer], now=now)
    assert (read.source, read.rows[newer.pk]["session_count"]) == ("redis", 0)

    read = store.features_for(workspace_id=workspace.pk, end_users=[older, newer], now=now)
    assert read.sources == {older.pk: "postgres", newer.pk: "redis"}
