"""Read queries: sites and their meters, raw readings, latest values, bucketed series per meter
and summed over a site subtree.

Series come from the 1-hour or 15-minute rollups when the step is a multiple of their grain, else
from raw readings. Values per bucket: power meters and sensors average their samples; cumulative
energy counters (`energy_kwh`) become interval energy between consecutive last values — a drop is a
rollover when the meter declares `rollover_kwh` and the previous value was past half of it, else a
reset to zero — divided by the time those steps cover (the mean power while the counter measured),
so every series speaks kW. A gap's energy lands in the first bucket after it, its kW is the gap's
mean; buckets without data are absent, never interpolated. A state (a store's SOC,
`STATE_QUANTITIES`) is read by `meter_state_series` as its last sample in each step: the state at
the step's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
from psycopg import AsyncConnection, sql

from energyhub.localdays import day_start
from energyhub.store.db import Backend
from energyhub.store.energy import BUCKET_BEFORE, BUCKET_TERMS

STEPS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}

LOAD_CARRIERS = ("electricity", "heat", "cooling", "gas")
METER_SERIES_COLUMNS = ["bucket", "meter_id", "value", "samples", "energy_kwh", "covered_s"]

RAW_SOURCE = sql.SQL(
    "(SELECT ts AS bucket, meter_id, 1 AS n, value AS sum_value, ts AS first_ts, "
    "value AS first_value, ts AS last_ts, value AS last_value, "
    "NULL::double precision AS energy_kwh, 0::double precision AS covered_s FROM readings)"
)
"""Raw readings shaped as one-reading buckets: all of a reading's step is its link."""

PER_METER = """
WITH src AS (
    SELECT s.meter_id, s.bucket, s.n, s.sum_value, s.first_ts, s.first_value, s.last_ts,
           s.last_value, s.energy_kwh, s.covered_s,
           lag(s.last_ts) OVER w AS prev_ts, lag(s.last_value) OVER w AS prev_value
    FROM (
        SELECT s.* FROM {source} AS s
        JOIN unnest(%(meters)s::integer[]) AS wanted (id) ON s.meter_id = wanted.id
        WHERE s.bucket >= %(start)s AND s.bucket < %(end)s
        UNION ALL
        SELECT before.* FROM unnest(%(meters)s::integer[]) AS wanted (id)
        CROSS JOIN LATERAL ({before}) AS before
    ) AS s
    WINDOW w AS (PARTITION BY s.meter_id ORDER BY s.bucket)
), terms AS ({terms}
    WHERE t.bucket >= %(start)s
)
SELECT {bucket} AS bucket, meter_id,
       CASE WHEN quantity = 'energy_kwh'
            THEN energyhub_counter_kw(sum(bucket_kwh), sum(bucket_s))
            ELSE sum(sum_value) / sum(n) END AS value,
       sum(n)::integer AS samples,
       sum(bucket_kwh) AS energy_kwh,
       sum(bucket_s) AS covered_s
FROM terms
GROUP BY meter_id, 1, quantity"""
"""Per meter and step bucket: kW (power meters: the mean of the samples present; counters:
the energy ÷ the time its steps cover, `energyhub_counter_kw`), samples, energy (the sum of every
reading's step in the bucket, docs/meter-data.md) and the seconds those steps cover. Grouped by
meter first, in the order the window sorted `src`, and by the meter's quantity rather than taking
its min(): a year of 15-min buckets of 22 meters read in 2.6 s, not 3.4 s. Each meter's bucket
before `start` (`BUCKET_BEFORE`, `BEFORE_RAW`) gives the first bucket's step, however far back."""

BEFORE_RAW = """
SELECT b.* FROM {source} AS b
WHERE b.meter_id = wanted.id AND b.bucket < %(start)s
  AND b.bucket >= coalesce((SELECT r.bucket FROM readings_15m AS r
                            WHERE r.meter_id = wanted.id AND r.bucket < %(start)s
                            ORDER BY r.bucket DESC LIMIT 1), %(start)s - interval '1 day')
ORDER BY b.bucket DESC LIMIT 1"""
"""A meter's last reading before `start`, looked for from its last 15-min rollup bucket before
`start` (which holds it, or an older one if the rollup is behind): the partitions of readings
scanned are those from there, not all of them. A meter without a rollup bucket before `start`
(none refreshed yet) is looked for a day back."""

LOAD_METER = """m.quantity IN ('power_kw', 'energy_kwh')
  AND (m.carrier = 'pv'
       OR (m.carrier = ANY(%(carriers)s) AND m.parent_meter_id IS NULL AND m.asset_id IS NULL))"""
"""A meter that counts in the load of every site above it: top-level energy meters that do not
measure an asset, and PV (an enterprise is the sum of its own sub-meters instead)."""

PARK_MAINS = """
SELECT DISTINCT p.id, coalesce(p.attributes->>'main_meter', 'connection') = 'connection'
FROM sites AS p JOIN meters AS pm ON pm.site_id = p.id
WHERE p.kind = 'park' AND pm.active AND pm.carrier = 'electricity'
  AND pm.quantity IN ('power_kw', 'energy_kwh')
  AND pm.parent_meter_id IS NULL AND pm.asset_id IS NULL"""
"""(park, measured at its connection) for the parks with an active main electricity meter of
their own: it sees the park's shared assets either way, and its buildings too unless
`main_meter: own-loads` (`Park.measured_at_connection` on a site file)."""

CONNECTION_PARKS = f"SELECT id FROM ({PARK_MAINS}) AS mains (id, connection) WHERE connection"  # noqa: S608 (constants)
"""The parks measured at their grid connection."""

INSIDE_CONNECTION = f"""(m.carrier = 'electricity' AND m.site_id IN (
    SELECT b.id FROM sites AS b
    WHERE b.kind = 'building' AND b.parent_id IN ({CONNECTION_PARKS})))"""  # noqa: S608 (constants)
"""A building's electricity meter in a park measured at its connection: part of the park's
main meters, so the load of the park and the city leaves it out (the building's own keeps it)."""

RETIRED_CONNECTIONS = f"""
SELECT p.id, date_bin('15 minutes', max(l.ts), '2000-01-01 00:00:00+00') + interval '15 minutes'
FROM sites AS p
JOIN meters AS pm ON pm.site_id = p.id
JOIN meter_latest AS l ON l.meter_id = pm.id
WHERE p.kind = 'park' AND NOT pm.active AND pm.carrier = 'electricity'
  AND pm.quantity IN ('power_kw', 'energy_kwh')
  AND pm.parent_meter_id IS NULL AND pm.asset_id IS NULL
  AND coalesce(p.attributes->>'main_meter', 'connection') = 'connection'
  AND p.id NOT IN (SELECT id FROM ({PARK_MAINS}) AS mains (id, connection))
GROUP BY p.id"""  # noqa: S608 (constants)
"""(park, until) for the parks once measured at their connection by main meters that are all
retired now: up to the 15-min bucket after those meters' last reading, the park's buildings' mains
were parts of them (left out of the park's and city's load then, counted from `until` on). The
retired meters' readings stay the park's history, so that history is counted once."""

MEMBER_SINCE = """CASE WHEN m.site_id <> {root} AND m.carrier = 'electricity' THEN rc.until END"""
"""When a meter starts to count in the load of `{root}`: a building's main in a park whose
connection meters are retired, from their end (`RETIRED_CONNECTIONS`); NULL: always."""

RETIRED_JOIN = f"""
LEFT JOIN sites AS b ON b.id = m.site_id AND b.kind = 'building'
LEFT JOIN ({RETIRED_CONNECTIONS}) AS rc (park, until) ON rc.park = b.parent_id"""

SUBTREE_METERS = f"""
WITH RECURSIVE subtree (id) AS (
    SELECT id FROM sites WHERE id = %(site)s
    UNION ALL
    SELECT s.id FROM sites AS s JOIN subtree ON s.parent_id = subtree.id
)
SELECT m.id, {MEMBER_SINCE.format(root="%(site)s")}
FROM meters AS m JOIN subtree ON m.site_id = subtree.id {RETIRED_JOIN}
WHERE {LOAD_METER} AND NOT (m.site_id <> %(site)s AND {INSIDE_CONNECTION})
UNION
SELECT meter_id, NULL::timestamptz FROM enterprise_meters
WHERE enterprise_id = %(site)s"""  # noqa: S608 (constants)
"""(meter, counts from) of the meters whose sum is a site's load."""

EVERY_SITES_METERS = f"""
WITH RECURSIVE subtree (root, id) AS (
    SELECT id, id FROM sites
    UNION ALL
    SELECT subtree.root, s.id FROM sites AS s JOIN subtree ON s.parent_id = subtree.id
)
SELECT subtree.root, m.id, {MEMBER_SINCE.format(root="subtree.root")}
FROM meters AS m JOIN subtree ON m.site_id = subtree.id {RETIRED_JOIN}
WHERE {LOAD_METER} AND NOT (m.site_id <> subtree.root AND {INSIDE_CONNECTION})
UNION
SELECT enterprise_id, meter_id, NULL::timestamptz FROM enterprise_meters"""  # noqa: S608 (constants)
"""`SUBTREE_METERS` of every site at once, as (site, meter, counts from) rows."""


@dataclass(frozen=True, slots=True)
class LatestValue:
    meter_id: int
    ts: datetime
    value: float


def parse_step(text: str) -> timedelta:
    """A step name (1m, 5m, 15m, 1h, 1d) as a timedelta; ValueError naming the allowed ones."""
    try:
        return STEPS[text]
    except KeyError:
        raise ValueError(f"step must be one of {', '.join(STEPS)}, got {text!r}") from None


def _source(step: timedelta) -> sql.Composable:
    if step >= STEPS["1h"] and step % STEPS["1h"] == timedelta(0):
        return sql.Identifier("readings_1h")
    if step % STEPS["15m"] == timedelta(0):
        return sql.Identifier("readings_15m")
    return RAW_SOURCE


def _bucket(
    backend: Backend, step: timedelta, timezone: str, origin: datetime | None = None
) -> sql.Composable:
    """The step's bucket of `bucket`: days start at local midnight of the site's time zone; a
    grid off the rollup's buckets (`_grid_origin`) starts at `origin`; on a rollup's own grain
    (`_source`) each bucket is its step, and saying so spares the database a sort."""
    if origin is not None:
        return sql.SQL("date_bin({}, bucket, {})").format(sql.Literal(step), sql.Literal(origin))
    if step in (STEPS["15m"], STEPS["1h"]):
        return sql.SQL("bucket")
    if step == STEPS["1d"]:
        if backend is Backend.TIMESCALEDB:
            return sql.SQL("time_bucket('1 day', bucket, {})").format(sql.Literal(timezone))
        return sql.SQL("date_trunc('day', bucket, {})").format(sql.Literal(timezone))
    if backend is Backend.TIMESCALEDB:
        return sql.SQL("time_bucket({}, bucket)").format(sql.Literal(step))
    return sql.SQL("date_bin({}, bucket, '2000-01-01 00:00:00+00')").format(sql.Literal(step))


FINE_STEP = timedelta(minutes=15)
"""Every zone's UTC offset is whole quarter hours: a local grid is on the 15-min buckets."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _grid_origin(start: datetime, step: timedelta, timezone: str) -> datetime | None:
    """Where a grid of `step` that falls between the rollup's buckets starts (None: it does not).

    The hourly rollup's buckets are UTC hours. A grid from a start a whole number of quarter
    hours off them starts there (an hourly grid from a local hour in India, +05:30, starts at :30
    of a UTC hour); any other start of a step in a zone whose offset is off the step (India, Nepal
    +05:45, Adelaide +09:30) is on the zone's local hours, from the local midnight of its day."""
    if step == STEPS["1d"] or step % FINE_STEP != timedelta(0):
        return None
    offset = (start - EPOCH) % step
    if offset != timedelta(0) and offset % FINE_STEP == timedelta(0):
        return start
    midnight = day_start(pd.Timestamp(start), ZoneInfo(timezone)).tz_convert(timezone)
    offset = (midnight - pd.Timestamp(EPOCH)) % step
    if offset != timedelta(0) and offset % FINE_STEP == timedelta(0):
        # the first local step at or after the start: as on the rollup, a step begun before the
        # start is not a bucket of the answer
        first = midnight + -((midnight - pd.Timestamp(start)) // step) * step
        origin: datetime = first.tz_convert("UTC").to_pydatetime()
        return origin
    return None


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a UTC offset")
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")


def _grid(
    backend: Backend, start: datetime, step: timedelta, timezone: str
) -> tuple[datetime, sql.Composable, sql.Composable]:
    """A per-meter series' first bucket, source table and bucket expression. A grid off the UTC
    hour takes its steps from the quarter hours they hold, by the rollup's own rule (the samples'
    mean, a counter's energy over its covered time, the last sample), not their values averaged."""
    origin = _grid_origin(start, step, timezone)
    source = _source(FINE_STEP if origin else step)
    return (start if origin is None else origin), source, _bucket(backend, step, timezone, origin)


async def meter_series(
    conn: AsyncConnection,
    backend: Backend,
    meter_ids: list[int],
    start: datetime,
    end: datetime,
    step: timedelta,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Per meter and bucket of [start, end): `value` (kW, or the sensor's mean), `samples`,
    `energy_kwh` (NaN for sensors and a counter's unknown first step) and `covered_s`."""
    _check_range(start, end)
    start, source, bucket = _grid(backend, start, step, timezone)
    params = {"meters": meter_ids, "start": start, "end": end}
    return await _packed_frame(conn, per_meter_query(source, bucket), params)


def per_meter_query(source: sql.Composable, bucket: sql.Composable) -> sql.Composed:
    """PER_METER over `source` (a meter rollup, or RAW_SOURCE) grouped by `bucket`, each meter's
    reading before `%(start)s` found however far back; parameters `meters`, `start`, `end`."""
    before = sql.SQL(BEFORE_RAW if source is RAW_SOURCE else BUCKET_BEFORE).format(
        source=source, start=sql.Placeholder("start")
    )
    return sql.SQL(PER_METER).format(
        source=source, before=before, terms=sql.SQL(BUCKET_TERMS), bucket=bucket
    )


STATE_QUANTITIES = frozenset({"soc_pct"})
"""Quantities a meter reads as a state at an instant (a store's SOC): a step's value is the state
at its end (`meter_state_series`), so one step's value less the one before is what changed in it;
a mean would put half of a step's change into the next step."""

STATE_PER_METER = """
SELECT {bucket} AS bucket, s.meter_id,
       (array_agg(s.last_value ORDER BY s.last_ts DESC))[1] AS value,
       sum(s.n)::integer AS samples,
       NULL::double precision AS energy_kwh,
       NULL::double precision AS covered_s
FROM {source} AS s JOIN unnest(%(meters)s::integer[]) AS wanted (id) ON s.meter_id = wanted.id
WHERE s.bucket >= %(start)s AND s.bucket < %(end)s
GROUP BY s.meter_id, 1"""
"""Per meter and step bucket: the last sample in the step (the rollups keep each bucket's
`last_ts`, `last_value`) and the samples; no energy or covered time."""


async def meter_state_series(
    conn: AsyncConnection,
    backend: Backend,
    meter_ids: list[int],
    start: datetime,
    end: datetime,
    step: timedelta,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Per meter and bucket of [start, end): `value` the meter's last sample in the step (the
    state at the step's end, for STATE_QUANTITIES), `samples`; `energy_kwh`, `covered_s` NaN.
    Buckets are labelled by their start, as `meter_series`'; a step without a sample is absent."""
    _check_range(start, end)
    start, source, bucket = _grid(backend, start, step, timezone)
    query = sql.SQL(STATE_PER_METER).format(source=source, bucket=bucket)
    params = {"meters": meter_ids, "start": start, "end": end}
    return await _packed_frame(conn, query, params)


async def _packed_frame(
    conn: AsyncConnection, query: sql.Composable, params: dict[str, Any]
) -> pd.DataFrame:
    """A per-meter series query's rows (METER_SERIES_COLUMNS) read packed (`PACKED_SERIES`), by
    bucket, then meter."""
    cur = await conn.execute(sql.SQL(PACKED_SERIES).format(query=query), params, binary=True)
    meters: list[tuple[Any, ...]] = await cur.fetchall()
    columns = {
        name: np.concatenate(
            [np.frombuffer(bytes(meter[i]), dtype=kind) for meter in meters] or [np.empty(0, kind)]
        )
        for i, (name, kind) in enumerate(SERIES_DTYPES.items(), start=1)
    }
    meter_id = np.repeat(
        np.array([meter[0] for meter in meters], dtype=np.int64),
        [len(meter[1]) // SERIES_DTYPES["bucket"].itemsize for meter in meters],
    )
    order = np.lexsort((meter_id, columns["bucket"]))  # by bucket, then meter
    return pd.DataFrame(
        {
            "bucket": pd.to_datetime(
                columns["bucket"][order].astype(np.int64) + PG_EPOCH_US, unit="us", utc=True
            ),
            "meter_id": meter_id[order],
            "value": columns["value"][order].astype(np.float64),
            "samples": columns["samples"][order].astype(np.int64),
            "energy_kwh": columns["energy_kwh"][order].astype(np.float64),
            "covered_s": columns["covered_s"][order].astype(np.float64),
        },
        columns=METER_SERIES_COLUMNS,
    )


PACKED_SERIES = """
SELECT meter_id,
       string_agg(timestamptz_send(bucket), ''::bytea),
       string_agg(float8send(coalesce(value, 'NaN')), ''::bytea),
       string_agg(int4send(samples), ''::bytea),
       string_agg(float8send(coalesce(energy_kwh, 'NaN')), ''::bytea),
       string_agg(float8send(coalesce(covered_s, 'NaN')), ''::bytea)
FROM ({query}) AS series GROUP BY meter_id"""
"""`PER_METER` as one row per meter whose columns are its buckets' values packed in binary
(NULL as NaN, as pandas reads it), which numpy reads at once: fetching a year of 15-min buckets
of a park's 22 meters as one Python tuple per bucket took 3 s of its 13 s year report."""

SERIES_DTYPES: dict[str, np.dtype[Any]] = {
    "bucket": np.dtype(">i8"),
    "value": np.dtype(">f8"),
    "samples": np.dtype(">i4"),
    "energy_kwh": np.dtype(">f8"),
    "covered_s": np.dtype(">f8"),
}
"""The packed columns of `PACKED_SERIES`: timestamptz_send is microseconds from 2000-01-01."""

PG_EPOCH_US = 946_684_800_000_000
"""PostgreSQL's binary timestamptz counts microseconds from 2000-01-01 UTC, this many after 1970."""


async def site_members(conn: AsyncConnection, site_id: str) -> dict[int, datetime | None]:
    """The meters whose sum is the site's load by carrier (and its PV), for any site kind, each
    with the time it counts from (None: always).

    Top-level meters (no `submeter_of`) of energy carriers that do not measure an asset, plus PV,
    less the buildings' electricity in a park measured at its connection (`INSIDE_CONNECTION`),
    or, once its connection meters are all retired, until their end (`RETIRED_CONNECTIONS`);
    an enterprise is the sum of its own sub-meters.
    """
    cur = await conn.execute(SUBTREE_METERS, {"site": site_id, "carriers": list(LOAD_CARRIERS)})
    return {int(meter): since for meter, since in sorted(await cur.fetchall())}


async def site_meter_ids(conn: AsyncConnection, site_id: str) -> list[int]:
    """`site_members` without the times they count from."""
    return sorted(await site_members(conn, site_id))


async def every_sites_members(conn: AsyncConnection) -> dict[str, dict[int, datetime | None]]:
    """`site_members` of every site in one query (a site without such meters is absent)."""
    cur = await conn.execute(EVERY_SITES_METERS, {"carriers": list(LOAD_CARRIERS)})
    result: dict[str, dict[int, datetime | None]] = {}
    for site_id, meter_id, since in await cur.fetchall():
        result.setdefault(site_id, {})[int(meter_id)] = since
    return result


async def every_sites_meter_ids(conn: AsyncConnection) -> dict[str, set[int]]:
    """`site_meter_ids` of every site in one query (a site without such meters is absent)."""
    return {site: set(members) for site, members in (await every_sites_members(conn)).items()}


async def retired_connections(conn: AsyncConnection) -> dict[str, datetime]:
    """The parks whose connection meters are all retired → the end of their readings
    (`RETIRED_CONNECTIONS`)."""
    cur = await conn.execute(RETIRED_CONNECTIONS)
    return {str(park): until for park, until in await cur.fetchall()}


async def park_mains(conn: AsyncConnection) -> dict[str, bool]:
    """The parks with a main electricity meter of their own → measured at their connection
    (`PARK_MAINS`)."""
    cur = await conn.execute(PARK_MAINS)
    return {str(park): bool(connection) for park, connection in await cur.fetchall()}


SITE_LOAD = """
SELECT bucket, carrier, power_kw, energy_kwh, covered_s FROM {table}
WHERE site_id = %(site)s AND bucket >= %(start)s AND bucket < %(end)s
ORDER BY bucket, carrier"""

SITE_LOAD_TABLES = {STEPS["15m"]: "site_load_15m", STEPS["1h"]: "site_load_1h"}
"""Steps served from the per-site load rollups (kept by `energyhub_refresh_site_load`)."""

SERIES_COLUMNS = ["bucket", "carrier", "power_kw", "energy_kwh", "covered_s"]
SeriesRow = tuple[datetime, str, float, float | None, float]
"""bucket, carrier, kW (the mean of the samples present), kWh (each reading's step, only the
time readings cover) and the meter-seconds those steps cover."""


async def site_series(
    conn: AsyncConnection,
    backend: Backend,
    site_id: str,
    start: datetime,
    end: datetime,
    step: timedelta,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Power per carrier and bucket summed over the site's subtree: SERIES_COLUMNS.

    A meter's bucket whose value is unknown (a counter's first reading, nothing before it) is left
    out of the sum rather than counted as zero. 15-min and hourly steps read the per-site rollup
    (on both paths since schema version 11: as fresh as the last refresh of the dirty buckets).
    A grid off the UTC hour is summed from its meters' series (`meter_series`).
    """
    _check_range(start, end)
    if step not in SITE_LOAD_TABLES or _grid_origin(start, step, timezone) is not None:
        return await _summed_series(conn, backend, site_id, start, end, step, timezone)
    rows = await _site_load_rows(conn, site_id, start, end, step)
    frame = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    frame = frame.astype({"power_kw": "float64", "energy_kwh": "float64", "covered_s": "float64"})
    return frame.sort_values(["bucket", "carrier"], ignore_index=True)


async def site_series_rows(
    conn: AsyncConnection,
    backend: Backend,
    site_id: str,
    start: datetime,
    end: datetime,
    step: timedelta,
    timezone: str = "UTC",
) -> list[SeriesRow]:
    """`site_series` as SeriesRow tuples in bucket and carrier order; a rollup step reads them
    straight from the rollup, without pandas."""
    if step in SITE_LOAD_TABLES and _grid_origin(start, step, timezone) is None:
        _check_range(start, end)
        return await _site_load_rows(conn, site_id, start, end, step)
    frame = await site_series(conn, backend, site_id, start, end, step, timezone)
    buckets = frame["bucket"].dt.to_pydatetime()
    energy = [None if pd.isna(kwh) else float(kwh) for kwh in frame["energy_kwh"]]
    return list(
        zip(
            buckets,
            frame["carrier"],
            frame["power_kw"].astype(float),
            energy,
            frame["covered_s"].astype(float),
            strict=True,
        )
    )


async def _site_load_rows(
    conn: AsyncConnection, site_id: str, start: datetime, end: datetime, step: timedelta
) -> list[SeriesRow]:
    query = sql.SQL(SITE_LOAD).format(table=sql.Identifier(SITE_LOAD_TABLES[step]))
    cur = conn.cursor(binary=True)  # a day is 96 × carriers rows: binary loads them ~40% faster
    await cur.execute(query, {"site": site_id, "start": start, "end": end})
    return [
        (bucket, carrier, float(kw), None if kwh is None else float(kwh), float(covered))
        for bucket, carrier, kw, kwh, covered in await cur.fetchall()
    ]


async def _summed_series(
    conn: AsyncConnection,
    backend: Backend,
    site_id: str,
    start: datetime,
    end: datetime,
    step: timedelta,
    timezone: str,
) -> pd.DataFrame:
    """The site's series summed from its meters' series."""
    members = await site_members(conn, site_id)
    meter_ids = sorted(members)
    per_meter = await meter_series(conn, backend, meter_ids, start, end, step, timezone)
    since = pd.to_datetime(per_meter["meter_id"].map(members), utc=True)
    per_meter = per_meter[since.isna() | (per_meter["bucket"] >= since)]
    cur = await conn.execute("SELECT id, carrier FROM meters WHERE id = ANY(%s)", (meter_ids,))
    carriers = pd.DataFrame(await cur.fetchall(), columns=["meter_id", "carrier"])
    joined = per_meter.merge(carriers, on="meter_id").dropna(subset=["value"])
    summed = joined.groupby(["bucket", "carrier"], as_index=False).agg(
        power_kw=("value", "sum"),
        energy_kwh=("energy_kwh", lambda kwh: kwh.sum(min_count=1)),
        covered_s=("covered_s", "sum"),
    )
    return summed.sort_values(["bucket", "carrier"], ignore_index=True)


async def load_meter_count(
    conn: AsyncConnection, site_id: str, start: datetime, end: datetime
) -> float:
    """How many meters make up a site's load over [start, end), each counted for the share of
    the window it is expected to report in (`MemberWindow`)."""
    span_s = (end - start).total_seconds()
    if span_s <= 0:
        return 0.0
    total = 0.0
    for w in await load_member_windows(conn, site_id):
        lo = max(start, w.since) if w.since is not None else start
        hi = min(end, w.until) if w.until is not None else end
        total += max((hi - lo).total_seconds(), 0.0) / span_s
    return total


@dataclass(frozen=True, slots=True)
class MemberWindow:
    """When one of the meters `site_series` sums is expected to report: from `since` (a
    building's main once its park's retired connection meters ended; None: always) up to its
    last reading if it is retired (`until`; None: an active meter, no end)."""

    carrier: str
    since: datetime | None
    until: datetime | None

    def counts_at(self, index: pd.DatetimeIndex) -> npt.NDArray[np.bool_]:
        """Whether each step (by its start) is one this meter is expected to report in."""
        on = np.ones(len(index), dtype=bool)
        if self.since is not None:
            on &= index >= pd.Timestamp(self.since)
        if self.until is not None:
            on &= index <= pd.Timestamp(self.until)
        return on


async def load_member_windows(conn: AsyncConnection, site_id: str) -> list[MemberWindow]:
    """Each meter `site_series` sums with its carrier and the window it counts in: coverage
    expects a retired meter only up to its last reading, not for ever after (a replaced or
    retired main would halve the coverage the peak guard needs to act)."""
    query = sql.SQL(
        "SELECT m.carrier, members.since, "
        "CASE WHEN NOT m.active THEN coalesce(l.ts, 'epoch'::timestamptz) END "
        "FROM ({}) AS members (id, since) JOIN meters AS m ON m.id = members.id "
        "LEFT JOIN meter_latest AS l ON l.meter_id = m.id"
    )
    cur = await conn.execute(
        query.format(sql.SQL(SUBTREE_METERS)), {"site": site_id, "carriers": list(LOAD_CARRIERS)}
    )
    return [MemberWindow(str(c), since, until) for c, since, until in await cur.fetchall()]


def meters_per_step(
    windows: list[MemberWindow], carrier: str, index: pd.DatetimeIndex
) -> pd.Series:
    """How many of a carrier's meters are expected to report at each step of `index`."""
    counts = np.zeros(len(index))
    for window in windows:
        if window.carrier == carrier:
            counts += window.counts_at(index)
    return pd.Series(counts, index=index, dtype="float64")


def window_coverage(rows: list[SeriesRow], meters: float, start: datetime, end: datetime) -> float:
    """The share of the window's meter-time the readings cover (≤ 1): the coverage of every
    energy figure summed from these rows."""
    window_s = meters * (end - start).total_seconds()
    return min(1.0, sum(row[4] for row in rows) / window_s) if window_s > 0 else 0.0


async def latest_values(conn: AsyncConnection, meter_ids: list[int]) -> list[LatestValue]:
    """The newest stored reading of each meter that has one."""
    cur = await conn.execute(
        "SELECT meter_id, ts, value FROM meter_latest WHERE meter_id = ANY(%s) ORDER BY meter_id",
        (meter_ids,),
    )
    return [LatestValue(int(m), ts, float(v)) for m, ts, v in await cur.fetchall()]


SITE_DETAIL = """
SELECT id, kind, parent_id, name, attributes,
    array(SELECT c.id FROM sites AS c WHERE c.parent_id = s.id AND c.active ORDER BY c.id)
FROM sites AS s WHERE id = %s AND active"""
SITE_NODE = "SELECT id, parent_id, kind, name FROM sites WHERE id = %s AND active"
CHILD_NODES = (
    "SELECT id, parent_id, kind, name FROM sites WHERE parent_id = %s AND active ORDER BY id"
)
SITE_METERS = """
SELECT id, site_id, name, carrier, quantity, parent_meter_id, asset_id, rollover_kwh FROM meters
WHERE active AND (site_id = %(site)s
      OR id IN (SELECT meter_id FROM enterprise_meters WHERE enterprise_id = %(site)s))
ORDER BY id"""
SITE_METER_COLUMNS = (
    "id", "site_id", "name", "carrier", "quantity", "parent_meter_id", "asset_id", "rollover_kwh",
)  # fmt: skip
READINGS = """
SELECT ts, value FROM readings
WHERE meter_id = %(meter)s AND ts >= %(start)s AND ts < %(end)s
  AND (%(after)s::timestamptz IS NULL OR ts > %(after)s)
ORDER BY ts LIMIT %(limit)s"""


async def site_detail(conn: AsyncConnection, site_id: str) -> tuple[Any, ...] | None:
    """(id, kind, parent_id, name, attributes, active child ids) of an active site, or None."""
    cur = await conn.execute(SITE_DETAIL, (site_id,))
    row = await cur.fetchone()
    return tuple(row) if row is not None else None


async def site_with_children(
    conn: AsyncConnection, site_id: str
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]] | None:
    """(id, parent_id, kind, name) of an active site and of its active children by id; None if
    there is no such site."""
    cur = await conn.execute(SITE_NODE, (site_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    children = await conn.execute(CHILD_NODES, (site_id,))
    return tuple(row), [tuple(child) for child in await children.fetchall()]


async def site_meters(conn: AsyncConnection, site_id: str) -> list[dict[str, Any]]:
    """A site's active meters by id (SITE_METER_COLUMNS); an enterprise's are its sub-meters."""
    cur = await conn.execute(SITE_METERS, {"site": site_id})
    return [dict(zip(SITE_METER_COLUMNS, row, strict=True)) for row in await cur.fetchall()]


async def meter_readings(
    conn: AsyncConnection,
    meter_id: int,
    start: datetime,
    end: datetime,
    after: datetime | None,
    limit: int,
) -> list[tuple[datetime, float]]:
    """Up to `limit` raw (ts, value) of a meter in [start, end), after `after` if given."""
    params = {"meter": meter_id, "start": start, "end": end, "after": after, "limit": limit}
    cur = await conn.execute(READINGS, params)
    return [(ts, value) for ts, value in await cur.fetchall()]


async def newest_reading_at(conn: AsyncConnection) -> datetime | None:
    """When the newest reading of any meter was taken; None before the first."""
    cur = await conn.execute("SELECT max(ts) FROM meter_latest")
    row = await cur.fetchone()
    return row[0] if row else None
