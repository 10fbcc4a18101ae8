"""Short-lived signed end-user tokens, for browsers and mobile apps.

A server holding a secret key asks for a token for one end user and hands it to that user's app,
which then calls the progress API and opens the websocket with it. The token is signed with
Django's SECRET_KEY (the workspace's secret key is never needed to verify it), names the
workspace, the end user's primary key and external id, and expires after
END_USER_TOKEN_LIFETIME seconds. There is no revocation list: revocation is by expiry, so keep
the lifetime short.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.core import signing
from django.db import DEFAULT_DB_ALIAS

from tenancy.models import EndUser, Workspace

TOKEN_PREFIX = "ut_"  # noqa: S105 (a prefix, not a secret)
_SALT = "onboarding.end-user-token.v1"


class TokenInvalid(Exception):
    """Tampered, malformed or signed with another SECRET_KEY."""


class TokenExpired(TokenInvalid):
    """Signed by us and past its lifetime: `claims` are genuine (abuse counting reads them)."""

    def __init__(self, message: str, claims: "EndUserToken"):
        super().__init__(message)
        self.claims = claims


@dataclass(frozen=True)
class EndUserToken:
    workspace_id: int
    end_user_id: int
    external_id: str
    expires_at: datetime

    def grants(self, *, workspace_id: int, external_id: str) -> bool:
        return self.workspace_id == workspace_id and self.external_id == external_id


class EndUserPrincipal:
    """request.user for a call made with an end-user token (KeyPrincipal's counterpart)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, token: EndUserToken):
        self.token = token

    @cached_property
    def workspace(self) -> Workspace:
        return token_workspace(self.token)


def token_workspace(token: EndUserToken) -> Workspace:
    """The token's workspace, without a query: the id is signed, so it is trusted, and the
    other fields load on first use (as with `.only("id")`). Every query it scopes still checks
    the rows exist, so a deleted workspace finds nothing."""
    return Workspace.from_db(DEFAULT_DB_ALIAS, ["id"], [token.workspace_id])


def _now() -> float:
    return time.time()


def default_lifetime() -> timedelta:
    return timedelta(seconds=settings.END_USER_TOKEN_LIFETIME)


def is_end_user_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


def token_issue(*, end_user: EndUser, lifetime: timedelta | None = None) -> tuple[str, datetime]:
    """A token for this one end user, and when it expires."""
    expires = int(_now() + (lifetime or default_lifetime()).total_seconds())
    payload = {"w": end_user.workspace_id, "u": end_user.pk, "x": end_user.external_id, "e": expires}
    token = TOKEN_PREFIX + signing.dumps(payload, salt=_SALT, compress=False)
    return token, datetime.fromtimestamp(expires, tz=UTC)


def token_verify(token: str) -> EndUserToken:
    """The token's claims; TokenExpired or TokenInvalid otherwise."""
    if not is_end_user_token(token):
        raise TokenInvalid("not an end-user token")
    try:
        payload = signing.loads(token.removeprefix(TOKEN_PREFIX), salt=_SALT)
    except signing.BadSignature:
        raise TokenInvalid("bad signature") from None
    try:
        claims = EndUserToken(
            workspace_id=int(payload["w"]),
            end_user_id=int(payload["u"]),
            external_id=str(payload["x"]),
            expires_at=datetime.fromtimestamp(int(payload["e"]), tz=UTC),
        )
    except (KeyError, TypeError, ValueError):
        raise TokenInvalid("malformed claims") from None
    if int(payload["e"]) <= _now():
        raise TokenExpired("expired", claims)
    return claims
