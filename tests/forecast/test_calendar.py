"""China's day kinds: holidays, the weekend days worked in their place, and unknown years."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pandas as pd

from energyhub.forecast.calendar import (
    HOLIDAY,
    MAKEUP_WORKDAY,
    WEEKEND,
    WORKDAY,
    day_kind,
    day_kinds,
    unknown_years,
)

TZ = ZoneInfo("Asia/Shanghai")


def test_national_day_week_and_its_make_up_saturday() -> None:
    assert day_kind(date(2025, 9, 30)) == WORKDAY  # Tuesday before Golden Week
    assert day_kind(date(2025, 10, 1)) == HOLIDAY  # National Day, a Wednesday
    assert day_kind(date(2025, 10, 4)) == HOLIDAY  # a Saturday inside the holiday
    assert day_kind(date(2025, 9, 28)) == MAKEUP_WORKDAY  # Sunday worked for it
    assert day_kind(date(2025, 10, 11)) == MAKEUP_WORKDAY  # Saturday worked for it
    assert day_kind(date(2025, 11, 15)) == WEEKEND  # an ordinary Saturday


def test_a_year_the_calendar_does_not_know_falls_back_to_monday_to_friday() -> None:
    assert day_kind(date(2099, 10, 1)) == WORKDAY  # a Thursday
    assert day_kind(date(2099, 10, 3)) == WEEKEND
    steps = pd.date_range("2026-12-31 12:00", periods=48, freq="1h", tz=TZ)
    assert unknown_years(steps, TZ) == [2027]


def test_day_kinds_are_by_local_date() -> None:
    # 2025-10-01 00:00 in Shanghai is 2025-09-30 16:00 UTC: a holiday by local date.
    steps = pd.DatetimeIndex(["2025-09-30 15:45", "2025-09-30 16:00"], tz="UTC")
    assert day_kinds(steps, TZ).tolist() == [WORKDAY, HOLIDAY]
