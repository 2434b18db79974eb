"""Monthly demand billing over HTTP: a plan reads its connection's month-to-date metered peak from
the rollups, pays the demand charge only on raising it, and shows it in its JSON and on its page;
plan vs actual bills the meters the same way."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI

from tests.api.conftest import World
from tests.api.test_plans import body, finished

RATE_CNY_PER_KW = 40.0  # expo's grid in examples/expo-park.yaml


def starting(hour_utc: int, steps: int = 4) -> dict[str, Any]:
    """A b01 plan whose first step is `hour_utc` on the world's day of readings."""
    request = body(steps=steps)
    start = pd.Timestamp(f"2026-11-20T{hour_utc:02d}:00Z")
    request["inputs"]["ts"] = [
        (start + pd.Timedelta(hours=i)).tz_convert("Asia/Shanghai").isoformat()
        for i in range(steps)
    ]
    return request


def metered_month_peak(world: World, before: str) -> float:
    """The highest 15-min mean of b01's main meter (its only top-level electricity meter)."""
    main = world.series["b01/main"]
    return float(main[main.index < pd.Timestamp(before)].resample("15min").mean().max())


async def test_the_month_to_date_peak_comes_from_the_rollups(
    client: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    created = (await client.post("/plans", json=starting(12))).json()
    done = await finished(client, app, created["id"])
    month_peak = metered_month_peak(world, "2026-11-20T12:00Z")
    assert month_peak > 600  # the synthetic day peaks near 700 kW
    assert done["month_peak_kw"] == {"b01": pytest.approx(month_peak, rel=1e-9)}
    # the billed peak never falls below the month's; the plan may import up to it for free
    assert done["solver"]["scalars"]["b01:peak_import_kw"] == pytest.approx(month_peak)
    schedule = (await client.get(f"/plans/{created['id']}/schedule")).json()
    assert max(s["values"]["b01:import_kw"] for s in schedule["steps"]) <= month_peak + 1e-6
    assert done["cost_cny"]["demand"] == pytest.approx(0.0, abs=1e-6)
    page = (await client.get(f"/ui/plans/{created['id']}")).text
    assert f"b01: {month_peak:,.1f} kW billed so far this month" in page


async def test_the_first_plan_of_the_month_pays_its_whole_peak(
    client: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    """Before the world's first reading nothing is billed yet: the whole peak costs 40 CNY/kW."""
    created = (await client.post("/plans", json=starting(0))).json()
    done = await finished(client, app, created["id"])
    assert done["month_peak_kw"] == {"b01": 0.0}
    peak = done["solver"]["scalars"]["b01:peak_import_kw"]
    assert done["cost_cny"]["demand"] == pytest.approx(RATE_CNY_PER_KW * peak, rel=1e-9)
    assert done["vs_baseline"]["delta_cost_cny"] == pytest.approx(
        done["objective_cny"] - done["baseline_cost_cny"]
    )


async def test_plan_vs_actual_bills_the_meters_from_the_month_peak(
    client: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    """Metered import over the plan's hours against the month-to-date peak before them: the
    demand charge is 40 CNY/kW of the rise only."""
    created = (await client.post("/plans", json=starting(12, steps=8))).json()
    await finished(client, app, created["id"])
    actual = (await client.get(f"/plans/{created['id']}/actual")).json()
    month_peak = metered_month_peak(world, "2026-11-20T12:00Z")
    hourly = world.series["b01/main"]["2026-11-20T12:00Z":"2026-11-20T19:59Z"].resample("1h").mean()
    assert actual["actual"]["month_peak_kw"] == pytest.approx(month_peak)
    assert actual["actual"]["peak_import_kw"] == pytest.approx(hourly.max())
    rise = max(hourly.max() - month_peak, 0.0)
    assert actual["actual"]["demand_cny"] == pytest.approx(RATE_CNY_PER_KW * rise, abs=1e-6)
