"""Security: headers and the content security policy, sign-in (passwords, authenticator codes,
lockouts), admin sessions, the encryption keys of provider credentials, and CORS."""

from datetime import timedelta

from csp import constants as csp

from config.settings.base import DEBUG, env

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
