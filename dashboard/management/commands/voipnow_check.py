"""``python manage.py voipnow_check``: what works against the configured VoipNow, as a table.

Run it before going live, and after upgrading VoipNow. It exits non-zero when the live page
cannot work (no token, or List PhoneCalls refused).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from calls.connection import uapi_client
from calls.voipnow_check import DEGRADED, FAILED, OK, Row, check_voipnow
from dashboard.hooks import hook_url


class Command(BaseCommand):
    help = (
        "Check what Callboard can do with the configured VoipNow; non-zero exit if it cannot work."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = asyncio.run(self._rows())
        width = max(len(r.check) for r in rows)
        self.stdout.write(f"VoipNow at {settings.UAPI_BASE_URL}, app {settings.UAPI_CLIENT_ID}")
        for row in rows:
            self.stdout.write(f"{row.check:<{width}}  {row.result:<8}  {row.detail}")
        if any(row.result == FAILED for row in rows):
            raise CommandError("the live page cannot work with this VoipNow")
        degraded = sum(row.result == DEGRADED for row in rows)
        self.stdout.write(f"ready{f', {degraded} degraded' if degraded else ''}")

    async def _rows(self) -> list[Row]:
        async with uapi_client() as uapi:
            rows = await check_voipnow(uapi)
        if rows[-1].result != FAILED:
            rows.append(await _hook())
        return rows


async def _hook() -> Row:
    """Whether the Call Event hook answers at CALLBOARD_PUBLIC_URL from this host. VoipNow must
    reach it too, from where it runs: this cannot tell that, only that it is served."""
    url = hook_url()
    shown = url.replace(settings.CALLBOARD_HOOK_SECRET, "<secret>")
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            # No call named: the watcher takes it as "poll now", which is harmless.
            response = await http.post(url, data={"CallStatus": "CHECK"})
    except httpx.HTTPError as exc:
        return Row("Call Event hook", DEGRADED, f"{shown}: {exc.__class__.__name__}")
    if response.status_code != 200:
        return Row("Call Event hook", DEGRADED, f"{shown} answered {response.status_code}")
    return Row("Call Event hook", OK, f"{shown} answers from this host")
