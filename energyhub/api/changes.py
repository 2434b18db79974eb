"""Each API process's one LISTEN connection: PostgreSQL's notices of key, site and load changes.

The caches that rely on them (AccessCache, the load answers of ResponseCache) are live only while
the connection is up: they start empty each time it comes back (what changed meanwhile was not
heard) and are switched off while it is down. The connection is pinged every `PING_S`.

A ping that takes longer than `PING_SLOW_S` (a busy machine's event loop, a loaded server) turns
the caches off but keeps the connection: when the answer comes they are on again, empty, without
reconnecting. Only a ping unanswered for `PING_GIVE_UP_S` (a peer gone without a word) or an
error ends the connection; the listener then connects again every `RETRY_S`. Each change is one
log line that says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import psycopg
from psycopg import sql

from energyhub.waiting import within

log = logging.getLogger(__name__)

PING_S = 5.0
PING_SLOW_S = 5.0
PING_GIVE_UP_S = 30.0
RETRY_S = 1.0
APPLICATION_NAME = "energyhub api listener"
"""The listening connection's `application_name` in pg_stat_activity."""


class ListenerLost(Exception):
    """The listening connection stopped answering."""


def why(error: BaseException) -> str:
    """An error as a reason to print: its message, or what it is when it has none."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, TimeoutError) and not text:
        return "PostgreSQL did not answer in time"
    return text or type(error).__name__


async def ping(conn: psycopg.AsyncConnection, link: Callable[[bool], None]) -> None:
    """`SELECT 1` on the listening connection; slow → caches off until it answers; unanswered
    for PING_GIVE_UP_S → ListenerLost."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = asyncio.ensure_future(conn.execute("SELECT 1"))
    try:
        done, _ = await asyncio.wait({answer}, timeout=PING_SLOW_S)
    except BaseException:  # cancelled meanwhile: the connection closes, the ping with it
        answer.cancel()
        raise
    if done:
        answer.result()
        return
    link(False)
    log.warning(
        "the API's caches are off (every request goes to the database): PostgreSQL has not "
        "answered the listener's ping for %.0f s; waiting up to %.0f s", PING_SLOW_S, PING_GIVE_UP_S
    )  # fmt: skip
    try:  # not wait_for, which may drop the API shutdown's cancellation (energyhub.waiting)
        await within(answer, PING_GIVE_UP_S - PING_SLOW_S)
    except TimeoutError:
        raise ListenerLost(
            f"PostgreSQL did not answer the listener's ping within {PING_GIVE_UP_S:.0f} s"
        ) from None
    link(True)
    log.info(
        "the listener's ping was answered after %.1f s: the API's caches are on again",
        loop.time() - started,
    )


async def listen(
    url: str,
    connect_timeout_s: float,
    handlers: Mapping[str, Callable[[str], None]],
    link: Callable[[bool], None],
) -> None:
    """LISTEN to each channel of `handlers` and pass it every payload until cancelled; `link`
    hears True once listening (again) and False whenever the connection is lost or doubtful."""
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
                    await ping(conn, link)
        except (psycopg.Error, OSError, TimeoutError, ListenerLost) as error:
            link(False)
            if down_since is None:
                down_since = asyncio.get_running_loop().time()
                log.warning(
                    "the API's caches are off (every request goes to the database) until it "
                    "listens to PostgreSQL again: %s", why(error),
                )  # fmt: skip
        except BaseException:
            link(False)
            raise
        await asyncio.sleep(RETRY_S)
