"""mcpcontrol settings: one module, configured only through environment variables.

Every variable is read through a typed helper that raises ImproperlyConfigured naming the
variable, so a bad value stops start-up instead of surfacing later as a strange failure.
Embedded mode (DJANGO_DEBUG on) needs nothing but this folder: SQLite, a file broker, local
memory cache and a generated development encryption key.
"""

import ipaddress
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("MCPCONTROL_RUN_DIR", BASE_DIR / ".run"))

logger = logging.getLogger("mcpcontrol.settings")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_secret(name: str, default: str = "") -> str:
    """Read a secret from NAME, or from the file named by NAME_FILE (Docker/K8s secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE cannot be read: {exc.strerror}") from None
    return os.environ.get(name, default)


def _local_secret(path: Path, make: Callable[[], str]) -> str:
    """A development-only secret kept in a git-ignored file so restarts keep working."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


DEBUG = env_bool("DJANGO_DEBUG", False)
# Embedded mode is the single-folder developer set-up: it relaxes what production must not.
EMBEDDED = DEBUG

SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off")
    from django.core.management.utils import get_random_secret_key

    SECRET_KEY = _local_secret(BASE_DIR / ".dev-secret-key", get_random_secret_key)

ALLOWED_HOSTS = [h.strip() for h in env_str("DJANGO_ALLOWED_HOSTS", "").split(",") if h.strip()]
if not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else []

# --- Encryption of stored secrets -------------------------------------------------------
# Comma-separated Fernet keys, newest first: the first encrypts, all of them decrypt.
_raw_keys = env_secret("MCPCONTROL_ENCRYPTION_KEYS")
ENCRYPTION_KEYS = [k.strip() for k in _raw_keys.split(",") if k.strip()]
if not ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "MCPCONTROL_ENCRYPTION_KEYS is required when DJANGO_DEBUG is off "
            "(comma-separated Fernet keys, newest first)"
        )
    from cryptography.fernet import Fernet

    _dev_key_file = BASE_DIR / ".dev-encryption-key"
    if not _dev_key_file.exists():
        logger.warning(
            "MCPCONTROL_ENCRYPTION_KEYS is not set: generating a development key in %s. "
            "Never use it in production.",
            _dev_key_file,
        )
    ENCRYPTION_KEYS = [_local_secret(_dev_key_file, lambda: Fernet.generate_key().decode())]
for _index, _key in enumerate(ENCRYPTION_KEYS):
    try:
        from cryptography.fernet import Fernet

        Fernet(_key)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            f"MCPCONTROL_ENCRYPTION_KEYS: key #{_index + 1} is not a valid Fernet key "
            "(32 url-safe base64-encoded bytes)"
        ) from None

# Token values (tokens.Token.token): "fernet" (default, the keys above) or "creds-aes-cbc",
# the CREDS_KEY/CREDS_IV format another application sharing the tokens collection reads
# (docs/security.md: weaker, fixed IV and no integrity check, so opt-in and checked here).
TOKEN_CODEC = env_str("MCPCONTROL_TOKEN_CODEC", "fernet").strip() or "fernet"
CREDS_KEY = env_secret("CREDS_KEY").strip()
CREDS_IV = env_secret("CREDS_IV").strip()


def _creds_hex(name: str, value: str, size: int) -> None:
    try:
        valid = len(bytes.fromhex(value)) == size
    except ValueError:
        valid = False
    if not valid:
        raise ImproperlyConfigured(
            f"MCPCONTROL_TOKEN_CODEC=creds-aes-cbc needs {name}: {size} bytes as "
            f"{size * 2} hex characters (python -c 'import secrets; print(secrets.token_hex({size}))')"
        )


if TOKEN_CODEC not in ("fernet", "creds-aes-cbc"):
    raise ImproperlyConfigured(
        f"MCPCONTROL_TOKEN_CODEC must be fernet or creds-aes-cbc, got {TOKEN_CODEC!r}"
    )
if TOKEN_CODEC == "creds-aes-cbc":
    _creds_hex("CREDS_KEY", CREDS_KEY, 32)
    _creds_hex("CREDS_IV", CREDS_IV, 16)

# Pepper for tokens we issue ourselves (stored as HMAC digests, never in plain text).
TOKEN_PEPPER = env_secret("MCPCONTROL_TOKEN_PEPPER", SECRET_KEY)

# --- Applications -----------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files, not a CDN
    "django_celery_beat",
    "django_prometheus",
    "django_structlog",
    "mcpcontrol",  # project-wide management commands
    "audit",
    "servers",
    "credentials",
    "tokens",
    "gateway",
]

MIDDLEWARE = [
    # First: probes and scrapes answer before host checks, sessions, auth and request logs.
    "mcpcontrol.health.OpsEndpointsMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The request id first, then the one log line per request that carries it.
    "audit.middleware.RequestContextMiddleware",
    "mcpcontrol.logs.RequestLogMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost: turns any non-JSON error of an /api/ path into the API's error body.
    "mcpcontrol.api.middleware.JsonErrorsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "mcpcontrol.urls"
WSGI_APPLICATION = "mcpcontrol.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "mcpcontrol" / "templates"],
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

# --- Database ---------------------------------------------------------------------------
_database_url = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process, worker and beat share one SQLite file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# A BigAutoField on SQL, an ObjectIdAutoField on MongoDB (mcpcontrol/lib/ids.py, which asks
# MONGO_URI below): one set of migrations for every backend.
DEFAULT_AUTO_FIELD = "mcpcontrol.lib.ids.PortableAutoField"

# MongoDB (issue 13, docs/storage.md): MONGO_URI selects django-mongodb-backend instead of the
# SQL database above, and this block alone makes every backend-specific decision; the apps
# never branch on the backend. The backend is imported only here, and only when asked for.
MONGO_URI = env_str("MONGO_URI")
MONGO_DB_NAME = env_str("MONGO_DB_NAME", "mcp_gateway")
MIGRATION_MODULES: dict[str, str] = {}
if MONGO_URI:
    if not MONGO_URI.startswith(("mongodb://", "mongodb+srv://")):
        raise ImproperlyConfigured("MONGO_URI must start with mongodb:// or mongodb+srv://")
    if not MONGO_DB_NAME:
        raise ImproperlyConfigured("MONGO_DB_NAME must not be empty when MONGO_URI is set")
    DATABASES = {
        "default": {
            "ENGINE": "mcpcontrol.mongo.backend",  # django_mongodb_backend + partial uniques
            "HOST": MONGO_URI,
            "NAME": MONGO_DB_NAME,
            "CONN_MAX_AGE": 60,
        }
    }
    # ObjectId primary keys everywhere: ours through DEFAULT_AUTO_FIELD, contrib and
    # third-party apps (whose AppConfigs pin AutoField) through mcpcontrol/mongo's AppConfigs,
    # with the migrations the backend's docs prescribe for them (mcpcontrol/mongo/migrations).
    _MONGO_APPS = {
        "django.contrib.admin": ("admin", "MongoAdminConfig"),
        "django.contrib.auth": ("auth", "MongoAuthConfig"),
        "django.contrib.contenttypes": ("contenttypes", "MongoContentTypesConfig"),
        "django_celery_beat": ("django_celery_beat", "MongoBeatConfig"),
    }
    for _app, (_label, _config) in _MONGO_APPS.items():
        INSTALLED_APPS[INSTALLED_APPS.index(_app)] = f"mcpcontrol.mongo.apps.{_config}"
        MIGRATION_MODULES[_label] = f"mcpcontrol.mongo.migrations.{_label}"

# --- Cache and broker -------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}"
    )

if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, but a Redis outage makes it miss instead of raising.
            "BACKEND": "mcpcontrol.lib.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "mcpcontrol",
            # Bounded, so an unreachable Redis costs a request one short wait, not minutes.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
else:
    # Embedded mode: a file cache in the run folder, because the health outcome a worker
    # writes must be visible to the web process (a local-memory cache is per process).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(RUN_DIR / "cache"),
        }
    }
    # A broker that needs no server: kombu's filesystem transport in the run folder.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(RUN_DIR / "broker"),
        "data_folder_out": str(RUN_DIR / "broker"),
        "processed_folder": str(RUN_DIR / "broker-processed"),
        # Exchange tables; kombu's default is ./control in the working directory.
        "control_folder": str(RUN_DIR / "broker-control"),
        "store_processed": False,
    }

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# No result backend, so nothing to expire: without these beat would still schedule
# celery.backend_cleanup every day (it adds it whenever result_expires is set).
CELERY_RESULT_BACKEND = None
CELERY_RESULT_EXPIRES = None
# Workers log through LOGGING below (JSON lines with task and request ids), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- Health engine ----------------------------------------------------------------------
MCPCONTROL_ALLOW_STDIO = env_bool("MCPCONTROL_ALLOW_STDIO", EMBEDDED)
MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = env_bool("MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS", EMBEDDED)
MCPCONTROL_HEALTH_CONCURRENCY = env_int("MCPCONTROL_HEALTH_CONCURRENCY", 50, minimum=1)
MCPCONTROL_HEALTH_FAILURE_THRESHOLD = env_int("MCPCONTROL_HEALTH_FAILURE_THRESHOLD", 3, minimum=1)
MCPCONTROL_HEALTH_INTERVAL_SECONDS = env_int("MCPCONTROL_HEALTH_INTERVAL_SECONDS", 60, minimum=5)
# Days of per-check history (servers.CheckResult) kept for the console's charts and the API.
MCPCONTROL_CHECK_HISTORY_DAYS = env_int("MCPCONTROL_CHECK_HISTORY_DAYS", 7, minimum=1)
MCPCONTROL_OAUTH_REFRESH_INTERVAL_SECONDS = env_int(
    "MCPCONTROL_OAUTH_REFRESH_INTERVAL_SECONDS", 60, minimum=5
)
MCPCONTROL_PUBLIC_URL = env_str("MCPCONTROL_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Items per page of the gateway's tools/list, resources/list, prompts/list (docs/gateway.md).
MCPCONTROL_GATEWAY_PAGE_SIZE = env_int("MCPCONTROL_GATEWAY_PAGE_SIZE", 100, minimum=1)
# Gateway tools/call may answer with SSE: progress relayed, a closed stream cancels the call.
MCPCONTROL_GATEWAY_STREAMING = env_bool("MCPCONTROL_GATEWAY_STREAMING", True)
# How long one outbound OAuth or discovery request may take (connect, read, write each).
MCPCONTROL_HTTP_TIMEOUT_SECONDS = env_int("MCPCONTROL_HTTP_TIMEOUT_SECONDS", 10, minimum=1)
# OAuth refresh requests in flight at once per process (a thread pool, single-flight per grant).
MCPCONTROL_OAUTH_REFRESH_CONCURRENCY = env_int(
    "MCPCONTROL_OAUTH_REFRESH_CONCURRENCY", 16, minimum=1
)
# How long an agent's client config waits for due OAuth refreshes before answering without them.
MCPCONTROL_CONFIG_REFRESH_BUDGET = env_int("MCPCONTROL_CONFIG_REFRESH_BUDGET_MS", 2000) / 1000
# ?client=claude-desktop: hand remote servers to that stdio-only client through
# `npx mcp-remote <url>` (a third-party bridge that sees the credentials) only when enabled.
MCPCONTROL_CONFIG_BRIDGE_REMOTE = env_bool("MCPCONTROL_CONFIG_BRIDGE_REMOTE", False)
# How long POST /servers/{id}/refresh waits for the worker's check before answering 202.
MCPCONTROL_REFRESH_WAIT_SECONDS = env_int("MCPCONTROL_REFRESH_WAIT_SECONDS", 10)

# --- MCP gateway upstreams (gateway/services/sessions.py, docs/gateway.md) ---------------
# Processes a worker keeps per stdio server and resolved environment (calls beyond wait).
MCPCONTROL_GATEWAY_STDIO_PROCESSES = env_int("MCPCONTROL_GATEWAY_STDIO_PROCESSES", 2, minimum=1)
# Seconds an unused upstream session or stdio process is kept before it is closed.
MCPCONTROL_GATEWAY_IDLE_SECONDS = env_int("MCPCONTROL_GATEWAY_IDLE_SECONDS", 60, minimum=1)

# --- Gateway policy (gateway/services/{ratelimit,capture}.py, docs/gateway.md "Policy") -------
# tools/call per minute for an agent whose policy sets no limit of its own; 0: unlimited.
MCPCONTROL_GATEWAY_RATE_LIMIT = env_int("MCPCONTROL_GATEWAY_RATE_LIMIT", 0)
# Store each call's arguments on its ToolCall row (redacted, truncated): off, they are data.
MCPCONTROL_GATEWAY_CAPTURE_ARGUMENTS = env_bool("MCPCONTROL_GATEWAY_CAPTURE_ARGUMENTS", False)
# Characters kept of one captured string value (longer ones are cut and marked).
MCPCONTROL_GATEWAY_CAPTURE_MAX_CHARS = env_int(
    "MCPCONTROL_GATEWAY_CAPTURE_MAX_CHARS", 1000, minimum=16
)

# --- Secret references (mcpcontrol/lib/secret_refs.py, docs/security.md) ----------------
# Which references (env:NAME, file:/path, aws-sm:id#key, vault:mount/path#key) credential
# fields may hold: comma-separated glob patterns over the reference, e.g.
# "env:MCP_SECRET_*,file:/run/secrets/mcp/*,vault:secret/mcp/*". Empty: references are off.
MCPCONTROL_SECRET_REFS = [
    p.strip() for p in env_str("MCPCONTROL_SECRET_REFS").split(",") if p.strip()
]
# Seconds one store request may take, and how long a store's answer is reused.
MCPCONTROL_SECRET_REFS_TIMEOUT = env_int("MCPCONTROL_SECRET_REFS_TIMEOUT", 5, minimum=1)
MCPCONTROL_SECRET_REFS_CACHE_SECONDS = env_int("MCPCONTROL_SECRET_REFS_CACHE_SECONDS", 60)
MCPCONTROL_VAULT_ADDR = env_str("MCPCONTROL_VAULT_ADDR").rstrip("/")
MCPCONTROL_VAULT_TOKEN = env_secret("MCPCONTROL_VAULT_TOKEN")
# AWS credentials come from boto3's usual chain (env, config files, instance role).
MCPCONTROL_AWS_REGION = env_str("MCPCONTROL_AWS_REGION")  # empty: AWS_REGION, config file
MCPCONTROL_AWS_ENDPOINT_URL = env_str("MCPCONTROL_AWS_ENDPOINT_URL")

# --- Auth, REST API ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_PARSER_CLASSES": ["mcpcontrol.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "mcpcontrol.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["mcpcontrol.api.throttling.WritesThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "writes": env_str("MCPCONTROL_THROTTLE_WRITES", "600/min"),
        "token_generation": env_str("MCPCONTROL_THROTTLE_TOKENS", "30/min"),
    },
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(
        minutes=env_int("MCPCONTROL_JWT_ACCESS_MINUTES", 60, minimum=1)
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("MCPCONTROL_JWT_REFRESH_DAYS", 1, minimum=1)),
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "mcpcontrol API",
    "DESCRIPTION": "Control plane for MCP servers: registry, credentials, health and client configs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Served by us (drf-spectacular-sidecar), so /api/docs/ and /api/redoc/ work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "TokenTypeEnum": "tokens.models.Token.Type",
        "ServerScopeEnum": "servers.models.McpServer.Scope",
        "ServerTransportEnum": "servers.models.McpServer.Transport",
        "TransportNameEnum": "servers.document.shapes.TRANSPORT_NAMES",
        "AuthTypeNameEnum": "servers.document.shapes.AUTH_NAMES",
    },
}

# --- Security and resilience (issue 10) ------------------------------------------------
# Kept in one block: these settings answer findings of the security review (docs/security.md).

# How many reverse proxies in front of us each append the address they saw to
# X-Forwarded-For. The client is the address the outermost of them saw (DRF's NUM_PROXIES
# rule); with 0 it is REMOTE_ADDR and the header, which anyone can send, is ignored. Used
# by every throttle, the login throttle and the audit trail's request_ip.
MCPCONTROL_TRUSTED_PROXIES = env_int("MCPCONTROL_TRUSTED_PROXIES", 0)
REST_FRAMEWORK["NUM_PROXIES"] = MCPCONTROL_TRUSTED_PROXIES
# Failed password checks (admin login and API token, counted together) allowed per minute,
# per client address and per username; the next attempt in that minute gets a 429.
MCPCONTROL_LOGIN_FAILURES_PER_MINUTE = env_int(
    "MCPCONTROL_LOGIN_FAILURES_PER_MINUTE", 10, minimum=1
)

# A worker rides out a broker (Redis) outage, even mid-task, and resumes once it returns:
# it retries the connection forever (Celery's default gives up after 100 tries and exits),
# and mcpcontrol.lib.celery_worker.Consumer works around the crash of Celery 5.7.0 when a
# task is in flight. That task is cancelled: it could not acknowledge its message on the
# lost channel, and the message comes back after the visibility timeout.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_CONSUMER = "mcpcontrol.lib.celery_worker:Consumer"

# A connection the database closed (a restart, a failover, an idle timeout) is found out
# before a request uses it, instead of failing that request with a 500. SQLite connections
# are not kept between requests (CONN_MAX_AGE 0): nothing to check.
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# HTTPS. TLS usually ends at a reverse proxy (docs/security.md). When we trust proxies, the
# X-Forwarded-Proto they set says whether the client used HTTPS; the proxy must overwrite
# that header, never pass on the client's own.
if MCPCONTROL_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS tells browsers to use only HTTPS for this host. Right behind a TLS proxy too: it is
# the browser's connection that it protects. Django sends it only on requests it sees as
# HTTPS, so a plain-HTTP set-up (docker compose on localhost) never gets it.
SECURE_HSTS_SECONDS = env_int("MCPCONTROL_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
# The console has a host name of its own; its subdomains are nobody else's.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("MCPCONTROL_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("MCPCONTROL_HSTS_PRELOAD", False)
# Off by default: behind a proxy the proxy redirects http to https, and health probes or
# in-cluster clients talking plain HTTP to the app itself must not be redirected.
SECURE_SSL_REDIRECT = env_bool("MCPCONTROL_SSL_REDIRECT", False)
SILENCED_SYSTEM_CHECKS: list[str] = []
if not SECURE_HSTS_PRELOAD:
    # W021 asks for preload. Browsers' preload lists take months to leave: an operator's
    # decision for the whole domain (MCPCONTROL_HSTS_PRELOAD), never a default.
    SILENCED_SYSTEM_CHECKS.append("security.W021")
if MCPCONTROL_TRUSTED_PROXIES and not SECURE_SSL_REDIRECT:
    # W008 asks for SECURE_SSL_REDIRECT "unless a proxy redirects": ours does. Without
    # trusted proxies the warning stays, as nothing then redirects to HTTPS.
    SILENCED_SYSTEM_CHECKS.append("security.W008")

# --- I18N -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MCPCONTROL_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE


# --- Serving in production: static files, logs, probes, metrics (issue 11) ---------------
# One block, so the deployment concerns read together; MIDDLEWARE above lists their order.
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("MCPCONTROL_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production serves what collectstatic wrote: hashed names, pre-compressed, cached forever.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Created by `make run`/ensure_admin; the password is a secret, so *_FILE works too.
MCPCONTROL_ADMIN_USER = env_str("MCPCONTROL_ADMIN_USER", "admin")
MCPCONTROL_ADMIN_PASSWORD = env_secret("MCPCONTROL_ADMIN_PASSWORD")

# Metrics: django-prometheus wraps the database backend for query counts and latencies.
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends.", 1
)
# prometheus_client picks its storage when first imported, so the folder goes into the
# environment here, before any app imports it. Several processes (gunicorn workers, Celery
# pool children) then write one file each and /metrics adds them up. Wiped on server start.
PROMETHEUS_MULTIPROC_DIR = Path(
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(RUN_DIR / "prometheus"))
)
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
# A Celery worker's own /healthz, /readyz and /metrics (its pod has no web server); 0 = off.
MCPCONTROL_WORKER_HTTP_PORT = env_int("MCPCONTROL_WORKER_HTTP_PORT", 0)
# Who may scrape /metrics: a bearer token, or a client address in the allow-list.
MCPCONTROL_METRICS_TOKEN = env_secret("MCPCONTROL_METRICS_TOKEN")
MCPCONTROL_METRICS_ALLOW = [
    n.strip()
    for n in env_str("MCPCONTROL_METRICS_ALLOW", "127.0.0.0/8,::1").split(",")
    if n.strip()
]
for _network in MCPCONTROL_METRICS_ALLOW:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"MCPCONTROL_METRICS_ALLOW: {_network!r} is not an IP address or network"
        ) from None

# Logs: one structlog pipeline for our lines and every library's. JSON lines in production,
# aligned text in debug (`make run`). Every line of a request carries its request_id and
# user_id (and server_id once a view binds it); a Celery task's lines carry task_id and the
# request_id that enqueued it (django-structlog passes the context in the task headers).
import structlog  # noqa: E402 - logging is configured last, from the settings above

from mcpcontrol import logs  # noqa: E402

_LOG_LEVEL = env_str("MCPCONTROL_LOG_LEVEL", "INFO").upper()
if _LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"MCPCONTROL_LOG_LEVEL must be a log level name, got {_LOG_LEVEL!r}")
DJANGO_STRUCTLOG_CELERY_ENABLED = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": structlog.stdlib.ProcessorFormatter,
            "foreign_pre_chain": logs.SHARED_PROCESSORS,
            "processors": logs.render_processors(json=not DEBUG),
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        "discard": {"class": "logging.NullHandler"},  # not none: that prints via lastResort
    },
    "root": {"handlers": ["console"], "level": _LOG_LEVEL},
    "loggers": {
        # Our RequestLogMiddleware writes the one line per request; these would add a second
        # (django.request for every 4xx/5xx, django.server for runserver's access log).
        "django.request": {"handlers": ["discard"], "propagate": False},
        "django.server": {"handlers": ["discard"], "propagate": False},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        *logs.SHARED_PROCESSORS,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
