"""One answer at every step: random meter streams give the same energy over an aligned window at
1m, 5m, 15m, 1h and 1d, equal to the carbon report's and to an independent calculation, on both
storage paths.

Streams have gaps, duplicates, out-of-order arrival in several batches (rollups refreshed between
them), counter resets and rollovers, and implausible values that the ingest rejects.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection

from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.errors import NoDataError
from energyhub.ingest.mapping import load_meter_map
from energyhub.ingest.message import BatchBuilder
from energyhub.ingest.validate import Limits, validate
from energyhub.sites import SiteFile
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.queries import STEPS, meter_series, site_series
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

ZONE = "Asia/Shanghai"
START = datetime(2026, 11, 20, tzinfo=ZoneInfo(ZONE))
END = START + timedelta(days=2)
FIRST = START - timedelta(hours=2)
"""Streams start before the window, so its first readings have a reading before them."""
ROLLOVER = 999_999.9
SENTINEL = -1_000_000.0
US = 1_000_000


@dataclass
class Stream:
    """Readings of the b01 heat counter and the b01 PV meter, and how they arrive."""

    counter: list[tuple[int, float]]
    power: list[tuple[int, float]]
    batches: int
    seed: int


gaps = st.one_of(
    st.sampled_from([60, 300, 900]), st.integers(1, 3 * 3600), st.integers(3600, 9 * 3600)
)


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    horizon = int((END - FIRST).total_seconds())
    counter, t = [], draw(st.integers(0, 600))
    value = draw(st.sampled_from([100.0, ROLLOVER - 200.0]))
    while t < horizon and len(counter) < 120:
        kind = draw(st.sampled_from(["rise"] * 6 + ["reset", "implausible", "duplicate"]))
        if kind == "implausible":
            counter.append((t, SENTINEL))
        elif kind == "duplicate" and counter:
            counter.append(counter[-1] if counter[-1][1] != SENTINEL else (t, value))
        elif kind == "reset":
            value = draw(st.floats(0, 5))
            counter.append((t, value))
        else:
            value += draw(st.floats(0, 80))
            if value >= ROLLOVER:
                value -= ROLLOVER
            counter.append((t, value))
        t += draw(gaps)
    power, t = [], draw(st.integers(0, 600))
    while t < horizon and len(power) < 120:
        implausible = draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())
        power.append((t, SENTINEL if implausible else draw(st.floats(-3, 500))))
        t += draw(gaps)
    return Stream(counter, power, draw(st.integers(1, 4)), draw(st.integers(0, 2**16)))


def _arrivals(stream: Stream, ids: tuple[int, int]) -> list[list[tuple[int, int, float]]]:
    """The readings (meter, µs, value), shuffled and cut into `batches` arrivals."""
    rows = [(ids[0], t, v) for t, v in stream.counter] + [(ids[1], t, v) for t, v in stream.power]
    first_us = int(FIRST.timestamp()) * US
    rows = [(meter, first_us + t * US, value) for meter, t, value in rows]
    random.Random(stream.seed).shuffle(rows)
    size = -(-len(rows) // stream.batches)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _step_kwh(
    quantity: str, nominal_s: float, prev: tuple[int, float] | None, now: tuple[int, float]
) -> float | None:
    """The rule of docs/meter-data.md, written again without SQL."""
    if quantity == "energy_kwh":
        if prev is None:
            return None
        if abs(now[1] - prev[1]) < 1e-100:
            return 0.0
        if now[1] >= prev[1]:
            return now[1] - prev[1]
        return now[1] + ROLLOVER - prev[1] if prev[1] > 0.5 * ROLLOVER else now[1]
    span = nominal_s if prev is None else min(nominal_s, (now[0] - prev[0]) / US)
    return 0.0 if abs(now[1]) < 1e-100 else now[1] * span / 3600


def _expected(stored: list[tuple[int, float]], quantity: str, nominal_s: float) -> float:
    start_us, end_us = int(START.timestamp()) * US, int(END.timestamp()) * US
    total, prev = 0.0, None
    for reading in sorted(stored):  # the reading before each, however far back
        if start_us <= reading[0] < end_us:
            kwh = _step_kwh(quantity, nominal_s, prev, reading)
            total += kwh or 0.0
        prev = reading
    return total


async def _reset(conn: AsyncConnection) -> None:
    await conn.execute(
        "TRUNCATE readings, readings_15m, readings_1h, site_load_15m, site_load_1h, "
        "rollup_dirty, meter_latest, rejected"
    )
    await conn.execute("UPDATE meters SET learned_interval_s = NULL")


async def _write(url: str, backend: Backend, stream: Stream, ids: tuple[int, int]) -> None:
    async with connect(url) as conn:
        mapping = await load_meter_map(conn)
    now_us = int(END.timestamp()) * US + 3600 * US
    limits = Limits(max_future_skew_s=60, retention_days=3650)
    async with open_pool(url, max_size=1) as pool:
        writer = ReadingWriter(pool, backend)
        for arrival in _arrivals(stream, ids):
            builder = BatchBuilder()
            for meter, ts_us, value in arrival:
                builder.add(0, meter, ts_us, value)
            batch = validate(builder, now_us, limits, mapping.by_id)
            await writer.write(batch)
            async with pool.connection() as conn:
                await refresh_rollups(conn, backend)


@pytest.fixture
async def prepared(store_url: str, example_site: SiteFile) -> tuple[str, Backend, tuple[int, int]]:
    async with connect(store_url) as conn:
        await migrate(conn)
        await sync_site(conn, example_site)
        cur = await conn.execute(
            "SELECT name, id FROM meters WHERE site_id = 'b01' AND name IN ('heat', 'pv')"
        )
        ids = dict(await cur.fetchall())
        return store_url, await installed_backend(conn), (int(ids["heat"]), int(ids["pv"]))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams())
async def test_energy_over_a_window_is_one_answer(
    prepared: tuple[str, Backend, tuple[int, int]], stream: Stream
) -> None:
    url, backend, ids = prepared
    async with connect(url) as conn:
        await _reset(conn)
    await _write(url, backend, stream, ids)
    async with connect(url) as conn:
        cur = await conn.execute("SELECT meter_id, ts, value FROM readings ORDER BY meter_id, ts")
        stored: dict[int, list[tuple[int, float]]] = {ids[0]: [], ids[1]: []}
        for meter_id, ts, value in await cur.fetchall():
            stored[int(meter_id)].append((int(ts.timestamp() * US), float(value)))
        cur = await conn.execute("SELECT nominal_s FROM meters WHERE id = %s", (ids[1],))
        row = await cur.fetchone()
        assert row is not None
        nominal_s = float(row[0])
        assert SENTINEL not in {value for readings in stored.values() for _, value in readings}
        expected = {
            ids[0]: _expected(stored[ids[0]], "energy_kwh", nominal_s),
            ids[1]: _expected(stored[ids[1]], "power_kw", nominal_s),
        }
        for name, step in STEPS.items():
            series = await meter_series(conn, backend, list(ids), START, END, step, ZONE)
            for meter_id, want in expected.items():
                got = float(series.loc[series.meter_id == meter_id, "energy_kwh"].sum())
                assert got == pytest.approx(want, rel=1e-9, abs=1e-6), (name, meter_id)
        for name in ("15m", "1h"):  # the per-site load rollups, refreshed batch by batch
            load = await site_series(conn, backend, "b01", START, END, STEPS[name], ZONE)
            for carrier, meter_id in (("heat", ids[0]), ("pv", ids[1])):
                got = float(load.loc[load.carrier == carrier, "energy_kwh"].sum())
                want = expected[meter_id]
                assert got == pytest.approx(want, rel=1e-9, abs=1e-6), (name, carrier)
        try:
            report = await carbon_report(conn, backend, "b01", START, END)
        except NoDataError:  # nothing in the window: nothing to compare
            assert expected == {ids[0]: 0.0, ids[1]: 0.0}
            return
    assert report.energy_kwh.heat == pytest.approx(expected[ids[0]], rel=1e-9, abs=1e-6)
    assert report.pv_kwh == pytest.approx(expected[ids[1]], rel=1e-9, abs=1e-6)
