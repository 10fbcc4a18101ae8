"""Provider webhooks, one URL per workspace, signature verified before anything is read:

    POST /webhooks/sendgrid/<workspace slug>   SendGrid's Signed Event Webhook (JSON batch)
    POST /webhooks/twilio/<workspace slug>     Twilio's SMS status callback (form)

SendGrid signs the timestamp header followed by the raw body with ECDSA P-256 / SHA-256; the
verification key (SendGrid's "Verification Key": base64 DER, or PEM) is a WorkspaceSecret named
by the SendGrid provider's setting `webhook_verification_key_secret`, default
`sendgrid_webhook_verification_key`. A signed timestamp further than SENDGRID_MAX_AGE_SECONDS from
now (the provider's setting `webhook_max_age_seconds` changes it) is refused like a bad signature:
a replay of an old signed request. SendGrid signs each attempt anew.

Twilio signs the full URL followed by the sorted POST parameters with HMAC-SHA1 under the
account's auth token: the Twilio provider's secret (`secret_name`), or the secret named by its
setting `webhook_auth_token_secret` when the API key is not the auth token. The URL is the one
Twilio called: PUBLIC_BASE_URL plus the path, as `twilio_status_callback_url` gives it.

Every provider of that kind in the workspace (primary and backups, active or not: late events
still arrive) is tried. A bad or missing signature is a 403 and changes nothing, and so is an
unknown workspace (the same answer: a 404 told a prober which slugs exist); a malformed body a
400; events for unknown nudges are accepted (200), counted and logged without addresses. Events
applied before (a replay, or the provider's retry) are acknowledged and not applied again
(nudges.delivery.webhook_deliveries).
"""

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

from guardrails.secrets.selectors import InvalidToken, workspace_secret_get
from nudges.delivery import webhook_events
from nudges.models import ChannelProvider
from tenancy import selectors as tenancy_selectors
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

SENDGRID_KEY_SETTING = "webhook_verification_key_secret"
SENDGRID_KEY_SECRET = "sendgrid_webhook_verification_key"  # noqa: S105 (a name)
SENDGRID_MAX_AGE_SETTING = "webhook_max_age_seconds"
# SendGrid documents no window; 5 minutes is the usual one (Stripe, Svix), doubled for clock skew
# and SendGrid's own queueing.
SENDGRID_MAX_AGE_SECONDS = 600
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_TOKEN_SETTING = "webhook_auth_token_secret"  # noqa: S105 (a name)
TWILIO_SIGNATURE = "X-Twilio-Signature"


def sendgrid_webhook_url(*, workspace: Workspace) -> str:
    """The Event Webhook URL to configure in the workspace's SendGrid account."""
    return settings.PUBLIC_BASE_URL + reverse("webhook-sendgrid", kwargs={"slug": workspace.slug})


def twilio_status_callback_url(*, workspace: Workspace) -> str:
    """The StatusCallback to send with each SMS (the gateway's `message.status_callback_url`)."""
    return settings.PUBLIC_BASE_URL + reverse("webhook-twilio", kwargs={"slug": workspace.slug})


def _secret(workspace: Workspace, name: str) -> str | None:
    if not name:
        return None
    try:
        return workspace_secret_get(workspace=workspace, name=name)
    except InvalidToken:
        logger.warning("nudges.webhook.secret_unreadable", extra={"workspace_id": workspace.pk})
        return None


def _providers(workspace: Workspace, provider: str) -> list[ChannelProvider]:
    return list(ChannelProvider.objects.filter(workspace=workspace, provider=provider).order_by("priority"))


# --- SendGrid --------------------------------------------------------------------------------------


def sendgrid_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key (base64 DER as its settings page shows it, or PEM);
    ValueError when it is not a P-256 public key."""
    value = value.strip()
    try:
        if "BEGIN PUBLIC KEY" in value:
            key = serialization.load_pem_public_key(value.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, TypeError) as error:
        raise ValueError(f"not a public key: {error}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key")
    return key


def sendgrid_signature_valid(
    *, public_key: ec.EllipticCurvePublicKey, signature: str, timestamp: str, body: bytes
) -> bool:
    try:
        public_key.verify(
            base64.b64decode(signature, validate=True), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def _sendgrid_verified(workspace: Workspace, request) -> bool:
    signature = request.headers.get(SENDGRID_SIGNATURE, "")
    timestamp = request.headers.get(SENDGRID_TIMESTAMP, "")
    if not signature or not timestamp:
        return False
    body = request.body
    for provider in _providers(workspace, ChannelProvider.Provider.SENDGRID):
        value = _secret(workspace, provider.settings.get(SENDGRID_KEY_SETTING) or SENDGRID_KEY_SECRET)
        if not value:
            continue
        try:
            public_key = sendgrid_public_key(value)
        except ValueError:
            logger.warning("nudges.webhook.sendgrid_key_invalid", extra={"provider_id": provider.pk})
            continue
        if not sendgrid_signature_valid(
            public_key=public_key, signature=signature, timestamp=timestamp, body=body
        ):
            continue
        max_age = float(provider.settings.get(SENDGRID_MAX_AGE_SETTING) or SENDGRID_MAX_AGE_SECONDS)
        if not (timestamp.isdigit() and abs(time.time() - int(timestamp)) <= max_age):
            logger.info("nudges.webhook.sendgrid_stale", extra={"provider_id": provider.pk})
            return False
        return True
    return False


# --- Twilio ----------------------------------------------------------------------------------------


def twilio_signature(*, auth_token: str, url: str, params: dict[str, list[str]]) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL and the sorted parameters."""
    payload = url + "".join(name + value for name in sorted(params) for value in sorted(set(params[name])))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _twilio_verified(workspace: Workspace, request, params: dict[str, list[str]]) -> bool:
    signature = request.headers.get(TWILIO_SIGNATURE, "")
    if not signature:
        return False
    # The URL Twilio called: the public one (behind a proxy the request sees another scheme or host).
    urls = dict.fromkeys([settings.PUBLIC_BASE_URL + request.get_full_path(), request.build_absolute_uri()])
    for provider in _providers(workspace, ChannelProvider.Provider.TWILIO):
        auth_token = _secret(workspace, provider.settings.get(TWILIO_TOKEN_SETTING) or provider.secret_name)
        if not auth_token:
            continue
        for url in urls:
            expected = twilio_signature(auth_token=auth_token, url=url, params=params)
            if hmac.compare_digest(expected.encode(), signature.encode()):
                return True
    return False


# --- Views -----------------------------------------------------------------------------------------


def _workspace(slug: str, provider: str) -> Workspace:
    workspace = tenancy_selectors.workspace_get_by_slug(slug=slug)
    if workspace is None:
        logger.warning("nudges.webhook.unknown_workspace", extra={"provider": provider})
        raise _refusal(provider)
    return workspace


def _refused(workspace: Workspace, provider: str) -> exceptions.PermissionDenied:
    logger.warning(
        "nudges.webhook.signature_invalid", extra={"workspace_id": workspace.pk, "provider": provider}
    )
    return _refusal(provider)


def _refusal(provider: str) -> exceptions.PermissionDenied:
    """The one answer to a request that proves nothing, whatever the workspace in its URL."""
    return exceptions.PermissionDenied(
        f"The {provider} signature is missing or invalid (check the workspace's webhook key)."
    )


class _WebhookApi(APIView):
    """Called by the provider: no credentials but the signature."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]


_RESPONSES = {
    200: OpenApiResponse(description="Accepted: counts of received, applied, unmatched, suppressed"),
    400: OpenApiResponse(description="Malformed body"),
    403: OpenApiResponse(
        description="Missing, invalid or stale signature, or no such workspace: nothing changed"
    ),
}


class SendGridEventsWebhookApi(_WebhookApi):
    @extend_schema(request=None, responses=_RESPONSES)
    def post(self, request, slug: str):
        workspace = _workspace(slug, "SendGrid")
        if not _sendgrid_verified(workspace, request):
            raise _refused(workspace, "SendGrid")
        try:
            events = json.loads(request.body)
        except (UnicodeDecodeError, ValueError):
            raise exceptions.ParseError("The body is not JSON: expected a list of SendGrid events.") from None
        if not isinstance(events, list):
            raise exceptions.ParseError("Expected a JSON list of SendGrid events.")
        return Response(webhook_events.sendgrid_events_apply(workspace=workspace, events=events))


class TwilioStatusWebhookApi(_WebhookApi):
    parser_classes = [FormParser]

    @extend_schema(request=None, responses=_RESPONSES)
    def post(self, request, slug: str):
        workspace = _workspace(slug, "Twilio")
        params = {name: request.POST.getlist(name) for name in request.POST}
        if not _twilio_verified(workspace, request, params):
            raise _refused(workspace, "Twilio")
        if not (params.get("MessageSid") or params.get("SmsSid")) or not (
            params.get("MessageStatus") or params.get("SmsStatus")
        ):
            raise exceptions.ParseError("Expected a Twilio status callback: MessageSid and MessageStatus.")
        flat = {name: values[-1] for name, values in params.items()}
        return Response(webhook_events.twilio_status_apply(workspace=workspace, params=flat))
