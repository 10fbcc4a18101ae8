"""The nudge pipeline: one queued nudge from its trigger to the provider, and why at each step.

    trigger -> claim -> for each of the trigger's channels, in order:
        policy (consent, cap, quiet hours, snooze, suppression, abuse; guardrails.policy)
        -> template and variant (cold-start rule, else Thompson sampling)
        -> context (features, progress, recent events; never contact data)
        -> personalisation (LLM behind redaction and validation; the static template on failure)
        -> send time -> gateway (retries, backoff, failover: nudges.delivery) -> status

The first channel that is allowed, has a template and reaches the user is used; every step adds
a line to the nudge's trace. A nudge is claimed with a conditional UPDATE on its attempt count,
so two workers never process it at once, and only queued or due deferred nudges are processed:
running the job twice sends once.

Failures: quiet hours or a snooze ending within MAX_DEFER defer the nudge to then; a provider
that is down or rate limited defers it with exponential backoff and jitter (BACKOFF_SECONDS),
and after MAX_ATTEMPTS it fails into the dead-letter list; a provider's refusal fails it at
once. Deferred nudges are picked up by `process_due` (every minute, nudges.cron / run_triggers).
"""

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from cachetools import TTLCache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from prometheus_client import Histogram

from config.jobs import enqueue
from guardrails import policy
from guardrails.localtime import zone_named
from nudges import composer, personalize, sendtime, services, webhooks
from nudges.context import context_for_nudge
from nudges.gateways import base as gateway_base
from nudges.gateways.recipients import recipient_for
from nudges.models import Nudge, NudgeSettings
from paths import rules

logger = logging.getLogger(__name__)

Status = Nudge.Status
MAX_ATTEMPTS = 4  # a first try and three retries
BACKOFF_SECONDS = (60, 240, 960)  # before retries 1, 2, 3; each with up to +50% jitter
MAX_DEFER = timedelta(hours=24)
DEFERRABLE = {"quiet_hours", "snoozed"}
STALE_QUEUED = timedelta(minutes=10)
LEASE = timedelta(minutes=5)  # longer than the slowest run: LLM and provider timeouts and retries
PIPELINE_BATCH = 20  # nudges per job (nudges.triggers)  # a queued nudge whose job was lost is sent again

# The seeds' metric: from the trigger firing to the provider accepting the nudge.
LATENCY = Histogram(
    "ai_onboarding_latency_seconds",
    "Seconds from a trigger firing to the provider accepting the nudge.",
    ["channel", "personalised"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


@dataclass
class Outcome:
    status: str
    detail: str = ""


def _claim(nudge_id: int, now: datetime) -> Nudge | None:
    """The nudge, leased to this worker for LEASE, when it is due and no other worker holds it.

    One conditional UPDATE takes the lease: of workers racing for a nudge exactly one wins, and
    one that comes later finds it leased (or no longer queued). A worker that dies leaves a
    lease that runs out, and the due scan sends the nudge on.
    """
    due = (
        Q(status=Status.QUEUED)
        | Q(status=Status.DEFERRED, send_after__lte=now)
        | Q(status=Status.DEFERRED, send_after__isnull=True)
    )
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    claimed = Nudge.objects.filter(due & free, pk=nudge_id).update(
        claimed_until=now + LEASE, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    nudge = Nudge.objects.select_related(
        "trigger__workspace", "end_user", "enrollment__path_version__path"
    ).get(pk=nudge_id)
    if nudge.enrollment is not None:
        nudge.enrollment.end_user = nudge.end_user  # the same person: no second read
    return nudge


def _note(nudge: Nudge, stage: str, message: str) -> None:
    """Add a line to the nudge's trace in memory: it is saved with the nudge's next status, in
    the same UPDATE (a nudge's run writes its row a couple of times, not once per line)."""
    nudge.trace = [*nudge.trace, services.trace_line(stage, message)]


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
    _note(nudge, "deferred", why)
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
            **_content(nudge),
        },
    )
    return Outcome(Status.DEFERRED, why)


CONTENT_FIELDS = (
    "channel",
    "template_version",
    "subject",
    "body",
    "cta_text",
    "cta_url",
    "ui_component",
    "personalised",
    "llm_call_id",
)


def _content(nudge: Nudge) -> dict:
    """What the nudge says (set once a template was chosen), saved with its status."""
    return {name: getattr(nudge, name) for name in CONTENT_FIELDS}


def _backoff(attempts: int, now: datetime) -> datetime:
    base = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
    return now + timedelta(seconds=base * (1 + random.random() / 2))  # jitter


def _allowed_links(nudge: Nudge) -> list[str]:
    if nudge.enrollment is None:
        return []
    compiled = rules.compiled_version(nudge.enrollment.path_version)
    return [step.deep_link for step in compiled.steps if step.deep_link]


def nudge_process(*, nudge_id: int, now: datetime | None = None) -> Outcome | None:
    """Take one nudge through the pipeline; None when it is not due or another worker has it."""
    now = now or timezone.now()
    nudge = _claim(nudge_id, now)
    if nudge is None:
        return None
    trigger, end_user = nudge.trigger, nudge.end_user
    nudge_settings = _settings(nudge.workspace_id)
    context = context_for_nudge(nudge)
    cold_start = context.event_count < composer.COLD_START_EVENTS
    deferrals: list[tuple[datetime, str]] = []
    for channel in trigger.channels or []:
        decision = policy.check(policy.NUDGE_SEND, end_user, {"channel": channel, "purpose": trigger.purpose})
        if not decision.allowed:
            until = _deferral(decision, now)
            if until is not None:
                deferrals.append((until, f"{channel}: {_reasons(decision)}"))
            _note(nudge, "policy", f"{channel} denied: {_reasons(decision)}")
            continue
        outcome = _try_channel(nudge, channel, decision, context, nudge_settings, cold_start, now)
        if outcome is not None:
            return outcome
    if deferrals:
        until, why = min(deferrals)
        return _defer(nudge, until, f"held until {until.isoformat()} ({why})")
    _note(nudge, "suppressed", "no channel could send it (see above)")
    services.nudge_status_advance(
        nudge=nudge,
        status=Status.SUPPRESSED,
        source="pipeline",
        fields={"trace": nudge.trace, "claimed_until": None},
    )
    return Outcome(Status.SUPPRESSED)


def _try_channel(nudge, channel, decision, context, nudge_settings, cold_start, now) -> Outcome | None:
    """Send on this channel; None to go on to the next one (the cap slot is given back)."""
    from nudges import delivery

    trigger, end_user = nudge.trigger, nudge.end_user
    template = composer.template_for(trigger=trigger, channel=channel, end_user=end_user)
    choice = composer.choose_version(template=template, cold_start=cold_start) if template else None
    if choice is None:
        policy.release(decision)
        _note(nudge, "template", f"{channel}: no active template fits")
        return None
    _note(nudge, "template", f"{template.name}: {choice.explanation}")
    draft = composer.draft_for(version=choice.version, variables=context.variables, channel=channel)
    if cold_start:
        result = personalize.Personalisation(draft=draft, personalised=False, fallback_reason="cold_start")
    else:
        result = personalize.personalise(
            nudge=nudge,
            template_version=choice.version,
            draft=draft,
            context=context,
            allowed_links=_allowed_links(nudge),
            channel=channel,
        )
    _note(
        nudge,
        "personalisation",
        "personalised by the LLM" if result.personalised else f"static template ({result.fallback_reason})",
    )
    content = {
        "channel": channel,
        "template_version": choice.version,
        "subject": result.draft.subject,
        "body": result.draft.body,
        "cta_text": result.draft.cta_text,
        "cta_url": result.draft.cta_url,
        "ui_component": result.draft.ui_component,
        "personalised": result.personalised,
        "llm_call_id": result.llm_call_id,
    }
    for name, value in content.items():
        setattr(nudge, name, value)
    if (
        nudge_settings.send_at_active_hour
        and channel in ("email", "sms", "push")
        and nudge.send_after is None
    ):
        zone = zone_named(end_user.timezone or "UTC")
        when, why = sendtime.send_at(end_user=end_user, zone=zone, now=now)
        if when is not None:
            policy.release(decision)
            return _defer(nudge, when, why)
        _note(nudge, "send_time", why)
    recipient = recipient_for(end_user=end_user, channel=channel)
    message = composer.message_for(
        nudge=nudge,
        channel=channel,
        draft=result.draft,
        recipient=recipient,
        nudge_settings=nudge_settings,
        end_user=end_user,
        purpose=trigger.purpose,
        status_callback_url=webhooks.twilio_status_callback_url(workspace=trigger.workspace)
        if channel == "sms"
        else "",
    )
    started = time.monotonic()
    try:
        sent = delivery.deliver(
            workspace=trigger.workspace, channel=channel, message=message, recipient=recipient
        )
    except gateway_base.NoAddress as error:
        policy.release(decision)
        _note(nudge, "delivery", f"{channel}: {error.reason}")
        return None
    except gateway_base.RateLimited as error:
        policy.release(decision)
        wait = timedelta(seconds=error.retry_after) if error.retry_after else None
        until = now + wait if wait else _backoff(nudge.attempts, now)
        return _retry_or_fail(nudge, until, f"{channel}: rate limited ({error.reason})")
    except gateway_base.ProviderUnavailable as error:
        policy.release(decision)
        return _retry_or_fail(nudge, _backoff(nudge.attempts, now), f"{channel}: {error.reason}")
    except gateway_base.GatewayError as error:  # Rejected, no provider, region
        policy.release(decision)
        return _fail(nudge, f"{channel}: {error.reason}")
    except Exception as error:  # a bug must not lose the nudge: dead letter, with the error type
        policy.release(decision)
        logger.exception("nudge.delivery_error", extra={"nudge_id": nudge.pk})
        return _fail(nudge, f"{channel}: unexpected error ({type(error).__name__})")
    return _sent(nudge, channel, sent, choice.version, started)


def _sent(nudge: Nudge, channel: str, sent, version, started: float) -> Outcome:
    attempts = "; ".join(
        f"{attempt.get('provider')}: {attempt.get('outcome')}" for attempt in getattr(sent, "attempts", [])
    )
    elapsed_ms = 1000 * (time.monotonic() - started)
    _note(
        nudge,
        "delivery",
        f"sent by {sent.provider.get_provider_display()} in {elapsed_ms:.0f} ms"
        + (f" ({attempts})" if attempts else ""),
    )
    with transaction.atomic():
        services.nudge_status_advance(
            nudge=nudge,
            status=Status.SENT,
            source="pipeline",
            detail=sent.result.detail,
            fields={
                "provider": sent.provider,
                "provider_message_id": sent.result.provider_message_id,
                "send_after": None,
                "last_error": "",
                "trace": nudge.trace,
                "claimed_until": None,
                **_content(nudge),
            },
        )
        services.template_version_sent(template_version=version)
        if channel == "in_app":
            services.nudge_status_advance(nudge=nudge, status=Status.DELIVERED, source="in_app")
    LATENCY.labels(channel=channel, personalised=str(nudge.personalised).lower()).observe(
        max((timezone.now() - nudge.created_at).total_seconds(), 0)
    )
    return Outcome(Status.SENT)


def _retry_or_fail(nudge: Nudge, until: datetime, why: str) -> Outcome:
    nudge.last_error = why[:500]
    if nudge.attempts >= MAX_ATTEMPTS:
        return _fail(nudge, f"{why}; gave up after {nudge.attempts} attempts")
    return _defer(nudge, until, f"attempt {nudge.attempts} failed ({why}); retry at {until.isoformat()}")


def _fail(nudge: Nudge, why: str) -> Outcome:
    _note(nudge, "failed", why)
    services.nudge_status_advance(
        nudge=nudge,
        status=Status.FAILED,
        source="pipeline",
        fields={"last_error": why[:500], "trace": nudge.trace, "claimed_until": None, **_content(nudge)},
    )
    logger.warning("nudge.failed", extra={"nudge_id": nudge.pk, "attempts": nudge.attempts})
    return Outcome(Status.FAILED, why)


def process_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Send the deferred nudges whose time has come, and queued ones whose job was lost."""
    from nudges.jobs import nudges_process_job

    now = now or timezone.now()
    due = list(
        Nudge.objects.filter(status=Status.DEFERRED, send_after__lte=now)
        .order_by("send_after")
        .values_list("pk", flat=True)[:limit]
    )
    due += list(
        Nudge.objects.filter(status=Status.QUEUED, created_at__lte=now - STALE_QUEUED)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for start in range(0, len(due), PIPELINE_BATCH):
        enqueue(nudges_process_job, due[start : start + PIPELINE_BATCH], job_options={"result_ttl": 0})
    return len(due)
