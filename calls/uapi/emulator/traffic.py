"""Traffic: random (Poisson) arrivals of callers in every queue, and agents' breaks (pauses
and log-outs on a seeded schedule per agent), started and stopped on the running loop."""

from __future__ import annotations

import asyncio
import contextlib

from calls.uapi.wire import AgentStatus

from .base import EmulatorBase
from .model import iso, now
from .world import AgentBreaks, Queue


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
        """Start Poisson arrivals in every queue and the agents' breaks the scenario gives
        (``agentPauses``, ``agentLogouts``), on the running loop. Idempotent."""
        if speed:
            self.speed = float(speed)
        if self.traffic_running:
            return
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(self._arrivals(q), name=f"traffic-{q.extension}")
            for q in self.world.queues.values()
            if q.arrivals_per_minute > 0
        ]
        for q in self.world.queues.values():
            for kind, breaks, status in (
                ("pause", q.pauses, AgentStatus.PAUSED),
                ("logout", q.logouts, AgentStatus.LOGGED_OUT),
            ):
                if breaks is None:
                    continue
                for agent in q.agents:
                    tasks.append(
                        loop.create_task(
                            self._breaks(q.extension, agent, kind, breaks, status),
                            name=f"{kind}-{q.extension}-{agent}",
                        )
                    )
        self._traffic_tasks = tasks

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

    async def _breaks(
        self, queue: str, agent: str, kind: str, breaks: AgentBreaks, status: AgentStatus
    ) -> None:
        """One agent's breaks in one queue, for ever: online for a while, then ``status``
        for a while, then online again. A break is skipped when the agent is not online
        (paused or logged out by someone else, or on its other kind of break), and the agent
        is brought back only if nobody changed its status meanwhile."""
        key = f"{queue}:{agent}:{kind}"
        # Agents did not all start their shift together: the first break comes anywhere
        # within the first period, so breaks are spread from the start.
        first = True
        while True:
            rng = self._break_rngs[key]
            low, high = breaks.every
            await asyncio.sleep(rng.uniform(0.0 if first else low, high) / self.speed)
            first = False
            rng = self._break_rngs[key]  # a reset swaps the generator
            length = rng.uniform(*breaks.length)
            if self.agent_status.get((queue, agent)) is not AgentStatus.ONLINE:
                continue
            self.set_agent_status(agent, status, queue)
            self.agent_breaks.append(
                {"queue": queue, "agent": agent, "status": int(status), "at": iso(now())}
            )
            await asyncio.sleep(length / self.speed)
            if self.agent_status.get((queue, agent)) is status:
                self.set_agent_status(agent, AgentStatus.ONLINE, queue)
                self.agent_breaks.append(
                    {
                        "queue": queue,
                        "agent": agent,
                        "status": int(AgentStatus.ONLINE),
                        "at": iso(now()),
                    }
                )
