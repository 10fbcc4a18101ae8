"""Telling operators about a new alert: email (Django's email backend, from SERVER_EMAIL, to
ANALYTICS_ALERT_EMAILS) and a Slack-compatible incoming webhook (ANALYTICS_ALERT_WEBHOOK_URL,
POST {"text": ...}).

The text names the workspace (slug), path, version, step and numbers: no end user, no trait, so
no personal data. Each configured channel's outcome is returned for the alert's row; a channel
that fails is recorded, never raised, and the other channel is still tried. The webhook URL is a
secret (it alone lets anyone post): it is never logged nor recorded.
"""

import logging
from collections.abc import Callable, Iterable

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from analytics.models import Alert

logger = logging.getLogger(__name__)

DETAIL_CHARS = 200
WEBHOOK_TIMEOUT_SECONDS = 5.0


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def alert_subject(alert: Alert) -> str:
    what = f"drop-off at step {alert.step_key}" if alert.step_key else "activation rate"
    path = alert.path_version.path
    return (
        f"[{alert.workspace.slug}] Anomaly: {what} of {path.key} v{alert.path_version.number} on {alert.day}"
    )


def alert_text(alert: Alert) -> str:
    """One paragraph a person can act on, the same for every channel."""
    direction = "rose" if alert.metric == Alert.Metric.DROP_OFF_RATE_BY_STEP else "fell"
    link = f"{settings.PUBLIC_BASE_URL}/admin/analytics/alert/{alert.pk}/change/"
    return (
        f"{alert_subject(alert)}: {direction} to {_percent(alert.value)} "
        f"({alert.numerator} of {alert.denominator} enrollments) against a median of "
        f"{_percent(alert.baseline_median)} over {alert.baseline_days} days "
        f"(MAD {alert.baseline_mad * 100:.1f} points, score {alert.score:.1f}). {link}"
    )


def _outcome(outcome: str, detail: str = "") -> dict:
    return {"outcome": outcome, "detail": detail[:DETAIL_CHARS], "at": timezone.now().isoformat()}


def send_email(alert: Alert) -> dict:
    try:
        send_mail(
            alert_subject(alert),
            alert_text(alert),
            settings.SERVER_EMAIL,
            list(settings.ANALYTICS_ALERT_EMAILS),
            fail_silently=False,
        )
    except Exception as error:  # any backend failure: recorded on the alert, not raised
        return _outcome("failed", type(error).__name__)
    return _outcome("sent", f"{len(settings.ANALYTICS_ALERT_EMAILS)} recipient(s)")


def post_webhook(alert: Alert) -> dict:
    """Slack answers 200 "ok"; its errors are 4xx/5xx with a short text ("invalid_payload",
    "no_service"), kept as the failure's detail."""
    try:
        response = httpx.post(
            settings.ANALYTICS_ALERT_WEBHOOK_URL,
            json={"text": alert_text(alert)},
            timeout=WEBHOOK_TIMEOUT_SECONDS,
        )
    except Exception as error:  # unreachable, timed out, or a malformed URL setting: recorded, not raised
        return _outcome("failed", type(error).__name__)
    if response.is_success:
        return _outcome("sent", f"{response.status_code} {response.text.strip()}")
    return _outcome("failed", f"{response.status_code} {response.text.strip()}")


CHANNELS: dict[str, tuple[str, Callable[[Alert], dict]]] = {
    "email": ("ANALYTICS_ALERT_EMAILS", send_email),
    "webhook": ("ANALYTICS_ALERT_WEBHOOK_URL", post_webhook),
}


def notify(alert: Alert, *, channels: Iterable[str] | None = None) -> dict[str, dict]:
    """{channel: outcome} for every configured channel (an unset setting is no channel), or for
    those of `channels` only."""
    outcomes = {}
    for channel, (setting, send) in CHANNELS.items():
        if not getattr(settings, setting) or (channels is not None and channel not in channels):
            continue
        outcomes[channel] = send(alert)
        if outcomes[channel]["outcome"] != "sent":
            logger.warning(
                "analytics.alerts.notify_failed",
                extra={"alert_id": alert.pk, "channel": channel, "detail": outcomes[channel]["detail"]},
            )
    return outcomes
