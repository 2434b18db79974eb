"""Plans keep their forecast's P10/P90 band; the next re-plan counts metered values inside it."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from energyhub.clock import ManualClock
from energyhub.sites import parse_site
from energyhub.store.db import connect

from .conftest import (
    SHARED_BROKER,
    HistorySpec,
    make_site,
    office_load_kw,
    prepare_db,
    pv_kw,
    scheduler_for,
    scheduler_settings,
    site_doc,
    write_history,
    write_readings,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # a Tuesday
ELECTRICITY = "office:electricity_kw"


async def test_a_plan_keeps_its_band_and_the_next_counts_metered_values_inside(
    pg_url: str, prefix: str
) -> None:
    site = make_site()
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START, soc_pct=30.0))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=2)
    clock = ManualClock(START)
    hour = pd.date_range(pd.Timestamp(START).tz_convert("UTC"), periods=4, freq="15min")
    surge_kw = np.array([0.0, 0.0, 900.0, 900.0])  # the last half hour far above any band
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        await scheduler.resume(conn)
        first = (await scheduler.tick(conn)).replanned[0]
        cur = await conn.execute(
            "SELECT b.name, b.ts, b.p10, i.value, b.p90 FROM plan_forecast_bands b "
            "JOIN plan_inputs i USING (plan_id, name, ts) WHERE plan_id = %s ORDER BY name, ts",
            (first.id,),
        )
        bands = pd.DataFrame(await cur.fetchall(), columns=["name", "ts", "p10", "p50", "p90"])
        await write_readings(
            pg_url,
            {
                "main": pd.Series(office_load_kw(hour) + surge_kw - pv_kw(hour), index=hour),
                "pv": pd.Series(pv_kw(hour), index=hour),
                "outdoor": pd.Series(28.0, index=hour),
                "bess-soc": pd.Series(30.0, index=hour),
                "bess-p": pd.Series(0.0, index=hour),
            },
        )
        await clock.advance(timedelta(hours=1))
        second = (await scheduler.tick(conn)).replanned[0]
        cur = await conn.execute(
            "SELECT band_coverage FROM plan_forecasts WHERE plan_id = %s", (second.id,)
        )
        row = await cur.fetchone()
    assert row is not None
    coverage = row[0]
    assert set(bands["name"]) == {ELECTRICITY, "office-pv:available_kw"}
    assert len(bands) == 2 * 8  # two hours of 15-min steps per column
    assert (bands["p10"] <= bands["p50"] + 1e-9).all() and (
        bands["p50"] <= bands["p90"] + 1e-9
    ).all()
    first_hour = bands[(bands["name"] == ELECTRICITY) & bands["ts"].isin(hour)]
    actual = office_load_kw(hour) + surge_kw
    inside = int(
        np.sum((actual >= first_hour["p10"] - 1e-9) & (actual <= first_hour["p90"] + 1e-9))
    )
    assert inside <= 2  # the surge is outside
    assert coverage["columns"][ELECTRICITY] == {
        "inside": inside,
        "count": 4,
        "share": inside / 4,
    }
    assert coverage["total"]["count"] == 8
    assert coverage["window_days"] == 7


async def test_a_year_without_china_s_holiday_schedule_is_named_in_the_notes(
    pg_url: str, prefix: str
) -> None:
    start = datetime.fromisoformat("2027-03-02T00:00:00+08:00")
    site = make_site()
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(start - timedelta(days=3), start, soc_pct=30.0))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=2)
    async with scheduler_for(settings, site, ManualClock(start)) as scheduler:
        async with connect(pg_url) as conn:
            await scheduler.resume(conn)
            planned = (await scheduler.tick(conn)).replanned[0]
            cur = await conn.execute(
                "SELECT notes FROM plan_forecasts WHERE plan_id = %s", (planned.id,)
            )
            row = await cur.fetchone()
    assert row is not None
    assert (
        "calendar: chinese-calendar has no holiday schedule for 2027; working days are taken as "
        "Monday–Friday (update the package)"
    ) in row[0]


async def test_a_plan_with_bands_keeps_their_error_as_the_peak_margin(
    pg_url: str, prefix: str
) -> None:
    """The margin column per step is the root-sum-square of the demand's P90 − P50 and the PV's
    P50 − P10, read back from the stored band. The main meter reads the office with noise, so the
    demand's band has a width."""
    site = make_site()
    await prepare_db(pg_url, site)
    begin = START - timedelta(days=7)
    await write_history(pg_url, HistorySpec(begin, START, soc_pct=30.0, silent={"main": begin}))
    bounds = [pd.Timestamp(t).tz_convert("UTC") for t in (begin, START)]
    index = pd.date_range(*bounds, freq="15min", inclusive="left")
    noise = np.random.default_rng(18).normal(0.0, 60.0, len(index))
    main = office_load_kw(index) - pv_kw(index) + noise
    await write_readings(pg_url, {"main": pd.Series(main, index=index)})
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=2)
    async with (
        scheduler_for(settings, site, ManualClock(START)) as scheduler,
        connect(pg_url) as conn,
    ):
        await scheduler.resume(conn)
        record = (await scheduler.tick(conn)).replanned[0]
        cur = await conn.execute(
            "SELECT b.name, b.ts, b.p10, i.value, b.p90 FROM plan_forecast_bands b "
            "JOIN plan_inputs i USING (plan_id, name, ts) WHERE plan_id = %s",
            (record.id,),
        )
        bands = pd.DataFrame(await cur.fetchall(), columns=["name", "ts", "p10", "p50", "p90"])
        cur = await conn.execute(
            "SELECT ts, value FROM plan_inputs WHERE plan_id = %s AND name = %s ORDER BY ts",
            (record.id, "office:peak_margin_kw"),
        )
        margin = pd.DataFrame(await cur.fetchall(), columns=["ts", "value"]).set_index("ts")
    wide = bands.pivot(index="ts", columns="name")
    demand_up = wide["p90"][ELECTRICITY] - wide["p50"][ELECTRICITY]
    pv_down = wide["p50"]["office-pv:available_kw"] - wide["p10"]["office-pv:available_kw"]
    expected = np.sqrt(demand_up.clip(lower=0) ** 2 + pv_down.clip(lower=0) ** 2)
    assert len(margin) == 8
    assert (expected > 0).any()
    np.testing.assert_allclose(margin["value"].to_numpy(), expected.loc[margin.index], atol=1e-6)


async def test_the_margin_is_kept_only_where_the_rules_leave_room_under_their_peak(
    pg_url: str, prefix: str
) -> None:
    """A month's first re-plan (no peak billed yet) under a demand charge: the plan keeps per step
    min(margin, rules' peak − rules' import), the rules' import being demand − PV here (no heat
    or cooling): the whole margin at night, none at the working-hours peak, read back from the
    stored plan and its inputs."""
    doc = site_doc()
    doc["city"]["parks"][0]["grid"]["demand_charge_cny_per_kw"] = 40.0
    site = parse_site(doc, "test-site")
    await prepare_db(pg_url, site)
    start = datetime.fromisoformat("2025-09-01T00:00:00+08:00")  # a Monday, a new month
    begin = start - timedelta(days=7)
    await write_history(pg_url, HistorySpec(begin, start, soc_pct=30.0, silent={"main": begin}))
    bounds = [pd.Timestamp(t).tz_convert("UTC") for t in (begin, start)]
    index = pd.date_range(*bounds, freq="15min", inclusive="left")
    noise = np.random.default_rng(18).normal(0.0, 60.0, len(index))
    main = office_load_kw(index) - pv_kw(index) + noise
    await write_readings(pg_url, {"main": pd.Series(main, index=index)})
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=12)
    async with (
        scheduler_for(settings, site, ManualClock(start)) as scheduler,
        connect(pg_url) as conn,
    ):
        await scheduler.resume(conn)
        record = (await scheduler.tick(conn)).replanned[0]
        cur = await conn.execute(
            "SELECT ts, name, value FROM plan_inputs WHERE plan_id = %s "
            "UNION ALL SELECT ts, name, value FROM plan_steps WHERE plan_id = %s",
            (record.id, record.id),
        )
        rows = pd.DataFrame(await cur.fetchall(), columns=["ts", "name", "value"])
    wide = rows.pivot(index="ts", columns="name", values="value").sort_index()
    assert (wide["office:month_peak_kw"] == 0.0).all()
    rules = (wide[ELECTRICITY] - wide["office-pv:available_kw"]).clip(lower=0.0)
    margin = wide["office:peak_margin_kw"]
    kept = wide["office:kept_margin_kw"]
    expected = np.minimum(margin, (rules.max() - rules).clip(lower=0.0))
    np.testing.assert_allclose(kept.to_numpy(), expected.to_numpy(), atol=1e-6)
    assert (kept == margin).any() and (kept < margin - 1.0).any()  # both cases occur
