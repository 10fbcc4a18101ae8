"""Concurrent batches on PostgreSQL: no deadlock, no duplicate profile, no double-counted event."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from onboarding import services
from onboarding.models import AnonymousIdentity, EndUser, Event

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
            return services.events_ingest(
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
