"""Callboard settings: read once, here, from the environment, with safe embedded defaults.

Embedded default (nothing set): SQLite, in-memory channel layer and cache, one process, the
UAPI emulator on 127.0.0.1:8001. Production: ``DATABASE_URL`` (PostgreSQL), ``REDIS_URL``
(channel layer and cache), ``UAPI_*`` pointing at VoipNow. ``.env.example`` lists them all.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CALLBOARD_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _persistent_secret(name: str) -> str:
    """A random secret kept in VAR_DIR, so an embedded install is never run with a key that is
    published in the source, and sessions survive restarts."""
    path = VAR_DIR / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(50)
        path.write_text(value)
        path.chmod(0o600)
        return value


DEBUG = _env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _persistent_secret("secret-key")
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "calls",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'callboard.sqlite3'}",
        conn_max_age=int(os.environ.get("CALLBOARD_DB_CONN_MAX_AGE", "0")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The dashboard and the watcher write from several threads; wait for the lock rather
    # than fail with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # Redis pub/sub: a change is one PUBLISH per organization, and each daphne process fans it
    # out to its own screens in memory. (The list-based core layer would push one message per
    # screen through Redis.) Pub/sub keeps nothing for a process that is away; the live path
    # does not need it to: every message says which version it follows, heartbeats carry the
    # latest, and a screen that missed anything gets the snapshot again.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "callboard",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "live_calls"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = _env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en"
TIME_ZONE = os.environ.get("CALLBOARD_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# ---- VoipNow -----------------------------------------------------------------------------
UAPI_BASE_URL = os.environ.get("UAPI_BASE_URL", "http://127.0.0.1:8001")
UAPI_CLIENT_ID = os.environ.get("UAPI_CLIENT_ID", "demo-app")
UAPI_CLIENT_SECRET = os.environ.get("UAPI_CLIENT_SECRET", "demo-secret")
# The VoipNow version Callboard talks to: listening (Monitor) needs 5.6 or later, so on an older
# server the barge-in dialog does not offer it. ``manage.py voipnow_check`` tells what a
# server accepts.
VOIPNOW_VERSION = os.environ.get("VOIPNOW_VERSION", "5.6")

# ---- the live path -----------------------------------------------------------------------
# Reconciliation poll of List PhoneCalls; Call Events trigger refreshes in between.
CALLBOARD_POLL_INTERVAL = _env_float("CALLBOARD_POLL_INTERVAL", 2.0)
# Register Call Events on the watched extensions and refresh as soon as one arrives.
CALLBOARD_CALL_EVENTS = _env_bool("CALLBOARD_CALL_EVENTS", True)
# While Call Events arrive, reconciliation polls are this far apart (they only catch what an
# event missed): a good citizen of the PBX.
CALLBOARD_EVENTS_POLL_INTERVAL = _env_float("CALLBOARD_EVENTS_POLL_INTERVAL", 15.0)
# Agents' queue statuses (QueueAgents, one request per queue) and phone registrations
# (Presence) are polled this often; their calls move them at once.
CALLBOARD_AGENT_POLL_INTERVAL = _env_float("CALLBOARD_AGENT_POLL_INTERVAL", 5.0)
# At most this many UAPI requests a minute (on average; bursts of a sixth of it) for the
# watcher and registration; a supervisor's barge-in is counted but never made to wait. The
# default leaves room for 20 changes a second refreshed by Call Events (``make bench``).
CALLBOARD_UAPI_MAX_PER_MINUTE = int(_env_float("CALLBOARD_UAPI_MAX_PER_MINUTE", 3000))
# Where VoipNow can reach this dashboard's hook endpoint.
CALLBOARD_PUBLIC_URL = os.environ.get("CALLBOARD_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
CALLBOARD_HOOK_SECRET = os.environ.get("CALLBOARD_HOOK_SECRET") or _persistent_secret("hook-secret")
# Call Events a second the hook passes on (in each daphne process) and the watcher refreshes
# for (over all of them); past it, events are dropped and one poll of everything is made
# instead. However many arrive, a call is refreshed at most four times a second.
CALLBOARD_HOOK_MAX_PER_SECOND = int(_env_float("CALLBOARD_HOOK_MAX_PER_SECOND", 50))
# Request bodies larger than this are refused with 413 before they are read: every route, the
# hook included (it takes 64 KiB at most). Django's DATA_UPLOAD_MAX_MEMORY_SIZE still bounds
# what a form may hold.
CALLBOARD_MAX_BODY_BYTES = int(_env_float("CALLBOARD_MAX_BODY_BYTES", 1024 * 1024))
# Leader lock of the watcher: another takes over within this many seconds of the active one
# dying.
CALLBOARD_WATCHER_LOCK_TTL = _env_float("CALLBOARD_WATCHER_LOCK_TTL", 6.0)
# How long a ringing barge-in blocks a second one on the same call by the same supervisor
# when VoipNow does not tell us it was picked up (it answers the PUT at once).
CALLBOARD_RINGING_GUARD_GRACE = _env_float("CALLBOARD_RINGING_GUARD_GRACE", 5.0)
# Days of queue call history kept for the figures and exports; older records are deleted once
# a day by the watcher.
CALLBOARD_HISTORY_DAYS = int(_env_float("CALLBOARD_HISTORY_DAYS", 90))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CALLBOARD_LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
