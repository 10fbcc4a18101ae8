from django.apps import AppConfig


class TenancyConfig(AppConfig):
    """Workspaces, API keys and end users: what every other app is scoped by."""

    name = "tenancy"
    verbose_name = "Tenancy"
