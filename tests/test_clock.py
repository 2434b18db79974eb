"""Clocks count elapsed time, not wall time, across a daylight-saving change."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from energyhub.clock import ManualClock, ScaledClock

BERLIN = ZoneInfo("Europe/Berlin")


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
