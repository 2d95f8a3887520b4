"""Touchstone settings: twelve-factor, every value from the environment.

TOUCHSTONE_ENV selects defaults: ``development`` (the default: DEBUG on, insecure key),
``demo`` (DEBUG off, insecure key, loopback only), ``production`` (SECRET_KEY and
ALLOWED_HOSTS required, HTTPS hardening on). The README lists every variable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from touchstone.envfile import EnvFileError, env_file_apply

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


TOUCHSTONE_ENV = os.environ.get("TOUCHSTONE_ENV", "development")
if TOUCHSTONE_ENV not in {"development", "demo", "production"}:
    raise ImproperlyConfigured(
        f"TOUCHSTONE_ENV={TOUCHSTONE_ENV!r}: expected development, demo or production"
    )
IS_PRODUCTION = TOUCHSTONE_ENV == "production"

STATE_DIR = Path(os.environ.get("TOUCHSTONE_STATE_DIR", BASE_DIR / ".state"))
STATE_DIR.mkdir(parents=True, exist_ok=True)

# `make demo` writes the demo stack's settings (Label Studio URL and token, ports, …) to
# <state>/demo.env, so manage.py in any shell reaches that stack. A variable set in the
# environment always wins over the file; the test suite (pytest) never reads it.
DEMO_ENV_FILE = STATE_DIR / "demo.env"
DEMO_ENV_APPLIED: dict[str, str] = {}
if "PYTEST_VERSION" not in os.environ:
    try:
        DEMO_ENV_APPLIED = env_file_apply(DEMO_ENV_FILE, os.environ)
    except EnvFileError as exc:
        raise ImproperlyConfigured(f"{exc} (delete the file; `make demo` writes it again)") from None

DEBUG = env_bool("DJANGO_DEBUG", TOUCHSTONE_ENV == "development")

_INSECURE_KEY = "django-insecure-touchstone-local-only-never-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if IS_PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when TOUCHSTONE_ENV=production")
    SECRET_KEY = _INSECURE_KEY
if IS_PRODUCTION and (SECRET_KEY == _INSECURE_KEY or SECRET_KEY.startswith("django-insecure")):
    raise ImproperlyConfigured("SECRET_KEY is the published development key: set a secret one in production")
if IS_PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when TOUCHSTONE_ENV=production")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if IS_PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
if IS_PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when TOUCHSTONE_ENV=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "touchstone",
    "policies",
    "content",
    "runs",
    "review",
    "goldsets",
    "evaluation",
    "prevalence",
    "monitoring",
    "demo",
    "home",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "touchstone.middleware.ApplicationErrorMiddleware",
]

ROOT_URLCONF = "touchstone.urls"

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

WSGI_APPLICATION = "touchstone.wsgi.application"
ASGI_APPLICATION = "touchstone.asgi.application"

# SQLite by default: WAL so readers don't block the writer, IMMEDIATE transactions and a
# busy timeout so concurrent workers queue for the write lock instead of failing.
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{STATE_DIR / 'touchstone.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so worker processes started by integration tests see the test DB.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("TOUCHSTONE_TEST_SQLITE", str(STATE_DIR / "test.sqlite3"))
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", STATE_DIR / "static"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", STATE_DIR / "media"))

LOGIN_URL = "admin:login"

# HTTPS hardening: on in production (check --deploy is clean), off on loopback.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", IS_PRODUCTION)
SESSION_COOKIE_SECURE = IS_PRODUCTION
CSRF_COOKIE_SECURE = IS_PRODUCTION
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if IS_PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = IS_PRODUCTION
SECURE_HSTS_PRELOAD = IS_PRODUCTION
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "touchstone.errors.drf_exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "touchstone.api_tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "touchstone.api_tokens.TokenScopePermission",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["touchstone.throttles.SharedScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api": os.environ.get("API_THROTTLE_RATE", "1200/min"),
        "export": os.environ.get("API_EXPORT_THROTTLE_RATE", "60/min"),
    },
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Touchstone API",
    "DESCRIPTION": "Golden sets for content-safety measurement: versions, statistics, items, exports, diffs. "
                   "Authenticate with `Authorization: Bearer <key>` (create keys in the admin or with "
                   "`manage.py apitoken create`); read-scoped keys can only read.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Offline: the docs' JavaScript and CSS come from the sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: JSON only, late acks, one message at a time per worker process, queues by kind.
# The broker defaults to the Redis that `make demo` starts, on TOUCHSTONE_REDIS_PORT.
CELERY_BROKER_URL = (os.environ.get("CELERY_BROKER_URL")
                     or f"redis://127.0.0.1:{env_int('TOUCHSTONE_REDIS_PORT', 6390)}/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# LLM endpoint (any OpenAI-compatible server); the bundled simulator by default.
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8011/v1")
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "sk-touchstone-simulator")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 60)

# Label Studio (used from the human-review issue on).
LABEL_STUDIO_URL = os.environ.get("LABEL_STUDIO_URL", "http://127.0.0.1:8090")
LABEL_STUDIO_API_TOKEN = os.environ.get("LABEL_STUDIO_API_TOKEN", "")
# Label Studio calls this back with annotation events; the shared secret rides in a header.
LABEL_STUDIO_WEBHOOK_URL = os.environ.get("LABEL_STUDIO_WEBHOOK_URL", "")
LABEL_STUDIO_WEBHOOK_SECRET = os.environ.get("LABEL_STUDIO_WEBHOOK_SECRET", "")
LABEL_STUDIO_WEBHOOK_HEADER = "X-Touchstone-Webhook-Secret"
# Where labelers' browsers reach Touchstone (for item images shown in Label Studio tasks).
TOUCHSTONE_PUBLIC_URL = os.environ.get("TOUCHSTONE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Seconds an image URL in a Label Studio task stays valid; pushes and syncs sign them again at half.
REVIEW_IMAGE_URL_TTL = env_int("REVIEW_IMAGE_URL_TTL", 7 * 24 * 3600)
# How long a push waits (with backoff) for an unreachable Label Studio before giving up.
LABEL_STUDIO_RETRY_SECONDS = env_float("LABEL_STUDIO_RETRY_SECONDS", 300)

# Labeler quality on hidden gold: flagged below this accuracy after this many gold items;
# paused too when auto-pause is on (otherwise a person pauses them from the CLI or admin).
LABELER_MIN_GOLD_ACCURACY = env_float("LABELER_MIN_GOLD_ACCURACY", 0.7)
LABELER_MIN_GOLD_ITEMS = env_int("LABELER_MIN_GOLD_ITEMS", 10)
LABELER_AUTO_PAUSE = os.environ.get("LABELER_AUTO_PAUSE", "false").lower() in ("1", "true", "yes")

# Offline token counting: tiktoken only reads encodings already in this cache.
TIKTOKEN_CACHE_DIR = os.environ.get("TIKTOKEN_CACHE_DIR", str(STATE_DIR / "tiktoken"))

# The cache holds the API throttles' counts: in Redis (database 1 of the broker's server by
# default) so a limit holds across every web process; "locmem://" keeps it per process, which
# development and the tests use unless CACHE_URL says otherwise.
CACHE_URL = os.environ.get("CACHE_URL") or (
    "locmem://" if TOUCHSTONE_ENV == "development" else re.sub(r"/\d*$", "", CELERY_BROKER_URL) + "/1")
if CACHE_URL == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": "touchstone",
                          "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}}
else:
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: expected redis://HOST:PORT/DB or locmem://")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # One line per HTTP request is noise at labeling-run volumes.
    "loggers": {"httpx": {"level": "WARNING"}, "openai": {"level": "WARNING"}},
}

# Content import limits. A bad image fails its item, never the import.
CONTENT_PARTS = env_list("CONTENT_PARTS", [
    "query", "response", "context", "text", "prompt", "title", "user", "agent", "prev_user", "prev_agent",
])
CONTENT_MAX_PART_CHARS = env_int("CONTENT_MAX_PART_CHARS", 100000)
CONTENT_MAX_IMAGES = env_int("CONTENT_MAX_IMAGES", 8)
CONTENT_IMAGE_MAX_BYTES = env_int("CONTENT_IMAGE_MAX_BYTES", 20 * 1024 * 1024)
CONTENT_IMAGE_MAX_PIXELS = env_int("CONTENT_IMAGE_MAX_PIXELS", 40000000)
CONTENT_IMAGE_MAX_SIDE = env_int("CONTENT_IMAGE_MAX_SIDE", 2048)
CONTENT_IMAGE_THUMBNAIL_SIDE = env_int("CONTENT_IMAGE_THUMBNAIL_SIDE", 256)
CONTENT_IMAGE_HOSTS = env_list("CONTENT_IMAGE_HOSTS", [])
# Local images come only from regular files under the import file's folder or these folders.
CONTENT_IMAGE_ROOTS = env_list("CONTENT_IMAGE_ROOTS", [])
# Only for a local test server: lets allow-listed hosts resolve to loopback/private addresses.
CONTENT_IMAGE_ALLOW_PRIVATE_ADDRESSES = env_bool("CONTENT_IMAGE_ALLOW_PRIVATE_ADDRESSES", False)
CONTENT_IMAGE_TIMEOUT_SECONDS = env_float("CONTENT_IMAGE_TIMEOUT_SECONDS", 10)

# Monitors (monitoring/): beat's tick interval; a cycle's claim (a worker killed mid-stage loses
# it after this); how often a labeling or waiting cycle is looked at again; a tick re-queues a
# cycle whose next advance is this overdue; a running run with no progress this long is
# re-queued by its cycle (a backstop: the runs' watchdog does it first); a tick makes at most
# this many missed partitions (older: backfill).
MONITOR_TICK_SECONDS = env_float("MONITOR_TICK_SECONDS", 60)
MONITOR_CYCLE_LEASE_SECONDS = env_float("MONITOR_CYCLE_LEASE_SECONDS", 300)
MONITOR_POLL_SECONDS = env_float("MONITOR_POLL_SECONDS", 30)
MONITOR_REQUEUE_GRACE_SECONDS = env_float("MONITOR_REQUEUE_GRACE_SECONDS", 120)
MONITOR_RUN_STALE_SECONDS = env_float("MONITOR_RUN_STALE_SECONDS", 900)
MONITOR_CATCH_UP_PARTITIONS = env_int("MONITOR_CATCH_UP_PARTITIONS", 3)

# Alerts go to this webhook (empty: stored and shown, not sent), as JSON signed with HMAC-SHA256
# under the shared secret (X-Touchstone-Signature over "timestamp.body"); failed attempts are
# retried with exponential backoff (base doubling to the cap) up to the attempt limit, and beat's
# sweep re-sends any due alert every ALERT_WEBHOOK_SWEEP_SECONDS.
ALERT_WEBHOOK_URL = os.environ.get("TOUCHSTONE_ALERT_WEBHOOK_URL", "")
ALERT_WEBHOOK_SECRET = os.environ.get("TOUCHSTONE_ALERT_WEBHOOK_SECRET", "")
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_float("TOUCHSTONE_ALERT_WEBHOOK_TIMEOUT_SECONDS", 10)
ALERT_WEBHOOK_MAX_ATTEMPTS = env_int("TOUCHSTONE_ALERT_WEBHOOK_MAX_ATTEMPTS", 40)
ALERT_WEBHOOK_BACKOFF_SECONDS = env_float("TOUCHSTONE_ALERT_WEBHOOK_BACKOFF_SECONDS", 5)
ALERT_WEBHOOK_BACKOFF_MAX_SECONDS = env_float("TOUCHSTONE_ALERT_WEBHOOK_BACKOFF_MAX_SECONDS", 600)
ALERT_WEBHOOK_SWEEP_SECONDS = env_float("TOUCHSTONE_ALERT_WEBHOOK_SWEEP_SECONDS", 60)
if IS_PRODUCTION and ALERT_WEBHOOK_URL and not ALERT_WEBHOOK_SECRET:
    raise ImproperlyConfigured("TOUCHSTONE_ALERT_WEBHOOK_SECRET must be set with TOUCHSTONE_ALERT_WEBHOOK_URL "
                               "when TOUCHSTONE_ENV=production")
