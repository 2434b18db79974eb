"""What the bill needs from the store: a connection's month-to-date peak import.

The maximum-demand charge of a two-part tariff is billed on the month's highest 15-minute mean
import, so the peak is read from the 15-minute site rollup (`site_load_15m`, electricity), from
the start of the local month up to (not including) the given time.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

MONTH_PEAK = """
SELECT max(power_kw) FROM site_load_15m
WHERE site_id = %s AND carrier = 'electricity' AND bucket >= %s AND bucket < %s"""


def month_start(at: datetime, tz: ZoneInfo) -> datetime:
    """Midnight of the first day of the local month `at` falls in."""
    local = at.astimezone(tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def month_peak_kw(
    conn: AsyncConnection, site_id: str, before: datetime, tz: ZoneInfo
) -> float:
    """The site's highest 15-minute import this local month before `before` (0 if none)."""
    start = month_start(before, tz)
    if start >= before:
        return 0.0
    cur = await conn.execute(MONTH_PEAK, (site_id, start, before))
    row = await cur.fetchone()
    return max(float(row[0]), 0.0) if row and row[0] is not None else 0.0
