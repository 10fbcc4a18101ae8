"""The policy engine's rules: one small function each, returning None (pass) or a Reason.

Each reads what it needs from `Facts` (loaded lazily, once per check). The order they run in and
the actions each applies to are declared in one place, guardrails.policy.engine.RULES.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from zoneinfo import ZoneInfo

from django.db.models import Sum

from guardrails.models import AbuseFlag, LLMCall, PolicyDecision, Preference, Suppression, WorkspacePolicy
from guardrails.policy import caps, selectors, subjects
from guardrails.policy.consent import consent_default
from guardrails.policy.localtime import LocalDay, format_wall_time, local_day, window_ends_at, zone_named
from onboarding.models import Contact
from tenancy.models import EndUser


@dataclass(frozen=True)
class Reason:
    """Why a rule denied; `not_before` is when the same action could pass this rule again."""

    code: str
    message: str
    not_before: datetime | None = None

    def as_dict(self) -> dict:
        data = {"code": self.code, "message": self.message}
        if self.not_before is not None:
            data["not_before"] = self.not_before.isoformat()
        return data


class Facts:
    """What the rules of one check look at, each loaded on first use."""

    def __init__(
        self,
        *,
        action: str,
        end_user: EndUser,
        now: datetime,
        channel: str = "",
        purpose: str = "",
        estimated_cost_usd: Decimal = Decimal(0),
        address: str | None = None,
    ):
        self.action = action
        self.end_user = end_user
        self.now = now
        self.channel = channel
        self.purpose = purpose
        self.estimated_cost_usd = estimated_cost_usd
        self.address = address

    @cached_property
    def zone(self) -> ZoneInfo:
        return zone_named(self.end_user.timezone)

    @cached_property
    def day(self) -> LocalDay:
        return local_day(self.now, self.zone)

    @cached_property
    def workspace_policy(self) -> WorkspacePolicy:
        return selectors.workspace_policy_get(workspace=self.end_user.workspace_id)

    @cached_property
    def preference(self) -> Preference | None:
        return selectors.preference_get(end_user=self.end_user)

    def local(self, instant: datetime) -> str:
        return f"{instant.astimezone(self.zone):%Y-%m-%d %H:%M} {self.zone.key}"


def _when(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M} UTC"


# --- nudge.send ------------------------------------------------------------------------------------


def consent(facts: Facts) -> Reason | None:
    latest = selectors.consent_latest(end_user=facts.end_user, channel=facts.channel, purpose=facts.purpose)
    pair = f"{facts.channel}/{facts.purpose}"
    if latest is None:
        if consent_default(facts.channel, facts.purpose):
            return None
        return Reason("consent", f"no consent for {pair} on record, and {pair} needs an explicit grant")
    if latest.granted:
        return None
    return Reason("consent", f"consent for {pair} withdrawn at {_when(latest.recorded_at)} ({latest.source})")


def daily_cap_used(facts: Facts) -> Reason | None:
    """The cap as it stands, without reserving: for checks another rule already denies."""
    cap = facts.workspace_policy.daily_nudge_cap
    if caps.cap_used(end_user=facts.end_user, day=facts.day) < cap:
        return None
    return daily_cap_reached(facts)


def daily_cap_reached(facts: Facts) -> Reason:
    cap = facts.workspace_policy.daily_nudge_cap
    allowed = (
        PolicyDecision.objects.filter(
            workspace_id=facts.end_user.workspace_id,
            end_user=facts.end_user,
            action=PolicyDecision.Action.NUDGE_SEND,
            allowed=True,
            decided_at__gte=facts.day.starts_at,
            decided_at__lt=facts.day.ends_at,
        )
        .order_by("decided_at")
        .values_list("decided_at", flat=True)
    )
    reached = list(allowed[max(cap - 1, 0) : cap])
    when = (
        f"at {reached[0].astimezone(facts.zone):%H:%M} {facts.zone.key}"
        if reached and cap
        else f"for {facts.day.date.isoformat()} {facts.zone.key}"
    )
    return Reason("daily_cap", f"daily cap of {cap} reached {when}", not_before=facts.day.ends_at)


def quiet_hours(facts: Facts) -> Reason | None:
    preference = facts.preference
    if preference is not None and None not in (preference.quiet_hours_start, preference.quiet_hours_end):
        start, end, whose = preference.quiet_hours_start, preference.quiet_hours_end, "the user's"
    else:
        policy = facts.workspace_policy
        if None in (policy.quiet_hours_start, policy.quiet_hours_end):
            return None
        start, end, whose = policy.quiet_hours_start, policy.quiet_hours_end, "the workspace's"
    ends_at = window_ends_at(facts.now, facts.zone, start, end)
    if ends_at is None:
        return None
    return Reason(
        "quiet_hours",
        f"{whose} quiet hours {format_wall_time(start)}-{format_wall_time(end)} {facts.zone.key}"
        f" (it is {facts.now.astimezone(facts.zone):%H:%M} there)",
        not_before=ends_at,
    )


def snooze(facts: Facts) -> Reason | None:
    preference = facts.preference
    if preference is None or preference.snooze_until is None or preference.snooze_until <= facts.now:
        return None
    return Reason(
        "snoozed",
        f"snoozed by the user until {facts.local(preference.snooze_until)}",
        preference.snooze_until,
    )


def do_not_disturb(facts: Facts) -> Reason | None:
    if facts.preference is None or not facts.preference.do_not_disturb:
        return None
    return Reason("do_not_disturb", "the user turned on do-not-disturb")


def _subject_digests(facts: Facts) -> dict[str, str]:
    """Digest -> what it is ("email", "phone", "user id"), never the value itself."""
    end_user = facts.end_user
    digests = {}
    if end_user.external_id:
        digests[subjects.subject_digest(end_user.workspace_id, subjects.USER_ID, end_user.external_id)] = (
            "user id"
        )
    if facts.channel:
        email, phone = facts.address, facts.address
        if facts.address is None:
            email, phone = Contact.objects.filter(end_user=end_user).values_list(
                "email", "phone"
            ).first() or (
                "",
                "",
            )
        if email and "@" in email:
            digests[subjects.subject_digest(end_user.workspace_id, subjects.EMAIL, email)] = "email address"
        if phone and "@" not in phone:
            digests[subjects.subject_digest(end_user.workspace_id, subjects.PHONE, phone)] = "phone number"
    return digests


def suppression(facts: Facts) -> Reason | None:
    digests = _subject_digests(facts)
    if not digests:
        return None
    channels = [facts.channel, ""] if facts.channel else [""]
    found = (
        Suppression.objects.filter(
            workspace_id=facts.end_user.workspace_id, subject_digest__in=digests, channel__in=channels
        )
        .order_by("created_at")
        .first()
    )
    if found is None:
        return None
    scope = f"on {found.channel}" if found.channel else "on every channel"
    return Reason(
        "suppressed",
        f"the user's {digests[found.subject_digest]} is suppressed {scope}: {found.reason}"
        f" (since {_when(found.created_at)})",
    )


# --- llm.call --------------------------------------------------------------------------------------


def llm_budget(facts: Facts) -> Reason | None:
    budget = facts.workspace_policy.llm_daily_budget_usd
    today = local_day(facts.now, zone_named("UTC"))
    spent = LLMCall.objects.filter(
        workspace_id=facts.end_user.workspace_id,
        created_at__gte=today.starts_at,
        created_at__lt=today.ends_at,
    ).aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
    if spent + facts.estimated_cost_usd <= budget:
        return None
    return Reason(
        "llm_budget",
        f"the workspace's LLM budget of {budget:.2f} USD for {today.date.isoformat()} (UTC) would be"
        f" exceeded: {spent:.4f} spent + {facts.estimated_cost_usd:.4f} estimated",
        not_before=today.ends_at,
    )


# --- nudge.send and llm.call -----------------------------------------------------------------------


def abuse(facts: Facts) -> Reason | None:
    flag = (
        AbuseFlag.objects.filter(
            workspace_id=facts.end_user.workspace_id, end_user=facts.end_user, resolved_at__isnull=True
        )
        .order_by("-created_at")
        .first()
    )
    if flag is None:
        return None
    return Reason(
        "abuse_flag", f"unresolved abuse flag on the user: {flag.kind} (since {_when(flag.created_at)})"
    )
