"""Watching what the watcher publishes, as a screen would: an Organization's id, a channel in
a group, and the messages that reach it."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import get_channel_layer

from calls.models import Organization


async def acme_id() -> int:
    return (await Organization.objects.aget(name="Acme")).pk


async def listen(group: str) -> tuple[Any, str]:
    """A new channel of the default layer, in ``group``: ``(layer, channel)``."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return layer, channel


async def received(layer: Any, channel: str, quiet: float = 0.2) -> list[dict[str, Any]]:
    """Every message that reaches ``channel`` until none comes for ``quiet`` seconds."""
    out = []
    while True:
        try:
            out.append(await asyncio.wait_for(layer.receive(channel), quiet))
        except TimeoutError:
            return out


async def waiting_on(channel: str) -> list[dict[str, Any]]:
    """Take every message waiting on ``channel`` of the default layer (the in-memory layer
    holds a message as soon as it is sent, and lives as long as the process)."""
    layer = get_channel_layer()
    out = []
    while True:
        try:
            out.append(await asyncio.wait_for(layer.receive(channel), 0.005))
        except TimeoutError:
            return out
