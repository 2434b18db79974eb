"""Where a re-plan starts a store without SOC readings: where the setpoints sent to it drove it,
as plan vs actual values it (energyhub.plans.tracked), not its soc_initial again every time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from energyhub.plans import store
from energyhub.scheduler.replan import PlanningConfig, Target, replan
from energyhub.store.db import Backend, connect

from .conftest import (
    BATTERY_KWH,
    HistorySpec,
    make_site,
    prepare_db,
    scheduler_settings,
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
        "soc": pytest.approx(expected), "source": "setpoints", "setpoints": 4
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
