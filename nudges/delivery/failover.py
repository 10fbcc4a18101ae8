"""Delivery: one rendered message, through the workspace's providers for a channel, with
failover and the circuit breaker. Retries over time are the caller's (the pipeline's backoff).

    deliver(*, workspace, channel, message, recipient) -> Delivery

Providers are taken in priority order, active ones only, and never one outside the workspace's
data region (skipped, with the reason in the attempts). Breakers that are open are skipped; a
half-open one gets its single trial. Then, on the first provider tried:

- sent: the breaker closes, the Delivery says by whom and after what;
- ProviderUnavailable: counted by the breaker; when that opened it (the third failure in a
  row) the backup is tried in the same call, otherwise the error is raised so the caller
  retries later with backoff;
- RateLimited: the next provider is tried; when every one is limited, RateLimited with the
  shortest wait;
- Rejected, NoAddress: raised at once, never failed over (another provider would refuse the
  message too, or there is no address to send to).

Every error raised from here carries `attempts`, the same records as `Delivery.attempts`, for
the nudge's trace.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from guardrails.models import Channel
from guardrails.regions import RegionBlocked, workspace_region
from nudges.gateways import gateway_for, in_app
from nudges.gateways.base import (
    AnswerLost,
    GatewayError,
    Message,
    NoAddress,
    ProviderUnavailable,
    RateLimited,
    Recipient,
    Rejected,
    SendResult,
)
from nudges.gateways.breaker import (
    State,
    breaker_allows,
    breaker_record_failure,
    breaker_record_success,
    breaker_state,
)
from nudges.models import ChannelProvider
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


class NoProvider(GatewayError):
    """The workspace has no active provider for the channel."""


class ProviderRegionBlocked(RegionBlocked, GatewayError):
    """Every provider of the channel is outside the workspace's data region: a RegionBlocked
    (guardrails.regions) that callers handling GatewayError see too."""


@dataclass
class Delivery:
    provider: ChannelProvider
    result: SendResult
    attempts: list[dict] = field(default_factory=list)


def attempt_record(
    provider: ChannelProvider, outcome: str, reason: str = "", *, started: float | None = None
) -> dict:
    """One line of the trace: {provider_id, provider, priority, outcome, reason, duration_ms}."""
    duration = round((time.monotonic() - started) * 1000, 1) if started is not None else 0.0
    return {
        "provider_id": provider.pk,
        "provider": provider.provider,
        "priority": provider.priority,
        "outcome": outcome,
        "reason": reason,
        "duration_ms": duration,
    }


def providers_for(*, workspace: Workspace, channel: str) -> list[ChannelProvider]:
    """The workspace's active providers of the channel, in priority order; in-app is built in
    (nudges.gateways.in_app.builtin_provider), so it needs no row configured."""
    providers = list(
        ChannelProvider.objects.filter(workspace=workspace, channel=channel, is_active=True)
        .select_related("workspace")
        .order_by("priority", "pk")
    )
    if not providers and channel == Channel.IN_APP:
        builtin = in_app.builtin_provider(workspace=workspace)
        providers = [builtin] if builtin is not None else []
    return providers


def deliver(
    *,
    workspace: Workspace,
    channel: str,
    message: Message,
    recipient: Recipient,
    now: datetime | None = None,
) -> Delivery:
    """Send `message` to `recipient` on `channel`; see the module's docstring for the rules."""
    now = now or timezone.now()
    attempts: list[dict] = []
    candidates = _candidates(workspace=workspace, channel=channel, attempts=attempts, now=now)
    rate_limits: list[RateLimited] = []
    last_unavailable: ProviderUnavailable | None = None
    for provider in candidates:
        if not breaker_allows(provider=provider, now=now):
            attempts.append(
                attempt_record(provider, "skipped", "another worker is trying it after its cool-down")
            )
            continue
        started = time.monotonic()
        try:
            result = gateway_for(provider.provider).send(
                provider=provider, message=message, recipient=recipient
            )
        except ProviderUnavailable as error:
            attempts.append(attempt_record(provider, "unavailable", error.reason, started=started))
            _log(message, attempts[-1])
            opened = breaker_record_failure(provider=provider, reason=error.reason, now=now)
            if not opened or isinstance(error, AnswerLost):  # it may have the message: no backup
                raise _with_attempts(error, attempts) from None
            last_unavailable = error
            continue
        except RateLimited as error:
            attempts.append(attempt_record(provider, "rate_limited", error.reason, started=started))
            _log(message, attempts[-1])
            rate_limits.append(error)
            continue
        except Rejected as error:
            attempts.append(attempt_record(provider, "rejected", error.reason, started=started))
            _log(message, attempts[-1])
            breaker_record_success(provider=provider)  # it answered: it is up
            raise _with_attempts(error, attempts) from None
        except NoAddress as error:
            attempts.append(attempt_record(provider, "no_address", error.reason, started=started))
            _log(message, attempts[-1])
            raise _with_attempts(error, attempts) from None
        attempts.append(attempt_record(provider, "sent", started=started))
        _log(message, attempts[-1])
        breaker_record_success(provider=provider)
        return Delivery(provider=provider, result=result, attempts=attempts)
    raise _with_attempts(_exhausted(channel, rate_limits, last_unavailable), attempts)


def _candidates(
    *, workspace: Workspace, channel: str, attempts: list[dict], now: datetime
) -> list[ChannelProvider]:
    """The providers worth trying, in priority order: in the workspace's region, breaker closed
    or half-open (a half-open primary must get its trial, or it would never come back). The
    others are recorded as skipped, with why."""
    providers = providers_for(workspace=workspace, channel=channel)
    if not providers:
        raise _with_attempts(NoProvider(f"no {channel} provider is configured for this workspace"), attempts)
    region = workspace_region(workspace=workspace)
    in_region = []
    for provider in providers:
        if provider.region != region:
            attempts.append(
                attempt_record(
                    provider,
                    "skipped",
                    f"its region '{provider.region}' is not the workspace's data region '{region}'",
                )
            )
        else:
            in_region.append(provider)
    if not in_region:
        reason = (
            f"blocked: no {channel} provider is in the workspace's data region '{region}' "
            f"({len(providers)} configured elsewhere); user data is never sent to another region"
        )
        logger.warning(
            "nudge.delivery.region_blocked",
            extra={"workspace_id": workspace.pk, "channel": channel, "region": region},
        )
        raise _with_attempts(ProviderRegionBlocked(reason, service=channel, region=region), attempts)
    candidates = []
    for provider in in_region:
        if breaker_state(provider, now=now) == State.OPEN:
            attempts.append(
                attempt_record(provider, "skipped", f"circuit open until {provider.open_until.isoformat()}")
            )
        else:
            candidates.append(provider)
    return candidates


def _exhausted(
    channel: str, rate_limits: list[RateLimited], last_unavailable: ProviderUnavailable | None
) -> GatewayError:
    if rate_limits:
        waits = [error.retry_after for error in rate_limits if error.retry_after is not None]
        wait = min(waits) if waits else None
        reason = f"every {channel} provider is rate limited" + (f" (retry in {wait:g} s)" if wait else "")
        return RateLimited(reason, retry_after=wait)
    if last_unavailable is not None:
        return ProviderUnavailable(
            f"every {channel} provider is unavailable (last: {last_unavailable.reason})",
            status_code=last_unavailable.status_code,
        )
    return ProviderUnavailable(
        f"no {channel} provider can be tried now: their circuits are open (cool-down); retry later"
    )


def _with_attempts(error: GatewayError, attempts: list[dict]) -> GatewayError:
    error.attempts = list(attempts)
    return error


def _log(message: Message, attempt: dict) -> None:
    logger.info(
        "nudge.delivery.attempt",
        extra={
            "nudge_id": message.nudge_id,
            "workspace_id": message.workspace_id,
            "channel": message.channel,
            **attempt,
        },
    )
