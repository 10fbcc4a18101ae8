"""The one interface every channel gateway implements, and the errors it raises.

The pipeline (nudges.delivery.pipeline) hands a gateway a rendered `Message` and the `Recipient`'s
contact data (only gateways ever see it) for one `ChannelProvider`. The gateway sends it with the
provider's real client or documented HTTP API, passing `message.idempotency_key` through where
the provider supports one, and returns the provider's message id, or raises:

- `ProviderUnavailable`: timeout, connection error, 5xx. Retried with backoff; counts towards the
  provider's circuit breaker, after which the backup provider is used.
- `RateLimited`: 429 or the provider's own throttling; `retry_after` seconds when it said.
  The nudge is deferred to the next window (not a breaker failure).
- `Rejected`: the provider refused this message for good (4xx: invalid number, unknown user,
  bad request). Not retried, not failed over: the nudge fails with the provider's reason.
- `NoAddress`: the recipient has no address on this channel (no email, no push subscription):
  the pipeline tries the trigger's next channel.
"""

from dataclasses import dataclass, field
from typing import Protocol

from nudges.models import ChannelProvider


@dataclass(frozen=True)
class Message:
    nudge_id: int
    workspace_id: int
    idempotency_key: str
    channel: str
    subject: str
    body: str  # plain text, contact variables already filled
    cta_text: str
    cta_url: str  # the signed click-tracking link to the call to action (nudges.delivery.tracking)
    ui_component: str = ""  # in-app: tooltip, modal, sidebar_hint, none
    html: str = ""  # email: the HTML part (with the open pixel), when the gateway sends one
    headers: dict[str, str] = field(default_factory=dict)  # email: List-Unsubscribe ...
    status_callback_url: str = ""  # SMS: where the provider reports delivery (Twilio)


@dataclass(frozen=True)
class PushTarget:
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class Recipient:
    end_user_id: int
    external_id: str  # the product's user id (Intercom's user_id)
    email: str = ""
    phone: str = ""  # E.164
    first_name: str = ""
    last_name: str = ""
    name: str = ""
    locale: str = ""
    push_targets: tuple[PushTarget, ...] = ()


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    detail: dict = field(default_factory=dict)  # what to record in the status trail (no contact data)


class GatewayError(Exception):
    """A send that did not happen. `reason` is safe to store and show: it never holds contact data."""

    def __init__(self, reason: str, *, status_code: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class ProviderUnavailable(GatewayError):
    """Timeout, connection refused, 5xx: try again later, or the backup provider."""


class AnswerLost(ProviderUnavailable):
    """The request went out whole but no answer came back (a read timeout): the provider may have
    accepted it. Never retried nor failed over blindly: the send is in doubt (nudges.delivery.attempts)."""


class RateLimited(GatewayError):
    def __init__(self, reason: str, *, retry_after: float | None = None, status_code: int | None = 429):
        super().__init__(reason, status_code=status_code)
        self.retry_after = retry_after


class Rejected(GatewayError):
    """The provider refused this message for good (4xx other than 429)."""


class NoAddress(GatewayError):
    """The recipient cannot be reached on this channel."""


class Gateway(Protocol):
    channel: str
    # True only where the provider documents that it drops a second request with the same
    # idempotency key: then an attempt whose answer was lost is sent again (nudges.delivery.attempts).
    idempotent: bool

    def send(self, *, provider: ChannelProvider, message: Message, recipient: Recipient) -> SendResult: ...
