"""AskPro settings, read from the environment (see README, "Configuration").

Every variable is parsed strictly: a malformed value stops start-up with a message
naming the variable. With no DATABASE_URL/REDIS_URL the app runs on SQLite with
in-process fallbacks, and /health says so.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

from askpro import env
from askpro.caches import redis_cache

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.boolean("DEBUG", default=False)
SECRET_KEY = env.string("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise env.EnvError("SECRET_KEY", "required unless DEBUG=true")
    SECRET_KEY = "askpro-development-only-secret-key-not-for-production"  # noqa: S105

ALLOWED_HOSTS = env.csv("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
PUBLIC_BASE_URL = env.url("PUBLIC_BASE_URL", ("http", "https"), "http://127.0.0.1:8000")
CALCOM_API_BASE = env.url("CALCOM_API_BASE", ("http", "https"), "https://api.cal.com/v2")
RETELL_API_BASE = env.url("RETELL_API_BASE", ("http", "https"), "https://api.retellai.com")
STRIPE_API_BASE = env.url("STRIPE_API_BASE", ("http", "https"), "https://api.stripe.com")
FIELD_ENCRYPTION_KEYS = env.fernet_keys("FIELD_ENCRYPTION_KEYS")
LOG_LEVEL = env.choice(
    "LOG_LEVEL", "INFO", ("debug", "info", "warning", "error", "critical")
).upper()
LOG_FORMAT = env.choice("LOG_FORMAT", "console" if DEBUG else "json", ("json", "console"))
OTEL_ENABLED = env.boolean("OTEL_ENABLED", default=False)
SENTRY_DSN = env.url("SENTRY_DSN", ("http", "https"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "axes",
    "drf_spectacular",
    "django_structlog",
    "tenants",
    "bookings",
    "webhooks",
    "integrations",
    "monitoring",
]

METRICS_ENABLED = env.boolean("METRICS_ENABLED", default=True)

MIDDLEWARE = [
    # Request id in and out, then django_structlog's request context and access line.
    "monitoring.middleware.RequestContextMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and JS) from STATIC_ROOT, collected at image build.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as its documentation asks: it turns a lockout into a response.
    "axes.middleware.AxesMiddleware",
]
if METRICS_ENABLED:
    # Outermost and innermost, so they time everything between.
    MIDDLEWARE = [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        *MIDDLEWARE,
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ]

ROOT_URLCONF = "askpro.urls"
WSGI_APPLICATION = "askpro.wsgi.application"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username/IP pair before a password is checked.
    "axes.backends.AxesStandaloneBackend",
    "tenants.permissions.MembershipBackend",
]
# Login brute-force protection: 5 failures per username and IP lock out for 15 minutes.
AXES_FAILURE_LIMIT = env.integer("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False  # attempts name users of every company: `manage.py axes_reset`
AXES_VERBOSE = False

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
                "tenants.middleware.company_context",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
DB_STATEMENT_TIMEOUT_MS = env.integer("DB_STATEMENT_TIMEOUT_MS", 5000, minimum=0)
DB_LOCK_TIMEOUT_MS = env.integer("DB_LOCK_TIMEOUT_MS", 2000, minimum=0)
DB_CONN_MAX_AGE = env.integer("DB_CONN_MAX_AGE", 60, minimum=0)


def _database(name: str, default: str) -> dict[str, object]:
    config = env.database(name, default)
    if config["ENGINE"] == "django.db.backends.postgresql":
        # Our backend states the tenant in every statement (tenants/db/base.py); that
        # needs client-side binding and no named (server-side) cursors.
        config["ENGINE"] = "tenants.db"
        config["DISABLE_SERVER_SIDE_CURSORS"] = True
        config["CONN_MAX_AGE"] = DB_CONN_MAX_AGE
        config["CONN_HEALTH_CHECKS"] = True
        # A stuck query or lock must fail the request, not hold a worker.
        config.setdefault("OPTIONS", {})["options"] = (
            f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS} -c lock_timeout={DB_LOCK_TIMEOUT_MS}"
        )
    return config


DATABASES = {"default": _database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# The role that owns the tables and runs `migrate`; defaults to the app's own.
MIGRATION_DATABASE = (
    _database("MIGRATION_DATABASE_URL", "")
    if env.raw("MIGRATION_DATABASE_URL")
    else DATABASES["default"]
)
# The running app's role when the owner migrates (gets grants, is bound by RLS).
DATABASE_APP_ROLE = (
    DATABASES["default"].get("USER")
    if DATABASES["default"].get("USER") != MIGRATION_DATABASE.get("USER")
    else None
)
# Only a role that RLS binds needs the tenant stated in each statement; the owner
# (BYPASSRLS) doesn't -- that is also how `make bench` measures "without RLS".
DATABASES["default"]["TENANT_SETTINGS"] = DATABASE_APP_ROLE is not None
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "tenants.db"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, caches, sessions ----------------------------------------------------------
REDIS_URL = env.url("REDIS_URL", ("redis", "rediss", "unix"))


if REDIS_URL:
    CACHES = {"default": redis_cache(REDIS_URL), "sessions": redis_cache(REDIS_URL)}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "s"},
    }
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "sessions"

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.url("CELERY_BROKER_URL", ("redis", "rediss", "amqp", "memory"), REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"

# --- Webhook inbox ----------------------------------------------------------------------
# How long a worker may hold an event before the sweeper hands it to another.
WEBHOOK_LEASE = timedelta(seconds=env.integer("WEBHOOK_LEASE_SECONDS", 300, minimum=1))
WEBHOOK_SWEEP_SECONDS = env.integer("WEBHOOK_SWEEP_SECONDS", 30, minimum=1)
# A received event not picked up by then is queued again (its message may be lost).
WEBHOOK_STUCK_AFTER = timedelta(seconds=env.integer("WEBHOOK_STUCK_SECONDS", 60, minimum=1))
WEBHOOK_MAX_BODY_BYTES = env.integer("WEBHOOK_MAX_BODY_BYTES", 256 * 1024, minimum=1024)
WEBHOOK_PAYLOAD_RETENTION = timedelta(
    days=env.integer("WEBHOOK_PAYLOAD_RETENTION_DAYS", 7, minimum=1)
)
# Longer than any provider retries (Stripe: 3 days), so a late retry is still a duplicate.
WEBHOOK_DEDUP_RETENTION = timedelta(days=env.integer("WEBHOOK_DEDUP_RETENTION_DAYS", 30, minimum=4))

# --- Customer notifications (bookings.notifications) ------------------------------------
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def _dotted(name: str, default: str) -> str:
    value = env.string(name, default) or default
    if not _DOTTED.match(value):
        raise env.EnvError(name, f"expected a dotted Python path, got {value!r}")
    return value


EMAIL_BACKEND = _dotted(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.string("EMAIL_HOST", "localhost") or "localhost"
EMAIL_PORT = env.integer("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env.string("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env.string("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env.boolean("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.integer("EMAIL_TIMEOUT_SECONDS", 10, minimum=1)  # never block a worker
DEFAULT_FROM_EMAIL = env.string("DEFAULT_FROM_EMAIL", "AskPro <noreply@askpro.invalid>")
# The SMS channel: a class with send(to, body); the default logs (numbers shortened).
SMS_BACKEND = _dotted("SMS_BACKEND", "bookings.notifications.sms.LogSmsChannel")

# --- Data protection (bookings.privacy) -----------------------------------------------
# Call transcripts, recording links and summaries are blanked this many days after the
# call (webhooks.expire_call_data, hourly); the call's facts (times, outcome) stay.
CALL_DATA_RETENTION_DAYS = env.integer("CALL_DATA_RETENTION_DAYS", 90, minimum=1)

# --- Auth, passwords ------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# --- REST API -------------------------------------------------------------------------
WEBHOOK_THROTTLE = env.rate("WEBHOOK_THROTTLE", "6000/min")  # per endpoint and per IP
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "askpro.api_errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "user": env.rate("API_THROTTLE_USER", "600/min"),
        "company": env.rate("API_THROTTLE_COMPANY", "3000/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_PAGINATION_CLASS": "askpro.api_pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AskPro API",
    "DESCRIPTION": "Appointments, availability and the staff app's resources.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- i18n, static ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.boolean("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # HTTPS only, behind a TLS-terminating proxy. Probes and the metrics scraper talk
    # plain HTTP on the private network, so /health* and /metrics are never redirected.
    SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^health", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Only the header's directive; joining browsers' preload lists is a separate request.
    SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", default=True)

# --- Logging, metrics, tracing, error reporting -----------------------------------------
from monitoring.logging import build_logging_config  # noqa: E402

LOGGING = build_logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT, tracing=OTEL_ENABLED)
# X-Request-ID is taken from the caller once monitoring's middleware has checked its shape.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True
# One access line per request (request_finished, with its duration), not two.
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG
# monitoring's middleware binds the client address from REMOTE_ADDR, the one the webhook
# throttle counts by: django-ipware's walk over every forwarding header (spoofable
# anyway) cost more than anything else in the request's logging.
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False
# Publishing carries the request's context into the task's headers; eager tasks run in
# the request and keep its context as it is.
DJANGO_STRUCTLOG_CELERY_ENABLED = not CELERY_TASK_ALWAYS_EAGER
SLOW_QUERY_MS = env.integer("SLOW_QUERY_MS", 200, minimum=0)  # 0 turns the log off

# /metrics answers these networks only, and only with the bearer token when one is set.
METRICS_TOKEN = env.string("METRICS_TOKEN", "") or ""
METRICS_ALLOWED_NETWORKS = env.networks("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
PROMETHEUS_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Health: the inbox counts as behind when its oldest unprocessed event is this old.
HEALTH_INBOX_MAX_AGE = timedelta(seconds=env.integer("HEALTH_INBOX_MAX_AGE_SECONDS", 300))

if SENTRY_DSN:
    from monitoring import sentry

    sentry.configure(SENTRY_DSN, environment=env.string("SENTRY_ENVIRONMENT", "production") or "")
