"""The bound on UAPI requests a minute: bursts up to a sixth of the minute's allowance, then
one request per share of the minute; what a person waits for is counted, never held."""

from __future__ import annotations

import asyncio

import pytest

from calls.uapi.budget import RequestBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A clock that moves only when the budget sleeps (and then by the time it asked)."""
    clock = Clock()
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        await real_sleep(0)

    monkeypatch.setattr("calls.uapi.budget.asyncio.sleep", sleep)
    return clock


async def test_a_burst_passes_then_requests_are_spread_over_the_minute(clock: Clock) -> None:
    budget = RequestBudget(600, clock=clock)  # 10 a second, bursts of 100
    for _ in range(100):
        await budget.spend()
    assert clock.now == 0.0  # the burst went through at once
    for _ in range(50):
        await budget.spend()
    assert clock.now == pytest.approx(5.0)  # the next 50 took 5 s at 10 a second
    assert budget.last_minute() == 150


async def test_counted_requests_never_wait_and_the_count_forgets_after_a_minute(
    clock: Clock,
) -> None:
    budget = RequestBudget(6, clock=clock)
    for _ in range(20):
        budget.count()  # a barge-in: sent at once
    assert (clock.now, budget.last_minute()) == (0.0, 20)
    clock.now = 60.5
    assert budget.last_minute() == 0


def test_a_budget_below_one_a_minute_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RequestBudget(0)
