"""The policy engine: may we send this nudge, call the LLM for this user, export or erase their data?

    decision = policy.check("nudge.send", end_user, {"channel": "email", "purpose": "onboarding"})
    if not decision.allowed: ...   # decision.reasons says every rule that denied, and why

Every rule in RULES that applies to the action runs, in order, and every failing one is reported
(deny if any), so the admin can answer "why did or didn't this user get this nudge?": each
decision and its reasons are recorded in PolicyDecision within the same call.

Fail safe: a check that overruns settings.POLICY_CHECK_TIMEOUT_SECONDS denies ("policy_timeout"),
and so does a rule that raises ("policy_error"). Rules run in the caller's thread, so they see the
caller's transaction; the budget is enforced between rules and by the I/O itself: Redis sockets
time out within a fraction of it, and on PostgreSQL the rules' statements run under a
statement_timeout of what is left of it.

The daily cap is consumed by allowed nudge.send checks (reserve-on-allow): once every other rule
has passed, one atomic reservation (guardrails.policy.caps) counts the nudge; a check another rule denies
only reads the counter, so a denied send never uses up the cap. A caller that then does not send
after all (every provider failed) gives the nudge back with `release(decision)`.
"""

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from guardrails.models import Channel, PolicyDecision, Purpose
from guardrails.policy import caps
from guardrails.policy import rules as policy_rules
from guardrails.policy.rules import Facts, Reason
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

NUDGE_SEND = PolicyDecision.Action.NUDGE_SEND
LLM_CALL = PolicyDecision.Action.LLM_CALL
DATA_EXPORT = PolicyDecision.Action.DATA_EXPORT
DATA_ERASE = PolicyDecision.Action.DATA_ERASE

__all__ = ["DATA_ERASE", "DATA_EXPORT", "LLM_CALL", "NUDGE_SEND", "Decision", "Reason", "check", "release"]


@dataclass(frozen=True)
class Rule:
    code: str
    check: Callable[[Facts], Reason | None]
    actions: tuple[str, ...]
    # A rule that consumes something when the check is allowed (the daily cap): run instead of
    # `check`, last, and only when every other rule passed.
    reserve: Callable[[Facts], tuple[Reason | None, caps.Reservation | None]] | None = None


def _reserve_daily_cap(facts: Facts) -> tuple[Reason | None, caps.Reservation | None]:
    reservation = caps.cap_reserve(
        end_user=facts.end_user, day=facts.day, cap=facts.workspace_policy.daily_nudge_cap
    )
    if reservation is None:
        return policy_rules.daily_cap_reached(facts), None
    return None, reservation


# The registry: every rule, in the order it is evaluated and reported. Data export and erasure are
# a person's rights: no rule restricts them, the decision is recorded for the trail.
RULES: tuple[Rule, ...] = (
    Rule("consent", policy_rules.consent, (NUDGE_SEND,)),
    Rule("daily_cap", policy_rules.daily_cap_used, (NUDGE_SEND,), reserve=_reserve_daily_cap),
    Rule("quiet_hours", policy_rules.quiet_hours, (NUDGE_SEND,)),
    Rule("snooze", policy_rules.snooze, (NUDGE_SEND,)),
    Rule("do_not_disturb", policy_rules.do_not_disturb, (NUDGE_SEND,)),
    Rule("suppression", policy_rules.suppression, (NUDGE_SEND, LLM_CALL)),
    Rule("llm_budget", policy_rules.llm_budget, (LLM_CALL,)),
    Rule("abuse", policy_rules.abuse, (NUDGE_SEND, LLM_CALL)),
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[Reason, ...]
    decision_id: int | None = None
    reservation: caps.Reservation | None = field(default=None, repr=False)

    @property
    def codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]


class _Timeout(Exception):
    def __init__(self, before_rule: str, failures: dict[str, Reason]):
        super().__init__(before_rule)
        self.before_rule = before_rule
        self.failures = failures  # what the rules that did run found: reported too


def _budget() -> float:
    return float(getattr(settings, "POLICY_CHECK_TIMEOUT_SECONDS", 0.5))


def _facts(action: str, end_user: EndUser, context: Mapping[str, Any]) -> tuple[Facts, list[Reason]]:
    """The facts of this check, and what is wrong with its context (a denial, not an error)."""
    problems = []
    now = context.get("now") or timezone.now()
    if not isinstance(now, datetime) or now.tzinfo is None:
        problems.append(Reason("invalid_context", "now must be an aware datetime"))
        now = timezone.now()
    channel, purpose = context.get("channel") or "", context.get("purpose") or ""
    if action == NUDGE_SEND:
        if channel not in Channel.values:
            problems.append(Reason("invalid_context", f"channel must be one of {', '.join(Channel.values)}"))
        if purpose not in Purpose.values:
            problems.append(Reason("invalid_context", f"purpose must be one of {', '.join(Purpose.values)}"))
    try:
        estimated_cost = Decimal(str(context.get("estimated_cost_usd", 0)))
        if not estimated_cost.is_finite() or estimated_cost < 0:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        problems.append(Reason("invalid_context", "estimated_cost_usd must be a number >= 0"))
        estimated_cost = Decimal(0)
    facts = Facts(
        action=action,
        end_user=end_user,
        now=now.astimezone(UTC),
        channel=channel,
        purpose=purpose,
        estimated_cost_usd=estimated_cost,
        address=context.get("address"),
    )
    return facts, problems


def _statement_timeout(milliseconds: int | None) -> str | None:
    """Set this transaction's statement_timeout on PostgreSQL; returns the previous value."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, true)",
            [f"{milliseconds}ms" if milliseconds is not None else "0"],
        )
        return cursor.fetchone()[0]


def _bounded_statements():
    """A savepoint on PostgreSQL, where the statement_timeout lives and a cancelled statement
    must not break the caller's transaction; nothing on SQLite, whose IMMEDIATE transactions
    would take the write lock for a check that only reads."""
    return transaction.atomic() if connection.vendor == "postgresql" else contextlib.nullcontext()


def _restore_statement_timeout(previous: str | None) -> None:
    if previous is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def _evaluate(
    facts: Facts, rules: list[Rule], deadline: float, *, reserve: bool = True
) -> tuple[dict[str, Reason], caps.Reservation | None]:
    """Each failing rule's reason by code, and the reservation when the check is allowed (never
    without `reserve`: the reserving rules only read then)."""
    failures: dict[str, Reason] = {}

    def run(rule: Rule, function: Callable) -> Any:
        if time.monotonic() >= deadline:
            raise _Timeout(rule.code, failures)
        try:
            return function(facts)
        except DatabaseError:
            raise  # the transaction is broken: no further rule can run on it
        except Exception as error:
            logger.warning(
                "guardrails.policy.engine.rule_failed",
                extra={"rule": rule.code, "error_type": type(error).__name__},
            )
            failures[rule.code] = Reason("policy_error", f"rule {rule.code} failed ({type(error).__name__})")
            return None

    for rule in rules:
        reason = run(rule, rule.check) if rule.reserve is None else None
        if reason is not None:
            failures[rule.code] = reason
    reservation = None
    for rule in (rule for rule in rules if rule.reserve is not None):
        if failures or not reserve:
            reason = run(rule, rule.check)
        else:
            reason, reservation = run(rule, rule.reserve) or (None, None)
        if reason is not None:
            failures[rule.code] = reason
    if time.monotonic() >= deadline:
        if reservation is not None:
            caps.cap_release(reservation)
        raise _Timeout("", failures)
    return failures, reservation


def _timeout_reason(budget: float, after: str) -> Reason:
    where = f" before rule {after}" if after else ""
    return Reason(
        "policy_timeout", f"the policy check took longer than {budget:g} s{where}: denied by default"
    )


def check(
    action: str, end_user: EndUser, context: Mapping[str, Any] | None = None, *, dry_run: bool = False
) -> Decision:
    """Whether `action` is allowed for `end_user` now, with every reason it is not.

    context: nudge.send needs channel and purpose; llm.call takes estimated_cost_usd; all take
    now (an aware datetime, default the current time) and, for suppression, the address a
    gateway is about to use (default: the user's Contact).

    dry_run (the admin's template preview): every rule is evaluated as above, but nothing is
    recorded (no PolicyDecision, decision_id None) and the daily cap is only read, not reserved.
    """
    if action not in PolicyDecision.Action.values:
        raise ValueError(f"unknown policy action {action!r}")
    started = time.monotonic()
    budget = _budget()
    deadline = started + budget
    facts, problems = _facts(action, end_user, context or {})
    # With a context the rules cannot read (no channel...), their verdicts would be noise.
    rules = [rule for rule in RULES if action in rule.actions] if not problems else []
    failures: dict[str, Reason] = {}
    reservation = None
    try:
        with _bounded_statements():
            previous = _statement_timeout(max(1, int(budget * 1000)))
            failures, reservation = _evaluate(facts, rules, deadline, reserve=not dry_run)
            _restore_statement_timeout(previous)
    except _Timeout as timeout:
        failures = timeout.failures
        problems.append(_timeout_reason(budget, timeout.before_rule))
    except DatabaseError as error:
        if time.monotonic() >= deadline or "statement timeout" in str(error):
            problems.append(_timeout_reason(budget, ""))
        else:
            problems.append(Reason("policy_error", f"the policy check failed ({type(error).__name__})"))
        logger.warning("guardrails.policy.engine.database_error", extra={"error_type": type(error).__name__})
    reasons = tuple(problems) + tuple(failures[rule.code] for rule in rules if rule.code in failures)
    if reasons and reservation is not None:
        caps.cap_release(reservation)
        reservation = None
    if dry_run:
        return Decision(not reasons, reasons)
    return _record(facts, reasons, reservation, started)


def _record(facts: Facts, reasons: tuple[Reason, ...], reservation, started: float) -> Decision:
    allowed = not reasons
    try:
        with transaction.atomic():
            row = PolicyDecision.objects.create(
                workspace_id=facts.end_user.workspace_id,
                end_user=facts.end_user,
                action=facts.action,
                channel=facts.channel if facts.channel in Channel.values else "",
                allowed=allowed,
                reasons=[reason.as_dict() for reason in reasons],
            )
    except DatabaseError as error:
        # An unrecorded decision cannot be explained later: deny it.
        if reservation is not None:
            caps.cap_release(reservation)
        logger.warning("guardrails.policy.engine.record_failed", extra={"error_type": type(error).__name__})
        failed = Reason("policy_error", f"the decision could not be recorded ({type(error).__name__})")
        return Decision(False, (*reasons, failed))
    logger.info(
        "guardrails.policy.engine.decision",
        extra={
            "workspace_id": facts.end_user.workspace_id,
            "end_user_id": facts.end_user.pk,
            "action": facts.action,
            "channel": facts.channel,
            "allowed": allowed,
            "codes": [reason.code for reason in reasons],
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
        },
    )
    return Decision(allowed, reasons, row.pk, reservation)


def release(decision: Decision) -> None:
    """Give back the daily-cap slot an allowed nudge.send took, when the nudge was not sent."""
    if decision.reservation is not None:
        caps.cap_release(decision.reservation)
