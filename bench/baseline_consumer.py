"""The baseline's consumer (see ``bench.baseline``), mounted by ``bench.asgi``."""

from __future__ import annotations

from typing import Any

from bench.baseline import GROUP, HELLO
from dashboard.consumers import RelayConsumer


class BaselineConsumer(RelayConsumer):
    groups = [GROUP]

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=HELLO)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return

    async def bench_fragment(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["html"])
