"""Realized value against the meters: the counterfactual (rules on metered demand), realized
savings, perfect foresight and the capture ratio, checked against calculations by hand."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize.scope import resolve_scope
from energyhub.plans.actual import plan_vs_actual
from energyhub.plans.days import savings_by_day, shared_peaks
from energyhub.plans.figures import WORSE_NOTE
from energyhub.plans.metered import storages
from energyhub.plans.operations import plan_inputs
from energyhub.plans.parts import plan_parts
from energyhub.plans.realized import (
    SetpointTrack,
    foresight_site,
    realize,
    setpoint_changes,
    tracked_soc_kwh,
)
from energyhub.plans.store import get_plan
from energyhub.sites import CHP, Battery, ThermalStorage, load_site, parse_site
from energyhub.store.db import Backend, connect
from tests.scheduler.conftest import BATTERY_KWH, make_site, site_doc
from tests.scheduler.test_actual import (
    GRID_KG_PER_KWH,
    MAIN_KW,
    START,
    STEP,
    VALLEY_CNY_PER_KWH,
    run_steps,
    steps,
)

DAY_MEAN_CNY_PER_KWH = (8 * 0.30 + 6 * 0.65 + 8 * 1.10 + 2 * 1.375) / 24
"""The mean import price of a July day under the default tariff (valley 0–6 and 22–24, flat
6–8, 15–18 and 21–22, peak 8–12, 14–15 and 18–21, critical 12–14): what a kWh in a store is
valued at on 2025-07-08, whichever of its steps a window holds."""

BATTERY_KW = [475.0, 400.0, 160.0]
"""The battery power meter's first three steps (charging), as tests/scheduler/test_actual writes."""


async def test_the_counterfactual_is_the_rules_on_metered_demand(pg_url: str) -> None:
    """Three controlled valley steps: the building's demand is main − battery (PV 0), the rules
    serve it from the grid; the meters show main. Every step is valley (0.30), but what the
    battery is left with is worth the whole day's mean price: perfect foresight gains by
    charging it there."""
    plan_id = await run_steps(pg_url, "auto", 3)
    site = make_site()
    async with connect(pg_url) as conn:
        result = await plan_vs_actual(conn, Backend.POSTGRES, plan_id, site=site)
        days = await savings_by_day(
            conn, Backend.POSTGRES, "office", (START, START + timedelta(days=1)), site=site
        )
    realized = result.realized
    assert realized is not None and realized.steps == 3, result
    demand_kwh = sum(m - b for m, b in zip(MAIN_KW[:3], BATTERY_KW, strict=True)) * 0.25
    metered_kwh = sum(MAIN_KW[:3]) * 0.25
    assert realized.counterfactual_cny == pytest.approx(demand_kwh * VALLEY_CNY_PER_KWH)
    assert realized.counterfactual_co2_kg == pytest.approx(demand_kwh * GRID_KG_PER_KWH)
    assert realized.metered_cny == pytest.approx(metered_kwh * VALLEY_CNY_PER_KWH)
    # the meters left 12 % of the battery (240 kWh) in it, the counterfactual none: credited at
    # η_discharge × the local day's mean import price (and grid factor), not the three valley
    # steps' 0.30, on both sides that did
    left_kwh = 0.12 * BATTERY_KWH
    credit_cny = left_kwh * 0.95 * DAY_MEAN_CNY_PER_KWH
    assert realized.stored_value_cny == pytest.approx(credit_cny)
    assert realized.breakdown["metered"].stored_kwh == pytest.approx(left_kwh)
    assert realized.savings_cny == pytest.approx(
        (demand_kwh - metered_kwh) * VALLEY_CNY_PER_KWH + credit_cny
    )
    assert realized.savings_co2_kg == pytest.approx(
        (demand_kwh - metered_kwh + left_kwh * 0.95) * GRID_KG_PER_KWH
    )
    # perfect foresight goes from the metered SOC before (50 %) to the metered SOC after (62 %):
    # at one price its best is to charge those 240 kWh through η 0.95 on top of the demand
    charge_cny = left_kwh / 0.95 * VALLEY_CNY_PER_KWH
    assert realized.perfect_foresight_cny == pytest.approx(
        realized.counterfactual_cny + charge_cny, abs=1e-3
    )
    assert realized.breakdown["perfect_foresight"].stored_kwh == pytest.approx(left_kwh, abs=1e-3)
    # bought in the valley, worth the day's mean after the round trip: a gain
    assert realized.perfect_savings_cny == pytest.approx(credit_cny - charge_cny, abs=1e-3)
    assert realized.perfect_savings_cny > 0
    assert realized.savings_cny <= realized.perfect_savings_cny  # the meters charged more
    assert realized.capture_ratio == pytest.approx(
        realized.savings_cny / realized.perfect_savings_cny
    )
    assert days[0].realized is not None
    assert days[0].realized.savings_cny == pytest.approx(realized.savings_cny)


async def test_a_store_without_soc_readings_is_valued_from_its_setpoints(pg_url: str) -> None:
    """What the setpoints asked of the battery over the three controlled steps: charge × η 0.95,
    discharge ÷ η 0.95, a quarter hour each (the device follows them within its limits)."""
    await run_steps(pg_url, "auto", 3)
    battery = next(a for a in storages(resolve_scope(make_site(), "building", "office")))
    first = steps(3)[0]
    span = (first, first + 3 * STEP)
    async with connect(pg_url) as conn:
        found = await setpoint_changes(conn, [battery], span, STEP)
        cur = await conn.execute(
            "SELECT p_kw FROM setpoints WHERE asset_id = %s AND ts >= %s AND ts < %s",
            (battery.id, *(t.to_pydatetime() for t in span)),
        )
        sent = [float(row[0]) for row in await cur.fetchall()]
    assert len(sent) == 3
    expected = sum(p * 0.95 if p > 0 else p / 0.95 for p in sent) * 0.25
    assert found == {battery.id: pytest.approx(expected)}


async def test_perfect_foresight_moves_a_store_without_soc_readings_as_its_setpoints_did(
    pg_url: str,
) -> None:
    """The battery has no SOC meter, and its setpoints asked it to charge what its power meter
    shows (475, 400, 160 kW): the meters are credited that move over the three controlled
    steps, and perfect foresight starts and ends the battery at the same levels, so both sides
    store the same kWh. It once held such a store at soc_initial → soc_final (0.5 → 0.5), and
    the two sides' stored values differed by the whole move."""
    meters = site_doc()["city"]["parks"][0]["buildings"][0]["meters"]
    site = make_site(meters=[m for m in meters if m["quantity"] != "soc_pct"])
    plan_id = await run_steps(pg_url, "auto", 3, site=site)
    async with connect(pg_url) as conn:
        for ts, kw in zip(steps(3), BATTERY_KW, strict=True):
            await conn.execute(
                "UPDATE setpoints SET p_kw = %s WHERE asset_id = 'office-bess' AND ts = %s",
                (kw, ts.to_pydatetime()),
            )
        await conn.commit()
        result = await plan_vs_actual(conn, Backend.POSTGRES, plan_id, site=site)
    realized = result.realized
    assert realized is not None and realized.steps == 3
    metered, perfect = realized.breakdown["metered"], realized.breakdown["perfect_foresight"]
    assert metered.stored_kwh == pytest.approx(sum(BATTERY_KW) * 0.95 * 0.25)
    assert perfect.stored_kwh == pytest.approx(metered.stored_kwh, abs=1e-3)
    assert perfect.stored_cny == pytest.approx(metered.stored_cny, abs=1e-3)
    assert not any("cannot move" in n for n in realized.notes)
    assert realized.perfect_savings_cny is not None
    assert realized.perfect_savings_cny >= realized.savings_cny - 1e-6


async def test_a_setpoint_track_read_forward_gives_what_reading_from_the_start_gives(
    pg_url: str,
) -> None:
    """Step by step with one track (each setpoint read once), the changes add up to the three
    steps' change, each equal to a fresh read from the first setpoint; a span before what the
    track has read starts over rather than answering from the wrong level."""
    await run_steps(pg_url, "auto", 3)
    battery = next(a for a in storages(resolve_scope(make_site(), "building", "office")))
    first = steps(3)[0]
    spans = [(first + i * STEP, first + (i + 1) * STEP) for i in range(3)]
    track = SetpointTrack()
    async with connect(pg_url) as conn:
        whole = await setpoint_changes(conn, [battery], (first, first + 3 * STEP), STEP)
        forward = [await setpoint_changes(conn, [battery], s, STEP, track) for s in spans]
        fresh = [await setpoint_changes(conn, [battery], s, STEP) for s in spans]
        again = await setpoint_changes(conn, [battery], spans[0], STEP, track)
    assert forward == fresh
    assert sum(f[battery.id] for f in forward) == pytest.approx(whole[battery.id])
    assert again == fresh[0]
    assert track.until[battery.id] == spans[0][1]


DEMAND_CNY_PER_KW = 40.0
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml"


async def test_a_step_no_plan_controlled_is_on_every_sides_bill(pg_url: str) -> None:
    """Three controlled steps at 1.7 MW (above the month's 0.9 MW so far), then a step no plan
    controlled at 2.5 MW: the month's bill peaks at 2.5 MW whatever the plans did, so neither the
    metered side nor the counterfactual (1.53 MW) pays a demand charge that day; billing the
    controlled steps on their own would have charged the meters 190 kW more than the rules."""
    doc = site_doc()
    doc["city"]["parks"][0]["grid"]["demand_charge_cny_per_kw"] = DEMAND_CNY_PER_KW
    site = parse_site(doc, "test-site")
    await run_steps(pg_url, "auto", 3, site=site, main_kw=[1700.0, 1720.0, 1690.0, 2500.0])
    async with connect(pg_url) as conn:
        days = await savings_by_day(
            conn, Backend.POSTGRES, "office", (START, START + timedelta(days=1)), site=site
        )
    found = days[0].realized
    assert found is not None and found.steps == 3
    assert days[0].actual.month_peak_kw == pytest.approx(2500.0)
    assert found.breakdown["metered"].demand_cny == 0.0
    assert found.breakdown["counterfactual"].demand_cny == 0.0


async def test_perfect_foresight_starts_from_the_metered_month_peak(pg_url: str) -> None:
    """A later day of a month: the meters' month-to-date peak is 2.5 MW, while perfect
    foresight's own bill would have a lower one (an earlier day it re-solved shaved deeper; 0
    here). Re-solved from the state the plans had, as it is from their SOC, three steps at
    1.7 MW cost it no demand charge, as they cost the meters none: it saves at least what the
    plans saved. From its own peak it paid 40 CNY/kW on every kW and came out below the plans
    (expo, three days of a 7-day closed loop after a month's first day)."""
    doc = site_doc()
    doc["city"]["parks"][0]["grid"]["demand_charge_cny_per_kw"] = DEMAND_CNY_PER_KW
    site = parse_site(doc, "test-site")
    plan_id = await run_steps(
        pg_url, "auto", 3, site=site, main_kw=[1700.0, 1720.0, 1690.0, 1700.0]
    )
    peaks = {"counterfactual": 2500.0, "metered": 2500.0, "perfect_foresight": 0.0}
    async with connect(pg_url) as conn:
        record = await get_plan(conn, plan_id)
        (scope, frame), *_ = (await plan_parts(conn, Backend.POSTGRES, record, site))[0]
        controlled = frame[frame["controlled"].astype(bool) & frame["actual_import_kw"].notna()]
        inputs = await plan_inputs(conn, plan_id)
        found = await realize(conn, Backend.POSTGRES, site, scope, controlled, inputs, peaks)
    assert found is not None and found.steps == 3
    assert found.breakdown["metered"].demand_cny == 0.0
    assert found.breakdown["perfect_foresight"].demand_cny == pytest.approx(0.0, abs=1e-6)
    assert found.perfect_savings_cny is not None
    assert found.perfect_savings_cny >= found.savings_cny - 1e-6
    assert WORSE_NOTE not in found.notes


def test_perfect_foresight_is_solved_on_the_bill_alone() -> None:
    """The re-solve's site file: stores pinned where the meters found and left them, and no
    cost that no bill has (expo-bess's throughput cost of 0.02 CNY/kWh, expo-chp's start cost
    of 200 CNY): a bound on the bill must not pay for cycles and starts the plans' bill is not
    charged for."""
    site = load_site(EXAMPLE)
    fixed = foresight_site(site, ({"expo-bess": 0.42}, {"expo-bess": 0.61}))
    before = {a.id: a for _, a in resolve_scope(site, "park", "expo").assets()}
    after = {a.id: a for _, a in resolve_scope(fixed, "park", "expo").assets()}
    bess, chp, ice = (after[a] for a in ("expo-bess", "expo-chp", "expo-ice"))
    assert isinstance(bess, Battery) and isinstance(chp, CHP) and isinstance(ice, ThermalStorage)
    old_bess, old_chp = before["expo-bess"], before["expo-chp"]
    assert isinstance(old_bess, Battery) and isinstance(old_chp, CHP)
    assert (old_bess.throughput_cost_cny_per_kwh, old_chp.start_cost_cny) == (0.02, 200.0)
    assert (bess.throughput_cost_cny_per_kwh, chp.start_cost_cny) == (0.0, 0.0)
    assert (bess.soc_initial, bess.soc_final) == (0.42, 0.61)
    assert ice == before["expo-ice"]


def test_shared_peaks_are_the_months_highest_step_through_each_day() -> None:
    site = make_site()
    index = pd.DatetimeIndex(
        ["2025-07-30T23:00+08:00", "2025-07-31T12:00+08:00", "2025-08-01T01:00+08:00"]
    ).tz_convert("UTC")
    shared = pd.Series([900.0, 1200.0, 300.0], index=index)
    days = [date(2025, 7, 30), date(2025, 7, 31), date(2025, 8, 1), date(2025, 8, 2)]
    assert shared_peaks(shared, days, site) == dict(
        zip(days, [900.0, 1200.0, 300.0, 300.0], strict=True)
    )


def test_a_store_asked_to_discharge_every_day_is_empty_once_emptied() -> None:
    """A 1,500 kWh hot-water store from 50 %: each day's setpoints ask 400 kW of discharge for
    four hours (1,600 kWh). Tracked step by step inside its window, it empties on
    the first day and moves nothing after: not −1,500 kWh credited again every day."""
    scope = resolve_scope(load_site(EXAMPLE), "building", "b07")
    store = next(s for s in storages(scope) if s.id == "b07-hw")
    day = np.r_[np.full(16, -400.0), np.zeros(80)]
    levels = tracked_soc_kwh(store, np.tile(day, 3), 0.25)
    low = store.soc_min * store.energy_kwh
    assert levels[15] == pytest.approx(low)  # the first day's discharge stops at soc_min
    assert levels[95] - levels[0] > -store.energy_kwh  # bounded by what was in it
    assert levels[191] == levels[287] == pytest.approx(low)  # nothing more to take
    charge = tracked_soc_kwh(store, np.full(8, 100.0), 0.25)
    keep = 0.99**0.25  # its loss_per_h 0.01 over a quarter hour, as the planner models it
    level = store.soc_initial * store.energy_kwh
    for _ in range(8):
        level = keep * level + 100 * 0.25 * store.eta_charge
    assert charge[-1] == pytest.approx(level)


def test_a_tracked_store_loses_what_its_standing_loss_takes() -> None:
    """b07-hw (1,500 kWh, loss_per_h 0.01) from 50 % held idle by eight setpoints of 0 kW: two
    hours of standing loss, 750 × 0.99² = 735.075 kWh, as the plans and the device lose it (the
    track once kept all 750 kWh, so a plan's idle hours showed as energy left in the store)."""
    scope = resolve_scope(load_site(EXAMPLE), "building", "b07")
    store = next(s for s in storages(scope) if s.id == "b07-hw")
    assert store.loss_per_h == 0.01 and store.soc_initial * store.energy_kwh == 750.0
    assert tracked_soc_kwh(store, np.zeros(8), 0.25)[-1] == pytest.approx(735.075)


async def test_a_buildings_own_demand_charge_is_on_no_side_of_its_parks_savings(
    pg_url: str,
) -> None:
    """The office has its own `grid:` at 40 CNY/kW. Park sp's realized savings compare the
    park's import (plan vs actual reads it, not the office's own bill), whose connection has no
    demand charge: the metered side bills none, so neither may the counterfactual nor perfect
    foresight. Before, the park's counterfactual billed the office's whole peak, 40 × its
    metered import, a charge the meters' side never showed, and the savings were that much too
    high."""
    doc = site_doc()
    own = {"import_max_kw": 5000, "demand_charge_cny_per_kw": DEMAND_CNY_PER_KW}
    doc["city"]["parks"][0]["buildings"][0]["grid"] = own
    site = parse_site(doc, "test-site")
    plan_id = await run_steps(pg_url, "auto", 3, site=site)
    async with connect(pg_url) as conn:
        record = await get_plan(conn, plan_id)
        (_, frame), *_ = (await plan_parts(conn, Backend.POSTGRES, record, site))[0]
        controlled = frame[frame["controlled"].astype(bool) & frame["actual_import_kw"].notna()]
        inputs = await plan_inputs(conn, plan_id)
        park = resolve_scope(site, "park", "sp")
        found = await realize(conn, Backend.POSTGRES, site, park, controlled, inputs, 0.0)
    assert found is not None and found.steps == 3
    assert found.breakdown["metered"].demand_cny == 0.0
    assert found.breakdown["counterfactual"].demand_cny == 0.0
    assert found.breakdown["perfect_foresight"].demand_cny == pytest.approx(0.0, abs=1e-6)
    assert found.perfect_savings_cny is not None
    assert found.perfect_savings_cny >= found.savings_cny - 1e-6
