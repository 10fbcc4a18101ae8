"""SMS through Twilio's Messages API (documented REST, no SDK: one form POST).

POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json with To, From or
MessagingServiceSid, Body and StatusCallback, HTTP Basic auth (the account SID, or an API key
SID, and its secret). The answer's `sid` is the provider message id the status callback names.

Provider settings: account_sid, from_number or messaging_service_sid, optionally api_key_sid
(then the secret is that key's secret) and api_url. The secret is the auth token.
"""

from nudges.gateways import common
from nudges.gateways.base import Message, NoAddress, ProviderUnavailable, Recipient, SendResult
from nudges.models import ChannelProvider

DEFAULT_URLS = {"us": "https://api.twilio.com", "eu": "https://api.dublin.ie1.twilio.com"}

# Twilio error codes whose meaning we can say without quoting the (number-bearing) message.
KNOWN_ERRORS = {
    20003: "authentication failed",
    20429: "too many requests",
    21211: "the 'To' number is not a valid phone number",
    21408: "sending to this region is not enabled on the account",
    21610: "the recipient replied STOP (unsubscribed)",
    21612: "the 'To' number cannot be reached from this sender",
    21614: "the 'To' number is not a mobile number",
    30007: "the carrier filtered the message",
}


class TwilioGateway:
    channel = "sms"
    # Twilio's Messages API documents no idempotency key for creating a message (its
    # I-Twilio-Idempotency-Token is on the webhooks it sends): a second POST is a second SMS.
    idempotent = False

    def send(self, *, provider: ChannelProvider, message: Message, recipient: Recipient) -> SendResult:
        if not recipient.phone:
            raise NoAddress("the recipient has no phone number")
        message = common.personalised(message, recipient)
        account_sid = common.required_setting(provider, "account_sid")
        token = common.provider_secret(provider=provider)
        form = {"To": recipient.phone, "Body": common.with_link(message.body, message, separator=" ")}
        if service_sid := common.setting(provider, "messaging_service_sid"):
            form["MessagingServiceSid"] = service_sid
        else:
            form["From"] = common.required_setting(provider, "from_number")
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
        url = f"{common.base_url(provider, DEFAULT_URLS)}/2010-04-01/Accounts/{account_sid}/Messages.json"
        response = common.http_post(
            provider=provider,
            url=url,
            data=form,
            auth=(common.setting(provider, "api_key_sid", account_sid), token),
            headers={"Accept": "application/json"},
        )
        body = common.json_or_empty(response)
        if response.status_code >= 300:
            raise common.error_for_status(
                provider=provider,
                status_code=response.status_code,
                detail=_describe(body, recipient),
                headers=response.headers,
            )
        if not body.get("sid"):
            raise ProviderUnavailable(f"{common.label(provider)} answered without a message sid")
        return SendResult(
            provider_message_id=str(body["sid"]),
            detail={"status": body.get("status", ""), "segments": body.get("num_segments", "")},
        )


def _describe(body: dict, recipient: Recipient) -> str:
    code = body.get("code")
    if code in KNOWN_ERRORS:
        return f"error {code}, {KNOWN_ERRORS[code]}"
    said = common.safe_text(body.get("message"), recipient)
    return ", ".join(part for part in (f"error {code}" if code else "", said) if part)
