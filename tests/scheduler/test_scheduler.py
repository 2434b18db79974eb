"""The scheduler on a clock the test moves, against the real PostgreSQL and Mosquitto."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pandas as pd
import pytest

from energyhub.clock import ManualClock
from energyhub.plans import store
from energyhub.plans.operations import plan_inputs
from energyhub.scheduler.setpoints import mark_unconfirmed
from energyhub.sites import parse_site
from energyhub.store.db import connect

from .conftest import (
    BATTERY_KWH,
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

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # a Tuesday
STEP = timedelta(minutes=15)


async def _rows(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    async with connect(url) as conn:
        cur = await conn.execute(query, params or None)
        return list(await cur.fetchall())


async def test_a_plan_awaiting_approval_sends_nothing_until_an_operator_approves(
    pg_url: str, prefix: str
) -> None:
    site = make_site(approval="operator")
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix)
    clock = ManualClock(START)
    async with collect_setpoints(SHARED_BROKER, prefix) as received:
        async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
            await scheduler.resume(conn)
            first = await scheduler.tick(conn)
            await clock.advance(STEP)
            second = await scheduler.tick(conn)
            assert [r.status for r in first.replanned] == ["draft"]
            assert first.sent == second.sent == 0 and not second.active
            assert await _rows(pg_url, "SELECT * FROM setpoints") == []
            plan_id = first.replanned[0].id
            await store.approve(conn, plan_id, "operator:test")
            await clock.advance(STEP)
            third = await scheduler.tick(conn)
    assert third.active == {"office": plan_id}
    assert third.sent == 1
    assert len(received) == 1
    message = received[0]
    assert message.topic == f"{prefix}/sp/office/office-bess/setpoint"
    assert message.body["plan"] == plan_id
    assert datetime.fromisoformat(message.body["ts"]) == START + 2 * STEP
    async with connect(pg_url) as conn:
        schedule = await store.plan_steps(conn, plan_id)
    row = schedule.loc[pd.Timestamp(START + 2 * STEP)]
    expected = row["office-bess:charge_kw"] - row["office-bess:discharge_kw"]
    assert message.body["p_kw"] == pytest.approx(expected, abs=1e-3)
    rows = await _rows(
        pg_url, "SELECT plan_id, asset_id, status, acked_at IS NOT NULL FROM setpoints"
    )
    assert rows == [(plan_id, "office-bess", "acked", True)]


async def test_restart_mid_horizon_sends_no_step_twice(pg_url: str, prefix: str) -> None:
    site = make_site()
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_period_min=30)
    clock = ManualClock(START)
    async with collect_setpoints(SHARED_BROKER, prefix) as received:
        async with scheduler_for(settings, site, clock) as first, connect(pg_url) as conn:
            await first.resume(conn)
            for _ in range(3):
                await first.tick(conn)
                await clock.advance(STEP)
            await first.tick(conn)  # step 3 sent, then the process "dies" mid-step
        await clock.advance(STEP / 3)
        async with scheduler_for(settings, site, clock) as second, connect(pg_url) as conn:
            await second.resume(conn)
            again = await second.tick(conn)  # same step: nothing new, no re-plan yet
            await clock.advance(STEP * 2 / 3)
            later = await second.tick(conn)  # the next step, and a re-plan (30 min since)
    assert again.sent == 0 and not again.replanned
    assert later.sent == 1 and len(later.replanned) == 1
    steps = [datetime.fromisoformat(m.body["ts"]) for m in received]
    assert Counter(steps).most_common(1)[0][1] == 1
    assert steps == [START + i * STEP for i in range(5)]
    plans = Counter(m.body["plan"] for m in received)
    assert len(plans) == 3  # re-planned at 0, 30 and 60 min
    rows = await _rows(pg_url, "SELECT count(*), count(DISTINCT ts) FROM setpoints")
    assert rows == [(5, 5)]


async def test_unacknowledged_sends_are_not_repeated_after_a_crash(
    pg_url: str, prefix: str
) -> None:
    site = make_site()
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix)
    clock = ManualClock(START)
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        await scheduler.resume(conn)
        report = await scheduler.tick(conn)
        await conn.execute("UPDATE setpoints SET status = 'sending', acked_at = NULL")
        assert await mark_unconfirmed(conn) == 1
    async with collect_setpoints(SHARED_BROKER, prefix) as received:
        async with scheduler_for(settings, site, clock) as restarted, connect(pg_url) as conn:
            await restarted.resume(conn)
            assert (await restarted.tick(conn)).sent == 0
    assert received == []
    assert report.sent == 1
    assert await _rows(pg_url, "SELECT status FROM setpoints") == [("unconfirmed",)]


async def test_plans_store_their_forecast_and_recede(pg_url: str, prefix: str) -> None:
    site = make_site()
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START, soc_pct=30.0))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=2)
    clock = ManualClock(START)
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        await scheduler.resume(conn)
        first = (await scheduler.tick(conn)).replanned[0]
        await clock.advance(timedelta(hours=1))
        second = (await scheduler.tick(conn)).replanned[0]
        first_now = await store.get_plan(conn, first.id)
        inputs = await plan_inputs(conn, first.id)
        schedule = await store.plan_steps(conn, first.id)
        await clock.advance(timedelta(hours=3))
        await scheduler.tick(conn)
        second_now = await store.get_plan(conn, second.id)
        forecast = await _rows(
            pg_url, "SELECT methods, initial_soc FROM plan_forecasts WHERE plan_id = %s", first.id
        )
    assert first.status == "approved" and first.approved_by == store.AUTO_APPROVER
    assert (first.level, first.site_id, first.step_s) == ("building", "office", 900)
    assert first.horizon_end - first.horizon_start == timedelta(hours=2)
    assert set(first.cost_terms_cny) >= {"energy", "demand", "carbon"}
    assert "cost_cny" in first.baseline and first.solver["status"] == "optimal"
    assert first.inputs_hash == store.inputs_hash(inputs)
    assert first_now.status == "superseded" and first_now.superseded_by == second.id
    assert second_now.status == "expired"
    assert set(inputs.columns) == {
        "office:electricity_kw", "office-pv:available_kw", "outdoor_c", "office:month_peak_kw",
        "office:peak_margin_kw",
    }  # fmt: skip
    # the month-to-date metered peak the plan started from, as the rollup holds it
    assert inputs["office:month_peak_kw"].iloc[0] == first.baseline["month_peak_kw"]["office"] > 0
    methods, initial = forecast[0]
    assert "profile" in methods["office:electricity_kw"]
    assert initial["office-bess"]["soc"] == pytest.approx(0.3)
    first_soc = schedule["office-bess:soc_kwh"].iloc[0]
    first_flow = schedule["office-bess:charge_kw"].iloc[0] * 0.95 - (
        schedule["office-bess:discharge_kw"].iloc[0] / 0.95
    )
    assert first_soc == pytest.approx(0.3 * BATTERY_KWH + first_flow * 0.25, abs=1e-3)


async def test_stale_soc_plans_from_the_default_with_a_warning(pg_url: str, prefix: str) -> None:
    site = make_site()
    await prepare_db(pg_url, site)
    silent = {"bess-soc": START - timedelta(hours=3)}
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START, 20.0, silent))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix)
    clock = ManualClock(START)
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        await scheduler.resume(conn)
        record = (await scheduler.tick(conn)).replanned[0]
    assert record.status == "approved"
    assert any(
        w.startswith(
            "office-bess: the SOC reading of office/bess-soc is 195 min old (limit 30 min)"
        )
        for w in record.warnings
    ), record.warnings
    initial = await _rows(pg_url, "SELECT initial_soc FROM plan_forecasts")
    assert initial[0][0]["office-bess"] == {"soc": 0.5, "source": "soc_initial", "stale": True}


async def test_a_silent_meter_fails_the_plan_naming_the_meter(pg_url: str, prefix: str) -> None:
    site = make_site()
    await prepare_db(pg_url, site)
    silent = {"main": START - timedelta(hours=8)}
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START, silent=silent))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix)
    clock = ManualClock(START)
    async with collect_setpoints(SHARED_BROKER, prefix) as received:
        async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
            await scheduler.resume(conn)
            report = await scheduler.tick(conn)
    record = report.replanned[0]
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith(
        "office/main: last reading 2025-07-07T07:45:00+00:00, silent for 8 h (limit 6 h)"
    )
    assert "office:electricity_kw" in record.error
    assert report.sent == 0 and received == []


async def test_forecast_notes_say_what_was_filled(pg_url: str, prefix: str) -> None:
    site = make_site()
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    async with connect(pg_url) as conn:  # a 45-minute gap in the PV meter's history
        await conn.execute(
            "DELETE FROM readings WHERE meter_id = (SELECT id FROM meters WHERE name = 'pv') "
            "AND ts >= %s AND ts < %s",
            (START - timedelta(hours=30), START - timedelta(hours=30) + 3 * STEP),
        )
        await conn.execute(
            "SELECT energyhub_refresh_rollups(%s, %s)", (START - timedelta(days=2), START)
        )
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix)
    async with (
        scheduler_for(settings, site, ManualClock(START)) as scheduler,
        connect(pg_url) as conn,
    ):
        await scheduler.resume(conn)
        record = (await scheduler.tick(conn)).replanned[0]
    assert (
        "forecast: office/pv: 1 gap(s) of up to 1 h filled by linear interpolation"
        in record.warnings
    ), record.warnings


async def test_assets_whose_demand_is_not_metered_get_no_setpoints(
    pg_url: str, prefix: str
) -> None:
    assets = [
        *make_site().city.parks[0].buildings[0].model_dump(mode="json")["assets"],
        {"id": "office-chiller", "type": "electric_chiller", "cooling_max_kw": 800, "cop": 5.0},
    ]
    site = make_site(assets=assets)
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix)
    async with collect_setpoints(SHARED_BROKER, prefix) as received:
        async with (
            scheduler_for(settings, site, ManualClock(START)) as scheduler,
            connect(pg_url) as conn,
        ):
            await scheduler.resume(conn)
            record = (await scheduler.tick(conn)).replanned[0]
    assert (
        "forecast: office: no cooling meter, so office:cooling_kw is taken as 0 and no setpoints "
        "go to office-chiller (what they draw stays inside office:electricity_kw)"
    ) in record.warnings
    assert [m.topic.split("/")[-2] for m in received] == ["office-bess"]
    assert await _rows(pg_url, "SELECT unplanned FROM plan_forecasts") == [(["office-chiller"],)]


async def test_a_heat_store_fuller_than_its_soc_final_with_no_heat_demand_is_planned(
    pg_url: str, prefix: str
) -> None:
    """A heat-only building (gas boiler, heat store) in a week without heat demand, its store
    read at 90 % on its SOC meter, soc_final 50 %: the re-plan keeps what nothing can use.
    Before, every re-plan failed: the heat balance was left with heat it could not use."""
    doc = site_doc(
        meters=[
            {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
            {"id": "heat", "carrier": "heat", "quantity": "energy_kwh"},
            {"id": "hs-soc", "carrier": "none", "quantity": "soc_pct", "asset": "office-hs"},
        ],
        assets=[
            {"id": "office-boiler", "type": "gas_boiler", "heat_max_kw": 1500, "eta": 0.92},
            {"id": "office-hs", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 2000,
             "power_kw": 500, "loss_per_h": 0.005, "soc_initial": 0.5, "soc_final": 0.5},
        ],
    )  # fmt: skip
    doc["city"]["parks"][0]["gas"] = {"price_cny_per_nm3": 3.8, "lhv_kwh_per_nm3": 9.97}
    site = parse_site(doc, "test-site")
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    index = pd.date_range(START - timedelta(days=7), START, freq=STEP, inclusive="left")
    await write_readings(
        pg_url,
        {"heat": pd.Series(1000.0, index=index), "hs-soc": pd.Series(90.0, index=index)},
    )
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix)
    async with scheduler_for(settings, site, ManualClock(START)) as scheduler:
        async with connect(pg_url) as conn:
            await scheduler.resume(conn)
            record = (await scheduler.tick(conn)).replanned[0]
    assert record.status == "approved", record.error
    plan_id = (await _rows(pg_url, "SELECT max(id) FROM plans"))[0][0]
    last = await _rows(
        pg_url,
        "SELECT value FROM plan_steps WHERE plan_id = %s AND name = 'office-hs:soc_kwh' "
        "ORDER BY ts DESC LIMIT 1",
        plan_id,
    )
    assert float(last[0][0]) > 0.5 * 2000  # 1,800 kWh less its standing loss: nothing used it
