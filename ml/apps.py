from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    verbose_name = "Machine learning"

    def ready(self) -> None:
        # Models are loaded only once apps are ready; each part registers itself with the layer
        # below that asks it (paths' deciders, onboarding's signals and panels, analytics' dashboards).
        from ml.features import receivers as feature_receivers
        from onboarding import signals as onboarding_signals

        onboarding_signals.events_stored.connect(feature_receivers.events_stored, dispatch_uid="ml.features")
        onboarding_signals.steps_completed.connect(
            feature_receivers.steps_completed, dispatch_uid="ml.features"
        )
