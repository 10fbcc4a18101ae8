"""Intercom's messages API: an admin-initiated in-app message or email to a user.

POST {base}/messages with a Bearer access token and the Intercom-Version header; the user is
named by the product's own id (`user_id`, our EndUser.external_id), so no contact data leaves
for Intercom. Provider settings: admin_id (the sender), message_type ("in_app" or "email",
default "in_app"), api_version (default 2.11), api_url. The secret is the access token.
"""

import html

from nudges.gateways import common
from nudges.gateways.base import Message, NoAddress, ProviderUnavailable, Recipient, SendResult
from nudges.models import ChannelProvider

DEFAULT_URLS = {"us": "https://api.intercom.io", "eu": "https://api.eu.intercom.io"}
DEFAULT_API_VERSION = "2.11"
MESSAGE_TYPES = {"in_app": "in_app", "inapp": "in_app", "email": "email"}


class IntercomGateway:
    channel = "intercom"
    # Intercom's messages API documents no idempotency key: a second POST is a second message.
    idempotent = False

    def send(self, *, provider: ChannelProvider, message: Message, recipient: Recipient) -> SendResult:
        if not recipient.external_id:
            raise NoAddress("the recipient has no user id Intercom knows them by")
        message = common.personalised(message, recipient)
        message_type = MESSAGE_TYPES.get(str(common.setting(provider, "message_type", "in_app")))
        if message_type is None:
            raise ProviderUnavailable(f"{common.label(provider)}: message_type must be in_app or email")
        body = {
            "message_type": message_type,
            "body": _html_body(message),
            "template": common.setting(provider, "template", "plain"),
            "from": {"type": "admin", "id": common.required_setting(provider, "admin_id")},
            "to": {"type": "user", "user_id": recipient.external_id},
        }
        if message_type == "email":
            body["subject"] = message.subject
        response = common.http_post(
            provider=provider,
            url=f"{common.base_url(provider, DEFAULT_URLS)}/messages",
            json=body,
            headers={
                "Authorization": f"Bearer {common.provider_secret(provider=provider)}",
                "Accept": "application/json",
                "Intercom-Version": str(common.setting(provider, "api_version", DEFAULT_API_VERSION)),
            },
        )
        answer = common.json_or_empty(response)
        if response.status_code >= 300:
            raise common.error_for_status(
                provider=provider,
                status_code=response.status_code,
                detail=_described(answer, recipient),
                headers=response.headers,
            )
        if not answer.get("id"):
            raise ProviderUnavailable(f"{common.label(provider)} answered without a message id")
        return SendResult(
            provider_message_id=str(answer["id"]),
            detail={"message_type": answer.get("message_type", message_type)},
        )


def _html_body(message: Message) -> str:
    """Intercom takes HTML: the text's paragraphs, escaped, and the call to action as a link."""
    paragraphs = [
        f"<p>{html.escape(part.strip())}</p>" for part in message.body.split("\n\n") if part.strip()
    ]
    if message.cta_url:
        text = html.escape(message.cta_text or message.cta_url)
        paragraphs.append(f'<p><a href="{html.escape(message.cta_url, quote=True)}">{text}</a></p>')
    return "".join(paragraphs)


def _described(answer: dict, recipient: Recipient) -> str:
    """Intercom answers {"type": "error.list", "errors": [{"code", "message"}]}."""
    errors = answer.get("errors")
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return ""
    first = errors[0]
    words = common.safe_text(first.get("message"), recipient)
    return ", ".join(part for part in (str(first.get("code") or ""), words) if part)
