"""Services: the database, and Redis for RQ queues, the channel layer and the cache. Without
DATABASE_URL and REDIS_URL: SQLite, jobs in-process, an in-memory channel layer and cache."""

from config.settings.base import VAR_DIR, env

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

# --- Operator mail (anomaly alerts: analytics/alerts/notify.py) through Django's own email backend.
# Nudges never use it: nudges/gateways/email.py builds each workspace's backend (anymail or SMTP).
# EMAIL_URL: smtp://user:password@host:587, smtp+tls:// (STARTTLS), smtp+ssl:// (465), consolemail://.
# Unset: Django's defaults, SMTP to localhost:25 with no credentials.
# A mail server that stops answering must not hold an alert job (or a worker) for ever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
if env.str("EMAIL_URL", default=""):
    globals().update(
        {
            name: value
            for name, value in env.email_url("EMAIL_URL").items()
            if name.startswith("EMAIL_") and value not in (None, "")
        }
    )
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")
SERVER_EMAIL = env.str("SERVER_EMAIL", default="root@localhost")  # the sender of operator mail
