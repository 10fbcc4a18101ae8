from django.apps import AppConfig


class GuardrailsConfig(AppConfig):
    name = "guardrails"
    verbose_name = "Guardrails"

    def ready(self):
        from guardrails.abuse import ratelimit, token_misuse
        from guardrails.gdpr import erased_guard
        from guardrails.policy.end_user_panel import guardrail_decisions_html
        from guardrails.secrets import checks  # noqa: F401  (registers the system checks)
        from onboarding import signals as onboarding_signals
        from onboarding.end_user_panels import end_user_panel_register
        from onboarding.ingestion import guards as ingestion_guards
        from tenancy import signals as tenancy_signals

        ingestion_guards.admission_check_register(ratelimit.ingest_admit)
        ingestion_guards.event_filter_register(erased_guard.without_erased)
        onboarding_signals.ingestion_rejected.connect(
            ratelimit.ingest_rejected_record, dispatch_uid="guardrails"
        )
        end_user_panel_register(
            key="guardrail_decisions", label="guardrail decisions", render=guardrail_decisions_html
        )
        tenancy_signals.token_refused.connect(token_misuse.token_refusal_record, dispatch_uid="guardrails")
