"""Signed click-tracking links and the email open pixel.

A nudge's call to action goes through /n/c/<token>: the view records the click and redirects to
the nudge's own stored link (never to a URL taken from the request, so the redirect cannot be
turned into an open redirect). The pixel at /n/o/<token>.gif records an open. Tokens are signed
with SECRET_KEY under their own salt and name only the nudge; they do not expire, as links in an
old email must keep working.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse

CLICK_SALT = "nudges.click.v1"
OPEN_SALT = "nudges.open.v1"


class TokenInvalid(Exception):
    """Tampered, malformed, or signed for another use."""


def _token(nudge_id: int, salt: str) -> str:
    return signing.dumps({"n": nudge_id}, salt=salt, compress=False)


def nudge_id_from(token: str, *, salt: str) -> int:
    try:
        return int(signing.loads(token, salt=salt)["n"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise TokenInvalid(str(error)) from None


def click_url(*, nudge_id: int) -> str:
    token = _token(nudge_id, CLICK_SALT)
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("nudge-click", kwargs={"token": token})


def open_pixel_url(*, nudge_id: int) -> str:
    token = _token(nudge_id, OPEN_SALT)
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("nudge-open", kwargs={"token": token})
