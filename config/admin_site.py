"""The admin site: password plus a verified TOTP device for every page (django-otp)."""

from django import forms
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice


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


class OnboardingAdminSite(OTPAdminSite):
    site_header = "Onboarding platform"
    site_title = "Onboarding platform"
    index_title = "Workspaces, keys, users and events"
    login_form = AdminAuthenticationForm
