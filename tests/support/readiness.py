"""Is a process of the stack ready? Each answers over HTTP: the emulator through its control
API, the dashboard through ``/healthz``, the watcher through the state the dashboard's
``/healthz`` reports for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx


def get_json(url: str, timeout: float = 2.0) -> Any:
    """The JSON body of a GET to ``url``, or None when nothing answers it or it fails."""
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return None
    if not response.is_success:
        return None
    return response.json()


def emulator_ready(url: str) -> bool:
    """The emulator at ``url`` answers its control API (its state)."""
    return get_json(f"{url}/_emulator/state") is not None


def dashboard_health(url: str) -> dict[str, Any] | None:
    """The dashboard's ``/healthz`` at ``url`` (database and watcher state), or None when it
    does not answer or reports itself unhealthy."""
    health = get_json(f"{url}/healthz")
    return health if isinstance(health, dict) else None


def dashboard_ready(url: str) -> bool:
    return dashboard_health(url) is not None


def watcher_state(url: str) -> str | None:
    """The watcher's state as the dashboard at ``url`` reports it ("ok", "down", ...)."""
    health = dashboard_health(url)
    return None if health is None else str(health["watcher"]["state"])


def watcher_ok_since(url: str, since: datetime) -> bool:
    """The dashboard at ``url`` reports the watcher "ok" as of ``since`` or later: a watcher
    started at ``since`` registered its Call Events (when it uses them) and published a poll.
    ``since`` must be aware (UTC)."""
    health = dashboard_health(url)
    if health is None:
        return False
    status = health["watcher"]
    as_of = status.get("as_of")
    return (
        status.get("state") == "ok"
        and as_of is not None
        and (datetime.fromisoformat(as_of) >= since)
    )
