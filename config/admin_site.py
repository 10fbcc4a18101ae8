"""The admin site: password plus a verified TOTP device for every page (django-otp)."""

from django_otp.admin import OTPAdminSite


class OnboardingAdminSite(OTPAdminSite):
    site_header = "Onboarding platform"
    site_title = "Onboarding platform"
    index_title = "Workspaces, keys, users and events"
