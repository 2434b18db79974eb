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
        "meter b01/f3: value 51007 kWh rose 50001 kWh in 60 s, more than 357 kWh "
        "(max_rise_kw 21420, counter; grid import_max_kw 20000 + on-site PV/wind)",
        "meter b01/main: value 9000 is above max 5000 (site file)",
        "meter b01/pv: value -1e+06 is below min -4 (asset b01-pv (pv))",
    ]
    assert stored == [("f3", 9, 1000.0), ("main", 9, 800.0), ("pv", 9, 100.0)]


def test_sites_check_verbose_prints_each_meters_bounds(example_site_path: Path) -> None:
    result = CliRunner().invoke(app, ["sites", "check", "--verbose", str(example_site_path)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "b01/pv [-4, 520] kW (asset b01-pv (pv))" in out
    assert "b01/main unbounded (none)" in out
    bounds = site_bounds(load_site(example_site_path))
    assert len([line for line in result.output.splitlines() if "/" in line]) >= len(bounds)
