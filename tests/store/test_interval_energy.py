"""A counter's energy across resets and swaps, the same at every step and on both storage paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import yaml
from psycopg import AsyncConnection

from energyhub.sites import SiteFile, load_site, parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.queries import (
    STEPS,
    load_meter_count,
    meter_series,
    site_series,
    site_series_rows,
    window_coverage,
)
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

ZONE = "Asia/Shanghai"
DAY = datetime(2026, 11, 20, tzinfo=ZoneInfo(ZONE))
"""The window: one local day, aligned with every step (1m … 1d)."""
WINDOW = (DAY, DAY + timedelta(days=1))
FIRST = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def _meter_id(conn: AsyncConnection, name: str) -> int:
    cur = await conn.execute(
        "SELECT id FROM meters WHERE site_id || '/' || name = %s AND active", (name,)
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _store(
    url: str, site: SiteFile, meter: str, ts: list[datetime], values: list[float]
) -> tuple[int, Backend]:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        meter_id = await _meter_id(conn, meter)
        backend = await installed_backend(conn)
    stamps = pd.DatetimeIndex(ts).tz_convert(None).values
    batch = ReadingBatch.from_columns(stamps, np.full(len(ts), meter_id), values)
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(url) as conn:
        await refresh_rollups(conn, backend)
    return meter_id, backend


async def _energy_by_step(
    url: str, backend: Backend, meter_id: int, site: str, carrier: str
) -> dict[str, tuple[float, float, float]]:
    """Per step over the window: the meter's energy, the site's load energy, and the load's kW ×
    the hours its steps cover (a counter's kW is its mean power over that time)."""
    answers = {}
    async with connect(url) as conn:
        for name, step in STEPS.items():
            per_meter = await meter_series(conn, backend, [meter_id], *WINDOW, step, ZONE)
            load = await site_series(conn, backend, site, *WINDOW, step, ZONE)
            load = load[load.carrier == carrier]
            answers[name] = (
                float(per_meter["energy_kwh"].sum()),
                float(load["energy_kwh"].sum()),
                float((load["power_kw"] * load["covered_s"] / 3600).sum()),
            )
    return answers


async def test_a_reset_keeps_the_energy_before_it_at_every_step(
    store_url: str, example_site: SiteFile
) -> None:
    """The issue's counter: 26 readings 5 min apart, +1 kWh each, reset to 0 after 10:30."""
    ts = [FIRST + timedelta(minutes=5 * i) for i in range(26)]
    reset_after = ts.index(datetime(2026, 11, 20, 10, 30, tzinfo=UTC))
    values = [100.0 + i for i in range(reset_after + 1)]
    values += [float(i) for i in range(1, 26 - reset_after)]
    meter_id, backend = await _store(store_url, example_site, "b01/cooling", ts, values)
    answers = await _energy_by_step(store_url, backend, meter_id, "b01", "cooling")
    assert answers == {
        name: (25.0, pytest.approx(25.0, rel=1e-12), pytest.approx(25.0, rel=1e-12))
        for name in STEPS
    }


async def test_a_rollover_and_a_swap_mid_bucket_lose_nothing(
    store_url: str, example_site: SiteFile
) -> None:
    """The heat counter wraps at 999,999.9, then its meter is swapped at 12:05:30 (new from 0)."""
    rollover, kw = 999_999.9, 12.0
    swap = datetime(2026, 11, 20, 12, 5, 30, tzinfo=UTC)
    ts = sorted([FIRST + timedelta(minutes=i) for i in range(240)] + [swap])

    def metered_since(start: datetime, stamp: datetime) -> float:
        return kw * (stamp - start) / timedelta(hours=1)

    values = [
        (rollover - 10.0 + metered_since(FIRST, stamp)) % rollover  # wraps after 50 min
        if stamp <= swap
        else metered_since(swap, stamp)  # the new counter, from zero
        for stamp in ts
    ]
    metered = metered_since(FIRST, ts[-1])
    meter_id, backend = await _store(store_url, example_site, "b01/heat", ts, values)
    answers = await _energy_by_step(store_url, backend, meter_id, "b01", "heat")
    for name, (meter_kwh, load_kwh, load_kw_h) in answers.items():
        assert meter_kwh == pytest.approx(metered, rel=1e-9), name
        assert load_kwh == pytest.approx(metered, rel=1e-9), name
        assert load_kw_h == pytest.approx(metered, rel=1e-9), name


async def test_a_partly_covered_bucket_counts_only_covered_time(
    store_url: str, example_site: SiteFile
) -> None:
    """A PV logger silent at night and for an hour at noon: each 5-min reading stands for at
    most its (learned) 5 minutes, so dawn, dusk and the gap are never stretched to a whole hour."""
    ts = [
        FIRST.replace(hour=6, minute=10) + timedelta(minutes=5 * i)
        for i in range(117)  # 06:10 … 15:50 UTC
        if not 11 <= (FIRST.replace(hour=6, minute=10) + timedelta(minutes=5 * i)).hour < 12
    ]
    values = [100.0 + 50.0 * np.sin(i / 20) for i in range(len(ts))]
    covered_kwh = sum(values) * 300 / 3600
    meter_id, backend = await _store(store_url, example_site, "b01/pv", ts, values)
    answers = await _energy_by_step(store_url, backend, meter_id, "b01", "pv")
    async with connect(store_url) as conn:
        cur = await conn.execute("SELECT nominal_s FROM meters WHERE id = %s", (meter_id,))
        assert await cur.fetchone() == (300.0,)  # the median of its first spacings
        hourly = await meter_series(conn, backend, [meter_id], *WINDOW, STEPS["1h"], ZONE)
        rows = await site_series_rows(conn, backend, "b01", *WINDOW, STEPS["1h"], ZONE)
        meters = await load_meter_count(conn, "b01", *WINDOW)
    for name, (meter_kwh, _, _) in answers.items():
        assert meter_kwh == pytest.approx(covered_kwh, rel=1e-12), name
    stretched = float((hourly["value"] * 1.0).sum())  # the mean of each hour's samples × 1 h
    assert stretched > covered_kwh * 1.01  # what the old rollups reported
    assert hourly["covered_s"].sum() == pytest.approx(len(ts) * 300)
    pv_rows = [row for row in rows if row[1] == "pv"]
    assert sum(row[3] or 0.0 for row in pv_rows) == pytest.approx(covered_kwh, rel=1e-12)
    coverage = window_coverage(pv_rows, 1, *WINDOW)
    assert coverage == pytest.approx(len(ts) * 300 / 86400)
    assert 0 < window_coverage(rows, meters, *WINDOW) < coverage


async def test_a_declared_interval_recomputes_the_meters_rollups(
    store_url: str, example_site_path: Path
) -> None:
    """PV read every 5 min learns 300 s; declaring `interval_s: 120` in the site file marks its
    rollups dirty and the next refresh counts each reading for 2 minutes only."""
    ts = [FIRST + timedelta(minutes=5 * i) for i in range(24)]
    values = [100.0] * len(ts)
    site = load_site(example_site_path)
    meter_id, backend = await _store(store_url, site, "b01/pv", ts, values)
    document = yaml.safe_load(example_site_path.read_text())
    for meter in document["city"]["parks"][0]["buildings"][0]["meters"]:
        if meter["id"] == "pv":
            meter["interval_s"] = 120
    async with connect(store_url) as conn:
        before = await meter_series(conn, backend, [meter_id], *WINDOW, STEPS["1h"], ZONE)
        await sync_site(conn, parse_site(document))
        assert await refresh_rollups(conn, backend) > 0
        after = await meter_series(conn, backend, [meter_id], *WINDOW, STEPS["1h"], ZONE)
    assert before["energy_kwh"].sum() == pytest.approx(24 * 100.0 * 300 / 3600)
    assert after["energy_kwh"].sum() == pytest.approx(24 * 100.0 * 120 / 3600)


async def test_a_counters_gap_reads_as_the_gaps_mean_power(
    store_url: str, example_site: SiteFile
) -> None:
    """A counter read every 15 min at 60 kW is silent from 10:00 to 11:00 while it draws 120 kW:
    the bucket after the gap holds the hour's 120 kWh and reads 120 kW (its mean over the hour),
    not 480 kW; the energy is the same as ever at every step."""
    before = [FIRST + timedelta(minutes=15 * i) for i in range(5)]  # 09:00 … 10:00
    after = [FIRST + timedelta(hours=2, minutes=15 * i) for i in range(5)]  # 11:00 … 12:00
    values = [1000.0 + 15.0 * i for i in range(5)]
    values += [values[-1] + 120.0 + 15.0 * i for i in range(5)]
    total_kwh = 4 * 15.0 + 120.0 + 4 * 15.0
    meter_id, backend = await _store(store_url, example_site, "b01/cooling", before + after, values)
    answers = await _energy_by_step(store_url, backend, meter_id, "b01", "cooling")
    assert answers == {
        name: (total_kwh, pytest.approx(total_kwh, rel=1e-12), pytest.approx(total_kwh, rel=1e-12))
        for name in STEPS
    }
    gap_bucket = pd.Timestamp(after[0])
    async with connect(store_url) as conn:
        per_meter = await meter_series(conn, backend, [meter_id], *WINDOW, STEPS["15m"], ZONE)
        load = await site_series(conn, backend, "b01", *WINDOW, STEPS["15m"], ZONE)
        hourly = await meter_series(conn, backend, [meter_id], *WINDOW, STEPS["1h"], ZONE)
    kw = per_meter.set_index("bucket").dropna(subset=["value"])  # 09:00: nothing before it
    assert kw.loc[gap_bucket, "value"] == pytest.approx(120.0, rel=1e-12)
    assert kw.loc[gap_bucket, "energy_kwh"] == pytest.approx(120.0, rel=1e-12)
    assert kw.loc[gap_bucket, "covered_s"] == pytest.approx(3600.0)
    assert kw["value"].drop(gap_bucket).tolist() == pytest.approx([60.0] * 8, rel=1e-12)
    cooling = load[load.carrier == "cooling"].set_index("bucket")["power_kw"]
    assert cooling.to_dict() == pytest.approx(kw["value"].to_dict(), rel=1e-12)
    assert cooling.max() == pytest.approx(120.0, rel=1e-12)
    # 11:00 to 12:00: the gap's hour (120 kWh) and three 15-minute steps at 60 kW over 1.75 h
    eleven = hourly.set_index("bucket").loc[gap_bucket]
    assert eleven["energy_kwh"] == pytest.approx(165.0, rel=1e-12)
    assert eleven["value"] == pytest.approx(165.0 / 1.75, rel=1e-12)
