"""The baseline: a bare Channels consumer that forwards a pre-rendered fragment from its group.

It is what the live path would cost with nothing but ``group_send`` and the websocket between
the change and the screen; mounted at ``/ws/bench/baseline/`` only when
``CALLBOARD_BENCH_BASELINE`` is on.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

GROUP = "bench.baseline"
MESSAGE_TYPE = "bench.fragment"
# Sent on connect, so clients wait for it exactly as they wait for the live snapshot.
HELLO = '<div id="bench-hello"></div>'


class BaselineConsumer(AsyncWebsocketConsumer):
    groups = [GROUP]

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=HELLO)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return

    async def bench_fragment(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["html"])
