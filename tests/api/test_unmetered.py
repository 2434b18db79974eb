"""A park whose buildings are not all metered for electricity: one with only heat and gas meters,
one with no meter at all beside its battery. Nothing crashes, and every answer says what is
missing instead of reporting part of the import as the whole: the scheduler's re-plan, `energyhub
plan` and POST /plans (planned on what is known, naming the unmetered building), a park plan
against the meters, savings, the site page and the backtest."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import yaml

from energyhub.api.app import create_app
from energyhub.api.keys import create_key
from energyhub.clock import ManualClock
from energyhub.optimize import plan
from energyhub.plans.store import store_plan
from energyhub.sites import SiteFile, parse_site
from energyhub.store.db import connect
from tests.api.conftest import settings_for
from tests.scheduler.conftest import (
    SHARED_BROKER,
    prepare_db,
    scheduler_for,
    scheduler_settings,
    write_readings,
)

START = datetime.fromisoformat("2026-11-20T00:00:00+08:00")
NOTE = (
    "no electricity meter (carrier electricity, without asset: or submeter_of:): the import, "
    "peak and savings there are not measured"
)


def site_doc() -> dict[str, Any]:
    def building(bid: str, meters: list[dict[str, Any]], *assets: dict[str, Any]) -> dict[str, Any]:
        return {"id": bid, "class": "office-A", "floor_area_m2": 2000, "meters": meters,
                "assets": list(assets)}  # fmt: skip

    return {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "uc", "parks": [{
        "id": "up", "grid": {"import_max_kw": 2000}, "buildings": [
            building("heatonly", [{"id": "heat", "carrier": "heat", "quantity": "energy_kwh"},
                                  {"id": "gas", "carrier": "gas", "quantity": "energy_kwh"}]),
            building("nometer", [], {"id": "nometer-bess", "type": "battery", "energy_kwh": 200,
                                     "power_kw": 100}),
            building("metered", [{"id": "main", "carrier": "electricity",
                                  "quantity": "power_kw"}]),
        ]}]}}  # fmt: skip


@dataclass
class Odd:
    url: str
    site: SiteFile
    client: httpx.AsyncClient
    park_plan: int
    file: Path
    app: Any


def _plan_id(site: SiteFile, level: str, site_id: str) -> Any:
    index = pd.date_range(START, periods=24, freq="1h", name="ts")
    columns = {f"{b}:electricity_kw": 100.0 for b in ("heatonly", "nometer", "metered")}
    return plan(site, pd.DataFrame(columns, index=index), level=level, site_id=site_id)


@pytest.fixture
async def odd(pg_url: str, tmp_path: Path) -> AsyncIterator[Odd]:
    """The site loaded, eight days of readings up to START + 1 day, a stored park plan over the
    metered day, and the API with the city admin's key."""
    site = parse_site(site_doc(), "odd.yaml")
    await prepare_db(pg_url, site)
    index = pd.date_range(START - timedelta(days=7), START + timedelta(days=1), freq="15min",
                          inclusive="left")  # fmt: skip
    steps = np.arange(len(index))
    await write_readings(pg_url, {
        "heat": pd.Series(1000 + 50.0 * steps, index), "gas": pd.Series(500 + 20.0 * steps, index),
        "main": pd.Series(300 + 100 * np.sin(steps / 96 * 2 * np.pi), index),
    })  # fmt: skip
    site_file = tmp_path / "odd.yaml"
    site_file.write_text(yaml.safe_dump(site_doc()))
    async with connect(pg_url) as conn:
        _, token = await create_key(conn, "admin", "uc", "admin@uc")
        park_plan = (await store_plan(conn, _plan_id(site, "park", "up"))).id
    app = create_app(settings_for(pg_url, site_file=site_file))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            yield Odd(pg_url, site, client, park_plan, site_file, app)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _planned_without(building: str) -> str:
    return (
        f"{building}: no electricity meter (carrier electricity, without asset: or submeter_of:): "
        f"{building}:electricity_kw is taken as 0, so the plan leaves its own load out (its "
        "import, peak and savings are not measured)"
    )


async def test_the_scheduler_plans_around_the_building_without_an_electricity_meter(
    odd: Odd,
) -> None:
    """Re-plans of the park and of each unmetered building are stored (they failed whole before),
    each naming the buildings whose load it could not forecast; the metered load is still
    forecast and the unmetered battery still steered."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    clock = ManualClock(START + timedelta(days=1))
    for target, missing in (("heatonly", ["heatonly"]), ("nometer", ["nometer"]),
                            ("up", ["heatonly", "nometer"])):  # fmt: skip
        settings = scheduler_settings(odd.url, SHARED_BROKER, prefix, scheduler_sites=[target])
        async with scheduler_for(settings, odd.site, clock) as scheduler, connect(odd.url) as conn:
            report = await scheduler.tick(conn)
        (record,) = report.replanned
        assert record.status in ("approved", "draft"), record.error
        notes = [w.removeprefix("forecast: ") for w in record.warnings]
        assert [n for n in notes if "no electricity meter" in n] == [
            _planned_without(b) for b in missing
        ]
        schedule = (await odd.client.get(f"/plans/{record.id}/schedule")).json()
        assert schedule["steps"], schedule
        if target == "up":  # the metered building's ~300 kW is imported; the battery is planned
            imports = [s["values"]["up:import_kw"] for s in schedule["steps"]]
            assert min(imports) > 150
            assert "nometer-bess:soc_kwh" in schedule["columns"]


async def test_a_plan_from_given_inputs_takes_an_unmetered_building_as_0(odd: Odd) -> None:
    """`energyhub plan` and POST /plans without an electricity column for the buildings that
    have no meter: planned, saying which; a metered building's column is still required."""
    index = pd.date_range(START, periods=6, freq="1h")
    ts = [t.isoformat() for t in index]
    body = {"level": "park", "site_id": "up",
            "inputs": {"ts": ts, "columns": {"metered:electricity_kw": [300.0] * 6}}}  # fmt: skip
    created = await odd.client.post("/plans", json=body)
    assert created.status_code == 202, created.text
    await odd.app.state.api.runner.wait_idle()
    done = (await odd.client.get(f"/plans/{created.json()['id']}")).json()
    assert done["status"] in ("approved", "draft"), done["error"]
    noted = [w for w in done["warnings"] if "no electricity meter" in w]
    assert noted == [
        f"{b}: no electricity meter (carrier electricity, without asset: or submeter_of:) and no "
        f"{b}:electricity_kw column: {b}:electricity_kw is taken as 0, so the plan leaves its own "
        "load out (its import, peak and savings are not measured)"
        for b in ("heatonly", "nometer")
    ]
    lacking = await odd.client.post(
        "/plans", json={**body, "inputs": {"ts": ts, "columns": {"x": [0.0] * 6}}}
    )
    assert lacking.status_code == 422, lacking.text
    assert "metered:electricity_kw" in lacking.text and "heatonly:" not in lacking.text

    inputs = odd.file.parent / "inputs.csv"
    pd.DataFrame({"metered:electricity_kw": 300.0}, index=pd.Index(ts, name="ts")).to_csv(inputs)
    shown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "energyhub", "plan", "--site", str(odd.file), "--inputs",
        str(inputs), "--level", "building", "--id", "nometer", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(shown.communicate(), 120)
    assert shown.returncode == 0, err.decode()
    result = orjson.loads(out)
    assert result["status"] == "optimal" and len(result["notes"]) == 1
    assert result["notes"][0].startswith("nometer: no electricity meter")


async def test_a_park_plan_is_not_compared_on_part_of_its_import(odd: Odd) -> None:
    """The metered building's main meter is all the park's meters read: that is not its import."""
    answer = await odd.client.get(f"/plans/{odd.park_plan}/actual")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["unmetered"] == f"heatonly, nometer: {NOTE}"
    assert body["compared_steps"] == 0 and body["realized"] is None
    assert all(s["actual_import_kw"] is None for s in body["steps"])
    page = await odd.client.get(f"/ui/plans/{odd.park_plan}")
    assert page.status_code == 200
    assert f"No step can be compared: heatonly, nometer: {NOTE}." in _text(page.text)
    shown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "energyhub", "plans", "show", str(odd.park_plan), "--actual",
        env={**os.environ, "ENERGYHUB_DB_URL": odd.url, "ENERGYHUB_SITE_FILE": str(odd.file),
             "COLUMNS": "400"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(shown.communicate(), 120)
    assert shown.returncode == 0, err.decode()
    assert f"no step compared: heatonly, nometer: {NOTE}" in out.decode()


async def test_savings_and_the_site_page_say_what_is_missing(odd: Odd) -> None:
    window = {"start": START.isoformat(), "end": (START + timedelta(days=1)).isoformat()}
    for site_id, note in (("heatonly", f"heatonly: {NOTE}"), ("up", f"heatonly, nometer: {NOTE}"),
                          ("metered", None)):  # fmt: skip
        savings = await odd.client.get(f"/sites/{site_id}/savings", params=window)
        assert savings.status_code == 200, savings.text
        assert savings.json()["unmetered"] == note
        page = await odd.client.get(
            f"/ui/sites/{site_id}", params={"end": (START + timedelta(hours=20)).isoformat()}
        )
        assert page.status_code == 200, page.text
        text = _text(page.text)
        assert ("no electricity meter" in text) == (note is not None)
        assert note is None or f"{note}." in text
    end = (START + timedelta(hours=20)).isoformat()
    page = _text((await odd.client.get("/ui/sites/heatonly", params={"end": end})).text)
    assert "heat 4,000.0" in page  # its heat meter still counts: 200 kW for 20 h


async def test_the_backtest_says_a_building_has_no_meter_to_backtest(odd: Odd) -> None:
    params = {"end": (START + timedelta(days=1)).isoformat(), "days": 2}
    city = await odd.client.get("/sites/uc/forecast/backtest", params=params)
    assert city.status_code == 422, city.text
    assert city.json()["detail"] == (
        "site_id: 'uc' is the city: backtest one of its parks or buildings"
    )  # the field was named twice: "site_id: site: 'uc' …"
    meter = await odd.client.get("/sites/metered/forecast/backtest", params={"meter": "heat"})
    assert meter.json()["detail"] == (
        "meter: no load or PV meter 'heat' at site 'metered' (its meters: main)"
    )
    answer = await odd.client.get("/sites/nometer/forecast/backtest", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["meters"] == []
    assert (
        "nometer: no load or PV meter to backtest (a power or energy meter without asset: or "
        "submeter_of:, or a PV asset's meter)"
    ) in body["notes"]
