"""One scheduler per database: a session advisory lock, taken again after the database restarts.

A session lock lives as long as its connection. A database restart or a dropped connection ends
it without a word, and a second scheduler started meanwhile would take it and run alongside. So
`SchedulerLock.confirm` runs before every tick: while the holding connection answers, the lock is
still ours; once it does not, a new connection takes the lock again, or, when another scheduler
took it meanwhile, SchedulerLockError stops this one.
"""

from __future__ import annotations

import contextlib
import logging
from contextlib import AsyncExitStack
from types import TracebackType

import psycopg
from psycopg import AsyncConnection

from energyhub.errors import SchedulerLockError
from energyhub.store.db import connect
from energyhub.waiting import within

log = logging.getLogger(__name__)

SCHEDULER_LOCK_KEY = 7_326_140_004
"""pg_advisory_lock key held by the one scheduler of a database."""
APPLICATION_NAME = "energyhub scheduler"
"""How the holding connection shows in pg_stat_activity (and in a refusal's message)."""

HOLDER = """
SELECT a.pid, a.application_name, coalesce(host(a.client_addr), 'local socket'), a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %(high)s AND l.objid::bigint = %(low)s
"""


class SchedulerLock:
    """An async context manager holding the scheduler lock of the database at `url`.

    Entering raises SchedulerLockError if another scheduler holds it and DatabaseUnavailableError
    if the database cannot be reached; leaving closes the connection, which releases the lock.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._held: AsyncConnection | None = None
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> SchedulerLock:
        await self._take("another scheduler is running against this database")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._release()

    async def confirm(self) -> None:
        """Make sure the lock is still ours: take it again on a new connection if the one
        holding it is gone; SchedulerLockError if another scheduler took it meanwhile."""
        if self._held is not None:
            try:
                await within(self._held.execute("SELECT 1"), self.timeout_s)
                return
            except (psycopg.Error, TimeoutError):
                await self._release()
        await self._take(
            "another scheduler took the scheduler lock while this one's connection to the "
            "database was down; this one stops"
        )
        log.info("took the scheduler lock again on a new connection to the database")

    async def _take(self, refusal: str) -> None:
        stack = AsyncExitStack()
        conn = await stack.enter_async_context(connect(self.url, self.timeout_s))
        try:
            await conn.execute(
                "SELECT set_config('application_name', %s, false)", (APPLICATION_NAME,)
            )
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (SCHEDULER_LOCK_KEY,))
            row = await cur.fetchone()
            if not row or not row[0]:
                raise SchedulerLockError(f"{refusal} ({await _holder(conn)})")
        except BaseException:
            await stack.aclose()
            raise
        self._held, self._stack = conn, stack

    async def _release(self) -> None:
        self._held = None
        with contextlib.suppress(psycopg.Error):
            await self._stack.aclose()


async def _holder(conn: AsyncConnection) -> str:
    """Who holds the lock, as an operator finds it in pg_stat_activity."""
    cur = await conn.execute(
        HOLDER, {"high": SCHEDULER_LOCK_KEY >> 32, "low": SCHEDULER_LOCK_KEY & 0xFFFFFFFF}
    )
    row = await cur.fetchone()
    if row is None:  # released between the two queries
        return "it has just been released: start this one again"
    pid, name, address, since = row
    return (
        f"held by PostgreSQL pid {pid}, {name or 'no application name'} from {address}, "
        f"connected since {since.isoformat(timespec='seconds')}"
    )
