"""A database outage under `run_scheduler`: a private PostgreSQL stopped and started again.

The log must tell the outage the way an operator wants to read it: one warning per failed attempt
naming the cause, attempts backing off, one info line when the database is back, no traceback;
and the step that came due during the outage is still sent once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from energyhub.clock import ManualClock
from energyhub.errors import SchedulerLockError
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

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")
STEP = timedelta(minutes=15)
FAILURE = re.compile(r"^database unavailable: (.+); retrying in (\d+) s$")


async def logged(
    caplog: pytest.LogCaptureFixture, wanted: Callable[[logging.LogRecord], bool], timeout_s: float
) -> list[logging.LogRecord]:
    """The captured records `wanted` picks, once there is one (fails after `timeout_s`)."""
    for _ in range(int(timeout_s / 0.05)):
        found = [r for r in caplog.records if wanted(r)]
        if found:
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"no such log record after {timeout_s} s; the log:\n{caplog.text}")


def failures(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if FAILURE.match(r.getMessage())]


async def test_an_outage_is_one_warning_per_attempt_then_one_recovery_line(
    caplog: pytest.LogCaptureFixture, prefix: str
) -> None:
    caplog.set_level(logging.INFO)
    site = make_site()
    async with embedded_postgres() as database:
        await prepare_db(database.url, site)
        await write_history(database.url, HistorySpec(START - timedelta(days=7), START))
        settings = scheduler_settings(database.url, SHARED_BROKER, prefix, db_connect_timeout_s=1.0)
        clock = ManualClock(START)
        stop = asyncio.Event()
        task = asyncio.create_task(run_scheduler(settings, site, clock, stop))
        down = False
        try:
            await logged(caplog, lambda r: "sent 1 setpoint" in r.getMessage(), 60)
            await database.stop()
            down = True
            caplog.clear()
            await clock.advance(STEP)  # the next step comes due with the database down
            await logged(caplog, lambda r: len(failures(caplog.records)) >= 3, 30)
            await database.start()
            down = False
            await logged(caplog, lambda r: "database available again" in r.getMessage(), 30)
            await logged(caplog, lambda r: "sent 1 setpoint" in r.getMessage(), 30)
            with pytest.raises(SchedulerLockError, match="another scheduler is running"):
                async with SchedulerLock(database.url, 1):  # the restart released it: taken again
                    pass
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            if down:  # so that a failure above is reported, not embedded_postgres's stop
                await database.start()
        async with connect(database.url) as conn:
            cur = await conn.execute("SELECT ts, status FROM setpoints ORDER BY ts")
            sent = await cur.fetchall()

    records = caplog.records
    assert not [r for r in records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert warnings == failures(records), caplog.text  # nothing else warns, the pool included
    assert all(r.name == "energyhub.scheduler.service" for r in warnings)
    causes = [FAILURE.match(r.getMessage()) for r in warnings]
    assert all(m and "Connection refused" in m[1] and "\n" not in m[1] for m in causes), causes
    delays_s = [int(m[2]) for m in causes if m]
    assert delays_s == [2**i for i in range(len(delays_s))]  # 1, 2, 4 … s
    (recovered,) = [r for r in records if "database available again" in r.getMessage()]
    assert recovered.levelno == logging.INFO
    assert f"after {len(warnings)} failed attempt(s)" in recovered.getMessage()
    assert caplog.text.count("took the scheduler lock again") == 1
    assert sent == [(START, "acked"), (START + STEP, "acked")]
