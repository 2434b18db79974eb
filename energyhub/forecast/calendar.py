"""China's working-day calendar as model features: public holidays and make-up working days (调休).

`chinese-calendar` knows the State Council's schedule for the years it ships (2004–2026 in 1.11);
a later date falls back to Monday–Friday and `unknown_years` names the year so the forecast can
say so.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

WORKDAY, WEEKEND, HOLIDAY, MAKEUP_WORKDAY = 0, 1, 2, 3
"""Day kinds: an ordinary working day, a weekend, a public holiday (with the days moved to it),
and a weekend day that is a working day because a holiday moved away from it."""


@lru_cache(maxsize=4096)
def day_kind(day: date) -> int:
    """The day kind of a local date; Monday–Friday/weekend when the calendar has no such year."""
    import chinese_calendar  # on first use: it builds its tables at import

    weekend = day.weekday() >= 5
    try:
        working = bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return WEEKEND if weekend else WORKDAY
    if working:
        return MAKEUP_WORKDAY if weekend else WORKDAY
    return WEEKEND if weekend and not _is_public_holiday(day) else HOLIDAY


def _is_public_holiday(day: date) -> bool:
    import chinese_calendar

    on_holiday, name = chinese_calendar.get_holiday_detail(day)
    return bool(on_holiday and name is not None)


@lru_cache(maxsize=64)
def known_year(year: int) -> bool:
    """Whether `chinese-calendar` has the official schedule of this year."""
    import chinese_calendar

    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def day_kinds(index: pd.DatetimeIndex, tz: ZoneInfo) -> NDArray[np.int64]:
    """The day kind of each step's local date."""
    local = index.tz_convert(tz)
    unique, inverse = np.unique(np.asarray(local.date), return_inverse=True)
    kinds = np.array([day_kind(d) for d in unique], dtype=np.int64)
    return np.asarray(kinds[inverse], dtype=np.int64)


def unknown_years(index: pd.DatetimeIndex, tz: ZoneInfo) -> list[int]:
    """The years of these steps whose holidays `chinese-calendar` does not know."""
    years = sorted({int(y) for y in np.unique(np.asarray(index.tz_convert(tz).year))})
    return [y for y in years if not known_year(y)]
