"""GET /api/v1/analytics/ops: the key's workspace's part of the Ops dashboard (events received per
minute or hour, the nudge pipeline, rollup freshness), never another workspace's, with bad input a
400 naming the field."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import RollupCursor
from nudges.models import Nudge
from tests.conftest import key_client
from tests.factories import EndUserFactory, EventFactory
from tests.nudges.factories import NudgeFactory, TriggerFactory

pytestmark = pytest.mark.django_db
OPS = "/api/v1/analytics/ops"


@pytest.fixture
def acme(tenant, other_tenant):
    workspace = tenant[0]
    now = timezone.now()
    people = [EndUserFactory(workspace=workspace) for _ in range(2)]
    for minutes_ago in (0, 0, 0, 5, 5, 90):
        EventFactory(end_user=people[0], received_at=now - timedelta(minutes=minutes_ago))
    stranger = EndUserFactory(workspace=other_tenant[0])
    for _ in range(4):
        EventFactory(end_user=stranger, received_at=now)
    trigger = TriggerFactory(workspace=workspace)
    for status in ("sent", "sent", "queued", "failed", "in_doubt"):
        NudgeFactory(trigger=trigger, end_user=people[1], status=status)
    NudgeFactory(trigger=TriggerFactory(workspace=other_tenant[0]), status="failed")
    RollupCursor.objects.create(workspace=workspace, refreshed_at=now - timedelta(minutes=3))
    return tenant


def test_the_workspace_s_events_per_minute_nudge_pipeline_and_rollup_age(acme):
    body = key_client(acme[2]).get(OPS).json()
    buckets = body["ingestion"]
    assert len(buckets) == 60
    assert [bucket["events"] for bucket in buckets][-1] == 3  # this minute: acme's three, not Globex's
    assert sum(bucket["events"] for bucket in buckets) == 5  # the event 90 minutes ago is out of the hour
    assert buckets[-6]["events"] == 2 and buckets[-6]["events_per_minute"] == 2
    pipeline = body["nudge_pipeline"]
    assert pipeline["by_status"]["sent"] == 2
    assert pipeline["in_pipeline"] == 2  # queued and in doubt
    assert pipeline["dead_letters"] == 1  # Globex's failed nudge is not counted
    assert pipeline["in_doubt"] == 1
    assert 170 <= body["rollups"]["age_seconds"] <= 400
    assert body["rollups"]["stale"] is False


def test_per_hour_over_the_last_day(acme):
    buckets = key_client(acme[2]).get(OPS, {"bucket": "hour"}).json()["ingestion"]
    assert len(buckets) == 24
    assert sum(bucket["events"] for bucket in buckets) == 6
    assert buckets[-1]["events_per_minute"] == pytest.approx(buckets[-1]["events"] / 60, abs=0.001)


@pytest.mark.parametrize(
    ("query", "field"),
    [({"bucket": "second"}, "bucket"), ({"from": "2026-02-10", "to": "2026-02-01"}, "to")],
)
def test_bad_input_is_a_400_naming_the_field(acme, query, field):
    response = key_client(acme[2]).get(OPS, query)
    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]


def test_the_write_key_cannot_read_it(acme):
    assert key_client(acme[1]).get(OPS).status_code in (401, 403)
    assert Nudge.objects.count() == 6
