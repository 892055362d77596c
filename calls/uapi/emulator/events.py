"""Call Events: the HTTP callbacks VoipNow sends when something happens on an extension.

Delivery never holds up the emulator: events go into a bounded queue drained by a few
background workers with short timeouts. When the queue is full the event is dropped and
counted, as a PBX sheds load rather than stall its calls for a slow web hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from calls.uapi.wire import CallEventMethod, CallEventType

from .model import compact, iso, now

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
WORKERS = 4
LOG_SIZE = 1000
# Unknown in the docs: VoipNow's own callback timeout. A short one keeps a dead receiver from
# tying up the workers.
TIMEOUT = httpx.Timeout(2.0, connect=1.0)


@dataclass(frozen=True)
class Registration:
    """A PhoneCallEvent resource: call ``url`` with ``method`` when ``type`` happens."""

    id: str
    extension: str
    user_id: str  # owner of the extension, for links.self
    type: CallEventType
    method: CallEventMethod
    url: str
    status: int  # 0 disabled, 1 enabled
    note: str | None
    modified: datetime

    def to_json(self, base_url: str) -> dict[str, Any]:
        path = (
            f"/uapi/extensions/{self.user_id}/{self.extension}/phoneCallEvents/"
            f"{int(self.type)}/{self.id}"
        )
        return compact(
            {
                "id": self.id,
                "type": int(self.type),
                "method": int(self.method),
                "url": self.url,
                "status": self.status,
                "note": self.note,
                "modified": iso(self.modified),
                "links": {"self": base_url + path},
            }
        )


@dataclass(frozen=True)
class Delivery:
    registration: Registration
    fields: dict[str, str]
    queued: datetime


class EventSender:
    """Bounded queue + workers + a log of what happened to each delivery."""

    def __init__(self, *, queue_size: int = QUEUE_SIZE, workers: int = WORKERS) -> None:
        self.queue_size = queue_size
        self.workers = workers
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self.dropped = 0
        self.sent = 0
        self.failed = 0
        self._queue: asyncio.Queue[Delivery] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    def submit(self, registration: Registration, fields: dict[str, str]) -> None:
        """Queue one delivery; never waits. Must run on the event loop."""
        if self._queue is None:
            # Started lazily: under httpx.ASGITransport no lifespan runs, so the first event
            # starts the workers on whatever loop the emulator is serving from.
            self._queue = asyncio.Queue(maxsize=self.queue_size)
            self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
            self._tasks = [
                asyncio.get_running_loop().create_task(self._work(), name=f"call-events-{i}")
                for i in range(self.workers)
            ]
        delivery = Delivery(registration, fields, now())
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.dropped += 1
            self._record(delivery, "dropped", "queue full")

    def pending(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    async def drain(self) -> None:
        """Wait until every queued delivery was attempted (tests bound it with a timeout)."""
        if self._queue is not None:
            await self._queue.join()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._queue = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def clear(self) -> None:
        self.log.clear()
        self.dropped = self.sent = self.failed = 0

    def _record(self, delivery: Delivery, outcome: str, detail: str | int | None) -> None:
        reg = delivery.registration
        self.log.append(
            compact(
                {
                    "at": iso(now()),
                    "queued": iso(delivery.queued),
                    "registrationId": reg.id,
                    "extension": reg.extension,
                    "type": int(reg.type),
                    "method": "POST" if reg.method is CallEventMethod.POST else "GET",
                    "url": reg.url,
                    "fields": delivery.fields,
                    "outcome": outcome,
                    "detail": detail,
                }
            )
        )

    async def _work(self) -> None:
        assert self._queue is not None
        assert self._client is not None
        queue, client = self._queue, self._client
        while True:
            delivery = await queue.get()
            try:
                await self._deliver(client, delivery)
            except Exception as exc:  # noqa: BLE001 - a worker survives anything a receiver does
                self.failed += 1
                self._record(delivery, "error", f"{type(exc).__name__}: {exc}")
            finally:
                queue.task_done()

    async def _deliver(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        reg = delivery.registration
        try:
            if reg.method is CallEventMethod.POST:
                # Form-encoded, as 4PSA's own receivers read them from $_POST.
                response = await client.post(reg.url, data=delivery.fields)
            else:
                response = await client.get(reg.url, params=delivery.fields)
        except httpx.HTTPError as exc:
            self.failed += 1
            self._record(delivery, "error", f"{type(exc).__name__}: {exc}")
            return
        self.sent += 1
        self._record(delivery, "delivered", response.status_code)
