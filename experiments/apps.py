from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        # Models are loaded only once apps are ready.
        from analytics.dashboards.registry import register as dashboard_register
        from analytics.metrics.compute import COMPUTERS
        from core.metrics import register_collector
        from experiments import (
            consistency,
            gdpr,  # noqa: F401  (registers the export section)
        )
        from experiments.dashboard import DASHBOARD
        from experiments.deciding import DECIDER, ORDER
        from experiments.selectors import enrollment_arms
        from experiments.template_arms import CHOOSER, CHOOSER_ORDER
        from nudges.content.choosers import chooser_register
        from onboarding.progress.selectors import state_section_register
        from paths.deciders import decider_register

        decider_register(DECIDER, order=ORDER)
        chooser_register(CHOOSER, order=CHOOSER_ORDER)  # template experiments, in the nudge composer
        state_section_register("experiments", enrollment_arms)
        COMPUTERS[consistency.NAME] = consistency.metric_value  # analytics' registry of metric computers
        register_collector(consistency.COLLECTOR)
        dashboard_register(DASHBOARD)  # the experiments dashboard, under "Experiments"
