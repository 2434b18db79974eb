"""Keys and site-scope answers kept in each API process while PostgreSQL reports every change.

A key's row and whether a site lies in its subtree change only with `api_keys` or `sites`, and
every change to either NOTIFYs `energyhub_access` (migration 9). Each API process LISTENs on a
connection of its own and empties its cache on each notification, so a revoked key is refused
by every process as soon as the revoking commit's notification arrives (milliseconds). Three
rules keep that true:
- nothing is kept or served while the listening connection is down, and the cache starts empty
  each time it comes back (what changed meanwhile was not heard);
- an answer is stored only if no notification came between the start of its query and its
  storing (`generation`), so an answer read before a change cannot outlive the change;
- the connection is pinged every `PING_S`: one that stopped answering (a peer gone without a
  word) turns the cache off within `PING_S` + `PING_TIMEOUT_S`.
Unknown tokens are never stored (a stream of wrong tokens cannot fill the cache).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING

import psycopg

from energyhub.store.migrations.v009_access_notify import CHANNEL

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from energyhub.api.keys import ApiKey

log = logging.getLogger(__name__)

PING_S = 5.0
PING_TIMEOUT_S = 2.0
RETRY_S = 1.0
APPLICATION_NAME = "energyhub api access cache"
"""The listening connection's `application_name` in pg_stat_activity."""

Access = tuple["ApiKey", "ZoneInfo | None"]
"""A key and the zone of the site asked for (None: the site is unknown or outside its scope)."""


class AccessCache:
    """Access answers by (key digest, site id), kept while `listen` hears `energyhub_access`."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.generation = 0
        self.live = False
        self._entries: dict[Hashable, Access] = {}

    def get(self, key: Hashable) -> Access | None:
        return self._entries.get(key) if self.live else None

    def put(self, generation: int, key: Hashable, access: Access) -> None:
        """Store what a query begun at `generation` (read before it) answered."""
        if not self.live or generation != self.generation or self.max_entries <= 0:
            return
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest stored
        self._entries[key] = access

    def reset(self, *, live: bool) -> None:
        """Forget every answer; serve from now on only if `live`."""
        self._entries.clear()
        self.generation += 1
        self.live = live

    def __len__(self) -> int:
        return len(self._entries)

    async def listen(self, url: str, connect_timeout_s: float) -> None:
        """Keep a LISTEN connection to `url` up until cancelled, the cache live while it is."""
        down_since: float | None = None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    url,
                    autocommit=True,
                    connect_timeout=max(1, round(connect_timeout_s)),
                    application_name=APPLICATION_NAME,
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.reset(live=True)
                    if down_since is not None:
                        log.info("access cache on again: listening to %s", CHANNEL)
                        down_since = None
                    await self._hear(conn)
            except (psycopg.Error, OSError, TimeoutError) as error:
                self.reset(live=False)
                if down_since is None:
                    down_since = asyncio.get_running_loop().time()
                    log.warning(
                        "access cache off (every request checks its key in the database) "
                        "until %s is heard again: %s", CHANNEL, error,
                    )  # fmt: skip
            except BaseException:
                self.reset(live=False)
                raise
            await asyncio.sleep(RETRY_S)

    async def _hear(self, conn: psycopg.AsyncConnection) -> None:
        """Empty the cache on every notification; ping between them; raise when the link fails."""
        while True:
            async for _ in conn.notifies(timeout=PING_S):
                self.reset(live=True)
            await asyncio.wait_for(conn.execute("SELECT 1"), PING_TIMEOUT_S)
