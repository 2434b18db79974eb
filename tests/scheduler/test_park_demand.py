"""A park's own electricity demand (its common load) in its plans and in plan vs actual, against
the real PostgreSQL: a park whose connection meter reads 200 kW beyond its building's main."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from energyhub.optimize.scope import resolve_scope
from energyhub.plans.counterfactual import metered_inputs
from energyhub.plans.operations import plan_inputs
from energyhub.plans.store import plan_steps
from energyhub.scheduler.replan import PlanningConfig, Target, replan
from energyhub.sites import SiteFile, parse_site
from energyhub.store.db import Backend, connect

from .conftest import (
    HistorySpec,
    office_load_kw,
    prepare_db,
    pv_kw,
    scheduler_settings,
    site_doc,
    write_history,
    write_readings,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # a Tuesday
COMMON_KW = 200.0
"""Street lighting, shared plant and losses: what the connection reads beyond the office."""


def park_site(main_meter: str | None = None, **park: Any) -> SiteFile:
    """The scheduler's test park `sp` with a connection meter `incomer` of its own."""
    doc = site_doc()
    sp = doc["city"]["parks"][0]
    sp["meters"].append({"id": "incomer", "carrier": "electricity", "quantity": "power_kw"})
    if main_meter is not None:
        sp["main_meter"] = main_meter
    sp.update(park)
    return parse_site(doc, "park-site")


def index_of(start: datetime, end: datetime) -> pd.DatetimeIndex:
    bounds = [pd.Timestamp(t).tz_convert("UTC") for t in (start, end)]
    return pd.date_range(*bounds, freq="15min", inclusive="left")


async def test_a_connected_parks_common_load_is_in_its_plan(pg_url: str) -> None:
    """The plan's inputs carry sp:electricity_kw at the common load, and the planned import
    serves it: import − export = the office's and the park's demand − PV + the battery's
    charging, each step."""
    site = park_site()
    await prepare_db(pg_url, site)
    spec = HistorySpec(START - timedelta(days=7), START)
    await write_history(pg_url, spec)
    index = index_of(spec.start, spec.end)
    main = office_load_kw(index) - pv_kw(index)
    await write_readings(pg_url, {"incomer": pd.Series(main + COMMON_KW, index=index)})
    config = PlanningConfig.of(scheduler_settings(pg_url, "mqtt://unused:1883", "t"))
    async with connect(pg_url) as conn:
        record = await replan(conn, Backend.POSTGRES, site, Target("park", "sp"), START, config)
        inputs = await plan_inputs(conn, record.id)
        schedule = await plan_steps(conn, record.id)
    assert record.status != "failed", record.error
    np.testing.assert_allclose(inputs["sp:electricity_kw"], COMMON_KW, atol=1.0)
    demand = inputs["office:electricity_kw"] + inputs["sp:electricity_kw"]
    battery = schedule["office-bess:charge_kw"] - schedule["office-bess:discharge_kw"]
    served = demand - schedule["office-pv:output_kw"] + battery
    np.testing.assert_allclose(schedule["sp:import_kw"], served, atol=1e-3)


async def test_a_building_without_a_main_is_inside_its_connected_parks_demand(pg_url: str) -> None:
    """`store` has no electricity meter: its 150 kW is in the connection, so the park's demand
    holds it (with the common load), `store:electricity_kw` is 0, and the plan says so instead
    of leaving its load out; the perfect-foresight inputs read the same."""
    store = {"id": "store", "class": "office-A", "floor_area_m2": 1000}
    site = park_site(buildings=[site_doc()["city"]["parks"][0]["buildings"][0], store])
    await prepare_db(pg_url, site)
    spec = HistorySpec(START - timedelta(days=7), START)
    await write_history(pg_url, spec)
    index = index_of(spec.start, spec.end)
    main = office_load_kw(index) - pv_kw(index)
    await write_readings(pg_url, {"incomer": pd.Series(main + COMMON_KW + 150.0, index=index)})
    config = PlanningConfig.of(scheduler_settings(pg_url, "mqtt://unused:1883", "t"))
    async with connect(pg_url) as conn:
        record = await replan(conn, Backend.POSTGRES, site, Target("park", "sp"), START, config)
        inputs = await plan_inputs(conn, record.id)
        metered = await metered_inputs(
            conn, Backend.POSTGRES, site, resolve_scope(site, "park", "sp"), index[-8:],
            pd.DataFrame(),
        )  # fmt: skip
    assert record.status != "failed", record.error
    np.testing.assert_allclose(inputs["sp:electricity_kw"], COMMON_KW + 150.0, atol=1.0)
    np.testing.assert_allclose(inputs["store:electricity_kw"], 0.0)
    notes = [w.removeprefix("forecast: ") for w in record.warnings]
    assert "store: no main electricity meter; its load stays inside sp:electricity_kw" in notes
    assert not [n for n in notes if "is taken as 0" in n]
    np.testing.assert_allclose(metered.frame["sp:electricity_kw"], COMMON_KW + 150.0)
    np.testing.assert_allclose(metered.frame["store:electricity_kw"], 0.0)


HEAT_KW = 450.0
"""The office's heat demand, all of it from the park's shared heat pump (the office has none)."""
HP_COP = 3.0


async def test_a_shared_heat_pump_without_a_meter_is_counted_once(pg_url: str) -> None:
    """`sp-hp` serves the office's 450 kW of heat at COP 3 and has no electricity meter: its
    150 kW is in the connection, and the plan (and the counterfactual's rules) draw it again as
    the heat pump's own consumption. The park's own demand leaves it out, in the plan's inputs
    and in the perfect-foresight ones: `sp:electricity_kw` is the common load alone, and the
    planned import serves the heat pump's draw once."""
    office = site_doc()["city"]["parks"][0]["buildings"][0]
    office["meters"].append({"id": "heat", "carrier": "heat", "quantity": "power_kw"})
    hp = {"id": "sp-hp", "type": "heat_pump", "heat_max_kw": 1000, "cop": HP_COP}
    site = park_site(assets=[hp], buildings=[office])
    await prepare_db(pg_url, site)
    spec = HistorySpec(START - timedelta(days=7), START)
    await write_history(pg_url, spec)
    index = index_of(spec.start, spec.end)
    main = office_load_kw(index) - pv_kw(index)
    await write_readings(
        pg_url,
        {
            "heat": pd.Series(HEAT_KW, index=index),
            "incomer": pd.Series(main + COMMON_KW + HEAT_KW / HP_COP, index=index),
        },
    )
    config = PlanningConfig.of(scheduler_settings(pg_url, "mqtt://unused:1883", "t"))
    async with connect(pg_url) as conn:
        record = await replan(conn, Backend.POSTGRES, site, Target("park", "sp"), START, config)
        inputs = await plan_inputs(conn, record.id)
        schedule = await plan_steps(conn, record.id)
        metered = await metered_inputs(
            conn, Backend.POSTGRES, site, resolve_scope(site, "park", "sp"), index[-8:],
            pd.DataFrame(),
        )  # fmt: skip
    assert record.status != "failed", record.error
    np.testing.assert_allclose(inputs["sp:electricity_kw"], COMMON_KW, atol=1.0)
    np.testing.assert_allclose(metered.frame["sp:electricity_kw"], COMMON_KW)
    notes = [w.removeprefix("forecast: ") for w in record.warnings]
    assert any(n.startswith("sp-hp: the heat it served is taken as") for n in notes), notes
    demand = inputs["office:electricity_kw"] + inputs["sp:electricity_kw"]
    battery = schedule["office-bess:charge_kw"] - schedule["office-bess:discharge_kw"]
    drawn = schedule["sp-hp:electricity_kw"]
    np.testing.assert_allclose(drawn, inputs["office:heat_kw"] / HP_COP, atol=1e-3)
    served = demand - schedule["office-pv:output_kw"] + battery + drawn
    np.testing.assert_allclose(schedule["sp:import_kw"], served, atol=1e-3)


async def test_heat_a_metered_shared_heat_pump_made_is_not_served_again(pg_url: str) -> None:
    """Two shared heat pumps: `sp-hp1` has a heat meter (300 of the office's 450 kW), `sp-hp2`
    has none and serves the rest. hp2 was taken to serve all 450 kW again, so 100 kW too much
    came out of the park's own load (the common load read 100 kW instead of 200)."""
    office = site_doc()["city"]["parks"][0]["buildings"][0]
    office["meters"].append({"id": "heat", "carrier": "heat", "quantity": "power_kw"})
    pumps = [
        {"id": f"sp-hp{n}", "type": "heat_pump", "heat_max_kw": 1000, "cop": HP_COP} for n in (1, 2)
    ]
    hp1_heat = {"id": "hp1-heat", "carrier": "heat", "quantity": "power_kw", "asset": "sp-hp1"}
    incomer = {"id": "incomer", "carrier": "electricity", "quantity": "power_kw"}
    meters = [*site_doc()["city"]["parks"][0]["meters"], incomer, hp1_heat]
    site = park_site(assets=pumps, buildings=[office], meters=meters)
    await prepare_db(pg_url, site)
    spec = HistorySpec(START - timedelta(days=7), START)
    await write_history(pg_url, spec)
    index = index_of(spec.start, spec.end)
    main = office_load_kw(index) - pv_kw(index)
    made = 300.0
    await write_readings(
        pg_url,
        {
            "heat": pd.Series(HEAT_KW, index=index),
            "hp1-heat": pd.Series(made, index=index),
            "incomer": pd.Series(main + COMMON_KW + HEAT_KW / HP_COP, index=index),
        },
    )
    async with connect(pg_url) as conn:
        metered = await metered_inputs(
            conn, Backend.POSTGRES, site, resolve_scope(site, "park", "sp"), index[-8:],
            pd.DataFrame(),
        )  # fmt: skip
    np.testing.assert_allclose(metered.frame["sp:electricity_kw"], COMMON_KW)
