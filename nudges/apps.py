from django.apps import AppConfig


class NudgesConfig(AppConfig):
    name = "nudges"
    verbose_name = "Nudges"

    def ready(self):
        from nudges import gdpr  # noqa: F401  (registers the export and erasure sections)
        from nudges.end_user_panel import timeline_html
        from nudges.triggers import receivers
        from onboarding import signals as onboarding_signals
        from onboarding.end_user_panels import end_user_panel_register

        onboarding_signals.enrollment_started.connect(receivers.enrollment_started, dispatch_uid="nudges")
        onboarding_signals.steps_completed.connect(receivers.steps_completed, dispatch_uid="nudges")
        onboarding_signals.events_stored.connect(receivers.events_stored, dispatch_uid="nudges")
        end_user_panel_register(
            key="timeline",
            label="timeline: events, steps and nudges with their decision traces",
            render=timeline_html,
        )
