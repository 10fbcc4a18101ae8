from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        # Models are loaded only once apps are ready.
        from analytics.metrics.compute import COMPUTERS
        from core.metrics import register_collector
        from experiments import (
            consistency,
            gdpr,  # noqa: F401  (registers the export section)
        )
        from experiments.deciding import DECIDER, ORDER
        from experiments.selectors import enrollment_arms
        from onboarding.progress.selectors import state_section_register
        from paths.deciders import decider_register

        decider_register(DECIDER, order=ORDER)
        state_section_register("experiments", enrollment_arms)
        COMPUTERS[consistency.NAME] = consistency.metric_value  # analytics' registry of metric computers
        register_collector(consistency.COLLECTOR)
