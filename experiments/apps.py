from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        from experiments.deciding import DECIDER, ORDER  # models are loaded only once apps are ready
        from paths.deciders import decider_register

        decider_register(DECIDER, order=ORDER)
