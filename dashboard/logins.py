"""Login throttling around django-axes (settings: "who gets in"): a WARNING line for every
lockout, and a successful login that clears its own username's failures."""

from __future__ import annotations

import logging
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest

log = logging.getLogger(__name__)


def log_lockout(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **_: Any
) -> None:
    """Axes sends ``user_locked_out`` when a login crosses the limit and for each login
    refused while locked: one line each, never the password."""
    log.warning(
        "login refused: %r from %s is locked out for %g minutes after %d failed logins",
        username,
        ip_address,
        settings.CALLBOARD_LOGIN_LOCKOUT_MINUTES,
        settings.CALLBOARD_LOGIN_FAILURES,
    )


def clear_own_failures(sender: Any, request: HttpRequest, user: Any, **_: Any) -> None:
    """The user proved their password: their username's failures, from every address, no
    longer count (nor towards those addresses). Other usernames' failures stay, so a login as
    oneself cannot wipe the count of a name one was guessing at."""
    AccessAttempt.objects.filter(username=user.get_username()).delete()
