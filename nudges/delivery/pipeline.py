"""The nudge pipeline: one queued nudge from its trigger to the provider, and why at each step.

    trigger -> claim -> for each of the trigger's channels, in order:
        policy (consent, cap, quiet hours, snooze, suppression, abuse; guardrails.policy.engine)
        -> template and variant (an experiment's arm, else the cold-start rule, else Thompson sampling)
        -> context (features, progress, recent events; never contact data)
        -> personalisation (LLM behind redaction and validation; the static template on failure)
        -> send time -> in flight -> gateway (retries, failover: nudges.delivery.failover) -> status

The first channel that is allowed, has a template and reaches the user is used; every step adds
a line to the nudge's trace. A job leases its nudges when it starts, and each nudge is claimed
with a conditional UPDATE of its lease, so two workers never process it at once; only queued,
due deferred, and in-flight nudges whose lease ran out are processed: running a job twice sends
once.

The send is recorded in flight (with the attempt's idempotency key) before the provider is
called, so a worker that dies before recording the answer leaves an attempt to reconcile, never
to resend blindly (nudges.delivery.attempts). In-app nudges are written locally: their send and status
are one transaction.

Failures: quiet hours or a snooze ending within MAX_DEFER defer the nudge to then; a provider
that is down or rate limited defers it with exponential backoff and jitter (BACKOFF_SECONDS),
and after MAX_ATTEMPTS it fails into the dead-letter list; a provider's refusal fails it at
once. `process_due` (every minute, nudges.cron / run_triggers) sends deferred nudges when due and
picks up every lease that ran out: a killed job's nudges go again, its in-flight one is reconciled.
"""

import logging
import random
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cachetools import TTLCache
from django.db import transaction
from django.utils import timezone
from prometheus_client import Histogram

from guardrails.models import Channel
from guardrails.policy import engine as policy
from guardrails.policy.localtime import zone_named
from nudges import services
from nudges.content import composer
from nudges.content.context import NudgeContext, context_for_nudge
from nudges.delivery import attempts, leases, sendtime, webhooks
from nudges.delivery import failover as delivery
from nudges.delivery.attempts import Outcome, note
from nudges.delivery.cap_slot import CapSlot, cap_slot
from nudges.delivery.leases import process_due
from nudges.gateways import base as gateway_base
from nudges.gateways.recipients import recipient_for
from nudges.llm import personalize
from nudges.models import Nudge, NudgeSettings, TemplateVersion
from paths import rules

logger = logging.getLogger(__name__)

__all__ = ["Outcome", "nudge_process", "nudges_process", "process_due"]

Status = Nudge.Status
MAX_ATTEMPTS = 4  # a first try and three retries
BACKOFF_SECONDS = (60, 240, 960)  # before retries 1, 2, 3; each with up to +50% jitter
MAX_DEFER = timedelta(hours=24)
DEFERRABLE = {"quiet_hours", "snoozed"}

# The seeds' metric: from the trigger firing to the provider accepting the nudge.
LATENCY = Histogram(
    "ai_onboarding_latency_seconds",
    "Seconds from a trigger firing to the provider accepting the nudge.",
    ["channel", "personalised"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


@dataclass(frozen=True)
class Run:
    """What one pass of a nudge through the pipeline knows besides the nudge itself."""

    nudge: Nudge
    context: NudgeContext
    nudge_settings: NudgeSettings
    cold_start: bool
    now: datetime


# A workspace's nudge settings, read once per process every few seconds.
_settings_cache: TTLCache = TTLCache(maxsize=1024, ttl=5)
_settings_lock = threading.Lock()


def _settings(workspace_id: int) -> NudgeSettings:
    with _settings_lock:
        found = _settings_cache.get(workspace_id)
    if found is None:
        found = NudgeSettings.objects.filter(workspace_id=workspace_id).first() or NudgeSettings(
            workspace_id=workspace_id
        )
        with _settings_lock:
            _settings_cache[workspace_id] = found
    return found


def forget() -> None:
    """Drop the cached settings and templates (tests)."""
    with _settings_lock:
        _settings_cache.clear()
    composer.forget()


def _reasons(decision: policy.Decision) -> str:
    return "; ".join(f"{reason.code}: {reason.message}" for reason in decision.reasons)


def _deferral(decision: policy.Decision, now: datetime) -> datetime | None:
    """When every reason denying the send passes within MAX_DEFER, that moment."""
    if not decision.reasons or any(reason.code not in DEFERRABLE for reason in decision.reasons):
        return None
    moments = [reason.not_before for reason in decision.reasons]
    if None in moments:
        return None
    latest = max(moments)
    return latest if latest - now <= MAX_DEFER else None


def _defer(nudge: Nudge, until: datetime, why: str, source: str = "pipeline") -> Outcome:
    note(nudge, "deferred", why)
    services.nudge_status_advance(
        nudge=nudge,
        status=Status.DEFERRED,
        source=source,
        detail={"until": until.isoformat()},
        fields={
            "send_after": until,
            "trace": nudge.trace,
            "last_error": nudge.last_error,
            "claimed_until": None,
            "lease_token": "",
            **attempts.content(nudge),
        },
    )
    return Outcome(Status.DEFERRED, why)


def _backoff(attempt_count: int, now: datetime) -> datetime:
    base = BACKOFF_SECONDS[min(attempt_count - 1, len(BACKOFF_SECONDS) - 1)]
    return now + timedelta(seconds=base * (1 + random.random() / 2))  # jitter


def _allowed_links(nudge: Nudge) -> list[str]:
    if nudge.enrollment is None:
        return []
    compiled = rules.compiled_version(nudge.enrollment.path_version)
    return [step.deep_link for step in compiled.steps if step.deep_link]


def nudges_process(*, nudge_ids: list[int], now: datetime | None = None) -> None:
    """A job's batch of nudges, leased together, each through the pipeline on its own: one that
    fails unexpectedly is logged (and picked up again when its lease runs out), the others go on."""
    token = leases.lease_batch(nudge_ids, now or timezone.now())
    for nudge_id in nudge_ids:
        try:
            nudge_process(nudge_id=nudge_id, now=now, lease_token=token)
        except Exception:
            logger.exception("nudge.process_failed", extra={"nudge_id": nudge_id})


def nudge_process(*, nudge_id: int, now: datetime | None = None, lease_token: str = "") -> Outcome | None:
    """Take one nudge through the pipeline; None when it is not due or another worker has it.
    An in-flight nudge whose lease ran out is reconciled instead (nudges.delivery.attempts)."""
    now = now or timezone.now()
    nudge = leases.claim(nudge_id, now, lease_token)
    if nudge is None:
        return None
    if nudge.status == Status.IN_FLIGHT:
        return attempts.reconcile(nudge=nudge, now=now)
    context = context_for_nudge(nudge)
    run = Run(
        nudge=nudge,
        context=context,
        nudge_settings=_settings(nudge.workspace_id),
        cold_start=context.event_count < composer.COLD_START_EVENTS,
        now=now,
    )
    deferrals: list[tuple[datetime, str]] = []
    for channel in nudge.trigger.channels or []:
        decision = policy.check(
            policy.NUDGE_SEND, nudge.end_user, {"channel": channel, "purpose": nudge.trigger.purpose}
        )
        if not decision.allowed:
            until = _deferral(decision, now)
            if until is not None:
                deferrals.append((until, f"{channel}: {_reasons(decision)}"))
            note(nudge, "policy", f"{channel} denied: {_reasons(decision)}")
            continue
        outcome = _try_channel(run=run, channel=channel, decision=decision)
        if outcome is not None:
            return outcome
    if deferrals:
        until, why = min(deferrals)
        return _defer(nudge, until, f"held until {until.isoformat()} ({why})")
    note(nudge, "suppressed", "no channel could send it (see above)")
    services.nudge_status_advance(
        nudge=nudge,
        status=Status.SUPPRESSED,
        source="pipeline",
        fields={"trace": nudge.trace, "claimed_until": None, "lease_token": ""},
    )
    return Outcome(Status.SUPPRESSED)


def _try_channel(*, run: Run, channel: str, decision: policy.Decision) -> Outcome | None:
    """Send on this channel; None to go on to the next one (the cap slot is given back)."""
    with cap_slot(decision) as slot:
        version = _compose(run=run, channel=channel)
        if version is None:
            return None
        held = _send_time(run=run, channel=channel)
        if held is not None:
            return _defer(run.nudge, *held)
        return _deliver(run=run, channel=channel, version=version, slot=slot)


def _compose(*, run: Run, channel: str) -> TemplateVersion | None:
    """Choose the template and variant, personalise, and set the nudge's content; None when no
    active template fits the channel."""
    nudge = run.nudge
    template = composer.template_for(trigger=nudge.trigger, channel=channel, end_user=nudge.end_user)
    choice = (
        composer.choose_version(template=template, cold_start=run.cold_start, end_user=nudge.end_user)
        if template
        else None
    )
    if choice is None:
        note(nudge, "template", f"{channel}: no active template fits")
        return None
    note(nudge, "template", f"{template.name}: {choice.explanation}")
    draft = composer.draft_for(version=choice.version, variables=run.context.variables, channel=channel)
    if run.cold_start:
        result = personalize.Personalisation(draft=draft, personalised=False, fallback_reason="cold_start")
    else:
        result = personalize.personalise(
            nudge=nudge,
            template_version=choice.version,
            draft=draft,
            context=run.context,
            allowed_links=_allowed_links(nudge),
            channel=channel,
        )
    note(
        nudge,
        "personalisation",
        "personalised by the LLM" if result.personalised else f"static template ({result.fallback_reason})",
    )
    nudge.channel, nudge.template_version = channel, choice.version
    nudge.subject, nudge.body = result.draft.subject, result.draft.body
    nudge.cta_text, nudge.cta_url = result.draft.cta_text, result.draft.cta_url
    nudge.ui_component, nudge.personalised = result.draft.ui_component, result.personalised
    nudge.llm_call_id = result.llm_call_id
    return choice.version


def _send_time(*, run: Run, channel: str) -> tuple[datetime, str] | None:
    """The user's most active hour, when the workspace sends then and it is not now."""
    nudge = run.nudge
    if not (
        run.nudge_settings.send_at_active_hour
        and channel in ("email", "sms", "push")
        and nudge.send_after is None
    ):
        return None
    zone = zone_named(nudge.end_user.timezone or "UTC")
    when, why = sendtime.send_at(end_user=nudge.end_user, zone=zone, now=run.now, channel=channel)
    if when is not None:
        return when, why
    note(nudge, "send_time", why)
    return None


def _deliver(*, run: Run, channel: str, version: TemplateVersion, slot: CapSlot) -> Outcome | None:
    """Hand the message to the channel's providers. Another channel's nudge is recorded in
    flight first; an in-app one is written with its status in one transaction."""
    nudge = run.nudge
    recipient = recipient_for(end_user=nudge.end_user, channel=channel)
    message = composer.message_for(
        nudge=nudge,
        channel=channel,
        draft=attempts.draft_of(nudge),
        recipient=recipient,
        nudge_settings=run.nudge_settings,
        end_user=nudge.end_user,
        purpose=nudge.trigger.purpose,
        status_callback_url=webhooks.twilio_status_callback_url(workspace=nudge.trigger.workspace)
        if channel == "sms"
        else "",
    )
    workspace = nudge.trigger.workspace
    started = time.monotonic()
    if channel == Channel.IN_APP:
        try:
            with transaction.atomic():
                sent = delivery.deliver(
                    workspace=workspace, channel=channel, message=message, recipient=recipient
                )
                outcome = attempts.record_sent(nudge=nudge, sent=sent, version=version, started=started)
        except Exception as error:
            return _undelivered(run=run, channel=channel, error=error, maybe_sent=False)
        slot.keep()
        return _observed(nudge, outcome)
    message = replace(message, idempotency_key=attempts.record_in_flight(nudge=nudge, channel=channel))
    try:
        sent = delivery.deliver(workspace=workspace, channel=channel, message=message, recipient=recipient)
    except Exception as error:
        outcome = _undelivered(run=run, channel=channel, error=error, maybe_sent=True)
        if outcome is not None and outcome.status == Status.IN_DOUBT:
            slot.keep()
        return outcome
    slot.keep()
    return _observed(nudge, attempts.record_sent(nudge=nudge, sent=sent, version=version, started=started))


def _observed(nudge: Nudge, outcome: Outcome) -> Outcome:
    LATENCY.labels(channel=nudge.channel, personalised=str(nudge.personalised).lower()).observe(
        max((timezone.now() - nudge.created_at).total_seconds(), 0)
    )
    return outcome


def _undelivered(*, run: Run, channel: str, error: Exception, maybe_sent: bool) -> Outcome | None:
    """What a failed send does to the nudge; None to try the next channel. An error that is no
    provider's answer (a bug) may have come after the provider took the message: in doubt."""
    nudge, now = run.nudge, run.now
    if isinstance(error, gateway_base.NoAddress):
        note(nudge, "delivery", f"{channel}: {error.reason}")
        return None
    if isinstance(error, gateway_base.RateLimited):
        wait = timedelta(seconds=error.retry_after) if error.retry_after else None
        until = now + wait if wait else _backoff(nudge.attempts, now)
        return _retry_or_fail(nudge, until, f"{channel}: rate limited ({error.reason})")
    if isinstance(error, gateway_base.AnswerLost) and maybe_sent:
        return attempts.in_doubt(nudge, f"{channel}: {error.reason}: it may have been accepted")
    if isinstance(error, gateway_base.ProviderUnavailable):
        return _retry_or_fail(nudge, _backoff(nudge.attempts, now), f"{channel}: {error.reason}")
    if isinstance(error, gateway_base.GatewayError):  # Rejected, no provider, region
        return _fail(nudge, f"{channel}: {error.reason}")
    logger.exception("nudge.delivery_error", extra={"nudge_id": nudge.pk}, exc_info=error)
    why = f"{channel}: unexpected error ({type(error).__name__})"
    if maybe_sent:
        return attempts.in_doubt(nudge, why)
    return _fail(nudge, why)


def _retry_or_fail(nudge: Nudge, until: datetime, why: str) -> Outcome:
    nudge.last_error = why[:500]
    if nudge.attempts >= MAX_ATTEMPTS:
        return _fail(nudge, f"{why}; gave up after {nudge.attempts} attempts")
    return _defer(nudge, until, f"attempt {nudge.attempts} failed ({why}); retry at {until.isoformat()}")


def _fail(nudge: Nudge, why: str) -> Outcome:
    note(nudge, "failed", why)
    services.nudge_status_advance(
        nudge=nudge,
        status=Status.FAILED,
        source="pipeline",
        fields={
            "last_error": why[:500],
            "trace": nudge.trace,
            "claimed_until": None,
            "lease_token": "",
            **attempts.content(nudge),
        },
    )
    logger.warning("nudge.failed", extra={"nudge_id": nudge.pk, "attempts": nudge.attempts})
    return Outcome(Status.FAILED, why)
