from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    verbose_name = "Machine learning"

    def ready(self) -> None:
        # Models are loaded only once apps are ready; each part registers itself with the layer
        # below that asks it (paths' deciders, onboarding's signals and panels, analytics' dashboards).
        from analytics.dashboards.registry import register as dashboard_register
        from ml import gdpr  # noqa: F401  (registers the export section and the eraser)
        from ml.dashboard import DASHBOARD as ML_DASHBOARD
        from ml.features import receivers as feature_receivers
        from ml.registry import services as registry_services
        from ml.serving import decider as path_decider
        from ml.serving import loaded as loaded_models
        from ml.serving import panel as path_panel
        from ml.serving import sendtime as send_time_model
        from ml.serving import stuck as stuck_model
        from nudges.delivery.sendtime import send_time_provider_register
        from onboarding import signals as onboarding_signals
        from onboarding.end_user_panels import end_user_panel_register
        from onboarding.stuck.risk import risk_provider_register
        from paths.deciders import decider_register

        decider_register(path_decider.DECIDER, order=path_decider.ORDER)
        # A registry transition (promotion, rollback...): this process serves the new status at once.
        registry_services.status_changed.connect(
            lambda **_: loaded_models.forget(), weak=False, dispatch_uid="ml.serving.loaded"
        )
        onboarding_signals.events_stored.connect(feature_receivers.events_stored, dispatch_uid="ml.features")
        onboarding_signals.steps_completed.connect(
            feature_receivers.steps_completed, dispatch_uid="ml.features"
        )
        end_user_panel_register(key=path_panel.KEY, label=path_panel.LABEL, render=path_panel.render)
        risk_provider_register(stuck_model.stuck_risks)  # the stuck detector: early stuck flags
        send_time_provider_register(send_time_model.best_send_time)  # the response predictor
        dashboard_register(ML_DASHBOARD)  # the ML dashboard, under "Machine learning"
