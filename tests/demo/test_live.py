"""The demo's lockstep driver: a cancellation (Ctrl-C, a failed part) ends it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from energyhub.clock import LockstepClock
from energyhub.demo.live import _tick

START = datetime(2026, 6, 1, tzinfo=UTC)


class _HeldClock(LockstepClock):
    """A lockstep clock whose scheduler's tick ends when the test says."""

    def __init__(self) -> None:
        super().__init__(START)
        self.tick_ended = asyncio.Event()

    async def set(self, when: datetime) -> None:
        await self.tick_ended.wait()


async def test_a_tick_that_ends_with_the_cancellation_does_not_keep_the_simulation_going() -> None:
    """The scheduler's tick ends in the turn the simulation is cancelled: asyncio.wait_for
    returned, and the simulation stepped on against a scheduler that was gone, each step waiting
    for a tick that never came."""
    clock = _HeldClock()
    ticking = asyncio.create_task(_tick(clock, START + timedelta(minutes=15)))
    for _ in range(2):
        await asyncio.sleep(0)  # waiting for the tick now
    clock.tick_ended.set()
    ticking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ticking
