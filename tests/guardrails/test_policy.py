"""The policy engine: each rule allowing and denying, every reason reported and recorded, default deny."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from guardrails.models import (
    AbuseFlag,
    ConsentRecord,
    LLMCall,
    NudgeCapCounter,
    PolicyDecision,
    Preference,
    Suppression,
)
from guardrails.policy import engine as policy
from guardrails.policy import services as policy_services
from guardrails.policy import subjects
from onboarding.models import Contact
from tests.factories import EndUserFactory
from tests.guardrails.policy_setup import (  # noqa: F401  (fixtures)
    _caps_try_redis_again,
    database_caps,
    send,
    user_in,
    utc,
    workspace_policy,
)

pytestmark = pytest.mark.django_db


def _withdraw(end_user, channel="email", purpose="onboarding"):
    return policy_services.consent_record(
        end_user=end_user, channel=channel, purpose=purpose, granted=False, source="unsubscribe_link"
    )


def _grant(end_user, channel, purpose):
    return policy_services.consent_record(
        end_user=end_user, channel=channel, purpose=purpose, granted=True, source="api"
    )


# --- Allowed, and recorded -----------------------------------------------------------------------


def test_an_onboarding_email_with_nothing_against_it_is_allowed_and_recorded():
    end_user = user_in("Europe/Paris")

    decision = send(end_user)

    assert (decision.allowed, decision.reasons) == (True, ())
    row = PolicyDecision.objects.get(pk=decision.decision_id)
    assert (row.end_user, row.action, row.channel, row.allowed, row.reasons) == (
        end_user,
        "nudge.send",
        "email",
        True,
        [],
    )


@pytest.mark.parametrize("action", [policy.DATA_EXPORT, policy.DATA_ERASE])
def test_a_person_s_data_rights_are_never_refused_by_a_rule_and_are_recorded(action):
    end_user = user_in()
    AbuseFlag.objects.create(workspace=end_user.workspace, end_user=end_user, kind="event_rate")

    decision = policy.check(action, end_user, {})

    assert decision.allowed
    assert PolicyDecision.objects.get(pk=decision.decision_id).action == action


def test_an_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError, match=r"unknown policy action 'nudge\.shout'"):
        policy.check("nudge.shout", user_in(), {})
    assert not PolicyDecision.objects.exists()


def test_a_nudge_without_a_channel_or_purpose_is_denied_as_invalid():
    end_user = user_in()

    decision = policy.check(policy.NUDGE_SEND, end_user, {"channel": "pigeon"})

    assert not decision.allowed
    assert [reason.message for reason in decision.reasons] == [
        "channel must be one of email, sms, push, in_app, intercom",
        "purpose must be one of onboarding, marketing",
    ]
    assert send(end_user).allowed  # the invalid check used none of the cap


# --- Consent ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "purpose", "allowed"),
    [
        ("in_app", "onboarding", True),
        ("email", "onboarding", True),
        ("sms", "onboarding", False),
        ("push", "onboarding", False),
        ("intercom", "onboarding", False),
        ("email", "marketing", False),
        ("in_app", "marketing", False),
    ],
)
def test_without_a_record_consent_follows_the_default_table(channel, purpose, allowed):
    decision = send(user_in(), channel, purpose)

    assert decision.allowed is allowed
    if not allowed:
        pair = f"{channel}/{purpose}"
        assert [(reason.code, reason.message) for reason in decision.reasons] == [
            ("consent", f"no consent for {pair} on record, and {pair} needs an explicit grant")
        ]


def test_a_withdrawal_denies_and_says_when_and_how():
    end_user = user_in()
    record = _withdraw(end_user)

    decision = send(end_user)

    when = record.recorded_at.strftime("%Y-%m-%d %H:%M")
    assert [(reason.code, reason.message) for reason in decision.reasons] == [
        ("consent", f"consent for email/onboarding withdrawn at {when} UTC (unsubscribe_link)")
    ]
    assert send(end_user, "in_app").allowed  # the other channel is untouched


def test_an_explicit_grant_allows_what_the_default_denies():
    end_user = user_in()
    _grant(end_user, "sms", "marketing")

    assert send(end_user, "sms", "marketing").allowed


# --- Daily cap -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("frozen_now")
def test_the_second_nudge_of_the_day_is_denied_with_when_the_cap_was_reached():
    end_user = user_in("Europe/Paris")
    first = send(end_user, "email")

    second = send(end_user, "in_app")  # the cap counts every channel

    assert first.allowed and not second.allowed
    reached = PolicyDecision.objects.get(pk=first.decision_id).decided_at.astimezone(end_user_zone(end_user))
    [reason] = second.reasons
    assert (reason.code, reason.message) == (
        "daily_cap",
        f"daily cap of 1 reached at {reached:%H:%M} Europe/Paris",
    )
    tomorrow = (reached + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert reason.not_before == tomorrow
    assert PolicyDecision.objects.get(pk=second.decision_id).reasons == [
        {"code": "daily_cap", "message": reason.message, "not_before": reason.not_before.isoformat()}
    ]


def end_user_zone(end_user):
    from zoneinfo import ZoneInfo

    return ZoneInfo(end_user.timezone)


@pytest.mark.usefixtures("frozen_now")
def test_the_workspace_sets_the_cap():
    end_user = user_in()
    workspace_policy(end_user, daily_nudge_cap=3)

    decisions = [send(end_user) for _ in range(4)]

    assert [decision.allowed for decision in decisions] == [True, True, True, False]


def test_a_cap_of_zero_stops_every_nudge():
    end_user = user_in("Asia/Tokyo")
    workspace_policy(end_user, daily_nudge_cap=0)
    now = utc(2025, 6, 1, 3, 0)

    [reason] = send(end_user, now=now).reasons

    assert (reason.code, reason.message) == ("daily_cap", "daily cap of 0 reached for 2025-06-01 Asia/Tokyo")


def test_a_send_denied_by_another_rule_does_not_use_up_the_cap():
    end_user = user_in("UTC")
    Preference.objects.create(
        workspace=end_user.workspace, end_user=end_user, quiet_hours_start="22:00", quiet_hours_end="07:00"
    )

    at_night = send(end_user, now=utc(2025, 6, 1, 5, 0))
    sms = send(end_user, "sms", now=utc(2025, 6, 1, 9, 0))
    morning = send(end_user, now=utc(2025, 6, 1, 9, 0))

    assert [at_night.codes, sms.codes, morning.codes] == [["quiet_hours"], ["consent"], []]


def test_the_cap_counts_calendar_days_in_the_user_s_time_zone():
    """06:30 UTC is still May 31 in Los Angeles, 07:30 UTC is June 1 there; in UTC both are June 1."""
    los_angeles, london_utc = user_in("America/Los_Angeles"), user_in("UTC")
    instants = [utc(2025, 6, 1, 6, 30), utc(2025, 6, 1, 7, 30), utc(2025, 6, 1, 20, 0)]

    assert [send(los_angeles, now=now).allowed for now in instants] == [True, True, False]
    assert [send(london_utc, now=now).allowed for now in instants] == [True, False, False]


@pytest.mark.parametrize("zone", ["", "Mars/Olympus_Mons"])
def test_a_user_without_a_valid_time_zone_counts_in_utc(zone):
    end_user = user_in(zone)

    assert [send(end_user, now=now).allowed for now in (utc(2025, 6, 1, 23, 0), utc(2025, 6, 2, 0, 30))] == [
        True,
        True,
    ]
    [reason] = send(end_user, now=utc(2025, 6, 2, 1, 0)).reasons
    assert reason.message == "daily cap of 1 reached for 2025-06-02 UTC"


def test_release_gives_back_a_nudge_that_was_not_sent():
    end_user = user_in()
    allowed = send(end_user)

    policy.release(allowed)

    assert send(end_user).allowed


@pytest.mark.usefixtures("database_caps")
def test_the_database_counter_is_per_user_and_local_day():
    end_user, other = user_in("Europe/Paris"), user_in("Europe/Paris")
    send(end_user, now=utc(2025, 6, 1, 21, 0))  # 23:00 in Paris
    send(end_user, now=utc(2025, 6, 1, 22, 30))  # 00:30 on June 2 in Paris
    send(other, now=utc(2025, 6, 1, 21, 0))

    counters = NudgeCapCounter.objects.order_by("end_user_id", "local_date")
    assert [(row.end_user_id, str(row.local_date), row.count) for row in counters] == [
        (end_user.pk, "2025-06-01", 1),
        (end_user.pk, "2025-06-02", 1),
        (other.pk, "2025-06-01", 1),
    ]


# --- Snooze and do-not-disturb -------------------------------------------------------------------


def test_a_snooze_denies_until_it_ends():
    end_user = user_in("Europe/Paris")
    until = utc(2025, 6, 3, 7, 0)
    Preference.objects.create(workspace=end_user.workspace, end_user=end_user, snooze_until=until)

    [reason] = send(end_user, now=utc(2025, 6, 2, 12, 0)).reasons

    assert (reason.code, reason.message, reason.not_before) == (
        "snoozed",
        "snoozed by the user until 2025-06-03 09:00 Europe/Paris",
        until,
    )
    assert send(end_user, now=until).allowed


def test_do_not_disturb_denies_until_turned_off():
    end_user = user_in()
    preference = Preference.objects.create(
        workspace=end_user.workspace, end_user=end_user, do_not_disturb=True
    )

    assert send(end_user).codes == ["do_not_disturb"]
    preference.do_not_disturb = False
    preference.save()
    assert send(end_user).allowed


# --- Suppression -----------------------------------------------------------------------------------


def _suppress(end_user, kind, value, reason, channel=""):
    return Suppression.objects.create(
        workspace=end_user.workspace,
        channel=channel,
        subject_digest=subjects.subject_digest(end_user.workspace, kind, value),
        reason=reason,
    )


def test_a_hard_bounced_address_is_suppressed_on_email_only_whatever_its_case():
    end_user = user_in()
    Contact.objects.create(end_user=end_user, email="Ann.Lee@Example.COM", phone="+33612345678")
    _suppress(end_user, subjects.EMAIL, " ann.lee@example.com", "hard_bounce", channel="email")
    _grant(end_user, "sms", "onboarding")

    denied = send(end_user, "email")
    sms = send(end_user, "sms")

    [reason] = denied.reasons
    assert reason.code == "suppressed"
    assert reason.message.startswith("the user's email address is suppressed on email: hard_bounce (since ")
    assert "ann" not in reason.message.lower()
    assert sms.allowed


def test_a_phone_number_is_compared_in_e164():
    end_user = user_in()
    Contact.objects.create(end_user=end_user, phone="+33 6 12 34 56 78")
    _suppress(end_user, subjects.PHONE, "+33612345678", "spam_complaint")
    _grant(end_user, "sms", "onboarding")

    assert send(end_user, "sms").codes == ["suppressed"]


def test_the_address_a_gateway_is_about_to_use_is_checked_too():
    end_user = user_in()
    _suppress(end_user, subjects.EMAIL, "new@example.com", "unsubscribed", channel="email")

    assert send(end_user, "email", address="NEW@example.com").codes == ["suppressed"]


def test_an_erased_person_is_suppressed_on_every_channel_and_for_the_llm():
    end_user = user_in()
    _suppress(end_user, subjects.USER_ID, end_user.external_id, "erased")

    nudge = send(end_user, "in_app")
    llm = policy.check(policy.LLM_CALL, end_user, {"estimated_cost_usd": "0.01"})

    assert nudge.codes == ["suppressed"] and llm.codes == ["suppressed"]
    assert "user id is suppressed on every channel: erased" in llm.reasons[0].message


def test_another_workspace_s_suppression_of_the_same_address_does_not_apply():
    end_user, stranger = user_in(), user_in()
    Contact.objects.create(end_user=end_user, email="ann@example.com")
    _suppress(stranger, subjects.EMAIL, "ann@example.com", "hard_bounce")

    assert send(end_user).allowed


# --- LLM budget ------------------------------------------------------------------------------------


def _llm_call(end_user, cost, created_at=None):
    call = LLMCall.objects.create(
        workspace=end_user.workspace, end_user=end_user, cost_usd=cost, outcome="ok"
    )
    if created_at is not None:
        LLMCall.objects.filter(pk=call.pk).update(created_at=created_at)


@pytest.mark.usefixtures("frozen_now")
def test_the_llm_budget_counts_today_s_calls_of_the_workspace():
    end_user = user_in()
    workspace_policy(end_user, llm_daily_budget_usd=Decimal("5.00"))
    now = timezone.now()
    _llm_call(end_user, "4.99")
    _llm_call(end_user, "3.00", created_at=now - timedelta(days=1, hours=1))  # yesterday
    _llm_call(user_in(), "3.00")  # another workspace

    within = policy.check(policy.LLM_CALL, end_user, {"estimated_cost_usd": Decimal("0.01"), "now": now})
    over = policy.check(policy.LLM_CALL, end_user, {"estimated_cost_usd": 0.02, "now": now})

    assert within.allowed
    [reason] = over.reasons
    assert (reason.code, reason.message) == (
        "llm_budget",
        f"the workspace's LLM budget of 5.00 USD for {now:%Y-%m-%d} (UTC) would be exceeded:"
        " 4.9900 spent + 0.0200 estimated",
    )


def test_a_nonsense_cost_estimate_is_denied():
    assert policy.check(policy.LLM_CALL, user_in(), {"estimated_cost_usd": "lots"}).codes == [
        "invalid_context"
    ]


# --- Abuse -----------------------------------------------------------------------------------------


def test_an_unresolved_abuse_flag_denies_nudges_and_llm_calls_until_resolved():
    end_user = user_in()
    flag = AbuseFlag.objects.create(workspace=end_user.workspace, end_user=end_user, kind="token_misuse")

    assert send(end_user).codes == ["abuse_flag"]
    assert policy.check(policy.LLM_CALL, end_user, {}).codes == ["abuse_flag"]
    flag.resolved_at = timezone.now()
    flag.save()
    assert send(end_user).allowed


# --- Every reason, and the fail-safe -------------------------------------------------------------


def test_every_failing_rule_is_reported_in_order_and_recorded():
    end_user = user_in("UTC")
    Contact.objects.create(end_user=end_user, email="ann@example.com")
    now = utc(2025, 6, 1, 23, 0)
    send(end_user, "in_app", now=utc(2025, 6, 1, 9, 0))  # uses the day's cap
    _withdraw(end_user)
    Preference.objects.create(
        workspace=end_user.workspace,
        end_user=end_user,
        quiet_hours_start="22:00",
        quiet_hours_end="07:00",
        snooze_until=now + timedelta(hours=1),
        do_not_disturb=True,
    )
    _suppress(end_user, subjects.EMAIL, "ann@example.com", "spam_complaint")
    AbuseFlag.objects.create(workspace=end_user.workspace, end_user=end_user, kind="event_rate")

    decision = send(end_user, now=now)

    expected = [
        "consent",
        "daily_cap",
        "quiet_hours",
        "snoozed",
        "do_not_disturb",
        "suppressed",
        "abuse_flag",
    ]
    assert decision.codes == expected
    assert [
        reason["code"] for reason in PolicyDecision.objects.get(pk=decision.decision_id).reasons
    ] == expected


def _with_rule(monkeypatch, code, function):
    rules = tuple(
        policy.Rule(rule.code, function, rule.actions, rule.reserve) if rule.code == code else rule
        for rule in policy.RULES
    )
    monkeypatch.setattr(policy, "RULES", rules)


def test_a_check_that_overruns_its_budget_denies_and_uses_none_of_the_cap(monkeypatch, settings):
    settings.POLICY_CHECK_TIMEOUT_SECONDS = 0.2
    end_user = user_in()
    _withdraw(end_user, "in_app")
    _with_rule(monkeypatch, "quiet_hours", lambda facts: time.sleep(0.3))

    decision = send(end_user)

    assert not decision.allowed
    assert [(reason.code, reason.message) for reason in decision.reasons] == [
        ("policy_timeout", "the policy check took longer than 0.2 s before rule snooze: denied by default"),
    ]
    assert send(end_user, "in_app").codes[:2] == ["policy_timeout", "consent"]  # what ran is reported
    assert PolicyDecision.objects.get(pk=decision.decision_id).reasons[0]["code"] == "policy_timeout"
    monkeypatch.undo()
    settings.POLICY_CHECK_TIMEOUT_SECONDS = 2
    assert send(end_user).allowed


def test_a_rule_that_raises_denies_and_the_other_rules_still_report(monkeypatch):
    end_user = user_in()
    _withdraw(end_user)

    def broken(facts):
        raise RuntimeError("redis said no")

    _with_rule(monkeypatch, "quiet_hours", broken)

    decision = send(end_user)

    assert [(reason.code, reason.message) for reason in decision.reasons] == [
        ("consent", decision.reasons[0].message),
        ("policy_error", "rule quiet_hours failed (RuntimeError)"),
    ]
    assert not NudgeCapCounter.objects.filter(count__gt=0).exists()


def test_a_failing_daily_cap_reservation_denies(monkeypatch):
    end_user = user_in()

    def broken(**kwargs):
        raise RuntimeError("no counter")

    monkeypatch.setattr(policy.caps, "cap_reserve", broken)

    assert send(end_user).codes == ["policy_error"]


def test_a_slow_statement_on_postgresql_is_cut_at_the_budget(postgres, monkeypatch, settings):
    settings.POLICY_CHECK_TIMEOUT_SECONDS = 0.2
    end_user = user_in()

    def slow(facts):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")

    _with_rule(monkeypatch, "quiet_hours", slow)
    started = time.monotonic()

    with transaction.atomic():  # the caller's transaction survives the cancelled statement
        decision = send(end_user)
        assert ConsentRecord.objects.count() == 0

    assert time.monotonic() - started < 1.0
    assert decision.codes == ["policy_timeout"]
    assert PolicyDecision.objects.filter(pk=decision.decision_id, allowed=False).exists()
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


def test_a_decision_is_recorded_for_the_user_s_workspace_only():
    end_user = EndUserFactory()

    decision = send(end_user)

    assert PolicyDecision.objects.get(pk=decision.decision_id).workspace_id == end_user.workspace_id


def test_subject_digests_normalise_emails_and_phones_and_differ_by_workspace_and_kind():
    digest = subjects.subject_digest

    assert digest(1, "email", " Ann@Example.COM ") == digest(1, "email", "ann@example.com")
    assert digest(1, "phone", "+1 (415) 555-0100") == digest(1, "phone", "+14155550100")
    assert digest(1, "phone", "06 12 34 56 78", phone_region="FR") == digest(1, "phone", "+33612345678")
    assert digest(2, "email", "ann@example.com") != digest(1, "email", "ann@example.com")
    assert digest(1, "user_id", "ann@example.com") != digest(1, "email", "ann@example.com")
    assert len(digest(1, "user_id", "u-1")) == 64
    with pytest.raises(ValueError, match="unknown subject kind 'fax'"):
        digest(1, "fax", "+14155550100")
