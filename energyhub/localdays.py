"""Local days in any time zone: where each one starts and ends, and its steps.

A local day lasts 23, 24 or 25 hours, and in some zones the clocks jump at midnight (America/
Santiago, Asia/Beirut, America/Havana, ...): a day can start at 01:00, or its midnight come
twice. pandas' `floor("D")` and `normalize()` raise on such a midnight; these do not.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

import numpy as np
import pandas as pd

LONGEST_DAY = pd.Timedelta(hours=25)
"""No local day is longer (fall-back days); none is shorter than 23 h."""


def day_starts(index: pd.DatetimeIndex, tz: tzinfo) -> pd.DatetimeIndex:
    """The start of each step's local day, in `tz`: its midnight, the first one if it comes twice,
    or the first time after it if the clocks skip it."""
    local = index.tz_convert(tz)
    return local.floor("D", ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward")


def day_start(when: pd.Timestamp, tz: tzinfo) -> pd.Timestamp:
    """The start of `when`'s local day, in UTC."""
    return pd.Timestamp(day_starts(pd.DatetimeIndex([when]), tz)[0]).tz_convert("UTC")


def next_day_start(when: pd.Timestamp, tz: tzinfo) -> pd.Timestamp:
    """The start of the local day after `when`'s, in UTC."""
    return day_start(day_start(when, tz) + LONGEST_DAY, tz)


def month_start(when: pd.Timestamp, tz: tzinfo) -> pd.Timestamp:
    """The start of `when`'s local month (its first day's start), in UTC."""
    local = pd.Timestamp(when).tz_convert(tz)
    first = pd.Timestamp(local.date().replace(day=1))
    starts = pd.DatetimeIndex([first]).tz_localize(
        tz, ambiguous=np.ones(1, dtype=bool), nonexistent="shift_forward"
    )
    return pd.Timestamp(starts[0]).tz_convert("UTC")


def next_month_start(when: pd.Timestamp, tz: tzinfo) -> pd.Timestamp:
    """The start of the local month after `when`'s (its first day's start), in UTC."""
    local = pd.Timestamp(when).tz_convert(tz)
    first = pd.Timestamp(local.date().replace(day=1)) + pd.DateOffset(months=1)
    starts = pd.DatetimeIndex([first]).tz_localize(
        tz, ambiguous=np.ones(1, dtype=bool), nonexistent="shift_forward"
    )
    return pd.Timestamp(starts[0]).tz_convert("UTC")


def day_steps(start: pd.Timestamp, tz: tzinfo, step: pd.Timedelta) -> pd.DatetimeIndex:
    """The steps of the local day that begins at `start` (23, 24 or 25 hours of them), in UTC."""
    first = pd.Timestamp(start).tz_convert("UTC")
    return pd.date_range(first, next_day_start(first, tz), freq=step, inclusive="left")


def day_starts_between(first: pd.Timestamp, last: pd.Timestamp, tz: tzinfo) -> list[pd.Timestamp]:
    """Every local day start in [first, last], in UTC, oldest first."""
    lo, hi = pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")
    if hi < lo:
        return []
    dates = pd.date_range(lo.tz_convert(tz).date(), hi.tz_convert(tz).date(), freq="D")
    starts = dates.tz_localize(
        tz, ambiguous=np.ones(len(dates), dtype=bool), nonexistent="shift_forward"
    ).tz_convert("UTC")
    return [pd.Timestamp(t) for t in starts if lo <= t <= hi]


def wall_clock_back(
    index: pd.DatetimeIndex, tz: tzinfo, days: int | np.ndarray
) -> pd.DatetimeIndex:
    """Each step's same local wall-clock time `days` local days earlier, in the index's zone:
    "the same time yesterday" or "last week" across a daylight-saving change (a day of 23 or 25
    hours) is the same clock time, not 24 or 168 hours back. A clock time the clocks skipped on
    the earlier day is where they resumed (02:30 → 03:00); one they repeated is its first
    (daylight-saving) occurrence."""
    wall = index.tz_convert(tz).tz_localize(None)
    earlier = wall - pd.to_timedelta(np.broadcast_to(np.asarray(days), len(index)), unit="D")
    back = earlier.tz_localize(
        tz, ambiguous=np.ones(len(index), dtype=bool), nonexistent="shift_forward"
    )
    return back.tz_convert(index.tz)


def step_floor(when: datetime, step: timedelta, tz: tzinfo) -> datetime:
    """The start of the step `when` falls in, on the local clock of `tz`: steps count from the
    site's whole local hours, so an hourly plan in India (+05:30) steps from 00:00 local (18:30
    UTC), not from the UTC hour (23:30 local, a step astride midnight, tariff periods and
    flexible-load windows). In a zone whole hours off UTC this is the Unix epoch's count."""
    ts = pd.Timestamp(when).tz_convert("UTC")
    offset = pd.Timedelta(ts.tz_convert(tz).utcoffset() or timedelta(0))
    floored: datetime = ((ts + offset).floor(pd.Timedelta(step)) - offset).to_pydatetime()
    return floored
