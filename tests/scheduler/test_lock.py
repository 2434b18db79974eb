"""The scheduler lock: one scheduler per database, across database restarts.

A session advisory lock ends with its connection; these tests restart a private PostgreSQL to
check that the scheduler takes its lock again, and stops when another took it meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from energyhub.clock import ManualClock
from energyhub.errors import DatabaseUnavailableError, SchedulerLockError
from energyhub.scheduler.lock import SchedulerLock
from energyhub.scheduler.service import run_scheduler
from energyhub.store.db import connect
from energyhub.store.embedded import embedded_postgres

from .conftest import (
    SHARED_BROKER,
    HistorySpec,
    make_site,
    prepare_db,
    scheduler_settings,
    write_history,
)
from .test_outage import START, STEP, logged

HOLDER = (
    r"held by PostgreSQL pid \d+, energyhub scheduler from (127\.0\.0\.1|::1|local socket), "
    r"connected since \d{4}-\d\d-\d\dT"
)


async def test_a_second_scheduler_is_refused_with_the_holder_named(pg_url: str) -> None:
    async with SchedulerLock(pg_url, 5):
        with pytest.raises(
            SchedulerLockError,
            match=rf"^another scheduler is running against this database \({HOLDER}",
        ):
            async with SchedulerLock(pg_url, 5):
                pass
    async with SchedulerLock(pg_url, 5) as lock:  # released with its connection
        await lock.confirm()


async def test_the_lock_is_taken_again_once_the_database_is_back() -> None:
    async with embedded_postgres() as database, SchedulerLock(database.url, 2) as lock:
        await database.stop()
        try:
            with pytest.raises(DatabaseUnavailableError):
                await lock.confirm()
        finally:
            await database.start()
        await lock.confirm()
        with pytest.raises(SchedulerLockError, match="another scheduler is running"):
            async with SchedulerLock(database.url, 2):
                pass


async def test_a_scheduler_whose_lock_was_taken_while_the_database_restarted_stops(
    caplog: pytest.LogCaptureFixture, prefix: str
) -> None:
    caplog.set_level(logging.INFO)
    site = make_site()
    async with embedded_postgres() as database:
        await prepare_db(database.url, site)
        await write_history(database.url, HistorySpec(START - timedelta(days=7), START))
        settings = scheduler_settings(database.url, SHARED_BROKER, prefix, db_connect_timeout_s=1.0)
        clock = ManualClock(START)
        first = asyncio.create_task(run_scheduler(settings, site, clock, asyncio.Event()))
        try:
            await logged(caplog, lambda r: "sent 1 setpoint" in r.getMessage(), 60)
            await database.stop()
            await database.start()
            async with SchedulerLock(database.url, 2) as second:  # the first's lock went away
                await clock.advance(STEP)  # the first's next tick finds it taken
                with pytest.raises(SchedulerLockError, match=f"took the scheduler lock.*{HOLDER}"):
                    await asyncio.wait_for(first, 30)
                await second.confirm()
        finally:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
        async with connect(database.url) as conn:
            cur = await conn.execute("SELECT ts FROM setpoints ORDER BY ts")
            sent = [ts for (ts,) in await cur.fetchall()]
    assert sent == [START]  # nothing after the takeover
