"""``python manage.py watch_calls``: keep the live picture of every Organization up to date.

It lives with the dashboard because it wires the watcher to the dashboard's Call Event hook."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand

from calls.connection import uapi_client
from calls.live import tune_gc_for_polling, watch
from dashboard.hooks import hook_url


class Command(BaseCommand):
    help = "Watch live calls and broadcast changes to the dashboards (one active per deployment)."

    def handle(self, *args: Any, **options: Any) -> None:
        tune_gc_for_polling()
        asyncio.run(self._main())

    async def _main(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with uapi_client() as uapi:
            await watch(stop, uapi=uapi, channel_layer=get_channel_layer(), hook_url=hook_url())
        self.stdout.write("watcher stopped")
