"""The channel gateways, one module each, registered here by provider code.

`gateway_for("twilio")` gives the gateway that sends through that kind of ChannelProvider;
`idempotent_resend("twilio")` says whether that provider drops a second request carrying the
same idempotency key (a gateway's `idempotent`), so that an attempt whose answer was lost may be
sent again (nudges.delivery.attempts).
Modules are imported on first use, so a worker that never sends push never loads pywebpush.
"""

import functools

from django.utils.module_loading import import_string

from nudges.gateways.base import Gateway

GATEWAYS = {
    "sendgrid": "nudges.gateways.email.EmailGateway",
    "mailgun": "nudges.gateways.email.EmailGateway",
    "amazon_ses": "nudges.gateways.email.EmailGateway",
    "smtp": "nudges.gateways.email.EmailGateway",
    "twilio": "nudges.gateways.sms.TwilioGateway",
    "webpush": "nudges.gateways.push.WebPushGateway",
    "in_app": "nudges.gateways.in_app.InAppGateway",
    "intercom": "nudges.gateways.intercom.IntercomGateway",
}


@functools.cache
def _gateway(path: str) -> Gateway:
    return import_string(path)()


def gateway_for(provider_code: str) -> Gateway:
    """The gateway of a ChannelProvider.provider code; LookupError for an unknown code."""
    try:
        path = GATEWAYS[provider_code]
    except KeyError:
        raise LookupError(f"no gateway is registered for provider {provider_code!r}") from None
    return _gateway(path)


def idempotent_resend(provider_code: str) -> bool:
    """Whether the provider deduplicates sends by the message's idempotency key: False unless its
    gateway says so (a provider that does not document it must be assumed to send twice)."""
    return bool(getattr(gateway_for(provider_code), "idempotent", False))
