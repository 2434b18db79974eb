"""A gas-only park: a boiler house with gas and heat meters and no electricity meter. Plan vs
actual compared 0 steps and said nothing of the gas, all that it can compare: now the gas is
compared (planned 200 kW for a day, metered 200 kW), and the import is named as not measured, in
the API, the plan page and `plans show --actual`; savings say why none are realized."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

from energyhub.api.app import create_app
from energyhub.api.keys import create_key
from energyhub.optimize import plan
from energyhub.plans.store import store_plan
from energyhub.sites import parse_site
from energyhub.store.db import connect
from tests.api.conftest import settings_for
from tests.scheduler.conftest import prepare_db, write_readings

START = datetime.fromisoformat("2026-11-20T00:00:00+08:00")
NOTE = (
    "boilers: no electricity meter (carrier electricity, without asset: or submeter_of:): the "
    "import, peak and savings there are not measured"
)
GAS = {"price_cny_per_nm3": 3.5, "lhv_kwh_per_nm3": 10.0}  # 0.35 CNY per kWh


def site_doc() -> dict[str, Any]:
    boilers = {
        "id": "boilers", "class": "office-A", "floor_area_m2": 1000,
        "meters": [{"id": "gas", "carrier": "gas", "quantity": "energy_kwh"},
                   {"id": "heat", "carrier": "heat", "quantity": "energy_kwh"}],
        "assets": [{"id": "boiler", "type": "gas_boiler", "heat_max_kw": 500, "eta": 0.9}],
    }  # fmt: skip
    park = {"id": "gp", "grid": {"import_max_kw": 100}, "gas": GAS, "buildings": [boilers]}
    return {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "gc", "parks": [park]}}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_a_gas_only_park_compares_its_gas(pg_url: str, tmp_path: Path) -> None:
    site = parse_site(site_doc(), "gas.yaml")
    await prepare_db(pg_url, site)
    index = pd.date_range(START - timedelta(days=1), START + timedelta(days=1), freq="15min",
                          inclusive="left")  # fmt: skip
    steps = np.arange(len(index))  # the gas counter rises 50 kWh a quarter hour: 200 kW
    await write_readings(pg_url, {"gas": pd.Series(500 + 50.0 * steps, index),
                                  "heat": pd.Series(1000 + 45.0 * steps, index)})  # fmt: skip
    hours = pd.date_range(START, periods=24, freq="1h", name="ts")
    inputs = pd.DataFrame({"boilers:electricity_kw": 0.0, "boilers:heat_kw": 180.0}, index=hours)
    site_file = tmp_path / "gas.yaml"
    site_file.write_text(yaml.safe_dump(site_doc()))
    async with connect(pg_url) as conn:
        _, token = await create_key(conn, "admin", "gc", "admin@gc")
        plan_id = (await store_plan(conn, plan(site, inputs, level="park", site_id="gp"))).id
    app = create_app(settings_for(pg_url, site_file=site_file))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            answer = await client.get(f"/plans/{plan_id}/actual")
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["compared_steps"] == 0 and body["unmetered"] == NOTE
            gas = body["gas"]
            assert gas["steps"] == 24
            assert gas["planned_kwh"] == gas["actual_kwh"] == 4800.0  # 180 kW of heat ÷ 0.9
            assert gas["planned_cny"] == gas["actual_cny"] == 1680.0
            assert all(s["actual_gas_kw"] == 200.0 for s in body["steps"])
            assert all(s["planned_gas_kw"] == 200.0 for s in body["steps"])
            page = _text((await client.get(f"/ui/plans/{plan_id}")).text)
            assert f"No step can be compared: {NOTE}." in page
            assert "Gas over the 24 metered steps: planned 4,800.0 kWh" in page
            window = {"start": START.isoformat(), "end": (START + timedelta(days=1)).isoformat()}
            savings = await client.get("/sites/gp/savings", params=window)
            assert savings.status_code == 200, savings.text
            assert savings.json()["unmetered"] == NOTE
    shown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "energyhub", "plans", "show", str(plan_id), "--actual",
        env={**os.environ, "ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file),
             "COLUMNS": "400"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(shown.communicate(), 120)
    assert shown.returncode == 0, err.decode()
    assert f"no step compared: {NOTE}" in out.decode()
    assert "gas over 24 metered steps: planned 4,800.0 kWh (1,680.0 CNY), metered 4,800.0" in (
        out.decode()
    )
