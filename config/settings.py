"""Settings for every environment.

Production differs from development only by environment variables (see docs/operations.md, "Configuration").
Without DATABASE_URL and REDIS_URL the project runs on the embedded default: SQLite, jobs run
in-process, an in-memory channel layer and a local-memory cache.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from csp import constants as csp

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

# Prometheus metrics from every process (web and RQ workers) are summed at /metrics: each process
# writes its own files here (core/metrics.py). Set before any module creates a metric.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY",
    default="django-insecure-development-only-key-set-DJANGO_SECRET_KEY-in-production",
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- Security. TLS usually ends at a proxy, which sets X-Forwarded-Proto.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
if env.bool("DJANGO_TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# django-csp: every response. Nothing inline runs or styles without the request's nonce
# ({{ request.csp_nonce }} on a <style> or <script>; the admin's own templates need none).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.NONCE],
        "img-src": [csp.SELF, "data:"],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}
# django-permissions-policy: no page here uses a device feature, so none may be asked for.
DEVICE_FEATURES = (
    "accelerometer",
    "camera",
    "geolocation",
    "gyroscope",
    "magnetometer",
    "microphone",
    "payment",
    "usb",
)
PERMISSIONS_POLICY = {feature: [] for feature in DEVICE_FEATURES}

INSTALLED_APPS = [
    "config.apps.OnboardingAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "guardian",
    "axes",
    "rangefilter",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "django_rq",
    "channels",
    "tenancy",
    "onboarding",
    "paths",
    "guardrails",
    "nudges",
    "analytics",
    "config.apps.ConfigConfig",
    "anymail",
]

MIDDLEWARE = [
    # Outermost, so that an API request's time and 5xx count cover every middleware below.
    "core.middleware.request_metrics.RequestMetricsMiddleware",
    "core.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so that static files carry the policies too (an SVG opened directly).
    "core.middleware.content_security_policy.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.cache_control.NoStoreApiMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tenancy.admin_security.AdminIdleTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Threads per server process that run HTTP requests (core.http); more only queue on the GIL.
HTTP_THREADS = env.int("HTTP_THREADS", default=4)

# --- Database: PostgreSQL (psycopg 3) in production, SQLite for the embedded demo.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif env.bool("DATABASE_POOL", default=True):
    # HTTP requests (core.http) and websocket consumers' database calls run in different
    # threads: a per-process psycopg pool lends each of them a connection.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=16),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # With or without the pool: parallel test runs on one server each need a database of their own.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str("DATABASE_TEST_NAME", default=None)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: RQ queues, channel layer and cache. Absent: in-process equivalents.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "core.redis_cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

RQ_QUEUES = {
    name: {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 600}
    for name in ("default", "low")
}
# Without Redis, jobs run in-process right after the transaction that queued them commits.
JOBS_RUN_INLINE = env.bool("JOBS_RUN_INLINE", default=not REDIS_URL)
# ... and the periodic jobs (config.cron.SCHEDULE) run in the server's process, from the ASGI
# lifespan (config.periodic), where production runs `manage.py rqcron config.cron`.
PERIODIC_JOBS_IN_PROCESS = env.bool("PERIODIC_JOBS_IN_PROCESS", default=JOBS_RUN_INLINE)

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out sign-ins before any check
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Onboarding platform")

# --- Admin security (tenancy/admin_security.py). Idle admin sessions end; only /admin/ is looked at.
ADMIN_SESSION_IDLE_SECONDS = env.int("ADMIN_SESSION_IDLE_SECONDS", default=30 * 60)
# Behind a proxy that appends the client to X-Forwarded-For: lockouts count per real client.
# The one switch for the server too: uvicorn reads X-Forwarded-* only when it is on (config/serve.py,
# the Makefile), and then only from the proxy addresses in FORWARDED_ALLOW_IPS (default 127.0.0.1).
TRUST_X_FORWARDED_FOR = env.bool("DJANGO_TRUST_X_FORWARDED_FOR", default=False)
# Sign-in attempts (django-axes): after AXES_FAILURE_LIMIT failures (wrong password or wrong
# authenticator code) for one user name, or from one address, sign-in pauses for the cool-off.
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("ADMIN_LOGIN_COOLOFF_SECONDS", default=15 * 60))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_ONLY_ADMIN_SITE = True
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "tenancy.admin_security.client_ip"
AXES_LOCKOUT_CALLABLE = "tenancy.admin_security.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token"]
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are audit rows, with the address truncated
AXES_VERBOSE = False  # its log lines carry user names and full addresses

# --- Provider credentials per workspace (guardrails/secrets/) are encrypted with these
# Fernet keys, comma-separated: the first encrypts, all decrypt, so a new key goes first and an
# old one leaves after `manage.py secrets_rotate`. Required in production (check --deploy);
# left empty, development and tests use a key derived from SECRET_KEY.
SECRETS_ENCRYPTION_KEY = env.list("SECRETS_ENCRYPTION_KEY", default=[])
GUARDIAN_RAISE_403 = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Onboarding platform API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Browsers send events from the customer's own site: ingestion answers any origin. The
# write key is public by design and no cookie is ever read there.
# The progress, preferences, inbox and push-subscription APIs are called from browsers too, with
# an end-user token in Authorization. What needs a secret key (tokens, export, erasure) is called
# from the customer's server: it answers no origin.
CORS_URLS_REGEX = (
    r"^/(v1/.*|api/v1/signals|api/v1/users/[^/]+/(onboarding|preferences|nudges|push-subscriptions)(/.*)?)$"
)
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_HEADERS = ["authorization", "content-type", "content-encoding", "x-retry-count", "if-match"]
CORS_EXPOSE_HEADERS = ["etag", "retry-after"]
CORS_PREFLIGHT_MAX_AGE = 86400

# --- Ingestion limits, from Segment's HTTP Tracking API.
INGEST_MAX_EVENT_BYTES = env.int("INGEST_MAX_EVENT_BYTES", default=32 * 1024)
INGEST_MAX_BATCH_BYTES = env.int("INGEST_MAX_BATCH_BYTES", default=500 * 1024)
# Calls per /v1/batch, counted before any is validated. Segment's libraries send 20-100 per
# batch; 500 KB of the smallest calls would be ~17,000, which a compressed body makes cheap to send.
INGEST_MAX_BATCH_EVENTS = env.int("INGEST_MAX_BATCH_EVENTS", default=2_500)

# --- Ingestion rate limits per API key (guardrails/abuse/ratelimit.py), counted in events: a batch of 100
# is 100. Sustained rate per second plus a burst; 0 turns a limit off. One key may use the whole
# platform target (10,000 events/s), not more; an over-limit request gets 429 and Retry-After.
INGEST_RATE_LIMIT_EVENTS_PER_SECOND = env.float("INGEST_RATE_LIMIT_EVENTS_PER_SECOND", default=10_000)
INGEST_RATE_LIMIT_EVENTS_BURST = env.int("INGEST_RATE_LIMIT_EVENTS_BURST", default=20_000)
INGEST_RATE_LIMIT_IDENTIFIES_PER_SECOND = env.float("INGEST_RATE_LIMIT_IDENTIFIES_PER_SECOND", default=1_000)
INGEST_RATE_LIMIT_IDENTIFIES_BURST = env.int("INGEST_RATE_LIMIT_IDENTIFIES_BURST", default=2_000)
# The limiter's Redis calls give up after this; the request is then let through and counted.
ABUSE_REDIS_TIMEOUT_SECONDS = env.float("ABUSE_REDIS_TIMEOUT_SECONDS", default=0.1)

# --- End-user tokens (progress API and websocket from browsers and apps): revoked by expiry only.
END_USER_TOKEN_LIFETIME = env.int("END_USER_TOKEN_LIFETIME", default=15 * 60)  # seconds

# --- Survey signals (analytics/signals): raw payloads go to object storage, never to the database.
# A directory (default, `make run`) or s3://bucket/prefix on any S3-compatible store.
SIGNALS_STORAGE_URL = env.str("SIGNALS_STORAGE_URL", default=str(VAR_DIR / "signals"))
SIGNALS_S3_ENDPOINT_URL = env.str("SIGNALS_S3_ENDPOINT_URL", default="")  # empty: AWS itself
SIGNALS_S3_REGION = env.str("SIGNALS_S3_REGION", default="us-east-1")
# Empty: boto3's own chain (AWS_* variables, instance role).
SIGNALS_S3_ACCESS_KEY_ID = env.str("SIGNALS_S3_ACCESS_KEY_ID", default="")
SIGNALS_S3_SECRET_ACCESS_KEY = env.str("SIGNALS_S3_SECRET_ACCESS_KEY", default="")
SIGNALS_MAX_BODY_BYTES = env.int("SIGNALS_MAX_BODY_BYTES", default=16 * 1024)
# The stage prefix of every signal and report object: dev, staging, prod; never mixed.
ANALYTICS_ENVIRONMENT = env.str("ANALYTICS_ENVIRONMENT", default="dev" if DEBUG else "prod")

# --- Guardrails policy engine (guardrails/policy/engine.py): a check that overruns its budget denies.
POLICY_CHECK_TIMEOUT_SECONDS = env.float("POLICY_CHECK_TIMEOUT_SECONDS", default=0.5)
# Absolute links in emails (one-click unsubscribe): the address the public reaches this site at.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Data regions (guardrails/regions.py): calls carrying user data go only to the endpoint of the
# workspace's region, <VARIABLE>_US or <VARIABLE>_EU (e.g. OPENAI_BASE_URL_EU). The plain variable
# (OPENAI_BASE_URL) is the US endpoint. A region left unset blocks those calls; never a fallback.
REGION_ENDPOINT_VARIABLES = {
    "llm": "OPENAI_BASE_URL",
    "email": "SENDGRID_API_URL",
    "sms": "TWILIO_API_URL",
    "push": "PUSH_API_URL",
    "intercom": "INTERCOM_API_URL",
    "segment_destinations": "SEGMENT_DESTINATIONS_URL",
}
REGION_ENDPOINTS = {
    service: {
        "us": env.str(f"{variable}_US", default=env.str(variable, default="")).rstrip("/"),
        "eu": env.str(f"{variable}_EU", default="").rstrip("/"),
    }
    for service, variable in REGION_ENDPOINT_VARIABLES.items()
}
# --- Nudges (nudges/): the LLM that personalises them, and their providers.
# Without OPENAI_API_KEY every nudge uses its static template (the admin's preview says so).
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=3.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
LLM_MAX_COMPLETION_TOKENS = env.int("LLM_MAX_COMPLETION_TOKENS", default=400)
LLM_PRICE_PER_1K_PROMPT_TOKENS_USD = env.float("LLM_PRICE_PER_1K_PROMPT_TOKENS_USD", default=0.00015)
LLM_PRICE_PER_1K_COMPLETION_TOKENS_USD = env.float("LLM_PRICE_PER_1K_COMPLETION_TOKENS_USD", default=0.0006)
LLM_CACHE_SECONDS = env.int("LLM_CACHE_SECONDS", default=24 * 3600)
# A provider that failed three times in a row is skipped (its backup used) for this long.
NUDGE_PROVIDER_COOLDOWN_SECONDS = env.int("NUDGE_PROVIDER_COOLDOWN_SECONDS", default=300)
NUDGE_PROVIDER_TIMEOUT_SECONDS = env.float("NUDGE_PROVIDER_TIMEOUT_SECONDS", default=5.0)
# Raw analytics queries (event funnels, cohorts) stop after this long; the last result is shown.
ANALYTICS_RAW_QUERY_TIMEOUT_MS = env.int("ANALYTICS_RAW_QUERY_TIMEOUT_MS", default=10000)
ANALYTICS_ALERT_EMAILS = env.list("ANALYTICS_ALERT_EMAILS", default=[])  # anomaly alerts; empty: no mail
ANALYTICS_ALERT_WEBHOOK_URL = env.str("ANALYTICS_ALERT_WEBHOOK_URL", default="")  # Slack-like; "": off
# A worker holds a nudge this long (longer than its slowest run: LLM, provider timeouts, failover);
# the due sweep re-queues or reconciles it once the lease runs out (nudges.delivery.pipeline).
NUDGE_LEASE_SECONDS = env.int("NUDGE_LEASE_SECONDS", default=300)

# GDPR erasure (guardrails/gdpr/erasure.py): histories up to this many events are erased within the
# DELETE request; longer ones by an RQ job (202 with its id).
GDPR_ERASE_INLINE_MAX_EVENTS = env.int("GDPR_ERASE_INLINE_MAX_EVENTS", default=5000)

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
