from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from analytics.events import gdpr as events_gdpr  # noqa: F401  (registers the event rollups' eraser)
        from analytics.metrics.exporter import COLLECTOR  # models are loaded only once apps are ready
        from analytics.rollups import gdpr as rollups_gdpr  # noqa: F401  (registers the enrollment facts' eraser)
        from analytics.signals import gdpr  # noqa: F401  (registers the signals' export and erasure sections)
        from core.metrics import register_collector

        register_collector(COLLECTOR)
