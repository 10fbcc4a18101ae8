from django.contrib.admin.apps import AdminConfig


class OnboardingAdminConfig(AdminConfig):
    default_site = "config.admin_site.OnboardingAdminSite"
