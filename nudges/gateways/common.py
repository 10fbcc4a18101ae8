"""What every gateway shares: credentials, base URLs, the contact variables, and one reading of
a provider's HTTP answer (429, 5xx, 4xx) as the gateway errors of nudges.gateways.base.

Provider answers often quote the address they refused ("The 'To' number +1415... is not valid"),
so their text enters a reason only through `safe_text`, which removes the recipient's contact
data and any other PII first.
"""

import dataclasses
import html
import logging
import os
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx
from django.conf import settings

from guardrails.pii import detector as pii
from guardrails.secrets.selectors import workspace_secret_get
from nudges.content.rendering import contact_values, render
from nudges.gateways.base import (
    AnswerLost,
    GatewayError,
    Message,
    ProviderUnavailable,
    RateLimited,
    Recipient,
    Rejected,
)
from nudges.models import ChannelProvider

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
# A provider's own answer, as quoted in a reason, is cut to this many characters.
QUOTE_LIMIT = 160


def timeout_seconds() -> float:
    """How long one provider call may take: short, because RQ retries and the breaker fails over."""
    return float(getattr(settings, "NUDGE_PROVIDER_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def label(provider: ChannelProvider) -> str:
    return provider.get_provider_display()


def provider_secret(*, provider: ChannelProvider, required: bool = True) -> str:
    """The provider's key from WorkspaceSecret. A missing key is the provider's fault, not the
    message's: ProviderUnavailable, so the breaker counts it and the backup takes over."""
    value = ""
    if provider.secret_name:
        value = workspace_secret_get(workspace=provider.workspace, name=provider.secret_name) or ""
    if required and not value:
        raise ProviderUnavailable(
            f"{label(provider)}: its key (workspace secret '{provider.secret_name or '-'}') is not set"
        )
    return value


def setting(provider: ChannelProvider, name: str, default=None):
    """A provider setting; missing, null or blank is the default (0 and False are values)."""
    value = (provider.settings or {}).get(name)
    return default if value is None or value == "" else value


def required_setting(provider: ChannelProvider, name: str) -> str:
    value = setting(provider, name)
    if not value:
        raise ProviderUnavailable(f"{label(provider)}: the setting '{name}' is missing")
    return str(value)


def base_url(provider: ChannelProvider, defaults: Mapping[str, str]) -> str:
    """settings.api_url when given (tests, proxies), else the provider's documented endpoint for
    the region the provider row is in."""
    url = setting(provider, "api_url") or defaults.get(provider.region) or defaults["us"]
    return str(url).rstrip("/")


def personalised(message: Message, recipient: Recipient) -> Message:
    """Fill the contact variables ({{ first_name }}) for this one recipient: the last render,
    done here because only gateways see contact data (nudges.content.rendering)."""
    values = contact_values(
        first_name=recipient.first_name, last_name=recipient.last_name, name=recipient.name
    )
    escaped = {name: html.escape(value) for name, value in values.items()}
    return dataclasses.replace(
        message,
        subject=render(message.subject, values),
        body=render(message.body, values),
        cta_text=render(message.cta_text, values),
        html=render(message.html, escaped),
    )


def with_link(text: str, message: Message, *, separator: str = "\n\n") -> str:
    """The text with its call-to-action link, unless the text carries it already."""
    if not message.cta_url or message.cta_url in text:
        return text
    link = f"{message.cta_text}: {message.cta_url}" if message.cta_text else message.cta_url
    return f"{text}{separator}{link}" if text else link


def safe_text(text: object, recipient: Recipient | None) -> str:
    """A provider's words, fit for a reason: PII (the recipient's above all) replaced, cut short.
    When detection fails the words are dropped rather than risked."""
    words = " ".join(str(text or "").split())[: QUOTE_LIMIT * 2]
    if not words:
        return ""
    try:
        region = pii.region_from_locale(recipient.locale if recipient else "")
        words = str(pii.redact(words, contact=recipient, region=region).value)
    except Exception as error:
        logger.warning("nudge.gateway.redaction_failed", extra={"error_type": type(error).__name__})
        return ""
    return words if len(words) <= QUOTE_LIMIT else words[: QUOTE_LIMIT - 1] + "…"


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or X-RateLimit-Reset (a Unix
    time: SendGrid, Intercom); None when the provider did not say."""
    if not headers:
        return None
    now = time.time() if now is None else now
    lowered = {str(key).lower(): str(value) for key, value in headers.items()}
    if retry_after := lowered.get("retry-after", "").strip():
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - now)
            except (TypeError, ValueError):
                pass
    if reset := lowered.get("x-ratelimit-reset", "").strip():
        try:
            value = float(reset)
        except ValueError:
            return None
        # Some providers send seconds until the reset rather than the time of it.
        return max(0.0, value - now) if value > 10**9 else max(0.0, value)
    return None


def error_for_status(
    *,
    provider: ChannelProvider,
    status_code: int | None,
    detail: str = "",
    headers: Mapping[str, str] | None = None,
) -> GatewayError:
    """The gateway error for a provider's non-2xx answer. Refused credentials (401, 403) are the
    provider's problem, not the message's: they count towards the breaker like a 5xx, so a
    revoked key fails over to the backup instead of failing every nudge."""
    name = label(provider)
    said = f": {detail}" if detail else ""
    if status_code is None:
        return ProviderUnavailable(f"{name} did not answer{said}")
    if status_code < 400:
        return ProviderUnavailable(f"{name} gave an unexpected answer ({status_code})")
    if status_code == 429:
        wait = retry_after_seconds(headers)
        return RateLimited(f"{name} rate limited the send (429){said}", retry_after=wait)
    if status_code in (401, 403):
        return ProviderUnavailable(
            f"{name} refused the credentials ({status_code}){said}", status_code=status_code
        )
    if status_code >= 500 or status_code == 408:
        return ProviderUnavailable(f"{name} is unavailable ({status_code}){said}", status_code=status_code)
    return Rejected(f"{name} rejected the message ({status_code}){said}", status_code=status_code)


_clients: dict[int, httpx.Client] = {}


def http_client() -> httpx.Client:
    """One pooled client per process (RQ workers fork: a client is never shared across a fork)."""
    client = _clients.get(os.getpid())
    if client is None:
        client = _clients[os.getpid()] = httpx.Client(
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20)
        )
    return client


def http_post(*, provider: ChannelProvider, url: str, **request) -> httpx.Response:
    """POST with the short timeout; a timeout or connection error is ProviderUnavailable."""
    timeout = httpx.Timeout(timeout_seconds(), connect=min(3.0, timeout_seconds()))
    try:
        return http_client().post(url, timeout=timeout, **request)
    except httpx.ReadTimeout as error:
        raise AnswerLost(f"{label(provider)} did not answer in time ({type(error).__name__})") from error
    except httpx.TimeoutException as error:
        raise ProviderUnavailable(f"{label(provider)} timed out ({type(error).__name__})") from error
    except httpx.HTTPError as error:
        raise ProviderUnavailable(
            f"{label(provider)} could not be reached ({type(error).__name__})"
        ) from error


def json_or_empty(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
