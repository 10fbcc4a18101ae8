from django.apps import AppConfig


class NudgesConfig(AppConfig):
    name = "nudges"
    verbose_name = "Nudges"

    def ready(self):
        from nudges import gdpr  # noqa: F401  (registers the export and erasure sections)
