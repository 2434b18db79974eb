"""Incremental inputs: newly completed 15-minute load buckets per site, forecasts, rejects.

Each reader keeps a cursor, so a tick reads only what arrived since the previous one: the rollup
buckets after the last one handed out, the `rejected` rows after the last id counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection

from energyhub.store.energy import BUCKET_BEFORE, BUCKET_TERMS

BUCKET = timedelta(minutes=15)
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
BUCKETS = """
WITH src AS (
    SELECT s.*, lag(s.last_ts) OVER w AS prev_ts, lag(s.last_value) OVER w AS prev_value
    FROM (
        SELECT s.* FROM readings_15m AS s
        WHERE s.meter_id = ANY(%(meters)s) AND s.bucket >= %(start)s AND s.bucket < %(end)s
        UNION ALL
        SELECT before.* FROM unnest(%(meters)s::integer[]) AS wanted (id)
        CROSS JOIN LATERAL (:before) AS before
    ) AS s
    WINDOW w AS (PARTITION BY s.meter_id ORDER BY s.bucket)
)
SELECT t.bucket, t.meter_id, t.n, t.sum_value,
       energyhub_counter_kw(t.bucket_kwh, t.bucket_s) FROM (:terms) AS t
WHERE t.bucket >= %(start)s ORDER BY t.bucket, t.meter_id""".replace(
    ":terms", BUCKET_TERMS
).replace(":before", BUCKET_BEFORE.format(source="readings_15m", start="%(start)s"))
"""Each bucket's mean and a counter's kW by the store's one rule (energyhub/store/energy.py): a
counter's reset keeps the rise before it and a gap reads as its mean power, as in the load route
and the carbon report."""
PLAN_FORECAST = """
SELECT DISTINCT ON (b.site) b.site, pi.value
FROM unnest(%(sites)s::text[], %(parks)s::text[]) AS b (site, park)
JOIN plans AS p ON p.status = 'active' AND p.site_id IN (b.site, b.park)
JOIN plan_inputs AS pi ON pi.plan_id = p.id AND pi.name = b.site || ':electricity_kw'
    AND pi.ts <= %(bucket)s AND pi.ts > %(bucket)s - make_interval(secs => p.step_s)
ORDER BY b.site, (p.site_id = b.site) DESC, pi.ts DESC"""
REJECTS = """
SELECT CASE WHEN left(topic, %(n)s) = %(head)s THEN split_part(substr(topic, %(n)s + 1), '/', 1)
       END AS park, count(*), max(id)
FROM rejected WHERE id > %(last)s GROUP BY 1"""
REJECT_WINDOW = timedelta(minutes=1)

ForecastSource = Callable[
    [AsyncConnection, list[tuple[str, str]], datetime], Awaitable[dict[str, float]]
]
"""(connection, [(building, park)], bucket start) → forecast electric kW per building."""


def floor_bucket(ts: datetime) -> datetime:
    return ts - (ts - ORIGIN) % BUCKET


async def plan_forecast(
    conn: AsyncConnection, sites: list[tuple[str, str]], bucket: datetime
) -> dict[str, float]:
    """`<building>:electricity_kw` of the active plan (the building's, else its park's)."""
    params = {"sites": [s for s, _ in sites], "parks": [p for _, p in sites], "bucket": bucket}
    cur = await conn.execute(PLAN_FORECAST, params)
    return {str(site): float(value) for site, value in await cur.fetchall()}


class BucketReader:
    """Site load (kW) of each 15-minute bucket once it is complete and its rollup refreshed."""

    def __init__(
        self,
        sites: dict[str, tuple[int, ...]],
        counters: set[int],
        start: datetime,
        grace: timedelta,
    ) -> None:
        self._sites, self._counters, self._grace = sites, counters, grace
        self._meters = sorted({m for ms in sites.values() for m in ms})
        self.cursor = floor_bucket(start)

    async def read(
        self, conn: AsyncConnection, now: datetime
    ) -> dict[str, list[tuple[datetime, float]]]:
        """Buckets in [cursor, the last complete one]; the cursor then moves past them."""
        end = floor_bucket(now - self._grace)
        if end <= self.cursor or not self._meters:
            return {}
        params = {
            "meters": self._meters,
            "start": self.cursor,
            "end": end,
        }
        cur = await conn.execute(BUCKETS, params)
        per_meter: dict[datetime, dict[int, float]] = {}
        for bucket, meter_id, n, sum_value, counter_kw in await cur.fetchall():
            kw = self._meter_kw(meter_id, n, sum_value, counter_kw)
            if kw is not None:
                per_meter.setdefault(bucket, {})[meter_id] = kw
        self.cursor = end
        out: dict[str, list[tuple[datetime, float]]] = {}
        for bucket in sorted(per_meter):
            values = per_meter[bucket]
            for site_id, meters in self._sites.items():
                known = [values[m] for m in meters if m in values]
                if known:
                    out.setdefault(site_id, []).append((bucket, sum(known)))
        return out

    def _meter_kw(
        self, meter_id: int, n: int, sum_value: float, counter_kw: float | None
    ) -> float | None:
        if meter_id not in self._counters:
            return sum_value / n
        return counter_kw  # None for a counter's first reading: nothing before it


class RejectCounter:
    """Rejected messages per minute and park, from the `rejected` rows after the last id counted.

    A reject on `{prefix}/{park}/...` counts for that park; one whose topic names no park of the
    site (a device topic, a malformed one) cannot be placed and counts for every park.
    """

    def __init__(self, topic_prefix: str) -> None:
        self._head = f"{topic_prefix}/"
        self.last_id: int | None = None
        self._recent: deque[tuple[datetime, str | None, int]] = deque()

    async def read(self, conn: AsyncConnection, now: datetime, parks: set[str]) -> dict[str, float]:
        """Rejects in the last minute per park of `parks`; those before the first read never."""
        if self.last_id is None:
            cur = await conn.execute("SELECT coalesce(max(id), 0) FROM rejected")
            row = await cur.fetchone()
            self.last_id = int(row[0]) if row else 0
        else:
            cur = await conn.execute(
                REJECTS, {"head": self._head, "n": len(self._head), "last": self.last_id}
            )
            for park, count, max_id in await cur.fetchall():
                self._recent.append((now, park if park in parks else None, int(count)))
                self.last_id = max(self.last_id, int(max_id))
        while self._recent and now - self._recent[0][0] > REJECT_WINDOW:
            self._recent.popleft()
        anywhere = sum(n for _, park, n in self._recent if park is None)
        out = dict.fromkeys(parks, float(anywhere))
        for _, park, n in self._recent:
            if park is not None:
                out[park] += n
        return out
