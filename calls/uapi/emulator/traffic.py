"""Traffic: random (Poisson) arrivals of callers in every queue, started and stopped on the
running loop."""

from __future__ import annotations

import asyncio
import contextlib

from .base import EmulatorBase
from .world import Queue


class Traffic(EmulatorBase):
    @property
    def traffic_running(self) -> bool:
        return any(not t.done() for t in self._traffic_tasks)

    def set_speed(self, speed: float) -> None:
        """Run emulated time ``speed`` times faster from now on; raises ValueError unless
        ``speed`` > 0."""
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = float(speed)

    async def start_traffic(self, speed: float | None = None) -> None:
        """Start Poisson arrivals in every queue (on the running loop). Idempotent."""
        if speed:
            self.speed = float(speed)
        if self.traffic_running:
            return
        loop = asyncio.get_running_loop()
        self._traffic_tasks = [
            loop.create_task(self._arrivals(q), name=f"traffic-{q.extension}")
            for q in self.world.queues.values()
            if q.arrivals_per_minute > 0
        ]

    async def stop_traffic(self) -> None:
        tasks, self._traffic_tasks = self._traffic_tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _arrivals(self, queue: Queue) -> None:
        rate = queue.arrivals_per_minute / 60.0
        limit = max(1, len(queue.agents) * 3)
        while True:
            rng = self._queue_rngs[queue.extension]
            gap = rng.expovariate(rate)
            await asyncio.sleep(gap / self.speed)
            rng = self._queue_rngs[queue.extension]  # a reset swaps the generator
            if len(self.waiting[queue.extension]) >= limit:
                continue  # a full queue: callers hear busy and never enter
            call = self.create_call(queue.extension, rng=rng)
            self.arrivals.append(
                {
                    "queue": queue.extension,
                    "phoneCallId": call.id,
                    "callerId": call.views["00"].caller_id,
                    "talkSeconds": round(call.talk_seconds, 3),
                    "patienceSeconds": round(call.patience_seconds, 3),
                }
            )
