from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    verbose_name = "Machine learning"

    def ready(self) -> None:
        # Models are loaded only once apps are ready; each part registers itself with the layer
        # below that asks it (paths' deciders, onboarding's signals and panels, analytics' dashboards).
        pass
