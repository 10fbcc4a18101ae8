"""The project's own apps: ingestion limits, end-user tokens, signals, guardrails (policy, data
regions, GDPR), nudges and the LLM, analytics."""

from config.settings.base import DEBUG, VAR_DIR, env

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

# --- The ML layer (ml/; docs/ml.md).
# Share of path choices randomised among the eligible paths (logged with their propensity), so
# that a path classifier can learn what the rules never tried.
ML_EXPLORATION_SHARE = env.float("ML_EXPLORATION_SHARE", default=0.05)
# A model's answer slower than this is thrown away and the rules decide (the reason says so).
ML_LATENCY_BUDGET_MS = env.float("ML_LATENCY_BUDGET_MS", default=20.0)
# Features read while Redis is down come from this process's cache up to this old, else PostgreSQL.
ML_FEATURE_CACHE_SECONDS = env.int("ML_FEATURE_CACHE_SECONDS", default=300)
# Redis socket timeout for the feature store: a slow Redis costs a decision this much at most.
ML_FEATURE_STORE_TIMEOUT_SECONDS = env.float("ML_FEATURE_STORE_TIMEOUT_SECONDS", default=0.05)
# Real-time behavioural counters in Redis, updated from ingestion (ml/features/receivers.py); off,
# the store reads PostgreSQL for every person (bench/ml_ingest.py compares the two).
ML_FEATURE_STORE_REALTIME = env.bool("ML_FEATURE_STORE_REALTIME", default=True)
# A person's Redis counters expire this long after their last write (an inactive person's next
# read recomputes them from PostgreSQL).
ML_FEATURE_STORE_TTL_DAYS = env.int("ML_FEATURE_STORE_TTL_DAYS", default=35)
# A path counts as activated when its enrollment completed within this many days of enrolment.
ML_ACTIVATION_DAYS = env.int("ML_ACTIVATION_DAYS", default=14)
