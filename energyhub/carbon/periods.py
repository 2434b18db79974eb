"""Reporting periods in the site's local time: parsing, the previous period, the year so far."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from energyhub.bounds import PERIOD_PATTERN, YEAR_MAX, YEAR_MIN
from energyhub.carbon.errors import PeriodError

PERIOD = re.compile(PERIOD_PATTERN)
STEP = timedelta(minutes=15)
"""The one step every window is netted on, whatever its length: the billing meter's 15 minutes.
Netting import against export on a step that grew with the window (it was an hour beyond 62
days) made a year differ from the sum of its months; one step keeps any window the sum of its
parts."""


def _shift_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def parse_period(text: str, timezone: str) -> tuple[datetime, datetime]:
    """`2026`, `2026-10` or `2026-10-05` as [start, end) at local midnight of the site."""
    match = PERIOD.fullmatch(text.strip())
    if not match:
        raise PeriodError(f"period must be YYYY, YYYY-MM or YYYY-MM-DD, got {text!r}")
    year, month, day = (int(g) if g else None for g in match.groups())
    if year is None or not YEAR_MIN <= year <= YEAR_MAX:  # year 0 or 9999 overflowed the calendar
        raise PeriodError(
            f"period {text!r}: the year must lie between {YEAR_MIN} and {YEAR_MAX}, got {year}"
        )
    zone = ZoneInfo(timezone)
    try:
        start = datetime(year, month or 1, day or 1, tzinfo=zone)
    except ValueError as exc:
        raise PeriodError(f"period {text!r} is not a date: {exc}") from None
    if day is not None:
        end = datetime.combine(start.date() + timedelta(days=1), start.timetz())
    elif month is not None:
        end = _shift_months(start, 1)
    else:
        end = start.replace(year=start.year + 1)
    return start, end


def _months_between(start: datetime, end: datetime) -> int | None:
    """Whole calendar months from start to end if both are local month starts, else None."""
    if any(
        (t.day, t.hour, t.minute, t.second, t.microsecond) != (1, 0, 0, 0, 0) for t in (start, end)
    ):
        return None
    return (end.year - start.year) * 12 + end.month - start.month


def previous_period(start: datetime, end: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The period just before: as many calendar months if [start, end) is whole months."""
    zone = ZoneInfo(timezone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    months = _months_between(local_start, local_end)
    if months:
        return _shift_months(local_start, -months), local_start
    return start - (end - start), start


def year_start(end: datetime, timezone: str) -> datetime:
    """Local 1 January of the year the period ends in (its last instant's year)."""
    last = (end - timedelta(microseconds=1)).astimezone(ZoneInfo(timezone))
    return datetime(last.year, 1, 1, tzinfo=ZoneInfo(timezone))


def check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise PeriodError("start and end must carry a UTC offset")
    if end <= start:
        raise PeriodError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
