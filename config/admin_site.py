"""The admin site: password plus a verified TOTP device for every page (django-otp).

Every admin registered on it records its changes in the audit log (tenancy/admin_changes.py),
and every sign-in attempt is recorded too (tenancy/admin_security.py).
"""

from django import forms
from django.contrib.admin import ModelAdmin
from django.contrib.auth.signals import user_login_failed
from django.http import HttpResponse
from django.urls import path
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice

from analytics.dashboards import views as dashboard_views
from analytics.dashboards.registry import dashboards
from config.admin_navigation import grouped_app_list
from tenancy import admin_security
from tenancy.admin_changes import audited


class AdminAuthenticationForm(OTPAdminAuthenticationForm):
    """Password and authenticator code on the first attempt.

    django-otp asks which device to check (so a wrong code never counts against another
    device). An admin with exactly one authenticator app needs no choice: that one is used.
    """

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is None:
            devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True)[:2])
            if not devices:
                raise forms.ValidationError(
                    "No authenticator app is enrolled for this account. An administrator enrols "
                    "one with: python manage.py otp_enrol --username <name>",
                    code="no_device",
                )
            if len(devices) == 1:
                return devices[0]
        return device

    def clean_otp(self, user):
        try:
            super().clean_otp(user)
        except forms.ValidationError:
            # A right password with a wrong code counts as a failed attempt for the lockout
            # (django-axes listens to this signal) just as a wrong password does.
            self.request.admin_login_failure = "wrong_otp_token"
            user_login_failed.send(
                sender=type(self), credentials={"username": user.get_username()}, request=self.request
            )
            raise


class OnboardingAdminSite(OTPAdminSite):
    site_header = "Onboarding platform"
    site_title = "Onboarding platform"
    index_title = "Overview"
    login_form = AdminAuthenticationForm
    index_template = "admin/onboarding_index.html"

    def register(self, model_or_iterable, admin_class=None, **options):
        super().register(model_or_iterable, audited(admin_class or ModelAdmin), **options)

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        if request.method == "POST":
            admin_security.record_login_attempt(request, response)
        return response

    def get_urls(self):
        """The analytics dashboards, one URL per registered key (so /admin/analytics/<model>/
        of the analytics app's own models stays the model admin's)."""
        view = self.admin_view(dashboard_views.dashboard_view)
        dashboard_urls = [
            path(f"analytics/{entry.key}/", view, {"key": entry.key}, name=dashboard_views.URL_NAME)
            for entry in dashboards()
        ]
        return [*dashboard_urls, *super().get_urls()]

    def get_app_list(self, request, app_label=None):
        """The index and the sidebar in the team's workflow sections (config/admin_navigation.py);
        an app's own page (/admin/<app>/) keeps Django's list of that app."""
        app_list = super().get_app_list(request, app_label)
        return app_list if app_label else grouped_app_list(request, app_list)

    def index(self, request, extra_context=None):
        """The Overview home: the analytics overview of the chosen workspace and range."""
        overview = dashboard_views.overview_context(request)
        if isinstance(overview, HttpResponse):
            return overview
        extra_context = {
            **(extra_context or {}),
            **overview,
            "recent_logins": admin_security.recent_logins(user=request.user),
        }
        response = super().index(request, extra_context)
        if overview.get("errors"):
            response.status_code = 400
        return response
