"""`within`: a timeout that keeps the caller's cancellation."""

from __future__ import annotations

import asyncio

import pytest

from energyhub.waiting import set_within, within


async def test_a_cancellation_that_comes_with_the_answer_is_kept() -> None:
    """The answer and the caller's cancellation in one turn of the loop: before Python 3.12
    asyncio.wait_for returned the answer and the caller went on as if never cancelled."""
    answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(within(answer, 10.0))
    await asyncio.sleep(0)  # waiting for the answer now
    answer.set_result(1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_an_answer_in_time_is_returned_and_a_late_one_cancelled() -> None:
    assert await within(asyncio.sleep(0, result="yes"), 1.0) == "yes"
    late = asyncio.ensure_future(asyncio.sleep(10))
    with pytest.raises(TimeoutError):
        await within(late, 0.01)
    assert late.cancelled()


async def test_the_caller_s_cancellation_cancels_what_it_waited_for() -> None:
    slow = asyncio.ensure_future(asyncio.sleep(10))
    waiting = asyncio.ensure_future(within(slow, 10.0))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)
    assert slow.cancelled()


async def test_a_stop_set_with_the_cancellation_still_cancels_the_sleep() -> None:
    """A service's stop event set and its task cancelled in one turn: the sleep that the stop cuts
    short must end in the cancellation, not return as if only stopped (`asyncio.wait_for` did)."""
    stop = asyncio.Event()
    sleeping = asyncio.ensure_future(set_within(stop, 10.0))
    await asyncio.sleep(0)
    stop.set()
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping


async def test_set_within_tells_a_set_event_from_a_timeout() -> None:
    event = asyncio.Event()
    assert await set_within(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await set_within(event, 10.0) is True
    assert await set_within(event, 0.0) is True  # already set: no time needed
