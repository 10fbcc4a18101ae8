"""API key and end-user token authentication (Segment's HTTP Basic, a writeKey in the body, Bearer
tokens) and who may act for which end user."""

import base64
import binascii
from dataclasses import dataclass

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from tenancy import selectors, services, tokens
from tenancy.models import ApiKey, Workspace
from tenancy.signals import token_refused


@dataclass(frozen=True)
class KeyPrincipal:
    """request.user for API clients: the workspace a key belongs to."""

    api_key: ApiKey

    @property
    def workspace(self) -> Workspace:
        return self.api_key.workspace

    is_authenticated = True
    is_anonymous = False


def _key_from_header(header: str) -> str | None:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise exceptions.AuthenticationFailed(
            "Authorization header is not valid Basic credentials."
        ) from None
    return decoded.partition(":")[0] or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        key = _key_from_header(header) if header else None
        if key is None and getattr(request._request, "method", "") == "POST":
            body = request.data
            if isinstance(body, dict) and isinstance(body.get("writeKey"), str):
                key = body["writeKey"] or None
        if key is None:
            return None
        api_key = selectors.api_key_get_by_key(key=key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        if not api_key.is_active:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        services.api_key_mark_used(api_key=api_key, at=timezone.now())
        return KeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return 'Basic realm="api"'


class HasScope(permissions.BasePermission):
    """The key must carry the view's `required_scope`."""

    message = "This API key may not call this endpoint."

    def has_permission(self, request, view):
        api_key = request.auth
        return isinstance(api_key, ApiKey) and api_key.has_scope(view.required_scope)


class ActsForUser(permissions.BasePermission):
    """A secret key for any user of its workspace, or an end-user token for its own user."""

    message = "Not allowed."

    def has_permission(self, request, view):
        credentials = request.auth
        if isinstance(credentials, ApiKey):
            if credentials.has_scope(ApiKey.Scope.SERVER):
                return True
            self.message = (
                "Write keys may only send events: use a secret key, or an end-user token "
                "from POST /api/v1/users/{user_id}/token."
            )
            return False
        if isinstance(credentials, tokens.EndUserToken):
            if view.allows_end_user_tokens and credentials.external_id == view.kwargs.get("user_id"):
                return True
            reason = "other_user" if view.allows_end_user_tokens else "issue_token"
            token_refused.send(sender=type(self), request=request, reason=reason, claims=credentials)
            self.message = (
                "End-user tokens cannot issue tokens: use a secret key."
                if not view.allows_end_user_tokens
                else "This end-user token is for another user."
            )
            return False
        return False


class EndUserTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer ut_...`: a signed end-user token (tenancy.tokens). Any other
    credentials are left to ApiKeyAuthentication, listed after this class."""

    def authenticate(self, request):
        scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not tokens.is_end_user_token(credentials):
            return None
        try:
            token = tokens.token_verify(credentials)
        except tokens.TokenExpired as expired:
            token_refused.send(sender=type(self), request=request, reason="expired", claims=expired.claims)
            raise exceptions.AuthenticationFailed(
                "This end-user token has expired; ask for a new one."
            ) from None
        except tokens.TokenInvalid:
            token_refused.send(sender=type(self), request=request, reason="invalid", raw_token=credentials)
            raise exceptions.AuthenticationFailed("This end-user token is not valid.") from None
        return tokens.EndUserPrincipal(token), token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
