from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"
    verbose_name = "Onboarding"

    def ready(self) -> None:
        from tenancy import schema  # noqa: F401  (registers the OpenAPI auth extension)
