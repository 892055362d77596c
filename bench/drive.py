"""The driver: it makes calls change through the emulator's control API (or, for the
baseline, sends a pre-rendered fragment with ``group_send``) at a steady rate, and stamps each
change with ``time.time()`` just before the request leaves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.baseline import GROUP, MESSAGE_TYPE

ACME_QUEUES = ("0001*100", "0001*101")
# A call is answered two cycles after it arrives and hung up two cycles after that, so each
# state lives long enough (about 300 ms at 20 changes/s) to be published on its own, and no
# queue ever has more calls talking than it has agents.
ANSWER_LAG = 2
HANGUP_LAG = 4

# One timed change: a coroutine function, so that it can be started as a task at its tick.
Op = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Driven:
    sends: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


async def create_call(http: httpx.AsyncClient, queue: str, driven: Driven) -> str | None:
    sent = time.time()
    r = await http.post("/_emulator/calls", json={"queue": queue, "autoAnswer": False})
    if r.status_code != 201:
        driven.errors.append(f"create {r.status_code} {r.text[:100]}")
        return None
    call_id = str(r.json()["id"])
    driven.sends[f"{call_id}:waiting"] = sent
    return call_id


async def answer_call(http: httpx.AsyncClient, call_id: str, driven: Driven) -> bool:
    sent = time.time()
    r = await http.post(f"/_emulator/calls/{call_id}/answer", json={})
    if r.status_code != 200:
        driven.errors.append(f"answer {r.status_code} {r.text[:100]}")
        return False
    driven.sends[f"{call_id}:talking"] = sent
    return True


async def hang_up(http: httpx.AsyncClient, call_id: str, driven: Driven) -> bool:
    sent = time.time()
    r = await http.delete(f"/_emulator/calls/{call_id}")
    if r.status_code != 204:
        driven.errors.append(f"hangup {r.status_code} {r.text[:100]}")
        return False
    driven.sends[f"{call_id}:gone"] = sent
    return True


async def _at_rate(ops: list[Op], rate: float, limit: float) -> None:
    """Start each op at its tick (not after the previous one ends) and wait for all of them."""
    start = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []
    for i, op in enumerate(ops):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(op()))
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    for task in done:
        task.result()


@dataclass
class _Lifecycle:
    """One call's three changes; each step waits for the one before it to settle."""

    http: httpx.AsyncClient
    driven: Driven
    queue: str
    created: asyncio.Future[str | None]
    answered: asyncio.Future[bool]

    # Each step settles its future whatever went wrong, or the steps after it would wait
    # forever; the failure is counted in ``driven.errors`` and the drive keeps its rate.
    async def create(self) -> None:
        try:
            self.created.set_result(await create_call(self.http, self.queue, self.driven))
        except Exception as exc:  # noqa: BLE001 - counted, and the answer step must not hang
            self.driven.errors.append(f"create {exc!r}")
            self.created.set_result(None)

    async def answer(self) -> None:
        call_id = await self.created
        ok = False
        try:
            ok = call_id is not None and await answer_call(self.http, call_id, self.driven)
        except Exception as exc:  # noqa: BLE001 - counted, and the hangup step must not hang
            self.driven.errors.append(f"answer {exc!r}")
        self.answered.set_result(ok)

    async def hangup(self) -> None:
        call_id = await self.created
        await self.answered
        if call_id is not None:
            try:
                await hang_up(self.http, call_id, self.driven)
            except Exception as exc:  # noqa: BLE001 - counted; the drive keeps its rate
                self.driven.errors.append(f"hangup {exc!r}")


async def drive_calls(
    http: httpx.AsyncClient,
    *,
    rate: float,
    duration: float,
    answer_lag: int = ANSWER_LAG,
    hangup_lag: int = HANGUP_LAG,
) -> Driven:
    """Calls arrive in Acme's queues, are answered and hung up: ``rate`` changes a second.
    A call is answered ``answer_lag`` cycles (of three changes) after it arrives, and hung up
    ``hangup_lag`` cycles after it arrives."""
    driven = Driven()
    calls = max(1, round(rate * duration / 3))
    loop = asyncio.get_running_loop()
    lives = [
        _Lifecycle(http, driven, ACME_QUEUES[k % 2], loop.create_future(), loop.create_future())
        for k in range(calls)
    ]

    ops: list[Op] = []
    for k in range(calls + hangup_lag):
        if k < calls:
            ops.append(lives[k].create)
        if 0 <= k - answer_lag < calls:
            ops.append(lives[k - answer_lag].answer)
        if 0 <= k - hangup_lag < calls:
            ops.append(lives[k - hangup_lag].hangup)
    await _at_rate(ops, rate, limit=duration + 30)
    return driven


async def drive_baseline(layer: Any, fragment: str, *, rate: float, duration: float) -> Driven:
    """The same number of changes, each a pre-rendered row sent straight to the group.

    ``fragment`` holds ``{id}`` where the call id goes; each change gets its own id so that
    clients report it like a real one.
    """
    driven = Driven()

    def send(i: int) -> Op:
        async def op() -> None:
            call_id = f"bench-{i}"
            html = fragment.replace("{id}", call_id)
            driven.sends[f"{call_id}:waiting"] = time.time()
            await layer.group_send(GROUP, {"type": MESSAGE_TYPE, "version": i, "html": html})

        return op

    changes = 3 * max(1, round(rate * duration / 3))
    await _at_rate([send(i) for i in range(changes)], rate, limit=duration + 30)
    return driven
