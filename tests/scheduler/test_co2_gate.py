"""A CO₂ policy's gate: stores move only on CO₂ the local day has saved on the meters (real
PostgreSQL and Mosquitto); without a policy every setpoint goes out as planned."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from energyhub.clock import ManualClock
from energyhub.optimize.scope import resolve_scope
from energyhub.scheduler.co2_gate import LOSS_SAFETY, Co2Gate, carrier_kg, idle, move_loss_kg
from energyhub.scheduler.setpoints import Setpoint
from energyhub.sites import Battery, HydrogenStore, SiteFile, ThermalStorage, load_site, parse_site
from energyhub.store.db import Backend, connect

from .conftest import (
    SHARED_BROKER,
    HistorySpec,
    prepare_db,
    scheduler_for,
    scheduler_settings,
    site_doc,
    write_history,
    write_readings,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml"
NO_CEILING = {"max_cost_to_meet_co2_limit_cny_per_t": 1e7}


def site_with(policy: dict[str, object] | None) -> SiteFile:
    doc = site_doc("auto")
    doc["city"]["carbon"] = {"price_cny_per_t": 60}
    if policy is not None:
        doc["city"]["carbon"]["plan_policy"] = policy
    return parse_site(doc, "gate-site")


def test_a_moves_loss_is_what_the_savings_charge_an_idle_store_against() -> None:
    """Charging 400 kW for a quarter hour costs 100 kWh · m on the meters and leaves 95 kWh
    worth 0.95 · m each; discharging 400 kW saves 100 kWh · m and takes 100 / 0.95 kWh that
    cost m / 0.95 each (energyhub.plans.stored)."""
    site = site_with(None)
    scope = resolve_scope(site, "building", "office")
    bess = next(a for _, a in scope.assets() if isinstance(a, Battery))
    m = scope.carbon.grid_kg_per_kwh
    charged = 100 * m - 100 * 0.95 * 0.95 * m
    assert move_loss_kg(scope, bess, 400.0, 0.25, m) == pytest.approx(LOSS_SAFETY * charged)
    discharged = 100 / 0.95 * m / 0.95 - 100 * m
    assert move_loss_kg(scope, bess, -400.0, 0.25, m) == pytest.approx(LOSS_SAFETY * discharged)
    assert move_loss_kg(scope, bess, 0.0, 0.25, m) == 0.0


async def _day_over(pg_url: str, site: SiteFile) -> tuple[ManualClock, pd.Timestamp]:
    """The scheduler ran the first hour of the day while the battery charged 475 kW: the meters
    emitted more than the counterfactual (the rules, battery idle) on that demand."""
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    settings = scheduler_settings(pg_url, SHARED_BROKER, f"t{uuid.uuid4().hex[:10]}")
    clock = ManualClock(START)
    hour = pd.date_range(pd.Timestamp(START).tz_convert("UTC"), periods=4, freq="15min")
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        await scheduler.resume(conn)
        await scheduler.tick(conn)
        for _ in range(3):
            await clock.advance(timedelta(minutes=15))
            await scheduler.tick(conn)
    await write_readings(
        pg_url,
        {
            "main": pd.Series([900.0, 920.0, 890.0, 910.0], hour),
            "pv": pd.Series(0.0, hour),
            "bess-p": pd.Series(475.0, hour),
            "bess-soc": pd.Series([53.0, 55.0, 57.0, 59.0], hour),
            "outdoor": pd.Series(27.0, hour),
        },
    )
    await clock.advance(timedelta(minutes=15))
    return clock, hour[-1] + pd.Timedelta(minutes=15)


async def test_a_day_over_its_counterfactual_keeps_its_stores_idle(pg_url: str) -> None:
    """After the hour over its counterfactual the day has no slack: the battery's move is held
    idle with the reason stored, and it is locked for the peak guard; a setpoint that does not
    move it passes."""
    site = site_with({"max_co2_vs_baseline_pct": 0, **NO_CEILING})
    _, ts = await _day_over(pg_url, site)
    scope = resolve_scope(site, "building", "office")
    gate = Co2Gate(site, timedelta(minutes=15))
    asked = [Setpoint(1, "sp", "office", "office-bess", ts.to_pydatetime(), -300.0, -300.0)]
    async with connect(pg_url) as conn:
        step = await gate.open(conn, Backend.POSTGRES, scope, pd.DataFrame(), ts, asked)
        still = await gate.open(
            conn, Backend.POSTGRES, scope, pd.DataFrame(), ts,
            [Setpoint(1, "sp", "office", "office-bess", ts.to_pydatetime(), 0.0, 0.0)],
        )  # fmt: skip
    assert step.slack_kg < -50  # the battery's losses, beyond the storage credit
    [bess] = step.setpoints
    assert bess.p_kw == 0.0 and bess.planned_p_kw == -300.0
    assert bess.override is not None and bess.override.startswith("CO₂ policy: ")
    assert step.locked == {"office-bess"}
    assert still.setpoints[0].override is None
    sent = gate.close(scope, pd.DataFrame(), ts, step, step.setpoints)
    assert sent[0].import_limit_kw is None


async def test_a_generous_policy_lets_the_battery_move(pg_url: str) -> None:
    """At +100 % the day's slack (counterfactual × 2 less the meters) covers the move."""
    site = site_with({"max_co2_vs_baseline_pct": 100, **NO_CEILING})
    _, ts = await _day_over(pg_url, site)
    scope = resolve_scope(site, "building", "office")
    gate = Co2Gate(site, timedelta(minutes=15))
    asked = [Setpoint(1, "sp", "office", "office-bess", ts.to_pydatetime(), -300.0, -300.0)]
    async with connect(pg_url) as conn:
        step = await gate.open(conn, Backend.POSTGRES, scope, pd.DataFrame(), ts, asked)
    assert step.slack_kg > 0
    assert step.setpoints == asked
    assert step.locked == frozenset()


@pytest.mark.parametrize(
    "policy", [None, {"max_co2_vs_baseline_pct": 0, "gate_stores_on_meters": False}]
)
async def test_without_a_policy_or_its_gate_the_setpoints_go_out_as_planned(
    pg_url: str, policy: dict[str, object] | None
) -> None:
    """No policy (or the gate turned off): the scheduler has no gate and every setpoint it sent
    after the day went over its counterfactual is the plan's, unless the peak guard changed it."""
    site = site_with(policy)
    clock, _ = await _day_over(pg_url, site)
    settings = scheduler_settings(pg_url, SHARED_BROKER, f"t{uuid.uuid4().hex[:10]}")
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        assert scheduler.co2_gate is None
        await scheduler.resume(conn)
        report = await scheduler.tick(conn)
        rows = await (
            await conn.execute("SELECT p_kw, planned_p_kw, override FROM setpoints")
        ).fetchall()
    assert report.gated == 0
    assert rows
    assert all(o is None or o.startswith("peak guard") for _, _, o in rows)
    assert not any(o is not None and "CO₂ policy" in o for _, _, o in rows)


async def test_under_a_policy_the_scheduler_sends_the_gated_setpoints(pg_url: str) -> None:
    """With the policy the scheduler's setpoints after the hour over the counterfactual leave
    the battery idle (or the plan already did)."""
    site = site_with({"max_co2_vs_baseline_pct": 0, **NO_CEILING})
    clock, ts = await _day_over(pg_url, site)
    settings = scheduler_settings(pg_url, SHARED_BROKER, f"t{uuid.uuid4().hex[:10]}")
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        assert scheduler.co2_gate is not None
        await scheduler.resume(conn)
        await scheduler.tick(conn)
        rows = await (
            await conn.execute(
                "SELECT p_kw, planned_p_kw, override FROM setpoints "
                "WHERE asset_id = 'office-bess' AND ts = %s",
                (ts.to_pydatetime(),),
            )
        ).fetchall()
    [(p_kw, planned_p_kw, override)] = rows
    assert p_kw == 0.0
    assert planned_p_kw == 0.0 or override.startswith("CO₂ policy: ")


async def test_the_peak_guard_does_not_discharge_a_store_the_day_cannot_pay_for(
    pg_url: str, prefix: str
) -> None:
    """The office draws 3 MW in the day's first live step, a new month peak: without a policy
    the guard discharges the battery's full 500 kW (tests/scheduler/test_guard.py); under a 0 %
    policy the day has saved nothing yet, so the battery is locked and the guard leaves it."""
    site = site_with({"max_co2_vs_baseline_pct": 0, **NO_CEILING})
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    config = scheduler_settings(
        pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=2, scheduler_peak_guard=True,
        scheduler_peak_guard_headroom_kw=500,
    )  # fmt: skip
    clock = ManualClock(START)
    step = timedelta(minutes=15)
    index = pd.date_range(START, START + step, freq="1min", inclusive="left")
    async with scheduler_for(config, site, clock) as scheduler, connect(pg_url) as conn:
        await scheduler.resume(conn)
        await scheduler.tick(conn)
        await write_readings(
            pg_url,
            {
                "main": pd.Series(3000.0, index=index),
                "pv": pd.Series(0.0, index=index),
                "bess-p": pd.Series(0.0, index=index),
                "bess-soc": pd.Series(50.0, index=index),
            },
        )
        await clock.advance(step)
        await scheduler.tick(conn)
        rows = await (
            await conn.execute(
                "SELECT p_kw, override FROM setpoints WHERE asset_id = 'office-bess' AND ts = %s",
                (START + step,),
            )
        ).fetchall()
    [(p_kw, override)] = rows
    assert p_kw > -1e-6  # not discharged for the guard
    assert override is None or "discharge raised" not in override


def _setpoints(ts: datetime, asked: dict[str, float]) -> list[Setpoint]:
    return [Setpoint(1, "lingang", "lingang", a, ts, p, p) for a, p in asked.items()]


def test_an_idle_hydrogen_store_stops_its_electrolyzer_and_fuel_cell() -> None:
    """Lingang's hydrogen store held idle: its fuel cell (fed by it) and electrolyzer are off,
    as the counterfactual's; a hydrogen store's discharge loses what the round trip does."""
    scope = resolve_scope(load_site(EXAMPLE), "park", "lingang")
    h2 = next(a for _, a in scope.assets() if isinstance(a, HydrogenStore))
    sent = idle(
        scope, _setpoints(START, {"lg-h2": -200.0, "lg-fuelcell": 100.0, "lg-electrolyzer": 0.0}),
        h2, {}, "why",
    )  # fmt: skip
    assert {s.asset_id: (s.p_kw, s.override) for s in sent} == {
        "lg-h2": (0.0, "why"), "lg-fuelcell": (0.0, "why"), "lg-electrolyzer": (0.0, None),
    }  # fmt: skip
    grid = scope.carbon.grid_kg_per_kwh
    kg = carrier_kg(scope, h2, {})
    assert kg == pytest.approx(grid / 0.65)
    eta = h2.eta_charge * h2.eta_discharge
    expected = LOSS_SAFETY * 200 * (kg / eta - 0.5 * grid)  # an hour; the fuel cell's 0.5
    assert move_loss_kg(scope, h2, -200.0, 1.0, kg) == pytest.approx(expected)


def test_an_idle_cold_store_leaves_its_chiller_to_make_the_cold() -> None:
    """Lingang's ice store held idle in a discharge: its building's chiller makes that cold
    (within its 4,500 kW); held idle in a charge, the chiller makes that much less."""
    scope = resolve_scope(load_site(EXAMPLE), "park", "lingang")
    ice = next(a for _, a in scope.assets() if a.id == "l03-ice")
    assert isinstance(ice, ThermalStorage)
    cops = {"l03-chiller": 5.5}
    out = idle(scope, _setpoints(START, {"l03-ice": -800.0, "l03-chiller": 3000.0}), ice, cops, "w")
    assert {s.asset_id: s.p_kw for s in out} == {"l03-ice": 0.0, "l03-chiller": 3800.0}
    out = idle(scope, _setpoints(START, {"l03-ice": -800.0, "l03-chiller": 4000.0}), ice, cops, "w")
    assert {s.asset_id: s.p_kw for s in out} == {"l03-ice": -300.0, "l03-chiller": 4500.0}
    out = idle(scope, _setpoints(START, {"l03-ice": 600.0, "l03-chiller": 2000.0}), ice, cops, "w")
    assert {s.asset_id: s.p_kw for s in out} == {"l03-ice": 0.0, "l03-chiller": 1400.0}
    assert carrier_kg(scope, ice, cops) == pytest.approx(scope.carbon.grid_kg_per_kwh / 5.5)


async def test_a_day_whose_account_cannot_be_read_still_sends_its_step(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The day's account fails (here: a database without energyhub's tables): the step's
    setpoints still come back, on no slack (the battery idle), and the failure is logged; it
    used to end the scheduler's whole tick, every site's setpoints with it."""
    site = site_with({"max_co2_vs_baseline_pct": 0, **NO_CEILING})
    scope = resolve_scope(site, "building", "office")
    gate = Co2Gate(site, timedelta(minutes=15))
    ts = pd.Timestamp(START).tz_convert("UTC") + pd.Timedelta(hours=1)
    asked = [Setpoint(1, "sp", "office", "office-bess", ts.to_pydatetime(), -300.0, -300.0)]
    async with connect(pg_url) as conn:
        step = await gate.open(conn, Backend.POSTGRES, scope, pd.DataFrame(), ts, asked)
    assert step.slack_kg == 0.0
    assert step.setpoints[0].p_kw == 0.0
    assert "could not be read" in caplog.text


def test_the_day_s_deficit_and_slack_are_against_what_the_policy_allows() -> None:
    """One measure for the re-plan's carried deficit and the gate's slack: at +10 % a day at
    1,050 kg against a counterfactual of 1,000 is 50 kg under what it may emit, nothing to
    carry; at −10 % it is 150 kg over."""
    from dataclasses import replace

    from energyhub.scheduler.co2_account import DayCo2Account

    day = DayCo2Account("2026-12-01", 8, 1000.0, 1050.0, 1100.0, 48, 96)
    assert (day.slack_kg, day.deficit_kg, day.carried_kg) == (50.0, 0.0, 0.0)
    over = replace(day, allowed_kg=900.0)
    assert (over.slack_kg, over.deficit_kg, over.carried_kg) == (-150.0, 150.0, 300.0)


async def test_the_day_s_account_counts_a_flexible_load_s_energy_still_owed(pg_url: str) -> None:
    """An EV charger (800 kWh in 00:00–08:00, up to 400 kW) sent 0 kW over the first hour: the
    counterfactual's rules drew 100 kWh of it in that hour (800 × 1/8, from 00:00 at full power),
    which the meters still owe the day; the account adds it at the grid factor."""
    from energyhub.plans.days import savings_by_day
    from energyhub.scheduler.co2_account import day_co2_account

    doc = site_with({"max_co2_vs_baseline_pct": 0, **NO_CEILING}).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    office = doc["city"]["parks"][0]["buildings"][0]
    office["assets"].append(
        {"id": "office-ev", "type": "flexible_load", "power_max_kw": 400, "energy_kwh": 800,
         "window_start_h": 0, "window_end_h": 8}
    )  # fmt: skip
    site = parse_site(doc, "gate-ev-site")
    _, ts = await _day_over(pg_url, site)
    async with connect(pg_url) as conn:
        for step in pd.date_range(pd.Timestamp(START).tz_convert("UTC"), periods=4, freq="15min"):
            await conn.execute(
                "INSERT INTO setpoints (plan_id, site_id, asset_id, ts, p_kw, topic, status) "
                "SELECT max(id), 'office', 'office-ev', %s, 0, 't', 'acked' FROM plans "
                "ON CONFLICT (site_id, asset_id, ts) DO UPDATE SET p_kw = 0",
                (step.to_pydatetime(),),
            )
        days = await savings_by_day(
            conn, Backend.POSTGRES, "office", (START, ts.to_pydatetime()), site=site,
            foresight=False, lead_in=False,
        )  # fmt: skip
        account = await day_co2_account(
            conn, Backend.POSTGRES, site, "office", ts.to_pydatetime(), pd.DatetimeIndex([ts])
        )
    assert account is not None
    realized = [d.realized for d in days if d.realized is not None]
    metered_kg = sum(r.breakdown["metered"].net_co2_kg for r in realized)
    m = site.city.carbon.grid_kg_per_kwh
    assert account.metered_kg == pytest.approx(metered_kg + 100.0 * m)
