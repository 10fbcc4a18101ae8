"""The consent ledger: current consent derived from the records, the defaults, the audit trail,
and preference updates applied whole or not at all."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from guardrails.models import ConsentRecord, Preference
from guardrails.policy import consent
from guardrails.policy import selectors as policy_selectors
from guardrails.policy import services as policy_services
from guardrails.preferences import selectors as preferences_selectors
from guardrails.preferences import services as preferences_services
from guardrails.preferences.validation import PreferencesInvalid
from tenancy.models import AuditLog
from tests.factories import AdminUserFactory, EndUserFactory

pytestmark = pytest.mark.django_db


def _record(end_user, granted, channel="email", purpose="marketing", source="api", **kwargs):
    return policy_services.consent_record(
        end_user=end_user, channel=channel, purpose=purpose, granted=granted, source=source, **kwargs
    )


def test_a_user_without_records_has_none_and_the_defaults_apply():
    end_user = EndUserFactory()

    current = policy_selectors.consent_current(end_user=end_user)

    assert set(current.values()) == {None}
    assert len(current) == 10
    effective = policy_selectors.consent_effective_all(end_user=end_user)
    assert {pair for pair, allowed in effective.items() if allowed} == {
        ("in_app", "onboarding"),
        ("email", "onboarding"),
    }
    assert effective == consent.DEFAULTS


def test_grant_withdraw_grant_again_ends_granted_with_three_records_and_three_audit_rows():
    end_user = EndUserFactory()
    admin = AdminUserFactory(username="grace")

    _record(end_user, True)
    assert policy_selectors.consent_current(end_user=end_user)[("email", "marketing")] is True
    _record(end_user, False, source="unsubscribe_link")
    assert policy_selectors.consent_current(end_user=end_user)[("email", "marketing")] is False
    _record(end_user, True, source="admin", actor=admin, request_id="req-7")

    assert policy_selectors.consent_current(end_user=end_user)[("email", "marketing")] is True
    assert list(policy_selectors.consent_history(end_user=end_user).values_list("granted", "source")) == [
        (True, "api"),
        (False, "unsubscribe_link"),
        (True, "admin"),
    ]
    audit = AuditLog.objects.filter(workspace=end_user.workspace).order_by("pk")
    assert [(row.action, row.actor_label, row.request_id) for row in audit] == [
        ("consent.granted", "system", ""),
        ("consent.withdrawn", "end user (unsubscribe link)", ""),
        ("consent.granted", "grace", "req-7"),
    ]
    assert audit.last().changes == {
        "after": {"channel": "email", "purpose": "marketing", "granted": True, "source": "admin"}
    }
    assert audit.last().actor == admin


def test_the_latest_record_wins_even_within_the_same_instant():
    end_user = EndUserFactory()
    first, second = _record(end_user, True), _record(end_user, False)
    same = timezone.now()
    ConsentRecord.objects.filter(pk__in=[first.pk, second.pk]).update(recorded_at=same)

    assert policy_selectors.consent_current(end_user=end_user)[("email", "marketing")] is False


def test_each_pair_and_each_person_has_its_own_ledger(django_assert_num_queries):
    end_user, other = EndUserFactory(), EndUserFactory()
    _record(end_user, True, "sms", "onboarding")
    _record(end_user, False, "email", "onboarding")
    _record(other, True, "email", "marketing")

    with django_assert_num_queries(1):
        current = policy_selectors.consent_current(end_user=end_user)

    assert {pair: value for pair, value in current.items() if value is not None} == {
        ("sms", "onboarding"): True,
        ("email", "onboarding"): False,
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("channel", "fax", "unknown channel 'fax'"),
        ("purpose", "sales", "unknown purpose 'sales'"),
        ("source", "rumour", "unknown consent source 'rumour'"),
    ],
)
def test_an_unknown_channel_purpose_or_source_writes_nothing(field, value, message):
    end_user = EndUserFactory()
    arguments = {"channel": "email", "purpose": "marketing", "source": "api", field: value}

    with pytest.raises(ValueError, match=message):
        policy_services.consent_record(end_user=end_user, granted=True, **arguments)

    assert not ConsentRecord.objects.exists()
    assert not AuditLog.objects.exists()


# --- preferences_update -------------------------------------------------------------------------


def test_preferences_update_records_only_the_consent_values_that_change():
    end_user = EndUserFactory(timezone="Europe/Paris")

    state = preferences_services.preferences_update(
        end_user=end_user,
        data={"channels": {"email": {"onboarding": True, "marketing": True}, "sms": {"onboarding": False}}},
        source="preference_centre",
    )

    # email/onboarding is on by default and sms/onboarding off: only email/marketing changed.
    assert list(ConsentRecord.objects.values_list("channel", "purpose", "granted", "source")) == [
        ("email", "marketing", True, "preference_centre")
    ]
    assert state["channels"]["email"] == {"onboarding": True, "marketing": True}


def test_preferences_update_applies_quiet_hours_snooze_and_do_not_disturb_in_one_go():
    end_user = EndUserFactory(timezone="America/New_York")
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    state = preferences_services.preferences_update(
        end_user=end_user,
        data={
            "quiet_hours": {"start": "21:30", "end": "06:45"},
            "snooze_until": "2025-06-02T09:00:00-04:00",
            "do_not_disturb": True,
        },
        source="api",
        now=now,
    )

    preference = Preference.objects.get(end_user=end_user)
    assert (preference.quiet_hours_start, preference.quiet_hours_end) == (time(21, 30), time(6, 45))
    assert preference.snooze_until == datetime(2025, 6, 2, 13, 0, tzinfo=UTC)
    assert preference.do_not_disturb is True
    assert state["quiet_hours"] == {
        "start": "21:30",
        "end": "06:45",
        "timezone": "America/New_York",
        "source": "user",
    }


def test_an_invalid_field_leaves_every_valid_one_unapplied():
    end_user = EndUserFactory()

    with pytest.raises(PreferencesInvalid) as invalid:
        preferences_services.preferences_update(
            end_user=end_user,
            data={
                "channels": {"email": {"marketing": True}},
                "quiet_hours": {"start": "25:00", "end": "07:00"},
            },
            source="api",
        )

    assert invalid.value.errors == [
        {"field": "quiet_hours.start", "reason": "must be a 24-hour time HH:MM, e.g. 22:00"}
    ]
    assert not ConsentRecord.objects.exists()
    assert not Preference.objects.exists()


def test_a_snooze_that_has_passed_reads_as_none():
    end_user = EndUserFactory()
    Preference.objects.create(
        workspace=end_user.workspace, end_user=end_user, snooze_until=timezone.now() - timedelta(minutes=1)
    )

    assert preferences_selectors.preferences_state(end_user=end_user)["snooze_until"] is None
