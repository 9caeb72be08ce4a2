"""Vigil settings. Everything comes from the environment; see .env.example for every name."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from console.env import env_bool, env_int, env_list, env_str, secret_key_from_file

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VIGIL_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or secret_key_from_file(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Behind TLS (production): secure cookies, HSTS, redirect. Off for `make run` on http://localhost.
HTTPS = env_bool("HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "axes",
    "console",
    "accounts",
    "findings",
    "intel",
    "ingest",
    "gdapi",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "console.middleware.ContentSecurityPolicyMiddleware",
    "console.middleware.ServiceErrorMiddleware",
    "accounts.middleware.ActiveAccountMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.active_account",
            ],
        },
    },
]

# Database: DATABASE_URL, or a SQLite file under var/ that needs no server.
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'vigil.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters travel beside the statement instead of being quoted into its text by psycopg in
    # Python: a batch's findings upsert carries thousands of values, many of them JSON documents.
    # (Prepared statements stay off, Django's default, so plans are never generic.)
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL and IMMEDIATE transactions let the web server and the worker write the same file.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so a real worker process started by the tests sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Celery: Redis when CELERY_BROKER_URL is set, otherwise kombu's filesystem transport under var/
# so the same worker code runs on a laptop with no server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Broadcast/control exchanges; kombu would otherwise write them into the working directory.
        "control_folder": str(_broker_dir / "control"),
        # kombu polls the folder (default every second) and, with a full prefetch window, also
        # sleeps that long after each task: one object per second at best. A tenth keeps tasks
        # flowing for the cost of ten directory listings a second when idle.
        "polling_interval": 0.1,
    }
else:
    # Longer than the hard time limit, so a long object is never redelivered while still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 600
CELERY_TASK_TIME_LIMIT = 900
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    # Discovery of new log objects for every enabled detector's sources (listing or SQS).
    "ingest-discover": {
        "task": "ingest.discover_all",
        "schedule": float(env_int("VIGIL_INGEST_DISCOVER_SECONDS", 60)),
        "options": {"expires": 240},
    },
    # Pending ledger rows whose task was lost (worker killed, broker restarted): queued again.
    "ingest-sweep-stale": {
        "task": "ingest.sweep_stale",
        "schedule": float(env_int("VIGIL_INGEST_SWEEP_SECONDS", 300)),
        "options": {"expires": 600},
    },
    # Sources with an SQS queue of S3 event notifications: read often (an empty receive is cheap).
    "ingest-discover-sqs": {
        "task": "ingest.discover_notified",
        "schedule": float(env_int("VIGIL_INGEST_SQS_SECONDS", 5)),
        "options": {"expires": 30},
    },
    # Instances, ENIs and addresses from DescribeInstances, so findings name instances.
    "ingest-inventory": {
        "task": "ingest.inventory_refresh_all",
        "schedule": float(env_int("VIGIL_INVENTORY_REFRESH_SECONDS", 900)),
        "options": {"expires": 600},
    },
    # Rule state rows (detection windows, histories) older than each rule needs: deleted.
    "ingest-rule-state-expire": {
        "task": "ingest.rule_state_expire",
        "schedule": float(env_int("VIGIL_RULE_STATE_EXPIRE_SECONDS", 3600)),
        "options": {"expires": 1800},
    },
    # Findings to destinations: new ones within a minute, updates at the detector's frequency; the
    # same delivery run exports active findings to S3 destinations every 5 minutes.
    "findings-publish": {"task": "findings.publish", "schedule": 60.0},
    "findings-deliver": {"task": "findings.deliver", "schedule": 30.0},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"anon": "60/min"},
    "EXCEPTION_HANDLER": "console.api.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vigil API",
    "DESCRIPTION": "Threat detection for AWS organisations",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from the installed sidecar package, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "FindingPublishingFrequencyEnum": "accounts.models.Detector.PublishingFrequency",
        "DestinationKindEnum": "findings.rules_models.Destination.Kind",
        "DeliveryKindEnum": "findings.rules_models.Delivery.Kind",
        "DestinationStatusEnum": "findings.rules_models.Destination.Status",
        "DeliveryStatusEnum": "findings.rules_models.Delivery.Status",
    },
}

# Login brute-force protection.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("AXES_ENABLED", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# Product knobs.
VIGIL_MAX_MEMBERS_PER_ADMINISTRATOR = env_int("VIGIL_MAX_MEMBERS_PER_ADMINISTRATOR", 5000)
VIGIL_BULK_ACCOUNTS_MAX = 50
VIGIL_REGIONS = env_list(
    "VIGIL_REGIONS",
    [
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1",
        "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2",
        "af-south-1", "me-south-1",
    ],
)
AWS_ENDPOINT_URL = env_str("AWS_ENDPOINT_URL")
# Ingestion limits against hostile objects (decompression bombs, endless lines): decompressed bytes
# per object, and bytes held whole at once (a line, a record, a non-streamable CloudTrail object).
# A pending object neither dispatched nor taken up by a worker for this long lost its task; longer
# than the hard time limit so a slow attempt is never doubled (a running one is row-locked anyway).
VIGIL_INGEST_STALE_SECONDS = env_int("VIGIL_INGEST_STALE_SECONDS", 1800)
VIGIL_INGEST_MAX_OBJECT_BYTES = env_int("VIGIL_INGEST_MAX_OBJECT_BYTES", 2 * 1024**3)
VIGIL_INGEST_MAX_BUFFER_BYTES = env_int("VIGIL_INGEST_MAX_BUFFER_BYTES", 256 * 1024**2)
# Workers and `analyze` serve large allocations from the heap and keep freed memory for the next
# batch (ingest.allocator): fewer page faults, resident memory held at the process's peak.
VIGIL_INGEST_REUSE_FREED_MEMORY = env_bool("VIGIL_INGEST_REUSE_FREED_MEMORY", True)
# GuardDuty-compatible API (/gd/): allowed clock skew of a SigV4-signed request, as AWS (5 minutes).
VIGIL_GDAPI_MAX_CLOCK_SKEW_SECONDS = env_int("VIGIL_GDAPI_MAX_CLOCK_SKEW_SECONDS", 300)
# Findings console and notifications.
VIGIL_FINDINGS_POLL_SECONDS = env_int("VIGIL_FINDINGS_POLL_SECONDS", 5)
VIGIL_SUPPRESSION_PROPOSAL_THRESHOLD = env_int("VIGIL_SUPPRESSION_PROPOSAL_THRESHOLD", 3)
VIGIL_DESTINATION_QUEUE_MAX = env_int("VIGIL_DESTINATION_QUEUE_MAX", 10000)
VIGIL_DELIVERY_BACKOFF_BASE_SECONDS = env_int("VIGIL_DELIVERY_BACKOFF_BASE_SECONDS", 30)
VIGIL_DELIVERY_BACKOFF_MAX_SECONDS = env_int("VIGIL_DELIVERY_BACKOFF_MAX_SECONDS", 3600)
# Plain-http webhook URLs (development and loopback tests only).
VIGIL_DESTINATIONS_ALLOW_HTTP = env_bool("VIGIL_DESTINATIONS_ALLOW_HTTP", DEBUG)
# Webhooks to loopback/private/link-local addresses (development and loopback tests only).
VIGIL_DESTINATIONS_ALLOW_PRIVATE = env_bool("VIGIL_DESTINATIONS_ALLOW_PRIVATE", DEBUG)

# Detection rule state (ingest.state): windowed rows live their rule's window plus this grace (late
# logs, retries); histories (first sightings, learned addresses, configuration) this many days.
VIGIL_RULE_STATE_GRACE_HOURS = env_int("VIGIL_RULE_STATE_GRACE_HOURS", 6)
VIGIL_RULE_STATE_HISTORY_DAYS = env_int("VIGIL_RULE_STATE_HISTORY_DAYS", 90)

# Behavioural anomaly detection (ingest/anomaly): baselines per account, principal and instance.
VIGIL_ANOMALY_ENABLED = env_bool("VIGIL_ANOMALY_ENABLED", True)
# Days after which a learned habit counts half (exponential decay).
VIGIL_ANOMALY_HALF_LIFE_DAYS = env_int("VIGIL_ANOMALY_HALF_LIFE_DAYS", 14)
# Days a new principal/account/instance learns before its findings are raised (GuardDuty: ~7 days).
VIGIL_ANOMALY_LEARNING_DAYS = env_int("VIGIL_ANOMALY_LEARNING_DAYS", 7)
# While learning: "suppress" findings (default) or raise them at "low" severity.
VIGIL_ANOMALY_LEARNING_MODE = env_str("VIGIL_ANOMALY_LEARNING_MODE", "suppress")
# Lowest anomaly score (nats) that raises a finding; each principal's own calibrated threshold may be higher.
VIGIL_ANOMALY_THRESHOLD = float(env_str("VIGIL_ANOMALY_THRESHOLD", "9.0"))
# Look up source ASNs with geoip2fast's bundled GeoLite2-derived data (attribution in docs/anomaly.md).
VIGIL_ANOMALY_ASN_LOOKUP = env_bool("VIGIL_ANOMALY_ASN_LOOKUP", True)

os.environ.setdefault("POLARS_MAX_THREADS", "1")
