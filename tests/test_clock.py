"""Clocks count elapsed time, not wall time, across a daylight-saving change; the lockstep clock
moves only when its driver moves it, and the driver waits for its sleepers to act on each time
before moving on."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from energyhub.clock import LockstepClock, ManualClock, ScaledClock

BERLIN = ZoneInfo("Europe/Berlin")
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



async def test_a_manual_clock_advances_real_hours_over_the_spring_forward_night() -> None:
    clock = ManualClock(datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN))  # 23:00 UTC the day before
    seen = []
    for _ in range(4):
        await clock.advance(timedelta(hours=1))
        seen.append(clock.now().astimezone(UTC).hour)
    assert seen == [0, 1, 2, 3]  # wall-time sums gave 0, 1, 1, 2: an hour that never passed
    assert clock.now().astimezone(BERLIN).hour == 5  # 05:00 CEST, 4 real hours after 00:00 CET


async def test_a_manual_clock_keeps_the_hour_that_repeats_in_autumn() -> None:
    clock = ManualClock(datetime(2026, 10, 25, 1, 0, tzinfo=BERLIN))
    await clock.advance(timedelta(hours=2))  # 02:00 CEST, 02:00 CET, then 03:00 CET is 2 h later
    assert clock.now() == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert clock.now() - datetime(2026, 10, 25, 1, 0, tzinfo=BERLIN) == timedelta(hours=2)
    assert clock.now().astimezone(BERLIN).strftime("%H:%M %Z") == "02:00 CET"


async def test_a_scaled_clock_counts_simulated_seconds_across_the_change() -> None:
    start = datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN)  # an hour before the clocks jump
    speed = 36_000.0  # ten simulated hours per second
    began = time.monotonic()
    clock = ScaledClock(start, speed)
    await asyncio.sleep(0.25)
    elapsed_s = (clock.now().astimezone(UTC) - start.astimezone(UTC)).total_seconds()
    ended = time.monotonic()
    assert 0.25 * speed <= elapsed_s <= (ended - began) * speed  # wall-time sums: an hour short


async def test_a_lockstep_clock_keeps_utc_across_the_change() -> None:
    clock = LockstepClock(datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN))
    sleeper = asyncio.create_task(clock.sleep_until(datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)))
    await clock.set(datetime(2026, 3, 29, 0, 45, tzinfo=UTC))  # 01:45 CET: the sleeper sleeps on
    assert not sleeper.done()
    assert clock.now().tzinfo is UTC
    sleeper.cancel()
    await asyncio.gather(sleeper, return_exceptions=True)
