"""Where a re-plan starts a store without SOC readings: where the setpoints sent to it drove it,
as plan vs actual values it (energyhub.plans.tracked), not its soc_initial again every time. And
a flexible load's window open at the re-plan: what it was served so far, not a share of hours."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from energyhub.optimize.scope import resolve_scope
from energyhub.plans import store
from energyhub.scheduler.replan import PlanningConfig, Target, replan
from energyhub.scheduler.state import flexible_delivered
from energyhub.store.db import Backend, connect

from .conftest import (
    BATTERY_KWH,
    HistorySpec,
    make_site,
    prepare_db,
    scheduler_settings,
    site_doc,
    write_history,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # a Tuesday
STEP = timedelta(minutes=15)
UNMETERED = [
    {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
    {"id": "pv", "carrier": "pv", "quantity": "power_kw", "asset": "office-pv"},
]
"""The office's meters without the battery's power and SOC meters."""


async def test_a_store_without_soc_readings_starts_where_its_setpoints_drove_it(
    pg_url: str,
) -> None:
    """The battery (2,000 kWh, η 0.95, soc_initial 0.5) was sent 400 kW of discharge for the
    hour before the re-plan: 1,000 − 4 × 400 ÷ 0.95 × 0.25 = 578.95 kWh, SOC 0.28947."""
    site = make_site(meters=UNMETERED)
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    sent = [START - (4 - i) * STEP for i in range(4)]
    async with connect(pg_url) as conn:
        earlier = await store.create_pending(
            conn, level="building", site_id="office", horizon_start=sent[0],
            horizon_end=START, step_s=900, created_by="scheduler",
        )  # fmt: skip
        for ts in sent:
            await conn.execute(
                "INSERT INTO setpoints (plan_id, site_id, asset_id, ts, p_kw, topic, status) "
                "VALUES (%s, 'office', 'office-bess', %s, -400, 't', 'acked')",
                (earlier.id, ts),
            )
        config = PlanningConfig.of(scheduler_settings(pg_url, "mqtt://unused:1883", "t"))
        record = await replan(conn, Backend.POSTGRES, site, Target("building", "office"), START,
                              config)  # fmt: skip
        cur = await conn.execute(
            "SELECT initial_soc FROM plan_forecasts WHERE plan_id = %s", (record.id,)
        )
        initial = (await cur.fetchone() or [{}])[0]
        steps = await store.plan_steps(conn, record.id)
    expected = (BATTERY_KWH / 2 - 4 * 400 / 0.95 * 0.25) / BATTERY_KWH
    assert initial["office-bess"] == {
        "soc": pytest.approx(expected),
        "source": "setpoints",
        "setpoints": 4,
    }
    assert (
        "office-bess: no SOC reading; planned from 0.289, where its 4 setpoint(s) since the first "
        "drove it from soc_initial 0.5"
    ) in record.warnings
    assert not any(w.startswith("office-bess: no soc_pct meter") for w in record.warnings)
    first = steps.iloc[0]
    flow = first["office-bess:charge_kw"] * 0.95 - first["office-bess:discharge_kw"] / 0.95
    assert first["office-bess:soc_kwh"] == pytest.approx(expected * BATTERY_KWH + flow * 0.25)


async def test_a_store_never_sent_a_setpoint_starts_from_soc_initial(pg_url: str) -> None:
    site = make_site(meters=UNMETERED)
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    config = PlanningConfig.of(scheduler_settings(pg_url, "mqtt://unused:1883", "t"))
    async with connect(pg_url) as conn:
        record = await replan(conn, Backend.POSTGRES, site, Target("building", "office"), START,
                              config)  # fmt: skip
    assert "office-bess: no soc_pct meter; planned from soc_initial 0.5" in record.warnings


EV = {"id": "office-ev", "type": "flexible_load", "power_max_kw": 300, "energy_kwh": 1200,
      "window_start_h": 9, "window_end_h": 18}  # fmt: skip
AT_1430 = START + timedelta(hours=14, minutes=30)


async def test_a_re_plan_inside_a_window_asks_what_is_left_of_its_energy(pg_url: str) -> None:
    """The EV (1,200 kWh within 09–18) was sent 300 kW for the 3 h from 09:00 and 0 kW from
    12:00 to 14:30: 900 kWh served, so the re-plan at 14:30 asks 300 kWh of the 3.5 h left, not
    1,200 × 3.5 ÷ 9 = 467 as its share of the hours."""
    assets = [*site_doc()["city"]["parks"][0]["buildings"][0]["assets"], EV]
    site = make_site(assets=assets)
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), AT_1430))
    sent = [START + timedelta(hours=9) + i * STEP for i in range(22)]  # 09:00 … 14:15
    async with connect(pg_url) as conn:
        earlier = await store.create_pending(
            conn, level="building", site_id="office", horizon_start=sent[0],
            horizon_end=AT_1430, step_s=900, created_by="scheduler",
        )  # fmt: skip
        for i, ts in enumerate(sent):
            await conn.execute(
                "INSERT INTO setpoints (plan_id, site_id, asset_id, ts, p_kw, topic, status) "
                "VALUES (%s, 'office', 'office-ev', %s, %s, 't', 'acked')",
                (earlier.id, ts, 300.0 if i < 12 else 0.0),
            )
        delivered = await flexible_delivered(
            conn, Backend.POSTGRES, resolve_scope(site, "building", "office"), AT_1430, STEP,
            site.tz,
        )  # fmt: skip
        config = PlanningConfig.of(scheduler_settings(pg_url, "mqtt://unused:1883", "t"))
        record = await replan(conn, Backend.POSTGRES, site, Target("building", "office"),
                              AT_1430, config)  # fmt: skip
        steps = await store.plan_steps(conn, record.id)
    assert delivered == {"office-ev": pytest.approx(900.0)}
    local = steps.index.tz_convert(site.tz)
    today = (local.date == AT_1430.date()) & (local.hour < 18)
    assert steps["office-ev:power_kw"][today].sum() * 0.25 == pytest.approx(300.0, abs=1e-6)


async def test_a_window_not_yet_open_or_opening_now_has_nothing_served(pg_url: str) -> None:
    assets = [*site_doc()["city"]["parks"][0]["buildings"][0]["assets"], EV]
    site = make_site(assets=assets)
    await prepare_db(pg_url, site)
    scope = resolve_scope(site, "building", "office")
    async with connect(pg_url) as conn:
        for at in (START, START + timedelta(hours=9), START + timedelta(hours=18)):
            assert await flexible_delivered(conn, Backend.POSTGRES, scope, at, STEP, site.tz) == {}


async def test_a_window_open_in_the_repeated_hour_is_read_from_its_first_opening(
    pg_url: str,
) -> None:
    """Berlin, 25 Oct 2026: a 02–05 window opened at the first 02:00 (00:00 UTC); at the second
    02:30 (01:30 UTC) it had been open 1.5 h, served by the device's own rule (no setpoints):
    1,200 ÷ 3 h × 1.5 h. The local opening is ambiguous; the read is on the UTC step grid."""
    night = {**EV, "power_max_kw": 600, "window_start_h": 2, "window_end_h": 5}
    assets = [*site_doc()["city"]["parks"][0]["buildings"][0]["assets"], night]
    site = make_site(assets=assets).model_copy(update={"timezone": "Europe/Berlin"})
    await prepare_db(pg_url, site)
    scope = resolve_scope(site, "building", "office")
    at = datetime.fromisoformat("2026-10-25T01:30:00+00:00")
    async with connect(pg_url) as conn:
        delivered = await flexible_delivered(conn, Backend.POSTGRES, scope, at, STEP, site.tz)
    assert delivered == {"office-ev": pytest.approx(1200 / 3 * 1.5)}
