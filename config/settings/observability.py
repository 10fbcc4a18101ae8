"""Logs (JSON lines on stderr, user ids digested) and Sentry. Prometheus's directory is set first,
in base."""

from config.settings.base import env

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    # User ids in request paths become keyed digests (core.logging): on the console handler for
    # every record that reaches it, and on the loggers that print paths, before any handler.
    "filters": {"user_ids": {"()": "core.logging.UserIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["user_ids"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes writes user names and full client addresses; admin sign-ins are audit rows.
        "axes": {"level": "ERROR"},
        # Its 4xx warnings ("Not Found: <path>"). uvicorn's loggers get the filter in place from
        # config.asgi: the server configured them before Django loaded (core.logging).
        "django.request": {"filters": ["user_ids"]},
    },
}

SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        integrations=[DjangoIntegration(), RqIntegration()],
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,
    )
