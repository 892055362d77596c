"""Callboard settings: read once, here, from the environment, with safe embedded defaults.

Embedded default (nothing set): SQLite, in-memory channel layer and cache, one process, the
UAPI emulator on 127.0.0.1:8001. Production: ``DATABASE_URL`` (PostgreSQL), ``REDIS_URL``
(channel layer and cache), ``UAPI_*`` pointing at VoipNow. ``.env.example`` lists them all.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

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
# Secure cookies, HSTS and the HTTPS redirect: "sessions, cookies and access" below.
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

# ---- sessions, cookies and access --------------------------------------------------------
# A host header is what Django builds absolute URLs and the websocket Origin check from:
# "*" accepts any, and a password reset or a redirect could name an attacker's host.
if not DEBUG and any("*" in host for host in ALLOWED_HOSTS):
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS must name this dashboard's hosts (e.g. callboard.example.com, "
        "or .example.com for every subdomain): '*' is refused unless DJANGO_DEBUG is on."
    )
# A session lasts one working shift from login; then the page goes to the login page (its
# socket is closed: dashboard/access.py).
CALLBOARD_SESSION_HOURS = _env_float("CALLBOARD_SESSION_HOURS", 12.0)
SESSION_COOKIE_AGE = max(60, int(CALLBOARD_SESSION_HOURS * 3600))
# Every open live socket is read again this often, for changes no signal sees (a right given
# through a group, an expired session, SQL run by hand). One round costs two queries for all
# the sockets of a process.
CALLBOARD_ACCESS_CHECK_SECONDS = _env_float("CALLBOARD_ACCESS_CHECK_SECONDS", 5.0)
# Served over HTTPS (the public URL says so): cookies only over HTTPS, HSTS for a year
# including subdomains, and plain-HTTP requests redirected. Behind a proxy that ends TLS,
# Django must learn the request's scheme from it, or the redirect loops and HSTS is never
# sent: run daphne with --proxy-headers (it takes X-Forwarded-Proto, X-Forwarded-For), or
# name the header in DJANGO_SECURE_PROXY_SSL_HEADER; either way only the proxy may reach
# daphne, and it must set that header itself. Each can be turned off alone.
_HTTPS = CALLBOARD_PUBLIC_URL.startswith("https://")
SESSION_COOKIE_SECURE = _env_bool("DJANGO_SECURE_COOKIES", _HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = int(_env_float("DJANGO_HSTS_SECONDS", 365 * 24 * 3600 if _HTTPS else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_SSL_REDIRECT = _env_bool("DJANGO_SSL_REDIRECT", _HTTPS)
# Load balancers probe the health check over plain HTTP, straight to daphne.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
_PROXY_SSL_HEADER = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
if _PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https")
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload: a promise, made by submitting a registrable domain to the browsers'
    # lists, that it and every subdomain serve only HTTPS for ever. A dashboard on a
    # subdomain of a company's domain is not in a position to make it; HSTS itself is on.
    "security.W021",
]
# ---- end of sessions, cookies and access -------------------------------------------------

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

# ---- secrets never in logs -----------------------------------------------------------------
# The hook's secret and wallboard tokens travel in URL paths: every console log record is
# redacted (dashboard/redaction.py), and `python -m dashboard.serve` runs daphne with its access
# log redacted too (the README's production command).
LOGGING["filters"] = {"redact_secrets": {"()": "dashboard.redaction.RedactSecrets"}}
cast(dict[str, dict[str, Any]], LOGGING["handlers"])["console"]["filters"] = ["redact_secrets"]
# The hook's secret is its only credential: long enough that guessing it over HTTP is hopeless.
# A generated one (var/hook-secret) has 67 characters. Only URL-safe characters are accepted,
# since VoipNow sends it back in a path.
HOOK_SECRET_MIN_LENGTH = 32
if len(CALLBOARD_HOOK_SECRET) < HOOK_SECRET_MIN_LENGTH:
    raise ImproperlyConfigured(
        f"CALLBOARD_HOOK_SECRET has {len(CALLBOARD_HOOK_SECRET)} characters; it needs at least "
        f"{HOOK_SECRET_MIN_LENGTH}: python -c 'import secrets; print(secrets.token_urlsafe())'"
    )
if not re.fullmatch(r"[A-Za-z0-9._~-]+", CALLBOARD_HOOK_SECRET):
    raise ImproperlyConfigured(
        "CALLBOARD_HOOK_SECRET may hold letters, digits and . _ ~ - only: it is a URL path segment"
    )

# ---- what pages may load: Content-Security-Policy (django-csp) -----------------------------
# Scripts, styles and connections from this site only: no inline script, no inline style, no
# style attribute, no eval, and sockets to this site (ws or wss as CALLBOARD_PUBLIC_URL is http
# or https; 'self' covers them in current browsers, the explicit origin in older ones). The
# templates keep to it (htmx's own indicator <style> is turned off in its meta config), and so
# does Django's admin as Callboard uses it: one policy everywhere, checked in Chromium by
# tests/browser/test_csp.py. (The admin writes an inline <style> only on a change list of a
# ModelAdmin with actions_on_top and actions_on_bottom both off; keep one of them on.) First in
# MIDDLEWARE, so the header is on every response, the ones other middleware answer with too
# (a lockout, a CSRF refusal).
_public = urlsplit(CALLBOARD_PUBLIC_URL)
_sockets = f"{'wss' if _public.scheme == 'https' else 'ws'}://{_public.netloc}"
INSTALLED_APPS += ["csp"]
MIDDLEWARE.insert(0, "csp.middleware.CSPMiddleware")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "connect-src": ["'self'", _sockets],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
}

# ---- who gets in: login throttling (django-axes) -------------------------------------------
# Failed logins are counted per username (from any address) and per address (for any
# username). When either count reaches CALLBOARD_LOGIN_FAILURES within
# CALLBOARD_LOGIN_LOCKOUT_MINUTES, logins for that username, or from that address, are refused,
# the right password too, until that long after the failure that locked them (tries while
# locked are refused without counting: colleagues behind one address who keep trying do not
# keep it locked). A guesser of one password is stopped wherever they come from, a guesser of
# many usernames from one address too. A successful login clears its own username's failures
# only (dashboard/logins.py), so an attacker cannot wipe another username's count by logging
# in as themselves. The price: anyone can lock a username for a while, and people behind one
# NAT share the address count (`manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS`
# unlock at once). Both the site's login and the admin's go through the same backend.
CALLBOARD_LOGIN_FAILURES = int(_env_float("CALLBOARD_LOGIN_FAILURES", 5))
CALLBOARD_LOGIN_LOCKOUT_MINUTES = _env_float("CALLBOARD_LOGIN_LOCKOUT_MINUTES", 15)
INSTALLED_APPS += ["axes"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Last: it turns a lockout met anywhere below it into the lockout page.
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AXES_FAILURE_LIMIT = CALLBOARD_LOGIN_FAILURES
AXES_COOLOFF_TIME = timedelta(minutes=CALLBOARD_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# dashboard/admin.py shows the attempts and logs to superusers, read-only.
AXES_ENABLE_ADMIN = False
