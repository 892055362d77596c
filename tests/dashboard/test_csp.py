"""The Content-Security-Policy: on every page, as the settings state it, and templates that
keep to it (tests/browser/test_csp.py watches Chromium for violations on the live pages)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from calls.models import Wallboard
from tests.support.settings import settings_loaded_with

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}


def directives(response: Any) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    out = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        out[name] = value
    return out


def client_for(username: str | None) -> Client:
    client = Client()
    if username:
        client.force_login(User.objects.get(username=username))
    return client


PAGES = [
    (None, "/accounts/login/"),
    (None, "/"),  # the redirect to the login page
    (None, "/wallboard/not-a-token/"),
    ("alice", "/"),
    ("alice", "/healthz"),
    ("admin", "/admin/"),
    ("admin", "/admin/calls/queuecall/"),
    ("admin", "/admin/calls/wallboard/"),
]


@pytest.mark.parametrize(("username", "path"), PAGES)
def test_every_page_carries_the_policy(world: Any, username: str | None, path: str) -> None:
    response = client_for(username).get(path)

    found = directives(response)
    for name, value in POLICY.items():
        assert found[name] == value, name
    assert found["connect-src"].split()[0] == "'self'"


def test_the_wallboard_and_the_lockout_page_carry_it_too(world: Any) -> None:
    board = Wallboard.objects.first()
    assert board is not None
    assert directives(Client().get(f"/wallboard/{board.token}/"))["script-src"] == "'self'"
    client = Client()
    for _ in range(settings.CALLBOARD_LOGIN_FAILURES):
        locked = client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
    assert locked.status_code == 429
    assert directives(locked)["script-src"] == "'self'"


@pytest.mark.parametrize(
    ("public_url", "sockets"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000"),
        ("https://callboard.example", "wss://callboard.example"),
    ],
)
def test_sockets_to_the_site_are_allowed(public_url: str, sockets: str) -> None:
    # The policy is built from CALLBOARD_PUBLIC_URL as the settings load: load them anew.
    out = settings_loaded_with(
        {"CALLBOARD_PUBLIC_URL": public_url},
        "settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['connect-src']",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == repr(["'self'", sockets])


def test_the_admin_has_the_same_policy_as_every_page(world: Any) -> None:
    admin = directives(client_for("admin").get("/admin/calls/queuecall/"))
    live = directives(client_for("alice").get("/"))

    assert admin == live
    assert not any("unsafe" in value for value in admin.values())


def test_no_admin_change_list_turns_its_actions_off() -> None:
    # Django's change list writes an inline <style> when both are off (change_list.html).
    from django.contrib import admin

    for model_admin in admin.site._registry.values():
        assert model_admin.actions_on_top or model_admin.actions_on_bottom, model_admin


def template_files() -> list[Path]:
    files = sorted(TEMPLATES.rglob("*.html"))
    assert len(files) >= 8
    return files


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_inline_script_handlers_or_styles(path: Path) -> None:
    html = path.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "an inline event handler"
    assert not re.search(r"\sstyle\s*=", html, re.I), "a style attribute"
    assert not re.search(r"<style\b", html, re.I), "a <style> element"
    assert "javascript:" not in html.lower()


def test_htmx_is_told_not_to_inject_its_indicator_style() -> None:
    for name in ["base.html", "calls/wallboard.html"]:
        html = (TEMPLATES / name).read_text()
        config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)
        assert config, name
        assert '"includeIndicatorStyles": false' in config.group(1)
