from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class OnboardingAdminConfig(AdminConfig):
    default_site = "config.admin_site.OnboardingAdminSite"


class ConfigConfig(AppConfig):
    """The composition root as an app, so it can hold the commands that span the layers
    (config/management/commands: seed_demo). It has no models."""

    name = "config"
    verbose_name = "Configuration"
