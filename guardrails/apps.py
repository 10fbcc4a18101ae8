from django.apps import AppConfig


class GuardrailsConfig(AppConfig):
    name = "guardrails"
    verbose_name = "Guardrails"

    def ready(self):
        from guardrails import checks  # noqa: F401  (registers the system checks)
