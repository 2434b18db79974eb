"""The lockstep clock: time moves only when its driver moves it, and the driver waits for its
sleepers to act on each time before moving on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from energyhub.clock import LockstepClock

T0 = datetime(2026, 12, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)


async def test_set_returns_once_the_sleeper_has_acted_and_sleeps_again() -> None:
    clock = LockstepClock(T0)
    acted: list[tuple[datetime, datetime]] = []

    async def ticking() -> None:
        wake = T0
        while True:
            await clock.sleep_until(wake)
            await asyncio.sleep(0.05)  # a tick that takes wall time, none on the clock
            acted.append((wake, clock.now()))
            wake = T0 + ((clock.now() - T0) // STEP + 1) * STEP  # as the scheduler's next wake

    task = asyncio.create_task(ticking())
    try:
        await clock.set(T0)  # the first tick, at once
        assert acted == [(T0, T0)]
        await clock.set(T0 + STEP / 3)  # before the next wake: nobody acts
        assert acted == [(T0, T0)]
        await clock.set(T0 + 2 * STEP)  # the sleeper wakes once and acts on the time it sees
        assert acted == [(T0, T0), (T0 + STEP, T0 + 2 * STEP)]
        await clock.set(T0 + 3 * STEP)
        assert acted[-1] == (T0 + 3 * STEP, T0 + 3 * STEP)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_set_waits_for_a_sleeper_that_has_not_started_yet() -> None:
    clock = LockstepClock(T0)
    setting = asyncio.create_task(clock.set(T0 + STEP))
    await asyncio.sleep(0.05)
    assert not setting.done()  # nobody asleep: it waits, it does not run ahead
    sleeper = asyncio.create_task(clock.sleep_until(T0 + 2 * STEP))
    await asyncio.wait_for(setting, 1)
    assert not sleeper.done()
    sleeper.cancel()
    await asyncio.gather(sleeper, return_exceptions=True)


async def test_a_cancelled_sleeper_no_longer_counts_as_asleep() -> None:
    clock = LockstepClock(T0)
    sleeper = asyncio.create_task(clock.sleep_until(T0 + STEP))
    await asyncio.sleep(0)
    sleeper.cancel()  # a stopped scheduler
    await asyncio.gather(sleeper, return_exceptions=True)
    setting = asyncio.create_task(clock.set(T0 + STEP / 2))
    await asyncio.sleep(0.05)
    assert not setting.done()
    setting.cancel()
    await asyncio.gather(setting, return_exceptions=True)
    assert clock.now() == T0 + STEP / 2


@pytest.mark.parametrize(
    ("start", "sleepers", "message"),
    [
        (datetime(2026, 12, 1), 1, "UTC offset"),
        (T0, 0, "at least one sleeper, got 0"),
    ],
)
def test_bad_arguments_are_named(start: datetime, sleepers: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LockstepClock(start, sleepers)


async def test_time_does_not_run_backwards() -> None:
    clock = LockstepClock(T0)
    with pytest.raises(ValueError, match="does not run backwards"):
        await clock.set(T0 - STEP)
