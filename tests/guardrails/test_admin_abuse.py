"""The abuse flags in the admin: scoped to the admin user's workspaces, filterable, resolvable,
and the count of times the detector was unavailable."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from guardrails.abuse import ratelimit
from guardrails.models import AbuseFlag
from tenancy import services
from tenancy.models import ApiKey, AuditLog
from tests.conftest import listed, post_action, verified_client
from tests.factories import AdminUserFactory, EndUserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/guardrails/abuseflag/"


@pytest.fixture(autouse=True)
def _fresh_counts(settings):
    settings.REDIS_URL = ""
    ratelimit.reset_for_tests()
    cache.delete(ratelimit.UNAVAILABLE_CACHE_KEY)
    yield
    ratelimit.reset_for_tests()


@pytest.fixture
def flags(tenant, other_tenant):
    """Acme: an open event-rate flag on its write key, a resolved invalid-payload flag and an
    open identify-rate flag on one user (two days old). Globex: one open token-misuse flag."""
    acme, globex = tenant[0], other_tenant[0]
    write_key = acme.api_keys.get(kind=ApiKey.Kind.WRITE)
    storm = EndUserFactory(workspace=acme, external_id="storm")
    burst = AbuseFlag.objects.create(
        workspace=acme,
        api_key=write_key,
        kind=AbuseFlag.Kind.EVENT_RATE,
        detail={"peak_events_per_minute": 5000, "baseline_events_per_minute": 100.0, "subject": "api_key:1"},
    )
    invalid = AbuseFlag.objects.create(
        workspace=acme,
        api_key=write_key,
        kind=AbuseFlag.Kind.INVALID_PAYLOADS,
        detail={"invalid_events": 120, "events": 130},
        resolved_at=timezone.now(),
    )
    identify = AbuseFlag.objects.create(
        workspace=acme, end_user=storm, kind=AbuseFlag.Kind.IDENTIFY_RATE, detail={"scope": "end_user"}
    )
    AbuseFlag.objects.filter(pk=identify.pk).update(created_at=timezone.now() - timedelta(days=2))
    misuse = AbuseFlag.objects.create(
        workspace=globex, kind=AbuseFlag.Kind.TOKEN_MISUSE, detail={"failures": 20, "reason": "expired"}
    )
    return {"burst": burst, "invalid": invalid, "identify": identify, "misuse": misuse}


@pytest.fixture
def alice(tenant):
    user = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=tenant[0], user=user, can_change=True)
    return user


def test_an_admin_sees_only_the_flags_of_their_workspaces(flags, alice):
    response = verified_client(alice).get(CHANGELIST)

    assert {flag.pk for flag in listed(response)} == {
        flags["burst"].pk,
        flags["invalid"].pk,
        flags["identify"].pk,
    }
    content = response.content.decode()
    assert "Globex" not in content
    assert "5,000 events/min against a baseline of 100.0" in content
    assert "end user storm" in content


def test_flags_filter_by_kind_workspace_state_and_date(flags, tenant):
    client = verified_client(AdminUserFactory(is_superuser=True))
    acme = tenant[0]
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d")

    def pks(query: str) -> set[int]:
        return {flag.pk for flag in listed(client.get(CHANGELIST + query))}

    assert pks("?kind=event_rate") == {flags["burst"].pk}
    assert pks(f"?workspace={acme.pk}") == {flags["burst"].pk, flags["invalid"].pk, flags["identify"].pk}
    assert pks("?state=open") == {flags["burst"].pk, flags["identify"].pk, flags["misuse"].pk}
    assert pks("?state=resolved") == {flags["invalid"].pk}
    assert pks(f"?created_at__range__gte_0={since}&created_at__range__gte_1=00:00:00") == {
        flags["burst"].pk,
        flags["invalid"].pk,
        flags["misuse"].pk,
    }


def test_mark_resolved_resolves_the_open_ones_and_is_audited(flags, alice):
    client = verified_client(alice)

    response = post_action(client, CHANGELIST, "mark_resolved", [flags["burst"], flags["identify"]])

    assert response.status_code == 302
    resolved = dict(AbuseFlag.objects.values_list("pk", "resolved_at"))
    assert resolved[flags["burst"].pk] is not None
    assert resolved[flags["identify"].pk] is not None
    assert resolved[flags["misuse"].pk] is None
    assert resolved[flags["invalid"].pk] == flags["invalid"].resolved_at
    assert set(
        AuditLog.objects.filter(action="admin.action.mark_resolved").values_list("object_id", flat=True)
    ) == {str(flags["burst"].pk), str(flags["identify"].pk)}


def test_another_workspaces_flag_cannot_be_resolved(flags, alice):
    post_action(verified_client(alice), CHANGELIST, "mark_resolved", [flags["misuse"]])

    assert AbuseFlag.objects.get(pk=flags["misuse"].pk).resolved_at is None


def test_a_view_only_grant_lists_flags_but_cannot_resolve_them(flags, tenant):
    victor = AdminUserFactory(username="victor")
    services.workspace_grant(workspace=tenant[0], user=victor, can_change=False)
    client = verified_client(victor)

    changelist = client.get(CHANGELIST)
    post_action(client, CHANGELIST, "mark_resolved", [flags["burst"]])

    assert len(listed(changelist)) == 3
    assert "Mark selected flags resolved" not in changelist.content.decode()
    assert AbuseFlag.objects.get(pk=flags["burst"].pk).resolved_at is None


def test_flags_are_not_added_by_hand(flags, alice):
    response = verified_client(alice).get(CHANGELIST + "add/")

    assert response.status_code == 403


def test_the_list_says_how_often_the_detector_was_unavailable(flags, alice):
    for _ in range(3):
        ratelimit.detector_unavailable(component="ratelimit")

    response = verified_client(alice).get(CHANGELIST)

    assert "Abuse detector unavailable 3 times so far" in " ".join(response.content.decode().split())
