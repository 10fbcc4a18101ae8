"""Admin security: idle sessions end, sign-ins and failures are recorded, lockouts explain.

Login attempts are counted and locked out by django-axes (settings AXES_*); this module gives it
the client address and the lockout page, and records every admin sign-in as an audit row
("admin.login", "admin.login_failed", "admin.session_expired") with the address truncated to
its network (/24 for IPv4, /48 for IPv6): enough to tell "office" from "elsewhere", not a person.
"""

import ipaddress
import logging
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from tenancy.audit import audit_record
from tenancy.models import AuditLog

logger = logging.getLogger(__name__)

LAST_SEEN_SESSION_KEY = "admin_last_seen"
LOGIN_ACTIONS = ("admin.login", "admin.login_failed", "admin.session_expired")


def client_ip(request: HttpRequest) -> str:
    """The client's address; behind a proxy (DJANGO_TRUST_X_FORWARDED_FOR) the one it appended."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")


def ip_network_text(address: str) -> str:
    """The address's /24 (IPv4) or /48 (IPv6) network, or "" when it is not an address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def record_login(request: HttpRequest, *, action: str, user=None, reason: str = "") -> None:
    after = {"ip_network": ip_network_text(client_ip(request))}
    if reason:
        after["reason"] = reason
    audit_record(
        workspace=None,
        action=action,
        actor=user,
        # An unknown user name is not written down: it may be a mistyped password.
        actor_label="" if user is not None else "unknown user",
        after=after,
    )
    logger.info("admin.login.recorded", extra={"action": action, "user_id": getattr(user, "pk", None)})


def record_login_attempt(request: HttpRequest, response: HttpResponse) -> None:
    """After a POST to the admin login view: a sign-in when it redirected a signed-in user."""
    if response.status_code == 302 and request.user.is_authenticated:
        record_login(request, action="admin.login", user=request.user)
        return
    username = request.POST.get("username", "")[:150]
    user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if getattr(request, "axes_locked_out", False):
        reason = "locked_out"
    elif getattr(request, "admin_login_failure", ""):  # set by the login form
        reason = request.admin_login_failure
    else:
        reason = "wrong_credentials"
    record_login(request, action="admin.login_failed", user=user, reason=reason)


def recent_logins(*, user, limit: int = 10):
    return AuditLog.objects.filter(actor=user, action__in=LOGIN_ACTIONS).order_by("-created_at", "-pk")[
        :limit
    ]


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out attempt: the login page with the reason, 429."""
    cool_off = int(settings.AXES_COOLOFF_TIME.total_seconds())
    # Rendered now: django-axes hands this over in its middleware, after template rendering.
    response = render(
        request,
        "admin/login_locked_out.html",
        {
            **admin.site.each_context(request),
            "title": "Too many sign-in attempts",
            "minutes": max(1, cool_off // 60),
        },
        status=429,
    )
    response["Retry-After"] = str(cool_off)
    return response


class AdminIdleTimeoutMiddleware:
    """Signs an admin out after ADMIN_SESSION_IDLE_SECONDS without an admin request.

    Only admin paths are looked at (a string prefix test), so the API pays nothing.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self._prefix = None
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def _is_admin(self, request) -> bool:
        if self._prefix is None:
            self._prefix = reverse("admin:index")
        return request.path.startswith(self._prefix)

    def _check(self, request) -> None:
        user = request.user
        if not user.is_authenticated:
            return
        now = int(time.time())
        last_seen = request.session.get(LAST_SEEN_SESSION_KEY)
        if last_seen is not None and now - last_seen > settings.ADMIN_SESSION_IDLE_SECONDS:
            record_login(request, action="admin.session_expired", user=user)
            logout(request)
            minutes = max(1, settings.ADMIN_SESSION_IDLE_SECONDS // 60)
            messages.info(request, f"You were signed out after {minutes} minutes without activity.")
            return
        request.session[LAST_SEEN_SESSION_KEY] = now

    def __call__(self, request):
        if self._is_async:
            return self._acall(request)
        if self._is_admin(request):
            self._check(request)
        return self.get_response(request)

    async def _acall(self, request):
        if self._is_admin(request):
            await sync_to_async(self._check)(request)
        return await self.get_response(request)
