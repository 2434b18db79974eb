"""Each API process's one LISTEN connection: PostgreSQL's notices of key, site and load changes.

The caches that rely on them (AccessCache, the load answers of ResponseCache) are live only while
the connection is up: they start empty each time it comes back (what changed meanwhile was not
heard) and are switched off while it is down. The connection is pinged every `PING_S`: one that
stopped answering (a peer gone without a word) turns them off within `PING_S` + `PING_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

PING_S = 5.0
PING_TIMEOUT_S = 2.0
RETRY_S = 1.0
APPLICATION_NAME = "energyhub api listener"
"""The listening connection's `application_name` in pg_stat_activity."""


async def listen(
    url: str,
    connect_timeout_s: float,
    handlers: Mapping[str, Callable[[str], None]],
    link: Callable[[bool], None],
) -> None:
    """LISTEN to each channel of `handlers` and pass it every payload until cancelled; `link`
    hears True once listening (again) and False whenever the connection is lost."""
    down_since: float | None = None
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                url,
                autocommit=True,
                connect_timeout=max(1, round(connect_timeout_s)),
                application_name=APPLICATION_NAME,
            ) as conn:
                for channel in handlers:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                link(True)
                if down_since is not None:
                    log.info("listening to %s again: the API's caches are on", ", ".join(handlers))
                    down_since = None
                while True:
                    async for notice in conn.notifies(timeout=PING_S):
                        handlers[notice.channel](notice.payload)
                    await asyncio.wait_for(conn.execute("SELECT 1"), PING_TIMEOUT_S)
        except (psycopg.Error, OSError, TimeoutError) as error:
            link(False)
            if down_since is None:
                down_since = asyncio.get_running_loop().time()
                log.warning(
                    "the API's caches are off (every request goes to the database) until it "
                    "listens to PostgreSQL again: %s", error,
                )  # fmt: skip
        except BaseException:
            link(False)
            raise
        await asyncio.sleep(RETRY_S)
