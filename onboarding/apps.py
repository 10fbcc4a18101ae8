from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"
    verbose_name = "Onboarding"

    def ready(self) -> None:
        from onboarding.ingestion import debugger
        from tenancy import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from tenancy import signals as tenancy_signals

        tenancy_signals.api_key_revoked.connect(debugger.publish_api_key_revoked, dispatch_uid="onboarding")
