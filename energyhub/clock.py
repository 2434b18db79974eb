"""Clocks the scheduler and the alert evaluator run on: the wall clock, simulated time at a
speed, time a test moves, or simulated time in lockstep with its sleepers.

They ask a clock what time it is and sleep until a time on it; nothing else in them reads the
wall clock, so a simulated park running at `--speed 1440` and the scheduler
steering it can share one simulated day.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

SPEED_MIN = 0.001
"""Slowest simulated time (simulated s per wall s) `scheduler`, `simulate` and `replay` take."""
SPEED_MAX = 1e6
"""Fastest simulated time: a year in about half a minute. Beyond it a float of elapsed simulated
seconds soon outgrows timedelta and the calendar (an infinite speed was an OverflowError)."""


class Clock(Protocol):
    """What time it is, and a way to wait for a time."""

    def now(self) -> datetime:
        """The current time (timezone-aware)."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once `now()` has reached `when` (at once if it has)."""
        ...


def later(when: datetime, delta: timedelta) -> datetime:
    """`delta` of elapsed time after `when`, in UTC. Python adds a timedelta to (and subtracts
    two times of one zone by) the wall time of a zone with daylight saving: 01:30 + 1 h on the
    spring-forward night is 02:30, a time that does not exist, one real hour short. In UTC,
    like the wall clock's, sums and differences are elapsed time."""
    return when.astimezone(UTC) + delta


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        await asyncio.sleep(max((when - self.now()).total_seconds(), 0.0))


class ScaledClock:
    """Simulated time: `start` at the moment of creation, then `speed` simulated s per wall s."""

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("the start of a simulated clock must carry a UTC offset")
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.start, self.speed = start, speed
        self._anchor_s = time.monotonic()

    def now(self) -> datetime:
        elapsed = timedelta(seconds=(time.monotonic() - self._anchor_s) * self.speed)
        return later(self.start, elapsed)

    async def sleep_until(self, when: datetime) -> None:
        await asyncio.sleep(max((when - self.now()).total_seconds() / self.speed, 0.0))


class ManualClock:
    """Time that moves only when `advance` or `set` moves it; sleepers wake when it passes."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock's time must carry a UTC offset")
        self._now = start.astimezone(UTC)
        self._moved = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    async def set(self, when: datetime) -> None:
        """Move to `when` (never backwards) and wake whoever sleeps until then."""
        if when < self._now:
            raise ValueError(f"time does not run backwards: {when} is before {self._now}")
        async with self._moved:
            self._now = when.astimezone(UTC)
            self._moved.notify_all()

    async def advance(self, delta: timedelta) -> None:
        await self.set(later(self._now, delta))

    async def sleep_until(self, when: datetime) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self._now >= when)


class LockstepClock:
    """Simulated time that a driver moves and that waits for its sleepers (a co-simulation):
    `set(when)` wakes whoever sleeps until `when` or earlier and returns once each of the
    `sleepers` it expects is asleep again until a later time. A scheduler's tick then takes no
    simulated time, as it takes a few seconds of a 15-minute step in operation, however long
    it takes on the machine running the simulation."""

    def __init__(self, start: datetime, sleepers: int = 1) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock's time must carry a UTC offset")
        if sleepers < 1:
            raise ValueError(f"a lockstep clock waits for at least one sleeper, got {sleepers}")
        self._now, self._sleepers = start.astimezone(UTC), sleepers
        self._asleep: dict[object, datetime] = {}
        self._changed = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    def _all_asleep(self) -> bool:
        return sum(when > self._now for when in self._asleep.values()) >= self._sleepers

    async def sleep_until(self, when: datetime) -> None:
        sleeper = object()
        async with self._changed:
            self._asleep[sleeper] = when
            self._changed.notify_all()
            try:
                await self._changed.wait_for(lambda: self._now >= when)
            finally:  # woken, or cancelled (a stop): either way no longer asleep
                del self._asleep[sleeper]
                self._changed.notify_all()

    async def set(self, when: datetime) -> None:
        """Move to `when` (never backwards); return once every sleeper is asleep again."""
        if when < self._now:
            raise ValueError(f"time does not run backwards: {when} is before {self._now}")
        async with self._changed:
            self._now = when.astimezone(UTC)
            self._changed.notify_all()
            await self._changed.wait_for(self._all_asleep)
