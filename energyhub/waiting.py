"""Waiting for something with a timeout without losing a cancellation.

Before Python 3.12, `asyncio.wait_for` returns the awaited result and drops the caller's
cancellation when both arrive in the same turn of the event loop. A service loop that waits that
way (a ping, a health query) can then go on after it was told to stop, and whatever awaits its
end (an API's shutdown, a scheduler's) waits forever. `within` waits the same way and keeps the
cancellation; `set_within` is the interruptible sleep of a loop (`stop`, a message, a lost
connection), built on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout_s: float | None) -> T:
    """The result of `awaitable` if it comes within `timeout_s` (None: however long it takes),
    else TimeoutError (it is then cancelled, and waited for); a cancellation of the caller
    always propagates, and cancels it."""
    if timeout_s is None:  # nothing to race: awaited as is, no task of its own
        return await awaitable
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except BaseException:
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise TimeoutError
    return task.result()


async def set_within(event: asyncio.Event, timeout_s: float) -> bool:
    """Whether `event` is set within `timeout_s`: a sleep that the event cuts short, and that a
    cancellation of the caller ends as `within` does."""
    try:
        await within(event.wait(), timeout_s)
    except TimeoutError:
        return event.is_set()
    return True
