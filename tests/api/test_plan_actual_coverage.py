"""Plan vs actual carries its coverage (docs/meter-data.md): per step, over the compared time and
as one line when it is below 100 %, in the API, the plan page and `energyhub plans show --actual`.

A site whose one meter reads every minute; a four-hour plan (10:00–14:00 UTC, hourly steps)
compared with it (the API on both storage paths). Full readings cover all of it; a gap of the first half of 11:00 and all of
12:00 leaves 11:00 half covered and 12:00 uncovered (not compared, but part of the compared time).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from energyhub.api.app import create_app
from energyhub.api.keys import create_key
from energyhub.cli import app as cli
from energyhub.optimize import plan
from energyhub.plans.store import store_plan
from energyhub.sites import load_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.api.conftest import settings_for
from tests.api.test_plan_actual_mix import BARE

HOUR = 3600.0


def _minutes(gap: bool) -> pd.DatetimeIndex:
    minutes = pd.date_range("2026-11-20T00:00Z", periods=24 * 60, freq="1min")
    if not gap:
        return minutes
    half = (minutes >= "2026-11-20T11:00Z") & (minutes < "2026-11-20T11:30Z")
    whole = (minutes >= "2026-11-20T12:00Z") & (minutes < "2026-11-20T13:00Z")
    return minutes[~(half | whole)]


async def _world(url: str, site_file: Path, gap: bool) -> tuple[int, str]:
    """The bare site with a day of minute readings (with or without the gap) and a building plan
    over 10:00–14:00 UTC: the plan's id and an admin token."""
    site_file.write_text(BARE)
    site = load_site(site_file)
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        cur = await conn.execute("SELECT id FROM meters WHERE name = 'main'")
        row = await cur.fetchone()
        assert row is not None
        backend = await installed_backend(conn)
        _, token = await create_key(conn, "admin", "town", "admin@town")
    minutes = _minutes(gap)
    values = 400.0 + 100.0 * (minutes.hour.to_numpy() >= 12)
    batch = ReadingBatch.from_columns(
        minutes.tz_convert(None).values, np.full(len(minutes), int(row[0])), values
    )
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(url) as conn:
        await refresh_rollups(conn, backend)
    index = pd.date_range("2026-11-20 18:00", periods=4, freq="1h", tz="Asia/Shanghai", name="ts")
    inputs = pd.DataFrame({"shed:electricity_kw": 450.0}, index=index)  # 10:00–14:00 UTC
    async with connect(url) as conn:
        record = await store_plan(conn, plan(site, inputs, level="building", site_id="shed"))
    return record.id, token


@pytest.mark.parametrize("gap", [False, True], ids=["full", "gap"])
async def test_the_api_and_the_page_carry_coverage(
    store_url: str, tmp_path: Path, gap: bool
) -> None:
    site_file = tmp_path / "bare.yaml"
    plan_id, token = await _world(store_url, site_file, gap)
    app: FastAPI = create_app(settings_for(store_url, site_file=site_file))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            answer = await client.get(f"/plans/{plan_id}/actual")
            assert answer.status_code == 200, answer.text
            actual = answer.json()
            page = await client.get(f"/ui/plans/{plan_id}")
            assert page.status_code == 200, page.text[:500]
    per_step = [s["coverage"] for s in actual["steps"]]
    coverage = actual["coverage"]
    if not gap:
        assert actual["compared_steps"] == 4
        assert per_step == [{"electricity": 1.0}] * 4
        assert coverage == {"share": 1.0, "by_carrier": {"electricity": 1.0}, "note": None}
        assert 'id="coverage">100 %' in page.text
        assert "coverage-note" not in page.text
        return
    # 11:00 has readings from 11:30 on (the 11:30 reading stands for one minute, not the 31
    # since 10:59); 12:00 has none and is not compared, but is compared time all the same.
    assert actual["compared_steps"] == 3
    assert [s["actual_import_kw"] is None for s in actual["steps"]] == [False, False, True, False]
    assert per_step == [
        {"electricity": 1.0},
        {"electricity": pytest.approx(0.5)},
        {"electricity": 0.0},
        {"electricity": 1.0},
    ]
    share = (HOUR + HOUR / 2 + 0 + HOUR) / (4 * HOUR)
    assert coverage["share"] == pytest.approx(share)
    assert coverage["by_carrier"] == {"electricity": pytest.approx(share)}
    line = "metered data covers 62.5 % of the compared time (electricity 62.5 %)"
    assert coverage["note"] == line
    assert 'id="coverage">62.5 %' in page.text
    assert f'id="coverage-note">{line}.' in page.text
    # the bill is what it was: kW of the compared steps × hours, coverage or not
    assert actual["actual"]["import_kwh"] == pytest.approx(400.0 + 400.0 + 500.0)


@pytest.mark.parametrize("gap", [False, True], ids=["full", "gap"])
def test_plans_show_says_how_much_the_meters_cover(pg_url: str, tmp_path: Path, gap: bool) -> None:
    site_file = tmp_path / "bare.yaml"
    plan_id, _ = asyncio.run(_world(pg_url, site_file, gap))
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file), "COLUMNS": "200"}
    runner = CliRunner()
    shown = runner.invoke(cli, ["plans", "show", str(plan_id), "--actual"], env=env)
    assert shown.exit_code == 0, shown.output
    as_json = runner.invoke(cli, ["plans", "show", str(plan_id), "--actual", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    coverage = json.loads(as_json.output)["actual"]["coverage"]
    if gap:
        line = "metered data covers 62.5 % of the compared time (electricity 62.5 %)"
        assert f"coverage: {line}" in shown.output
        assert coverage["share"] == pytest.approx(0.625)
    else:
        assert "coverage: metered data covers 100 % of the compared time" in shown.output
        assert coverage["share"] == 1.0
