"""Hook secrets and wallboard tokens are redacted from what is logged; a short hook secret is
refused at start."""

from __future__ import annotations

import logging

import pytest

from dashboard.redaction import REDACTED, RedactSecrets, one_line, redact
from tests.support.settings import settings_loaded_with

TOKEN = "Zq3x_Secret-Token1"


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        (f"GET /wallboard/{TOKEN}/", f"GET /wallboard/{REDACTED}/"),
        (f"WSCONNECT /ws/wallboard/{TOKEN}/", f"WSCONNECT /ws/wallboard/{REDACTED}/"),
        (f"POST /hooks/voipnow/{TOKEN}/", f"POST /hooks/voipnow/{REDACTED}/"),
        (f"GET /hooks/voipnow/{TOKEN}?CallAPIID=1", f"GET /hooks/voipnow/{REDACTED}?CallAPIID=1"),
        (f"GET /wallboard/{TOKEN}", f"GET /wallboard/{REDACTED}"),
        (f"GET /WallBoard//{TOKEN}/x", f"GET /WallBoard//{REDACTED}/x"),
        # Django decodes the path before routing: so does the redaction.
        (f"GET /wall%62oard/{TOKEN}/", f"GET /wallboard/{REDACTED}/"),
        (f"GET /wallboard%2F{TOKEN}/", f"GET /wallboard/{REDACTED}/"),
        (f"GET /wallboard%252F{TOKEN}/", f"GET /wallboard/{REDACTED}/"),
        (
            f"GET /accounts/login/?next=%2Fwallboard%2F{TOKEN}%2F",
            f"GET /accounts/login/?next=/wallboard/{REDACTED}/",
        ),
        (f"Not Found: /wallboard/{TOKEN}/", f"Not Found: /wallboard/{REDACTED}/"),
    ],
)
def test_secret_segments_are_redacted(logged: str, expected: str) -> None:
    assert redact(logged) == expected
    assert TOKEN not in redact(logged)


@pytest.mark.parametrize(
    "logged", ["GET /", "GET /calls/abc/barge/?x=%41", "50% done", "GET /admin/calls/wallboard/"]
)
def test_text_without_a_secret_is_left_as_it_was(logged: str) -> None:
    assert redact(logged) == logged


def test_one_line_escapes_line_breaks() -> None:
    assert one_line("GET /a\r\nforged: line") == "GET /a\\r\\nforged: line"


def test_the_log_filter_redacts_the_formatted_message() -> None:
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "Not Found: %s",
        (f"/wallboard/{TOKEN}/",),
        None,
    )

    assert RedactSecrets().filter(record) is True
    assert record.getMessage() == f"Not Found: /wallboard/{REDACTED}/"


def test_the_console_log_is_configured_with_the_filter() -> None:
    handlers = logging.getLogger().handlers
    assert handlers
    assert any(isinstance(f, RedactSecrets) for h in handlers for f in h.filters)


@pytest.mark.parametrize(
    ("secret", "refused"),
    [
        ("x" * 31, "at least 32"),
        ("short", "at least 32"),
        ("a" * 32 + "/b", "letters, digits"),
        ("a" * 40 + " b", "letters, digits"),
    ],
)
def test_a_short_or_unusable_hook_secret_is_refused_at_start(secret: str, refused: str) -> None:
    out = settings_loaded_with({"CALLBOARD_HOOK_SECRET": secret}, "settings.CALLBOARD_HOOK_SECRET")

    assert out.returncode != 0
    assert "ImproperlyConfigured" in out.stderr
    assert refused in out.stderr
    assert secret not in out.stderr  # nor is the refused secret printed


def test_a_hook_secret_of_32_url_safe_characters_is_accepted() -> None:
    secret = "A1b2C3d4E5f6G7h8I9j0-_.~KLMNOPQR"
    assert len(secret) == 32
    out = settings_loaded_with({"CALLBOARD_HOOK_SECRET": secret}, "settings.CALLBOARD_HOOK_SECRET")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == repr(secret)
