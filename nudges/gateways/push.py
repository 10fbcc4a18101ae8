"""Web push through pywebpush with VAPID, to each of the recipient's browser subscriptions.

Each subscription's endpoint is its push service (FCM, Mozilla autopush, Apple...), so there is
no provider base URL: the ChannelProvider holds the VAPID key pair (the private key in the
WorkspaceSecret, PEM or base64url; settings.vapid_subject, a mailto: or https: URL) and
optionally ttl (seconds, default a day) and urgency.

The payload is {title, body, url, nudge_id}, without url when the nudge has no call to action,
encrypted for the subscription (aes128gcm). A 404 or 410 means the subscription is gone: it is
marked revoked and the others are still tried.
The Topic header is derived from the idempotency key, so a push service holding an undelivered
copy of the same nudge replaces it instead of showing it twice.
"""

import base64
import hashlib
import json
import uuid
from datetime import datetime

import requests
from django.utils import timezone
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from nudges.gateways import common
from nudges.gateways.base import (
    GatewayError,
    Message,
    NoAddress,
    ProviderUnavailable,
    PushTarget,
    RateLimited,
    Recipient,
    Rejected,
    SendResult,
)
from nudges.models import ChannelProvider, PushSubscription

DEFAULT_TTL_SECONDS = 24 * 60 * 60
GONE = (404, 410)


def push_subscription_revoke(*, workspace_id: int, subscription_id: int, at: datetime | None = None) -> bool:
    """Mark a subscription the push service says is gone; False when it was already revoked."""
    return bool(
        PushSubscription.objects.filter(
            pk=subscription_id, workspace_id=workspace_id, revoked_at__isnull=True
        ).update(revoked_at=at or timezone.now())
    )


def topic_for(idempotency_key: str) -> str:
    """At most 32 characters of the URL-safe base64 alphabet, as RFC 8030 asks of a Topic."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


class WebPushGateway:
    # The Topic header only replaces a message the push service still holds, undelivered
    # (RFC 8030 section 5.4): a copy sent after delivery is shown again. Not idempotent.
    idempotent = False
    channel = "push"

    def send(self, *, provider: ChannelProvider, message: Message, recipient: Recipient) -> SendResult:
        if not recipient.push_targets:
            raise NoAddress("the recipient has no push subscription")
        message = common.personalised(message, recipient)
        vapid = _vapid(provider)
        subject = common.required_setting(provider, "vapid_subject")
        content = {"title": message.subject, "body": message.body, "url": message.cta_url}
        if not message.cta_url:
            del content["url"]  # no call to action: the service worker opens nothing, not ""
        payload = json.dumps({**content, "nudge_id": message.nudge_id})
        headers = {
            "Topic": topic_for(message.idempotency_key),
            "Urgency": common.setting(provider, "urgency", "normal"),
        }
        ttl = int(common.setting(provider, "ttl", DEFAULT_TTL_SECONDS))
        locations: list[str] = []
        gone: list[int] = []
        failures: list[GatewayError] = []
        for target in recipient.push_targets:
            try:
                response = webpush(
                    subscription_info=_subscription_info(target),
                    data=payload,
                    vapid_private_key=vapid,
                    vapid_claims={"sub": subject},  # pywebpush adds aud and exp to this dict
                    ttl=ttl,
                    headers=headers,
                    timeout=common.timeout_seconds(),
                )
            except WebPushException as error:
                if error.status_code in GONE:
                    push_subscription_revoke(
                        workspace_id=message.workspace_id, subscription_id=target.subscription_id
                    )
                    gone.append(target.subscription_id)
                    continue
                failures.append(_failure(provider, error, recipient))
            except requests.RequestException as error:
                failures.append(
                    ProviderUnavailable(
                        f"{common.label(provider)}: the push service could not be reached "
                        f"({type(error).__name__})"
                    )
                )
            except (ValueError, TypeError):
                failures.append(Rejected(f"{common.label(provider)}: the subscription's keys are not valid"))
            else:
                locations.append(response.headers.get("Location", ""))
        detail = {"delivered": len(locations), "gone": len(gone), "failed": len(failures)}
        if locations:
            location = locations[0]
            message_id = location if location and len(location) <= 255 else f"webpush-{uuid.uuid4().hex}"
            return SendResult(provider_message_id=message_id, detail=detail)
        raise _outcome(failures, gone)


def _vapid(provider: ChannelProvider) -> Vapid:
    key = common.provider_secret(provider=provider).strip()
    try:
        return Vapid.from_pem(key.encode()) if "-----BEGIN" in key else Vapid.from_string(key)
    except Exception as error:
        raise ProviderUnavailable(
            f"{common.label(provider)}: the VAPID private key cannot be read ({type(error).__name__})"
        ) from None


def _subscription_info(target: PushTarget) -> dict:
    return {"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}}


def _failure(provider: ChannelProvider, error: WebPushException, recipient: Recipient) -> GatewayError:
    response = error.response
    if response is None:
        return Rejected(f"{common.label(provider)}: the subscription cannot be used ({error.message[:80]})")
    return common.error_for_status(
        provider=provider,
        status_code=error.status_code,
        detail=common.safe_text(getattr(response, "text", ""), recipient),
        headers=getattr(response, "headers", None),
    )


def _outcome(failures: list[GatewayError], gone: list[int]) -> GatewayError:
    """Why no subscription took the nudge: a rate limit or an outage first (the next attempt
    may succeed), then all gone (try the user's next channel), else the push service's refusal."""
    limited = [failure for failure in failures if isinstance(failure, RateLimited)]
    if limited:
        waits = [failure.retry_after for failure in limited if failure.retry_after is not None]
        return RateLimited(limited[0].reason, retry_after=min(waits) if waits else None)
    for failure in failures:
        if isinstance(failure, ProviderUnavailable):
            return failure
    if not failures:
        return NoAddress(f"every push subscription of the recipient is gone ({len(gone)} revoked)")
    return failures[0]
