"""Concurrent batches on PostgreSQL: no deadlock, no duplicate profile, no double-counted event."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from psycopg import errors as psycopg_errors

from onboarding.ingestion import services as ingestion_services
from onboarding.models import AnonymousIdentity, Event
from tenancy.models import EndUser

USERS = 20


def _batch(sender: int) -> list[dict]:
    """Senders n and n+4 send the same messages (a retry), in opposite orders when odd."""
    calls = []
    for number in range(USERS):
        message = f"m-{sender % 4}-{number}"
        calls.append(
            {
                "type": "track",
                "userId": f"u-{number}",
                "anonymousId": f"a-{number}",
                "event": "Opened",
                "messageId": f"{message}-track",
            }
        )
        calls.append(
            {"type": "page", "anonymousId": f"b-{number}", "name": "Docs", "messageId": f"{message}-page"}
        )
        calls.append(
            {
                "type": "identify",
                "userId": f"u-{number}",
                "traits": {"persona": f"p{sender % 4}"},
                "messageId": f"{message}-identify",
            }
        )
    return calls[::-1] if sender % 2 else calls


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches(postgres, tenant):
    workspace, _, _ = tenant

    def send(sender: int):
        try:
            return ingestion_services.events_ingest(
                workspace=workspace, raw_events=_batch(sender), received_at=timezone.now()
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(16)))

    assert [result.accepted for result in results] == [3 * USERS] * 16
    assert sum(result.stored for result in results) == 4 * 3 * USERS
    assert Event.objects.filter(workspace=workspace).count() == 4 * 3 * USERS
    identified = EndUser.objects.filter(workspace=workspace, external_id__isnull=False)
    assert sorted(identified.values_list("external_id", flat=True)) == sorted(f"u-{n}" for n in range(USERS))
    anonymous_only = EndUser.objects.filter(workspace=workspace, external_id__isnull=True)
    assert anonymous_only.count() == USERS  # one profile per b-n, however many batches raced
    for number in range(USERS):
        end_user = identified.get(external_id=f"u-{number}")
        assert AnonymousIdentity.objects.get(anonymous_id=f"a-{number}").end_user == end_user
        assert end_user.events.count() == 4 * 2
        assert end_user.persona in {"p0", "p1", "p2", "p3"}
    assert not EndUser.objects.filter(workspace=workspace, events__isnull=True).exists()


def _sign_up_batch(sender: int) -> list[dict]:
    """Everyone browses anonymously on a device of this sender's, then signs in there: claims of
    anonymous profiles and merges of device profiles into known users, racing across senders."""
    calls = []
    for number in range(USERS):
        device = f"d-{sender}-{number}"
        calls.append(
            {"type": "page", "anonymousId": device, "name": "Pricing", "messageId": f"{device}-page"}
        )
        calls.append(
            {
                "type": "identify",
                "userId": f"u-{number}",
                "anonymousId": device,
                "traits": {"persona": "dev"},
                "messageId": f"{device}-identify",
            }
        )
    return calls[::-1] if sender % 2 else calls


@pytest.mark.django_db(transaction=True)
def test_concurrent_sign_ins_on_many_devices_end_in_one_profile_each(postgres, tenant):
    workspace, _, _ = tenant
    # The anonymous visits are stored first, so the sign-ins below must claim or merge them.
    for sender in range(8):
        ingestion_services.events_ingest(
            workspace=workspace,
            raw_events=_sign_up_batch(sender)[::2] if sender % 2 == 0 else _sign_up_batch(sender)[1::2],
            received_at=timezone.now(),
        )
    connection.close()

    def send(sender: int):
        try:
            return ingestion_services.events_ingest(
                workspace=workspace, raw_events=_sign_up_batch(sender), received_at=timezone.now()
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))

    assert all(not result.rejected for result in results)
    assert Event.objects.filter(workspace=workspace).count() == 8 * 2 * USERS
    profiles = EndUser.objects.filter(workspace=workspace)
    assert sorted(profiles.values_list("external_id", flat=True)) == sorted(f"u-{n}" for n in range(USERS))
    for number in range(USERS):
        end_user = profiles.get(external_id=f"u-{number}")
        assert end_user.anonymous_identities.count() == 8
        assert end_user.events.count() == 8 * 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("cause", "attempts_made", "stored"),
    [(psycopg_errors.DeadlockDetected, 2, 1), (psycopg_errors.ConnectionTimeout, 1, 0)],
)
def test_a_batch_that_loses_a_deadlock_is_run_again(tenant, monkeypatch, cause, attempts_made, stored):
    """PostgreSQL rolls the loser of a deadlock back: the batch runs again and is stored once.
    Other database errors are not retried here."""
    from onboarding.ingestion import pipeline as ingest

    workspace, _, _ = tenant
    store_once, attempts = ingest._store_once, []

    def fails_first(**kwargs):
        attempts.append(1)
        if len(attempts) == 1:
            raise OperationalError("the database gave up on this transaction") from cause()
        return store_once(**kwargs)

    monkeypatch.setattr(ingest, "_store_once", fails_first)
    call = [{"type": "track", "userId": "u", "event": "E", "messageId": "m-1"}]

    if stored:
        result = ingestion_services.events_ingest(
            workspace=workspace, raw_events=call, received_at=timezone.now()
        )
        assert (result.accepted, result.stored) == (1, 1)
    else:
        with pytest.raises(OperationalError):
            ingestion_services.events_ingest(workspace=workspace, raw_events=call, received_at=timezone.now())

    assert len(attempts) == attempts_made
    assert Event.objects.filter(workspace=workspace, message_id="m-1").count() == stored
