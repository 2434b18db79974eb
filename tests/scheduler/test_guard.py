"""The peak guard: the metered import above plan is held at the billed peak before a step's
setpoints go out, and every override is stored with the setpoint (real PostgreSQL, Mosquitto)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energyhub.clock import ManualClock
from energyhub.config import Settings
from energyhub.optimize.scope import resolve_scope
from energyhub.plans import store
from energyhub.plans.actual import plan_vs_actual
from energyhub.scheduler.guard import PeakGuard, hold_import, planned_cops, planned_import_kw
from energyhub.scheduler.setpoints import Setpoint
from energyhub.sites import load_site
from energyhub.store.db import Backend, connect

from .conftest import (
    SHARED_BROKER,
    HistorySpec,
    collect_setpoints,
    make_site,
    prepare_db,
    scheduler_for,
    scheduler_settings,
    site_doc,
    write_history,
    write_readings,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # a Tuesday, a week into the month
STEP = timedelta(minutes=15)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml"


async def _metered_step(url: str, main_kw: float, tail_kw: float | None) -> None:
    """One-minute readings of the first live step: the office draws `main_kw` (its last five
    minutes `tail_kw` if given), the battery sits at 50 % SOC."""
    index = pd.date_range(START, START + STEP, freq="1min", inclusive="left")
    main = pd.Series(main_kw, index=index)
    if tail_kw is not None:
        main.iloc[-5:] = tail_kw
    await write_readings(
        url,
        {
            "main": main,
            "pv": pd.Series(0.0, index=index),
            "bess-p": pd.Series(0.0, index=index),
            "bess-soc": pd.Series(50.0, index=index),
        },
    )


async def _run_two_steps(
    url: str, prefix: str, main_kw: float | None, tail_kw: float | None = None, **settings: object
) -> tuple[list[dict[str, object]], list[tuple[object, ...]], int, pd.DataFrame]:
    """Plan at START, send its first step, meter it at `main_kw` (None: as planned), send the
    second, with the guard on unless `settings` say. The MQTT bodies, the setpoint rows, the
    overrides counted, the plan's schedule."""
    settings.setdefault("scheduler_peak_guard", True)
    site = make_site()
    await prepare_db(url, site)
    await write_history(url, HistorySpec(START - timedelta(days=7), START))
    config = scheduler_settings(url, SHARED_BROKER, prefix, scheduler_horizon_h=2, **settings)
    clock = ManualClock(START)
    async with collect_setpoints(SHARED_BROKER, prefix) as received:
        async with scheduler_for(config, site, clock) as scheduler, connect(url) as conn:
            await scheduler.resume(conn)
            first = await scheduler.tick(conn)
            schedule = await store.plan_steps(conn, first.replanned[0].id)
            planned = planned_import_kw(schedule, "office")
            as_planned = float(planned.iloc[0])
            await _metered_step(url, as_planned if main_kw is None else main_kw, tail_kw)
            await clock.advance(STEP)
            second = await scheduler.tick(conn)
    async with connect(url) as conn:
        cur = await conn.execute(
            "SELECT ts, p_kw, planned_p_kw, override FROM setpoints ORDER BY ts"
        )
        rows = list(await cur.fetchall())
    return [m.body for m in received], rows, second.overridden, schedule


def _planned_p_kw(schedule: pd.DataFrame, ts: datetime) -> float:
    row = schedule.loc[pd.Timestamp(ts)]
    return float(row["office-bess:charge_kw"] - row["office-bess:discharge_kw"])


async def test_demand_above_plan_is_held_under_the_billed_peak_and_the_override_stored(
    pg_url: str, prefix: str
) -> None:
    # the office draws 3 MW in the first live step (a new month peak): with 500 kW of headroom
    # under it, the guard holds the next step at 2.5 MW with the battery's full 500 kW
    bodies, rows, overridden, schedule = await _run_two_steps(
        pg_url, prefix, 3000.0, scheduler_peak_guard_headroom_kw=500
    )
    assert overridden == 1
    assert len(bodies) == 2
    assert bodies[1]["p_kw"] == pytest.approx(-500.0)
    ts, p_kw, planned_p_kw, override = rows[1]
    assert ts == START + STEP and p_kw == pytest.approx(-500.0)
    assert planned_p_kw == pytest.approx(_planned_p_kw(schedule, START + STEP), abs=1e-6)
    assert override.startswith(
        "peak guard: last step metered 3,000 kW (its last 5 min 3,000) against 300 expected; "
        "this step estimated "
        "3,000 kW above the limit 2,500 kW"
    )
    assert override.endswith("discharge raised")
    async with connect(pg_url) as conn:
        shown = await store.setpoint_overrides(conn, int(bodies[1]["plan"]))  # plan vs actual
    assert [(o.asset_id, o.p_kw, o.reason) for o in shown] == [("office-bess", p_kw, override)]
    # the first step had no metered step before it: sent as planned
    assert rows[0][3] is None and rows[0][1] == pytest.approx(rows[0][2])


async def test_a_peak_the_bill_already_carries_is_not_fought(pg_url: str, prefix: str) -> None:
    # the 3 MW step set the month's peak: holding the next one at it costs nothing more
    bodies, rows, overridden, schedule = await _run_two_steps(pg_url, prefix, 3000.0)
    assert overridden == 0 and [r[3] for r in rows] == [None, None]
    assert bodies[1]["p_kw"] == pytest.approx(_planned_p_kw(schedule, START + STEP), abs=1e-3)


async def test_a_rise_at_the_end_of_the_last_step_is_taken_as_going_on(
    pg_url: str, prefix: str
) -> None:
    # 300 kW for ten minutes, then 3 MW: the step's mean (1.2 MW) sets the month's peak, but
    # demand has got to 3 MW: the next step is estimated there, far above the 1.2 MW billed
    bodies, rows, overridden, _ = await _run_two_steps(pg_url, prefix, 300.0, 3000.0)
    assert overridden == 1
    assert bodies[1]["p_kw"] == pytest.approx(-500.0)
    assert str(rows[1][3]).startswith(
        "peak guard: last step metered 1,200 kW (its last 5 min 3,000) against 300 expected"
    )
    assert "above the limit 1,200 kW" in str(rows[1][3])


async def test_demand_as_planned_sends_the_plans_setpoints(pg_url: str, prefix: str) -> None:
    bodies, rows, overridden, schedule = await _run_two_steps(
        pg_url, prefix, None, scheduler_peak_guard_headroom_kw=100
    )
    assert overridden == 0
    assert [r[3] for r in rows] == [None, None]
    assert bodies[1]["p_kw"] == pytest.approx(_planned_p_kw(schedule, START + STEP), abs=1e-3)


async def test_the_guard_off_sends_the_plan_whatever_the_meters_say(
    pg_url: str, prefix: str
) -> None:
    bodies, rows, overridden, schedule = await _run_two_steps(
        pg_url, prefix, 3000.0, scheduler_peak_guard=False, scheduler_peak_guard_headroom_kw=500
    )
    assert overridden == 0 and [r[3] for r in rows] == [None, None]
    assert bodies[1]["p_kw"] == pytest.approx(_planned_p_kw(schedule, START + STEP), abs=1e-3)


def _park_setpoints(bess_kw: float, chp_kw: float) -> list[Setpoint]:
    ts = START
    return [
        Setpoint(1, "expo", "expo", "expo-bess", ts, bess_kw, planned_p_kw=bess_kw),
        Setpoint(1, "expo", "expo", "expo-chp", ts, chp_kw, planned_p_kw=chp_kw),
    ]


@pytest.mark.parametrize(
    ("excess_kw", "soc", "bess_kw", "chp_kw", "cut_kw"),
    [
        (600.0, 0.5, 400.0, 0.0, 600.0),  # charging cut to 0, then 200 kW of discharge
        (5000.0, 0.5, -2000.0, 1400.0, 4400.0),  # all of it: 1,000 + 2,000 + CHP at full
        (1100.0, 0.1, 0.0, 560.0, 1560.0),  # an empty battery: the CHP starts at min load
    ],
)
def test_the_excess_is_taken_off_charging_then_discharge_then_the_chp(
    excess_kw: float, soc: float, bess_kw: float, chp_kw: float, cut_kw: float
) -> None:
    scope = resolve_scope(load_site(EXAMPLE), "park", "expo")
    setpoints = _park_setpoints(1000.0, 0.0)
    changed, cut = hold_import(
        scope, setpoints, excess_kw, {"expo-bess": soc}, pd.Timedelta(STEP), "why"
    )
    bess, chp = changed
    assert bess.p_kw == pytest.approx(bess_kw) and chp.p_kw == pytest.approx(chp_kw)
    assert cut == pytest.approx(cut_kw)
    assert (bess.planned_p_kw, chp.planned_p_kw) == (1000.0, 0.0)
    assert bess.override is not None and bess.override.startswith("why: charging cut")
    assert (chp.override is None) == (chp_kw == 0.0)
    assert np.isclose(bess.planned_p_kw - bess.p_kw + chp.p_kw, cut)


def test_a_battery_without_a_soc_reading_only_stops_charging() -> None:
    scope = resolve_scope(load_site(EXAMPLE), "park", "expo")
    changed, cut = hold_import(
        scope, _park_setpoints(300.0, 1400.0), 1000.0, {}, pd.Timedelta(STEP), "why"
    )
    assert [s.p_kw for s in changed] == [0.0, 1400.0]  # the CHP is at full already
    assert cut == pytest.approx(300.0)


def test_the_guard_is_on_by_default() -> None:
    """It saved more than the plans alone in the lockstep closed loop (docs/scheduler.md)."""
    assert Settings.model_fields["scheduler_peak_guard"].default is True


def _lingang_setpoints(electrolyzer_kw: float, ice_kw: float, chiller_kw: float) -> list[Setpoint]:
    ts = START
    return [
        Setpoint(1, "lingang", "lingang", "lg-electrolyzer", ts, electrolyzer_kw,
                 planned_p_kw=electrolyzer_kw),
        Setpoint(1, "lingang", "l03", "l03-ice", ts, ice_kw, planned_p_kw=ice_kw),
        Setpoint(1, "lingang", "l03", "l03-chiller", ts, chiller_kw, planned_p_kw=chiller_kw),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("excess_kw", "electrolyzer_kw", "ice_kw", "chiller_kw", "cut_kw"),
    [
        (300.0, 200.0, 1000.0, 3000.0, 300.0),  # electrolysis cut first
        (600.0, 0.0, 450.0, 2450.0, 600.0),  # then 100 kW of electricity: 550 kW of cold
        (900.0, 0.0, 0.0, 2000.0, 500.0 + 1000.0 / 5.5),  # all the store's charging, no more
    ],
)
def test_electrolysis_then_a_store_s_charging_by_its_chiller_are_cut(
    excess_kw: float, electrolyzer_kw: float, ice_kw: float, chiller_kw: float, cut_kw: float
) -> None:
    scope = resolve_scope(load_site(EXAMPLE), "park", "lingang")
    index = pd.DatetimeIndex([START])
    schedule = pd.DataFrame(
        {"l03-chiller:cooling_kw": [3000.0], "l03-chiller:electricity_kw": [3000.0 / 5.5]}, index
    )
    cops = planned_cops(scope, schedule, pd.Timestamp(START))
    assert cops == {"l03-chiller": pytest.approx(5.5)}
    changed, cut = hold_import(
        scope, _lingang_setpoints(500.0, 1000.0, 3000.0), excess_kw, {}, pd.Timedelta(STEP),
        "why", cops,
    )  # fmt: skip
    assert [s.p_kw for s in changed] == pytest.approx([electrolyzer_kw, ice_kw, chiller_kw])
    assert cut == pytest.approx(cut_kw)
    if chiller_kw < 3000.0:
        assert changed[2].override == "why: l03-ice charged less"
        assert changed[1].override == "why: charging cut"


def test_a_chiller_serving_only_its_building_is_left_alone() -> None:
    """No store charging beside it: what it makes is comfort, not a peak the guard may cut."""
    scope = resolve_scope(load_site(EXAMPLE), "park", "lingang")
    changed, cut = hold_import(
        scope, _lingang_setpoints(0.0, -500.0, 3000.0), 400.0, {}, pd.Timedelta(STEP), "why",
        {"l03-chiller": 5.5},
    )  # fmt: skip
    assert [s.p_kw for s in changed] == [0.0, -500.0, 3000.0] and cut == 0.0


@pytest.mark.parametrize(
    ("soc", "cell_kw", "h2_kw"),
    [
        (0.5, 150.0, -300.0),  # 150 kW on 300 kW of hydrogen
        (0.06, 60.0, -120.0),  # 30 kWh above the minimum: 120 kW for the step, 60 kW of power
        (None, 0.0, 0.0),  # no SOC reading: nothing taken from the store
    ],
)
def test_a_fuel_cell_runs_higher_on_the_hydrogen_its_store_holds(
    soc: float | None, cell_kw: float, h2_kw: float
) -> None:
    """Lingang of the example, electrolyzer and fuel cell stopped, 150 kW above the limit."""
    scope = resolve_scope(load_site(EXAMPLE), "park", "lingang")
    setpoints = [
        Setpoint(1, "lingang", "lingang", asset, START, 0.0, planned_p_kw=0.0)
        for asset in ("lg-electrolyzer", "lg-fuelcell", "lg-h2")
    ]
    changed, cut = hold_import(
        scope, setpoints, 150.0, {} if soc is None else {"lg-h2": soc}, pd.Timedelta(STEP), "why"
    )
    assert [s.p_kw for s in changed] == pytest.approx([0.0, cell_kw, h2_kw])
    assert cut == pytest.approx(cell_kw)
    if cell_kw:
        assert changed[1].override == "why: fuel cell output raised"
        assert changed[2].override == "why: lg-fuelcell fed"


async def test_setpoints_carry_the_guard_s_limit_for_the_site_s_local_controller(
    pg_url: str, prefix: str
) -> None:
    # the 3 MW step set the month's peak: the next step's battery setpoint carries it as the
    # import its local controller holds the connection under, between the guard's step checks
    bodies, _, _, schedule = await _run_two_steps(
        pg_url, prefix, 3000.0, scheduler_peak_guard_headroom_kw=100
    )
    planned = planned_import_kw(schedule, "office")
    assert all("import_limit_kw" in b for b in bodies)
    assert bodies[1]["import_limit_kw"] == pytest.approx(max(3000.0, planned.max()) - 100.0)
    # stored with the setpoints, and shown per step in plan vs actual
    async with connect(pg_url) as conn:
        comparison = await plan_vs_actual(
            conn, Backend.POSTGRES, int(bodies[1]["plan"]), site=make_site(), foresight=False
        )
    held = {s.ts: s.import_limit_kw for s in comparison.step_details}
    assert held[START] == pytest.approx(bodies[0]["import_limit_kw"])
    assert held[START + STEP] == pytest.approx(bodies[1]["import_limit_kw"])
    assert all(v is None for ts, v in held.items() if ts > START + STEP)


async def test_no_import_limit_when_it_is_turned_off(pg_url: str, prefix: str) -> None:
    bodies, _, _, _ = await _run_two_steps(pg_url, prefix, 3000.0, scheduler_import_limit=False)
    assert len(bodies) == 2 and not any("import_limit_kw" in b for b in bodies)


def test_a_setpoint_s_import_limit_must_be_a_number_at_least_0() -> None:
    with pytest.raises(ValueError, match="import_limit_kw: must be a number >= 0, got -1"):
        Setpoint(1, "expo", "expo", "expo-bess", START, 0.0, import_limit_kw=-1.0)


@pytest.mark.parametrize(("free_peak_kw", "cut"), [(None, True), (3500.0, False)])
async def test_the_guard_holds_the_month_s_demand_target_not_a_lower_peak(
    pg_url: str, free_peak_kw: float | None, cut: bool
) -> None:
    """The last step metered 3,000 kW against 300 planned (a new month peak): with 500 kW of
    headroom the guard's limit is 2,500 and it discharges the battery; a plan that took import
    up to a demand target of 3,500 kW as free (`office:free_peak_kw`, energyhub.scheduler.target)
    has the limit 3,000, which the estimate of 3,000 does not pass: nothing is overridden."""
    site = make_site()
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    await _metered_step(pg_url, 3000.0, None)
    scope = resolve_scope(site, "building", "office")
    index = pd.DatetimeIndex([START, START + STEP]).tz_convert("UTC")
    schedule = pd.DataFrame({"office:import_kw": 300.0}, index=index)
    if free_peak_kw is not None:
        schedule["office:free_peak_kw"] = free_peak_kw
    guard = PeakGuard(site.tz, STEP, 500.0)
    setpoints = [Setpoint(1, "sp", "office", "office-bess", START + STEP, 0.0, planned_p_kw=0.0)]
    async with connect(pg_url) as conn:
        assert await guard.check(conn, Backend.POSTGRES, scope, schedule, index[0], []) is None
        decision = await guard.check(conn, Backend.POSTGRES, scope, schedule, index[1], setpoints)
    assert decision is not None
    assert decision.estimate_kw == pytest.approx(3000.0)
    assert decision.limit_kw == pytest.approx(2500.0 if cut else 3000.0)
    assert bool(decision.overridden) == cut


@pytest.mark.parametrize(
    ("excess_kw", "ice_soc", "chiller_kw", "ice_kw", "cut_kw"),
    [
        (250.0, 0.5, 3000.0, -1375.0, 250.0),  # 1,375 kW of cold from the ice: 250 kW at COP 5.5
        (400.0, 0.5, 3000.0, -1500.0, 1500.0 / 5.5),  # the store's power, no more
        (400.0, 0.05, 3000.0, -1200.0, 1200.0 / 5.5),  # 300 kWh above empty: 1,200 kW a step
        (400.0, 0.5, 1000.0, -1000.0, 1000.0 / 5.5),  # what the chiller makes, no more
        (250.0, 0.0, 3000.0, 0.0, 0.0),  # an empty store is not asked
        (250.0, None, 3000.0, 0.0, 0.0),  # nor one without a SOC reading
    ],
)
def test_an_ice_store_discharges_in_place_of_its_chiller_when_the_battery_is_empty(
    excess_kw: float, ice_soc: float | None, chiller_kw: float, ice_kw: float, cut_kw: float
) -> None:
    """Lingang of the example (Lingang 12-02 of the closed loop): the battery at its minimum, the
    fuel cell without hydrogen, the l03 chiller (COP 5.5) making `chiller_kw` of cold for its
    building beside the idle 6 MWh ice store; the store takes over from the chiller."""
    scope = resolve_scope(load_site(EXAMPLE), "park", "lingang")
    schedule = pd.DataFrame(
        {"l03-chiller:cooling_kw": [chiller_kw], "l03-chiller:electricity_kw": [chiller_kw / 5.5]},
        pd.DatetimeIndex([START]),
    )
    setpoints = [
        Setpoint(1, "lingang", "l02", "l02-bess", START, 0.0, planned_p_kw=0.0),
        *_lingang_setpoints(0.0, 0.0, chiller_kw),
    ]
    soc = {"l02-bess": 0.1} | ({} if ice_soc is None else {"l03-ice": ice_soc})
    changed, cut = hold_import(
        scope, setpoints, excess_kw, soc, pd.Timedelta(STEP), "why",
        planned_cops(scope, schedule, pd.Timestamp(START)),
    )  # fmt: skip
    bess, _, ice, chiller = changed
    assert bess.p_kw == 0.0
    assert ice.p_kw == pytest.approx(ice_kw)
    assert chiller.p_kw == pytest.approx(chiller_kw + ice_kw)  # the building's cold still made
    assert cut == pytest.approx(cut_kw)
    assert cut == pytest.approx((chiller.planned_p_kw - chiller.p_kw) / 5.5)
    if ice_kw:
        assert ice.override == "why: discharge raised"
        assert chiller.override == "why: l03-ice discharged for it"
    else:
        assert ice.override is None and chiller.override is None


@pytest.mark.parametrize(("ice_pct", "ice_kw", "chiller_kw"), [(50.0, -1250.0, 750.0),
                                                               (10.0, 0.0, 2000.0)])  # fmt: skip
async def test_the_guard_discharges_an_ice_store_for_its_chiller_with_the_battery_empty(
    pg_url: str, ice_pct: float, ice_kw: float, chiller_kw: float
) -> None:
    """The office with a chiller (COP 5) making 2,000 kW of cold beside a 6 MWh ice store, the
    battery metered at its minimum: the last step metered 3,000 kW against 300 planned and the
    limit is 250 kW under it. With the store half full it discharges 1,250 kW in the chiller's
    place (the import falls by 1,250 ÷ 5 = 250 kW); at its minimum it is not asked."""
    base = site_doc()["city"]["parks"][0]["buildings"][0]
    site = make_site(
        meters=[*base["meters"],
                {"id": "ice-soc", "carrier": "none", "quantity": "soc_pct", "asset": "office-ice"}],
        assets=[*base["assets"],
                {"id": "office-chiller", "type": "electric_chiller", "cooling_max_kw": 3000,
                 "cop": 5.0},
                {"id": "office-ice", "type": "thermal_storage", "carrier": "cooling",
                 "energy_kwh": 6000, "power_kw": 1500, "soc_min": 0.1}],
    )  # fmt: skip
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    index = pd.date_range(START, START + STEP, freq="1min", inclusive="left")
    metered = {"main": 3000.0, "pv": 0.0, "bess-p": 0.0, "bess-soc": 10.0, "ice-soc": ice_pct}
    await write_readings(pg_url, {k: pd.Series(v, index=index) for k, v in metered.items()})
    scope = resolve_scope(site, "building", "office")
    steps = pd.DatetimeIndex([START, START + STEP]).tz_convert("UTC")
    schedule = pd.DataFrame(
        {"office:import_kw": 300.0, "office-chiller:cooling_kw": 2000.0,
         "office-chiller:electricity_kw": 400.0}, index=steps,
    )  # fmt: skip
    guard = PeakGuard(site.tz, STEP, 250.0)
    setpoints = [
        Setpoint(1, "sp", "office", asset, START + STEP, p_kw, planned_p_kw=p_kw)
        for asset, p_kw in (("office-bess", 0.0), ("office-ice", 0.0), ("office-chiller", 2000.0))
    ]
    async with connect(pg_url) as conn:
        assert await guard.check(conn, Backend.POSTGRES, scope, schedule, steps[0], []) is None
        decision = await guard.check(conn, Backend.POSTGRES, scope, schedule, steps[1], setpoints)
    assert decision is not None
    assert decision.estimate_kw == pytest.approx(3000.0)
    assert decision.limit_kw == pytest.approx(2750.0)
    assert [s.p_kw for s in decision.setpoints] == pytest.approx([0.0, ice_kw, chiller_kw])
    assert decision.cut_kw == pytest.approx(-ice_kw / 5.0)
    assert [s.asset_id for s in decision.overridden] == (
        ["office-ice", "office-chiller"] if ice_kw else []
    )
