"""Validation of a preferences update (the preference centre, the API, the admin).

`preferences_parse` checks every field and reports every problem at once, each as
{"field": "channels.email.marketing", "reason": "must be true or false"}; nothing is applied
unless the whole update is valid (guardrails.preferences.services.preferences_update). quiet_hours may
carry start or end alone: the other keeps the value in force; with none in force, the one left
out is reported missing, unless the one sent is wrong itself (then only that is reported).
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.utils.dateparse import parse_datetime

from guardrails.models import Channel, Purpose

FIELDS = ("channels", "quiet_hours", "snooze_until", "do_not_disturb")
QUIET_HOURS_FIELDS = ("start", "end", "timezone", "source")
MAX_SNOOZE = timedelta(days=365)
_WALL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


class PreferencesInvalid(Exception):
    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{error['field']}: {error['reason']}" for error in errors))
        self.errors = errors


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass
class PreferenceChanges:
    """What the update asks for; UNSET where it leaves a value as it is."""

    consent: dict[tuple[str, str], bool] = field(default_factory=dict)
    quiet_hours: tuple[time, time] | None = UNSET
    snooze_until: datetime | None = UNSET
    do_not_disturb: bool = UNSET


def _expected(values) -> str:
    return ", ".join(values)


def _parse_wall_time(value: Any) -> time | None:
    match = _WALL_TIME.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


def _parse_channels(value: Any, changes: PreferenceChanges, errors: list[dict[str, str]]) -> None:
    if not isinstance(value, dict):
        errors.append(
            {"field": "channels", "reason": 'must be an object, e.g. {"email": {"marketing": false}}'}
        )
        return
    for channel, purposes in value.items():
        where = f"channels.{channel}"
        if channel not in Channel.values:
            errors.append(
                {"field": where, "reason": f"unknown channel; expected {_expected(Channel.values)}"}
            )
            continue
        if not isinstance(purposes, dict):
            errors.append({"field": where, "reason": 'must be an object, e.g. {"onboarding": true}'})
            continue
        for purpose, granted in purposes.items():
            if purpose not in Purpose.values:
                errors.append(
                    {
                        "field": f"{where}.{purpose}",
                        "reason": f"unknown purpose; expected {_expected(Purpose.values)}",
                    }
                )
            elif not isinstance(granted, bool):
                errors.append({"field": f"{where}.{purpose}", "reason": "must be true or false"})
            else:
                changes.consent[(channel, purpose)] = granted


def _parse_bound(name: str, value: dict, current: dict, errors: list[dict[str, str]]) -> time | None:
    """One end of the quiet hours. Left out, it keeps the one in force (the user's, else the
    workspace's), so a PUT of the start alone moves the start; a bound sent is parsed as sent."""
    where = f"quiet_hours.{name}"
    if name not in value:
        kept = _parse_wall_time(current["quiet_hours"][name])
        if kept is None:
            errors.append(
                {
                    "field": where,
                    "reason": f"missing: the user has no quiet hours to keep the {name} of; "
                    "send start and end",
                }
            )
        return kept
    if value[name] is None:
        errors.append(
            {
                "field": where,
                "reason": "must be a 24-hour time HH:MM; null clears quiet hours only with "
                f"{'end' if name == 'start' else 'start'} null too",
            }
        )
        return None
    parsed = _parse_wall_time(value[name])
    if parsed is None:
        errors.append({"field": where, "reason": "must be a 24-hour time HH:MM, e.g. 22:00"})
    return parsed


def _parse_quiet_hours(
    value: Any, current: dict, changes: PreferenceChanges, errors: list[dict[str, str]]
) -> None:
    zone_name = current["quiet_hours"]["timezone"]
    if value is None:
        changes.quiet_hours = None
        return
    if not isinstance(value, dict):
        errors.append(
            {"field": "quiet_hours", "reason": 'must be null or {"start": "22:00", "end": "07:00"}'}
        )
        return
    problems = len(errors)
    for name in value:
        if name not in QUIET_HOURS_FIELDS:
            errors.append(
                {
                    "field": f"quiet_hours.{name}",
                    "reason": f"unknown field; expected {_expected(QUIET_HOURS_FIELDS)}",
                }
            )
    if value.get("start") is None and value.get("end") is None:
        changes.quiet_hours = None  # a round-tripped GET of a user without quiet hours
    else:
        bounds = {name: _parse_bound(name, value, current, errors) for name in ("start", "end")}
        sent_at_fault = [error for error in errors[problems:] if not error["reason"].startswith("missing")]
        if sent_at_fault:  # the bound sent is wrong: that alone is reported, not the one left out
            errors[problems:] = sent_at_fault
        if None not in bounds.values() and bounds["start"] == bounds["end"]:
            errors.append({"field": "quiet_hours", "reason": "start and end must differ"})
        shown = (current["quiet_hours"]["start"], current["quiet_hours"]["end"])
        if len(errors) == problems and not (
            # The workspace's default hours sent back unchanged stay the workspace's.
            current["quiet_hours"]["source"] == "workspace"
            and (value.get("start"), value.get("end")) == shown
        ):
            changes.quiet_hours = (bounds["start"], bounds["end"])
    zone = value.get("timezone")
    if zone is not None and zone != zone_name:
        errors.append(
            {
                "field": "quiet_hours.timezone",
                "reason": f"read-only: quiet hours follow the user's time zone ({zone_name}), "
                "which is set by the timezone trait of identify",
            }
        )


def _parse_snooze(
    value: Any, now: datetime, current: dict, changes: PreferenceChanges, errors: list[dict[str, str]]
) -> None:
    if value is None:
        changes.snooze_until = None
        return
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is not None and parsed.tzinfo is not None and parsed == current["snooze_until"]:
        return  # sent back unchanged (it may have just passed)
    if parsed is None:
        reason = "must be an ISO 8601 date-time, e.g. 2030-01-31T09:00:00Z, or null"
    elif parsed.tzinfo is None:
        reason = "needs a UTC offset, e.g. 2030-01-31T09:00:00Z or 2030-01-31T10:00:00+01:00"
    elif parsed <= now:
        reason = "is in the past"
    elif parsed - now > MAX_SNOOZE:
        reason = "is more than 365 days ahead; use do_not_disturb to pause nudges indefinitely"
    else:
        changes.snooze_until = parsed
        return
    errors.append({"field": "snooze_until", "reason": reason})


def preferences_parse(data: Any, *, now: datetime, current: dict) -> PreferenceChanges:
    """The changes the update asks for; PreferencesInvalid naming every bad field otherwise.

    `current` is the user's preferences_state: what a client that GETs then PUTs sends back
    unchanged (the workspace's default quiet hours, a snooze that has just passed) is no change.
    """
    if not isinstance(data, dict):
        raise PreferencesInvalid([{"field": "(request)", "reason": "the body must be a JSON object"}])
    errors: list[dict[str, str]] = []
    changes = PreferenceChanges()
    for name in data:
        if name not in FIELDS and name != "user_id":  # user_id: a round-tripped GET body
            errors.append({"field": name, "reason": f"unknown field; expected {_expected(FIELDS)}"})
    if not any(name in data for name in FIELDS):
        errors.append({"field": "(request)", "reason": f"send at least one of {_expected(FIELDS)}"})
    if "channels" in data:
        _parse_channels(data["channels"], changes, errors)
    if "quiet_hours" in data:
        _parse_quiet_hours(data["quiet_hours"], current, changes, errors)
    if "snooze_until" in data:
        _parse_snooze(data["snooze_until"], now, current, changes, errors)
    if "do_not_disturb" in data:
        if isinstance(data["do_not_disturb"], bool):
            changes.do_not_disturb = data["do_not_disturb"]
        else:
            errors.append({"field": "do_not_disturb", "reason": "must be true or false"})
    if errors:
        raise PreferencesInvalid(errors)
    return changes
