"""Quiet hours and calendar days in the user's own time zone, across zones and DST changes."""

from datetime import date, time

import pytest

from guardrails.models import Preference
from guardrails.policy.localtime import in_window, local_day, window_ends_at, zone_named
from tests.guardrails.policy_setup import (  # noqa: F401  (fixtures)
    _caps_try_redis_again,
    send,
    user_in,
    utc,
    workspace_policy,
)

NEW_YORK = zone_named("America/New_York")


def _quiet(end_user, start="22:00", end="07:00"):
    return Preference.objects.create(
        workspace=end_user.workspace, end_user=end_user, quiet_hours_start=start, quiet_hours_end=end
    )


# --- The pure functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wall_time", "start", "end", "inside"),
    [
        (time(23, 0), time(22), time(7), True),
        (time(6, 59), time(22), time(7), True),
        (time(7, 0), time(22), time(7), False),
        (time(21, 59), time(22), time(7), False),
        (time(0, 0), time(22), time(7), True),
        (time(12, 30), time(12), time(14), True),
        (time(14, 0), time(12), time(14), False),
        (time(11, 59), time(12), time(14), False),
    ],
)
def test_a_window_is_start_inclusive_end_exclusive_and_may_wrap_midnight(wall_time, start, end, inside):
    assert in_window(wall_time, start, end) is inside


def test_days_are_23_and_25_hours_long_on_the_dst_change_days():
    spring = local_day(utc(2025, 3, 9, 12, 0), NEW_YORK)
    autumn = local_day(utc(2025, 11, 2, 12, 0), NEW_YORK)

    assert (spring.date, spring.starts_at, spring.ends_at) == (
        date(2025, 3, 9),
        utc(2025, 3, 9, 5, 0),
        utc(2025, 3, 10, 4, 0),
    )
    assert (autumn.starts_at, autumn.ends_at) == (utc(2025, 11, 2, 4, 0), utc(2025, 11, 3, 5, 0))


def test_a_window_ending_in_the_skipped_hour_ends_at_the_jump():
    """On March 9 2025 New York clocks go from 01:59:59 EST to 03:00 EDT: 02:30 never happens."""
    assert window_ends_at(utc(2025, 3, 9, 6, 15), NEW_YORK, time(1), time(2, 30)) == utc(2025, 3, 9, 7, 0)


def test_a_window_ending_in_the_repeated_hour_ends_at_its_first_occurrence():
    """On November 2 2025 01:00-01:59 happens twice in New York (EDT, then EST)."""
    assert window_ends_at(utc(2025, 11, 2, 4, 30), NEW_YORK, time(0), time(1, 30)) == utc(2025, 11, 2, 5, 30)


# --- The rule --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "now", "quiet", "ends_at"),
    [
        # New York, spring forward on March 9 2025 (02:00 EST -> 03:00 EDT).
        ("America/New_York", utc(2025, 3, 9, 6, 30), True, utc(2025, 3, 9, 11, 0)),  # 01:30 EST
        ("America/New_York", utc(2025, 3, 9, 10, 59), True, utc(2025, 3, 9, 11, 0)),  # 06:59 EDT
        ("America/New_York", utc(2025, 3, 9, 11, 0), False, None),  # 07:00 EDT (06:00 in EST)
        (
            "America/New_York",
            utc(2025, 3, 9, 3, 0),
            True,
            utc(2025, 3, 9, 11, 0),
        ),  # 22:00 EST, an 8-hour night
        # New York, fall back on November 2 2025 (02:00 EDT -> 01:00 EST).
        ("America/New_York", utc(2025, 11, 2, 11, 30), True, utc(2025, 11, 2, 12, 0)),  # 06:30 EST
        ("America/New_York", utc(2025, 11, 2, 11, 0), True, utc(2025, 11, 2, 12, 0)),  # 06:00 EST (07:00 EDT)
        ("America/New_York", utc(2025, 11, 2, 12, 0), False, None),  # 07:00 EST
        (
            "America/New_York",
            utc(2025, 11, 2, 2, 0),
            True,
            utc(2025, 11, 2, 12, 0),
        ),  # 22:00 EDT, a 10-hour night
        # Paris, summer time from March 30 2025 (02:00 CET -> 03:00 CEST).
        ("Europe/Paris", utc(2025, 3, 30, 4, 59), True, utc(2025, 3, 30, 5, 0)),  # 06:59 CEST
        ("Europe/Paris", utc(2025, 3, 30, 5, 0), False, None),  # 07:00 CEST (06:00 in CET)
        ("Europe/Paris", utc(2025, 10, 26, 5, 30), True, utc(2025, 10, 26, 6, 0)),  # 06:30 CET
        ("Europe/Paris", utc(2025, 10, 26, 20, 59), False, None),  # 21:59 CET
        ("Europe/Paris", utc(2025, 10, 26, 21, 0), True, utc(2025, 10, 27, 6, 0)),  # 22:00 CET
    ],
)
def test_quiet_hours_follow_the_user_s_clock_across_dst_changes(zone, now, quiet, ends_at):
    end_user = user_in(zone)
    _quiet(end_user)

    decision = send(end_user, now=now)

    if not quiet:
        assert decision.allowed
        return
    [reason] = decision.reasons
    local = now.astimezone(zone_named(zone))
    assert (reason.code, reason.message, reason.not_before) == (
        "quiet_hours",
        f"the user's quiet hours 22:00-07:00 {zone} (it is {local:%H:%M} there)",
        ends_at,
    )


@pytest.mark.django_db
def test_the_same_instant_is_quiet_for_one_user_and_not_for_another():
    now = utc(2025, 6, 1, 13, 0)  # 22:00 in Tokyo, 15:00 in Paris, 09:00 in New York
    users = {zone: user_in(zone) for zone in ("Asia/Tokyo", "Europe/Paris", "America/New_York")}
    for end_user in users.values():
        _quiet(end_user)

    assert {zone: send(end_user, now=now).allowed for zone, end_user in users.items()} == {
        "Asia/Tokyo": False,
        "Europe/Paris": True,
        "America/New_York": True,
    }


@pytest.mark.django_db
def test_the_workspace_default_applies_when_the_user_set_none_and_the_user_s_own_wins():
    follows_default, own_hours = user_in("Europe/Paris"), user_in("Europe/Paris")
    own_hours.workspace = follows_default.workspace
    own_hours.save()
    workspace_policy(follows_default, quiet_hours_start=time(12), quiet_hours_end=time(14))
    _quiet(own_hours, "20:00", "08:00")
    now = utc(2025, 6, 1, 11, 0)  # 13:00 in Paris

    [reason] = send(follows_default, now=now).reasons
    assert reason.message == "the workspace's quiet hours 12:00-14:00 Europe/Paris (it is 13:00 there)"
    assert send(own_hours, now=now).allowed


@pytest.mark.django_db
def test_a_user_with_an_unknown_zone_gets_quiet_hours_in_utc():
    end_user = user_in("Not/A_Zone")
    _quiet(end_user)

    [reason] = send(end_user, now=utc(2025, 6, 1, 23, 0)).reasons

    assert reason.message == "the user's quiet hours 22:00-07:00 UTC (it is 23:00 there)"
