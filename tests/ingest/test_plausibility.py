"""Readings a meter cannot physically make are rejected at ingest, naming meter, value and bound;
their good neighbours are stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import yaml
from typer.testing import CliRunner

from energyhub.cli import app
from energyhub.ingest.bounds import site_bounds
from energyhub.sites import load_site, parse_site
from energyhub.store.db import connect
from energyhub.store.sync import sync_site

from .conftest import ingest_settings, publish, running_worker, wait_for

BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)


def at(i: int) -> str:
    return (BASE + timedelta(minutes=i)).isoformat()


def reading(prefix: str, meter: str, i: int, value: float) -> tuple[str, bytes]:
    return f"{prefix}/expo/b01/{meter}", orjson.dumps({"ts": at(i), "value": value})


async def test_out_of_bounds_readings_are_rejected_and_neighbours_kept(
    site_db: str, prefix: str, example_site_path: Path
) -> None:
    document = yaml.safe_load(example_site_path.read_text())
    b01 = document["city"]["parks"][0]["buildings"][0]
    for meter in b01["meters"]:
        if meter["id"] == "main":
            meter.update({"min": 0, "max": 5000})  # declared in the site file
    async with connect(site_db) as conn:
        await sync_site(conn, parse_site(document))
    pv = [reading(prefix, "pv", i, 100.0 + i) for i in range(10)]
    pv[4] = reading(prefix, "pv", 4, -1_000_000.0)  # the logger's night sentinel
    main = [reading(prefix, "main", i, 800.0) for i in range(10)]
    main[6] = reading(prefix, "main", 6, 9000.0)
    counter = [reading(prefix, "f3", i, 1000.0 + i) for i in range(10)]
    counter[7] = reading(prefix, "f3", 7, 1000.0 + 7 + 50_000)  # 50 MWh in a minute
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish(pv + main + counter)
        assert await wait_for(site_db, "SELECT count(*) FROM rejected", 3) == 3
        assert await wait_for(site_db, "SELECT count(*) FROM readings", 27) == 27
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT reason FROM rejected ORDER BY reason")
        reasons = [row[0] for row in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT m.name, count(*), min(r.value) FROM readings r "
            "JOIN meters m ON m.id = r.meter_id GROUP BY 1 ORDER BY 1"
        )
        stored = await cur.fetchall()
    assert reasons == [
        "meter b01/f3: value 51007 kWh rose 50001 kWh in 60 s, more than 680 kWh "
        "(max_rise_kw 40800, counter; 2 × (grid import_max_kw 20000 + on-site PV/wind); "
        "max: physical limit of energy_kwh)",
        "meter b01/main: value 9000 is above max 5000 (site file)",
        "meter b01/pv: value -1e+06 is below min -4 (asset b01-pv (pv))",
    ]
    assert stored == [("f3", 9, 1000.0), ("main", 9, 800.0), ("pv", 9, 100.0)]


async def test_a_counter_spike_sent_twice_is_rejected_both_times(site_db: str, prefix: str) -> None:
    """A gateway resends a message (QoS 1 redelivery, a replayed batch): the spike's second copy
    is judged against the reading before it in time, as the first was, and not stored. (Judged
    against the first copy it rose by nothing, and the spike read as 98,945 kWh in an hour.)"""
    counter = [reading(prefix, "f3", i, 1000.0 + i) for i in range(10)]
    spike = reading(prefix, "f3", 5, 99_999.0)
    counter[5] = spike
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish(counter[:6])
        assert await wait_for(site_db, "SELECT count(*) FROM rejected", 1) == 1
        await publish([spike, *counter[6:]])  # the spike again, in a later message
        assert await wait_for(site_db, "SELECT count(*) FROM readings", 9) == 9
        assert await wait_for(site_db, "SELECT count(*) FROM rejected", 2) == 2
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT max(value), count(*) FROM readings")
        assert await cur.fetchone() == (1009.0, 9)
        cur = await conn.execute("SELECT reason FROM rejected")
        reasons = [row[0] for row in await cur.fetchall()]
    assert all(
        r.startswith("meter b01/f3: value 99999 kWh rose 98995 kWh in 60 s") for r in reasons
    )


async def test_a_spike_in_a_backlog_sent_after_newer_readings_is_rejected(
    site_db: str, prefix: str
) -> None:
    """A gateway back from an outage sends its live reading first, then the backlog it kept
    (store and forward). A spike in the backlog is judged against the reading before it in
    time; it was judged only when newer than every reading seen, and went through."""
    counter = [reading(prefix, "f3", i, 1000.0 + i) for i in range(10)]
    spike = reading(prefix, "f3", 5, 99_999.0)
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish(counter[:2])  # before the outage
        assert await wait_for(site_db, "SELECT count(*) FROM readings", 2) == 2
        await publish([counter[9]])  # back online: the live reading
        assert await wait_for(site_db, "SELECT count(*) FROM readings", 3) == 3
        await publish([*counter[2:5], spike, *counter[6:9]])  # then the backlog
        assert await wait_for(site_db, "SELECT count(*) FROM readings", 9) == 9
        assert await wait_for(site_db, "SELECT count(*) FROM rejected", 1) == 1
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT max(value) FROM readings")
        assert await cur.fetchone() == (1009.0,)
        cur = await conn.execute("SELECT reason FROM rejected")
        (reason,) = await cur.fetchone() or ("",)
    assert reason.startswith("meter b01/f3: value 99999 kWh rose 98995 kWh in 60 s")


def test_sites_check_verbose_prints_each_meters_bounds(example_site_path: Path) -> None:
    result = CliRunner().invoke(app, ["sites", "check", "--verbose", str(example_site_path)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "b01/pv [-4, 520] kW (asset b01-pv (pv))" in out
    assert "b01/main [-40800, 40800] kW (2 × (grid import_max_kw 20000 + on-site PV/wind))" in out
    assert "b01/indoor [-100, 500] °C (physical limit of temperature_c)" in out
    bounds = site_bounds(load_site(example_site_path))
    assert len([line for line in result.output.splitlines() if "/" in line]) >= len(bounds)


async def test_readings_past_any_physical_limit_are_rejected_without_declared_bounds(
    site_db: str, prefix: str
) -> None:
    """A main meter, a sensor and an occupancy count the site file gives no bounds: 1e29 kW,
    1e29 °C and −5 people are refused by name; the good readings of the same frames are kept."""
    frames = []
    for i in range(6):
        values = {"main": 800.0, "indoor": 22.0, "occupancy": 120.0}
        if i == 2:
            values["main"] = 1e29
        if i == 3:
            values["indoor"] = 1e29
        if i == 4:
            values["occupancy"] = -5.0
        frames.append((f"{prefix}/expo/b01", orjson.dumps({"ts": at(i), "values": values})))
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish(frames)
        assert await wait_for(site_db, "SELECT count(*) FROM rejected", 3) == 3
        assert await wait_for(site_db, "SELECT count(*) FROM readings", 15) == 15
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT reason FROM rejected ORDER BY reason")
        reasons = [row[0] for row in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT m.name, count(*), max(r.value) FROM readings r "
            "JOIN meters m ON m.id = r.meter_id GROUP BY 1 ORDER BY 1"
        )
        stored = await cur.fetchall()
    assert reasons == [
        "meter b01/indoor: value 1e+29 is above max 500 (physical limit of temperature_c)",
        "meter b01/main: value 1e+29 is above max 40800 "
        "(2 × (grid import_max_kw 20000 + on-site PV/wind))",
        "meter b01/occupancy: value -5 is below min 0 (physical limit of occupancy)",
    ]
    assert stored == [("indoor", 5, 22.0), ("main", 5, 800.0), ("occupancy", 5, 120.0)]


async def test_meters_stored_without_bounds_still_get_the_physical_limits(
    site_db: str, prefix: str
) -> None:
    """A database loaded before bounds were derived has NULL bounds: the worker still refuses
    what no meter of the quantity can read."""
    async with connect(site_db) as conn:
        await conn.execute(
            "UPDATE meters SET min_value = NULL, max_value = NULL, max_rise_kw = NULL, "
            "bounds_source = NULL"
        )
    good, bad = reading(prefix, "main", 0, 800.0), reading(prefix, "main", 1, -1e29)
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish([good, bad])
        assert await wait_for(site_db, "SELECT count(*) FROM rejected", 1) == 1
        assert await wait_for(site_db, "SELECT count(*) FROM readings", 1) == 1
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT reason FROM rejected")
        (reason,) = await cur.fetchone() or ("",)
    assert reason == "meter b01/main: value -1e+29 is below min -1e+06 (physical limit of power_kw)"


def test_a_counter_is_bounded_by_its_rollover() -> None:
    site = load_site(Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml")
    assert site_bounds(site)[("b01", "heat")].max_value == 999999.9


async def test_a_main_meter_overloading_its_connection_is_stored(site_db: str, prefix: str) -> None:
    """b01's connection is declared for 20 MW (+ 400 kW PV): 32 MW, an overload a transformer
    carries for minutes and the month's demand charge bills, is kept; 45 MW, past twice the
    declared supply, is refused by name."""
    values = [800.0, 32_000.0, 45_000.0, 800.0]
    frames = [reading(prefix, "main", i, value) for i, value in enumerate(values)]
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish(frames)
        assert await wait_for(site_db, "SELECT count(*) FROM rejected", 1) == 1
        assert await wait_for(site_db, "SELECT count(*) FROM readings", 3) == 3
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT reason FROM rejected")
        reasons = [row[0] for row in await cur.fetchall()]
        cur = await conn.execute("SELECT max(value) FROM readings")
        row = await cur.fetchone()
    assert reasons == [
        "meter b01/main: value 45000 is above max 40800 "
        "(2 × (grid import_max_kw 20000 + on-site PV/wind))"
    ]
    assert row is not None and row[0] == 32_000.0
