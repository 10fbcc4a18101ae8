"""Client API of the nudges app: the in-app inbox and Web Push subscriptions.

    GET    /api/v1/users/{user_id}/nudges                        the inbox, newest first
    POST   /api/v1/users/{user_id}/nudges/{nudge_id}/seen        -> opened
    POST   /api/v1/users/{user_id}/nudges/{nudge_id}/clicked     -> clicked
    POST   /api/v1/users/{user_id}/nudges/{nudge_id}/dismissed   leaves the inbox
    POST   /api/v1/users/{user_id}/push-subscriptions            the browser's PushSubscription JSON
    DELETE /api/v1/users/{user_id}/push-subscriptions            {"endpoint": ...} (or ?endpoint=)

Authenticated like the progress API: a secret key for any user of its workspace, or an end-user
token for that one user (the app's own inbox). A nudge that is not in this user's inbox (unknown
id, another user's, another workspace's, not an in-app nudge, not sent yet) is a 404.
"""

import base64
import binascii
from urllib.parse import urlencode, urlsplit

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from nudges import inbox, push_subscriptions
from nudges.models import Nudge
from tenancy.authentication import ActsForUser, ApiKeyAuthentication, EndUserTokenAuthentication
from tenancy.end_users import end_user_for_request


class _UserApi(APIView):
    authentication_classes = [EndUserTokenAuthentication, ApiKeyAuthentication]
    permission_classes = [ActsForUser]
    parser_classes = [JSONParser]
    allows_end_user_tokens = True


def _nudge_for(request, user_id: str, nudge_id: str) -> Nudge:
    end_user = end_user_for_request(request, user_id)
    nudge = None
    if nudge_id.isdigit() and len(nudge_id) <= 18:
        nudge = inbox.inbox_nudge_get(
            workspace=request.user.workspace, end_user=end_user, nudge_id=int(nudge_id)
        )
    if nudge is None:
        raise exceptions.NotFound(f"No nudge {nudge_id!r} in the inbox of user {user_id!r}.")
    return nudge


# --- Inbox -----------------------------------------------------------------------------------------


class InboxItemSerializer(serializers.Serializer):
    """One nudge of the inbox (documentation; built by nudges.inbox.inbox_item)."""

    id = serializers.IntegerField()
    subject = serializers.CharField()
    body = serializers.CharField()
    cta_text = serializers.CharField(
        allow_blank=True, help_text="Empty when the nudge has no call to action (show no button)."
    )
    cta_url = serializers.URLField(
        allow_null=True,
        help_text="The signed click link: records the click, then leads to the product. Null when the "
        "nudge has no call to action.",
    )
    ui_component = serializers.CharField(help_text="tooltip, modal, sidebar_hint, none")
    status = serializers.ChoiceField(choices=inbox.VISIBLE)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    seen_at = serializers.DateTimeField(allow_null=True)
    clicked_at = serializers.DateTimeField(allow_null=True)
    dismissed_at = serializers.DateTimeField(allow_null=True)


class InboxPageSerializer(serializers.Serializer):
    results = InboxItemSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="The next (older) page, or null")


_NOT_FOUND = OpenApiResponse(description="No such user, or no such nudge in this user's inbox")
_FORBIDDEN = OpenApiResponse(description="Write key, or a token for another user")


class InboxListApi(_UserApi):
    """The user's in-app nudges that were sent, newest first; dismissed ones only when asked."""

    class InboxFilterSerializer(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=inbox.MAX_LIMIT, default=inbox.DEFAULT_LIMIT)
        before = serializers.IntegerField(min_value=1, required=False, help_text="A cursor from `next`")
        include_dismissed = serializers.BooleanField(default=False)

    @extend_schema(
        parameters=[InboxFilterSerializer],
        responses={
            200: InboxPageSerializer,
            400: OpenApiResponse(description="Bad query parameters"),
            403: _FORBIDDEN,
            404: _NOT_FOUND,
        },
    )
    def get(self, request, user_id: str):
        filters = self.InboxFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        end_user = end_user_for_request(request, user_id)
        page = inbox.inbox_list(workspace=request.user.workspace, end_user=end_user, **filters.validated_data)
        next_url = None
        if page.next_before is not None:
            query = {**request.query_params.dict(), "before": page.next_before}
            next_url = f"{request.path}?{urlencode(query)}"
        return Response({"results": [inbox.inbox_item(nudge) for nudge in page.nudges], "next": next_url})


class _InboxMarkApi(_UserApi):
    mark = staticmethod(inbox.inbox_mark_seen)

    @extend_schema(request=None, responses={200: InboxItemSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request, user_id: str, nudge_id: str):
        nudge = self.mark(nudge=_nudge_for(request, user_id, nudge_id))
        return Response(inbox.inbox_item(nudge))


class InboxSeenApi(_InboxMarkApi):
    """The app showed the nudge: opened."""

    mark = staticmethod(inbox.inbox_mark_seen)


class InboxClickedApi(_InboxMarkApi):
    """The user followed the call to action inside the app: clicked."""

    mark = staticmethod(inbox.inbox_mark_clicked)


class InboxDismissedApi(_InboxMarkApi):
    """The user closed the nudge: it leaves the inbox."""

    mark = staticmethod(inbox.inbox_dismiss)


# --- Push subscriptions ----------------------------------------------------------------------------

P256DH_BYTES = 65  # an uncompressed P-256 point (RFC 8291)
AUTH_BYTES = 16


def _base64url(value: str, *, length: int, what: str) -> str:
    """The key without padding, or ValidationError saying what is wrong with it."""
    stripped = value.strip().rstrip("=")
    if not stripped or any(not (c.isascii() and (c.isalnum() or c in "-_")) for c in stripped):
        raise serializers.ValidationError(f"must be base64url (A-Z, a-z, 0-9, - and _): the {what}")
    try:
        decoded = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise serializers.ValidationError(f"is not valid base64url: the {what}") from None
    if len(decoded) != length:
        raise serializers.ValidationError(f"must decode to {length} bytes, not {len(decoded)}: the {what}")
    return stripped


class _KeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200, trim_whitespace=True)
    auth = serializers.CharField(max_length=100, trim_whitespace=True)

    def validate_p256dh(self, value: str) -> str:
        key = _base64url(value, length=P256DH_BYTES, what="browser's P-256 public key")
        if base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))[0] != 4:
            raise serializers.ValidationError("must be an uncompressed P-256 point (first byte 0x04)")
        return key

    def validate_auth(self, value: str) -> str:
        return _base64url(value, length=AUTH_BYTES, what="authentication secret")


class PushSubscriptionApi(_UserApi):
    """Save the browser's PushSubscription (idempotent per endpoint), or remove one."""

    class PushSubscriptionInputSerializer(serializers.Serializer):
        endpoint = serializers.URLField(max_length=1000)
        keys = _KeysSerializer()
        expirationTime = serializers.IntegerField(  # the browser's own field name
            required=False, allow_null=True, help_text="Ignored: the push service says when it is gone"
        )

        def validate_endpoint(self, value: str) -> str:
            if urlsplit(value).scheme != "https":
                raise serializers.ValidationError("must be an https URL (push services only take https)")
            return value

    class PushSubscriptionOutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        endpoint = serializers.URLField()
        created_at = serializers.DateTimeField()

    class PushSubscriptionDeleteSerializer(serializers.Serializer):
        endpoint = serializers.URLField(max_length=1000)

    @extend_schema(
        request=PushSubscriptionInputSerializer,
        responses={
            201: PushSubscriptionOutputSerializer,
            200: PushSubscriptionOutputSerializer,
            400: OpenApiResponse(description="detail and errors [{field, reason}]"),
            403: _FORBIDDEN,
            404: _NOT_FOUND,
        },
    )
    def post(self, request, user_id: str):
        serializer = self.PushSubscriptionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        end_user = end_user_for_request(request, user_id)
        data = serializer.validated_data
        subscription, created = push_subscriptions.push_subscription_save(
            end_user=end_user,
            endpoint=data["endpoint"],
            p256dh=data["keys"]["p256dh"],
            auth=data["keys"]["auth"],
        )
        return Response(
            self.PushSubscriptionOutputSerializer(subscription).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=PushSubscriptionDeleteSerializer,
        parameters=[OpenApiParameter("endpoint", required=False, description="Instead of the body")],
        responses={
            204: None,
            400: OpenApiResponse(description="No endpoint"),
            403: _FORBIDDEN,
            404: _NOT_FOUND,
        },
    )
    def delete(self, request, user_id: str):
        body = request.data if isinstance(request.data, dict) and request.data else request.query_params
        serializer = self.PushSubscriptionDeleteSerializer(data={"endpoint": body.get("endpoint")})
        serializer.is_valid(raise_exception=True)
        end_user = end_user_for_request(request, user_id)
        if not push_subscriptions.push_subscription_delete(
            end_user=end_user, endpoint=serializer.validated_data["endpoint"]
        ):
            raise exceptions.NotFound(f"User {user_id!r} has no push subscription for that endpoint.")
        return Response(status=status.HTTP_204_NO_CONTENT)
