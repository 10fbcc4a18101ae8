"""Signed one-click unsubscribe links (RFC 8058) for the messages a gateway sends.

The link carries the workspace, the end user's id, the channel and the purpose, signed with
SECRET_KEY under a salt of its own: no login is needed to use it, and it cannot be altered to
reach another person or another purpose. Links do not expire: an unsubscribe link in an old
email must keep working (RFC 8058 asks for it to work for a long time; CAN-SPAM for 30 days at
least). Rotating SECRET_KEY invalidates them; keep the old key in SECRET_KEY_FALLBACKS.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from guardrails.models import Channel, Purpose
from tenancy.models import EndUser

_SALT = "guardrails.preferences.unsubscribe.v1"
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


class LinkInvalid(Exception):
    """Tampered, malformed, or signed with another key or for another use."""


@dataclass(frozen=True)
class UnsubscribeLink:
    workspace_id: int
    end_user_id: int
    channel: str
    purpose: str


def unsubscribe_token(*, end_user: EndUser, channel: str, purpose: str) -> str:
    if channel not in Channel.values or purpose not in Purpose.values:
        raise ValueError(f"unknown channel or purpose: {channel!r}, {purpose!r}")
    payload = {"w": end_user.workspace_id, "u": end_user.pk, "c": channel, "p": purpose}
    return signing.dumps(payload, salt=_SALT, compress=False)


def unsubscribe_url(*, end_user: EndUser, channel: str, purpose: str) -> str:
    """The absolute one-click unsubscribe URL, on settings.PUBLIC_BASE_URL."""
    token = unsubscribe_token(end_user=end_user, channel=channel, purpose=purpose)
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("unsubscribe", kwargs={"token": token})


def list_unsubscribe_headers(*, end_user: EndUser, channel: str, purpose: str) -> dict[str, str]:
    """The headers that make mail clients show an unsubscribe button that works in one click."""
    url = unsubscribe_url(end_user=end_user, channel=channel, purpose=purpose)
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK_BODY}


def unsubscribe_link_verify(token: str) -> UnsubscribeLink:
    try:
        payload = signing.loads(token, salt=_SALT)
        link = UnsubscribeLink(
            workspace_id=int(payload["w"]),
            end_user_id=int(payload["u"]),
            channel=str(payload["c"]),
            purpose=str(payload["p"]),
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkInvalid("not a valid unsubscribe link") from None
    if link.channel not in Channel.values or link.purpose not in Purpose.values:
        raise LinkInvalid("unknown channel or purpose")
    return link
