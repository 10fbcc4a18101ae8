"""Email through django-anymail (SendGrid, Mailgun, Amazon SES) or SMTP (Django's backend).

The backend is built for each send from the workspace's ChannelProvider row, never from global
settings: settings.from_email, from_name, reply_to, api_url (SendGrid, Mailgun; SES's endpoint);
sender_domain (Mailgun); aws_region and aws_access_key_id (SES); host, port, use_tls, use_ssl and
username (SMTP). The key (API key, SES secret access key, SMTP password) is the WorkspaceSecret.

The nudge id rides along as anymail metadata (SendGrid custom_args, Mailgun v: variables, the
SES X-Metadata header) so the webhooks can match events; the provider message id is anymail's
`message.anymail_status.message_id`, or for SMTP the Message-ID header set here.
"""

import hashlib
import smtplib
import warnings
from email.errors import MessageError
from email.headerregistry import Address

import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailNotSupportedWarning,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from anymail.message import AnymailMessage
from django.core.mail import EmailMultiAlternatives, get_connection

from nudges.gateways import common
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
from nudges.models import ChannelProvider

Provider = ChannelProvider.Provider

ESP_BACKENDS = {
    Provider.SENDGRID: "anymail.backends.sendgrid.EmailBackend",
    Provider.MAILGUN: "anymail.backends.mailgun.EmailBackend",
    Provider.AMAZON_SES: "anymail.backends.amazon_ses.EmailBackend",
}
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
DEFAULT_URLS = {
    Provider.SENDGRID: {"us": "https://api.sendgrid.com/v3", "eu": "https://api.eu.sendgrid.com/v3"},
    Provider.MAILGUN: {"us": "https://api.mailgun.net/v3", "eu": "https://api.eu.mailgun.net/v3"},
}
SES_REGIONS = {"us": "us-east-1", "eu": "eu-west-1"}
SES_THROTTLES = {"TooManyRequestsException", "Throttling", "ThrottlingException", "LimitExceededException"}
SES_PAUSED = {"AccountSuspendedException", "SendingPausedException", "MailFromDomainNotVerifiedException"}


class EmailGateway:
    channel = "email"
    # SendGrid's mail/send, Mailgun's messages and SES's SendEmail document no idempotency key, and
    # SMTP has none: a second request is a second email. SendGrid's events carry the nudge id back.
    idempotent = False

    def send(self, *, provider: ChannelProvider, message: Message, recipient: Recipient) -> SendResult:
        if not recipient.email:
            raise NoAddress("the recipient has no email address")
        message = common.personalised(message, recipient)
        email = _email(provider, message, recipient)
        try:
            email.connection = _connection(provider)
            email.send()
        except GatewayError:
            raise
        except AnymailError as error:
            raise _anymail_error(provider, error, recipient) from None
        except smtplib.SMTPException as error:
            raise _smtp_error(provider, error) from None
        except OSError as error:  # refused, unreachable, timed out (SMTP)
            raise ProviderUnavailable(
                f"{common.label(provider)} could not be reached ({type(error).__name__})"
            ) from None
        status = getattr(email, "anymail_status", None)
        message_id = (status.message_id if status else None) or email.extra_headers.get("Message-ID", "")
        if not message_id:
            raise ProviderUnavailable(f"{common.label(provider)} accepted the message without an id")
        return SendResult(provider_message_id=str(message_id), detail={"provider": provider.provider})


def _email(provider: ChannelProvider, message: Message, recipient: Recipient) -> EmailMultiAlternatives:
    from_email = common.required_setting(provider, "from_email")
    from_name = common.setting(provider, "from_name", "")
    reply_to = common.setting(provider, "reply_to")
    fields = {
        "subject": message.subject,
        "body": common.with_link(message.body, message),
        "from_email": _mailbox(from_name, from_email),
        "to": [_mailbox(recipient.name, recipient.email)],
        "reply_to": [reply_to] if reply_to else None,
        "headers": dict(message.headers),
    }
    if provider.provider == Provider.SMTP:
        email = EmailMultiAlternatives(**fields)
        domain = from_email.rpartition("@")[2] or "localhost"
        # Stable per nudge: a retried send carries the same Message-ID, so receivers can dedupe.
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:20]
        email.extra_headers["Message-ID"] = f"<nudge.{message.nudge_id}.{digest}@{domain}>"
        email.extra_headers["X-Nudge-Id"] = str(message.nudge_id)
    else:
        email = AnymailMessage(**fields)
        email.metadata = {"nudge_id": str(message.nudge_id), "idempotency_key": message.idempotency_key}
    if message.html:
        email.attach_alternative(message.html, "text/html")
    return email


def _mailbox(name: str, address: str) -> str:
    """The mailbox `"Name" <address>`, quoted as needed but not RFC 2047-encoded (anymail reads
    it back and would keep an encoded name as is); an unparsable address is left to the provider."""
    if not name:
        return address
    try:
        return str(Address(display_name=name, addr_spec=address))
    except (ValueError, MessageError):
        return address


def _connection(provider: ChannelProvider):
    timeout = common.timeout_seconds()
    if provider.provider == Provider.SMTP:
        return get_connection(
            SMTP_BACKEND,
            host=common.required_setting(provider, "host"),
            port=int(common.setting(provider, "port", 587)),
            username=common.setting(provider, "username", ""),
            password=common.provider_secret(provider=provider, required=False),
            use_tls=bool(common.setting(provider, "use_tls", False)),
            use_ssl=bool(common.setting(provider, "use_ssl", False)),
            timeout=timeout,
            fail_silently=False,
        )
    if provider.provider not in ESP_BACKENDS:
        raise ProviderUnavailable(f"{common.label(provider)} is not an email provider")
    secret = common.provider_secret(provider=provider)
    if provider.provider == Provider.AMAZON_SES:
        client_params = {
            "config": {
                "connect_timeout": min(3.0, timeout),
                "read_timeout": timeout,
                # One attempt: RQ retries with backoff, and the breaker counts each failure.
                "retries": {"total_max_attempts": 1, "mode": "standard"},
            }
        }
        if endpoint := common.setting(provider, "api_url"):
            client_params["endpoint_url"] = endpoint
        session_params = {
            "aws_access_key_id": common.required_setting(provider, "aws_access_key_id"),
            "aws_secret_access_key": secret,
            "region_name": common.setting(provider, "aws_region", SES_REGIONS.get(provider.region)),
        }
        return get_connection(
            ESP_BACKENDS[provider.provider], session_params=session_params, client_params=client_params
        )
    options = {"api_key": secret, "api_url": common.base_url(provider, DEFAULT_URLS[provider.provider])}
    if provider.provider == Provider.MAILGUN and (domain := common.setting(provider, "sender_domain")):
        options["sender_domain"] = domain
    with warnings.catch_warnings():
        # Anymail no longer tests SendGrid itself; the API it posts to is unchanged (our tests).
        warnings.simplefilter("ignore", AnymailNotSupportedWarning)
        return get_connection(ESP_BACKENDS[provider.provider], timeout=timeout, **options)


def _anymail_error(provider: ChannelProvider, error: AnymailError, recipient: Recipient) -> GatewayError:
    name = common.label(provider)
    if isinstance(error, AnymailRecipientsRefused):
        return Rejected(f"{name} refused the recipient address")
    if isinstance(error, AnymailInvalidAddress):
        return Rejected(f"{name}: an address of the message is not valid")
    if isinstance(error, AnymailRequestsAPIError):
        response = error.response
        if response is None and isinstance(error, requests.ReadTimeout):
            return AnswerLost(f"{name} did not answer in time")
        if response is None:
            kind = "timed out" if isinstance(error, requests.Timeout) else "could not be reached"
            return ProviderUnavailable(f"{name} {kind}")
        return common.error_for_status(
            provider=provider,
            status_code=response.status_code,
            detail=_described(_json(response), recipient),
            headers=response.headers,
        )
    if isinstance(error, AnymailAPIError):  # Amazon SES through boto3
        answer = error.response if isinstance(error.response, dict) else {}
        code = str(answer.get("Error", {}).get("Code", ""))
        status_code = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = ", ".join(
            part
            for part in (code, common.safe_text(answer.get("Error", {}).get("Message"), recipient))
            if part
        )
        if code in SES_THROTTLES:
            return RateLimited(f"{name} rate limited the send: {detail}", retry_after=None)
        if code in SES_PAUSED:
            return ProviderUnavailable(
                f"{name} cannot send for this account: {detail}", status_code=status_code
            )
        return common.error_for_status(provider=provider, status_code=status_code, detail=detail)
    return Rejected(f"{name} could not build the message ({type(error).__name__})")


def _json(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text}
    return body if isinstance(body, dict) else {}


def _described(body: dict, recipient: Recipient) -> str:
    """SendGrid answers {"errors": [{"message", "field"}]}, Mailgun {"message"}."""
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        field = f" ({first['field']})" if first.get("field") else ""
        return common.safe_text(f"{first.get('message', '')}{field}", recipient)
    return common.safe_text(body.get("message"), recipient)


def _smtp_error(provider: ChannelProvider, error: smtplib.SMTPException) -> GatewayError:
    """SMTP replies: 4xx are transient (try later or elsewhere), 5xx refuse this message; a
    refused login or sender is this server's configuration, so it fails over."""
    name = common.label(provider)
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return ProviderUnavailable(
            f"{name} refused the login ({error.smtp_code})", status_code=error.smtp_code
        )
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        # `recipients` maps each address to its reply: only the codes leave this function.
        codes = sorted({code for code, _ in error.recipients.values()})
        if codes and all(code < 500 for code in codes):
            return ProviderUnavailable(f"{name} deferred the recipient ({codes[0]})", status_code=codes[0])
        return Rejected(f"{name} refused the recipient ({codes[-1] if codes else 'no reply'})")
    if isinstance(error, smtplib.SMTPSenderRefused):
        return ProviderUnavailable(f"{name} refused the sender address ({error.smtp_code})")
    if isinstance(error, smtplib.SMTPResponseException):
        if error.smtp_code >= 500:
            return Rejected(f"{name} refused the message ({error.smtp_code})", status_code=error.smtp_code)
        return ProviderUnavailable(
            f"{name} deferred the message ({error.smtp_code})", status_code=error.smtp_code
        )
    return ProviderUnavailable(f"{name} failed ({type(error).__name__})")
