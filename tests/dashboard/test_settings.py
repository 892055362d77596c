"""Production settings as a deployment meets them: read from the environment in a fresh
process, the way daphne and manage.py start."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (
    "SESSION_COOKIE_AGE",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
)


def environment(tmp_path: Path, **env: str) -> dict[str, str]:
    """This process's environment without Callboard's and Django's settings (a developer's
    or CI's own must not leak in), an empty var dir, and ``env``."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CALLBOARD_", "UAPI_", "DATABASE_URL", "REDIS_URL"))
    }
    return {**base, "CALLBOARD_VAR_DIR": str(tmp_path), **env}


def production(tmp_path: Path, **env: str) -> dict[str, str]:
    """What the README's production section sets: DEBUG off, a real secret key, the hosts,
    and an https public URL."""
    return environment(
        tmp_path,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="callboard.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://callboard.example.com",
        CALLBOARD_PUBLIC_URL="https://callboard.example.com",
        CALLBOARD_HOOK_SECRET=secrets.token_urlsafe(32),
        **env,
    )


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def settings_in(env: dict[str, str]) -> dict[str, Any]:
    """The settings a fresh process reads from ``env``."""
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {SETTINGS!r}}}))"
    )
    done = run({**env, "DJANGO_SETTINGS_MODULE": "dashboard.settings"}, "-c", script)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_check_deploy_reports_nothing_with_production_settings(tmp_path: Path) -> None:
    done = run(production(tmp_path), "manage.py", "check", "--deploy", "--fail-level", "DEBUG")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout + done.stderr


def test_check_deploy_still_warns_when_https_protections_are_turned_off(tmp_path: Path) -> None:
    """The check above passes because of the settings, not because warnings are hidden."""
    env = production(tmp_path, DJANGO_SECURE_COOKIES="false", DJANGO_SSL_REDIRECT="false")

    done = run(env, "manage.py", "check", "--deploy")

    assert "security.W008" in done.stderr
    assert "security.W012" in done.stderr
    assert "security.W016" in done.stderr


def test_allowed_hosts_star_is_refused_at_start_unless_debug(tmp_path: Path) -> None:
    refused = run(
        environment(tmp_path, DJANGO_ALLOWED_HOSTS="callboard.example.com,*"), "manage.py", "check"
    )

    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr
    assert "DJANGO_ALLOWED_HOSTS" in refused.stderr

    debug = run(
        environment(tmp_path, DJANGO_ALLOWED_HOSTS="*", DJANGO_DEBUG="true"), "manage.py", "check"
    )
    assert debug.returncode == 0, debug.stderr


def test_an_https_public_url_turns_on_secure_cookies_hsts_and_the_redirect(
    tmp_path: Path,
) -> None:
    found = settings_in(production(tmp_path))

    assert found["SESSION_COOKIE_SECURE"] is True
    assert found["CSRF_COOKIE_SECURE"] is True
    assert found["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SECURE_PROXY_SSL_HEADER"] is None  # daphne --proxy-headers gives the scheme


def test_the_embedded_default_over_http_keeps_them_off(tmp_path: Path) -> None:
    found = settings_in(environment(tmp_path))

    assert found["SESSION_COOKIE_SECURE"] is False
    assert found["CSRF_COOKIE_SECURE"] is False
    assert found["SECURE_HSTS_SECONDS"] == 0
    assert found["SECURE_SSL_REDIRECT"] is False


def test_a_proxy_header_can_be_named(tmp_path: Path) -> None:
    found = settings_in(production(tmp_path, DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"))

    assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_the_session_lifetime_is_a_shift_unless_set(tmp_path: Path) -> None:
    assert settings_in(environment(tmp_path))["SESSION_COOKIE_AGE"] == 12 * 3600
    eight = settings_in(environment(tmp_path, CALLBOARD_SESSION_HOURS="8"))
    assert eight["SESSION_COOKIE_AGE"] == 8 * 3600


@pytest.mark.django_db
def test_a_login_lasts_the_configured_shift(alice: User, settings: Any) -> None:
    settings.SESSION_COOKIE_AGE = 3 * 3600
    client = Client()

    response = client.post("/accounts/login/", {"username": "alice", "password": "demo"})

    assert response.status_code == 302
    assert client.session.get_expiry_age() == 3 * 3600
    assert client.cookies["sessionid"]["max-age"] == 3 * 3600


@pytest.mark.django_db
def test_the_https_redirect_spares_the_health_check(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    client = Client()

    assert client.get("/healthz").status_code != 301
    page = client.get("/accounts/login/")
    assert page.status_code == 301
    assert page["Location"].startswith("https://")
