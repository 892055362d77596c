"""An httpx transport to the in-process emulator that records the PhoneCall reads reaching it
and can hold a List PhoneCalls answer: to see which requests the watcher makes, and to race a
poll against a Call Event deterministically."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

LIST = "list"  # List PhoneCalls
GET = "get"  # one PhoneCall by id


def _read_kind(request: httpx.Request) -> str | None:
    parts = request.url.path.strip("/").split("/")
    if request.method != "GET" or parts[:2] != ["uapi", "phoneCalls"]:
        return None
    # /uapi/phoneCalls/{userId}/{extension}[/{phoneCallId}]
    return {4: LIST, 5: GET}.get(len(parts))


class EmulatorTransport(httpx.AsyncBaseTransport):
    """The in-process emulator, recording the PhoneCall reads that reach it, and able to hold
    a List PhoneCalls answer that VoipNow has already computed before the watcher gets it."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.reads: list[str] = []
        # Every request, as (method, path), with the status VoipNow answered.
        self.sent: list[tuple[str, str, int]] = []
        self.list_answered = asyncio.Event()
        self._gate: asyncio.Event | None = None

    def hold_next_list(self) -> asyncio.Event:
        """Hold the next List PhoneCalls answer until the returned event is set."""
        self._gate = asyncio.Event()
        self.list_answered.clear()
        return self._gate

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # The ASGI transport runs the emulator to the end: the answer is fixed from here on.
        response = await self._inner.handle_async_request(request)
        self.sent.append((request.method, request.url.path, response.status_code))
        kind = _read_kind(request)
        if kind is not None:
            self.reads.append(kind)
        if kind == LIST and self._gate is not None:
            gate, self._gate = self._gate, None
            self.list_answered.set()
            await gate.wait()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
