"""The day's CO₂ account counts a flexible load's energy still owed, against the real PostgreSQL:
Lingang's l04 EV charger of the example (1,200 kWh in 09:00–18:00 at up to 300 kW) run 13:00–17:00
by the plans, where the counterfactual's rules run it from 09:00."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from energyhub.plans import store
from energyhub.scheduler.co2_account import flexible_loads, flexible_owed_kwh
from energyhub.sites import load_site
from energyhub.store.db import connect

from .conftest import prepare_db

EXAMPLE = load_site(Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml")
MIDNIGHT = datetime.fromisoformat("2026-12-03T00:00:00+08:00")
STEP = timedelta(minutes=15)


async def _sent(url: str, kw_by_hour: dict[int, float]) -> None:
    """Setpoints of l04-ev for each quarter hour of these local hours of the day."""
    async with connect(url) as conn:
        record = await store.create_pending(
            conn, level="park", site_id="lingang", horizon_start=MIDNIGHT,
            horizon_end=MIDNIGHT + timedelta(days=1), step_s=900, created_by="scheduler",
        )  # fmt: skip
        for hour, kw in kw_by_hour.items():
            for quarter in range(4):
                ts = MIDNIGHT + timedelta(hours=hour) + quarter * STEP
                await conn.execute(
                    "INSERT INTO setpoints (plan_id, site_id, asset_id, ts, p_kw, topic, status) "
                    "VALUES (%s, 'l04', 'l04-ev', %s, %s, 't', 'acked')",
                    (record.id, ts, kw),
                )


def test_a_park_s_flexible_loads_are_its_buildings_with_where_their_setpoints_are_kept() -> None:
    assert [(owner, load.id) for owner, load in flexible_loads(EXAMPLE, "lingang")] == [
        ("l04", "l04-ev")
    ]
    assert [load.id for _, load in flexible_loads(EXAMPLE, "l04")] == ["l04-ev"]
    assert flexible_loads(EXAMPLE, "l01") == []


@pytest.mark.parametrize(
    ("hour", "owed_kwh"),
    [
        (12, 400.0),  # the rules: 1,200 × 3/9 h from 09:00 at 300 kW; the charger: nothing yet
        (15, 200.0),  # the rules 800 (6/9), the charger 600 (13:00–15:00)
        (18, None),  # the window is over: both drew its 1,200 kWh
    ],
)
async def test_the_energy_the_rules_drew_and_the_charger_has_not_yet_is_owed(
    pg_url: str, hour: int, owed_kwh: float | None
) -> None:
    await prepare_db(pg_url, EXAMPLE)
    await _sent(pg_url, {h: 300.0 if 13 <= h < 17 else 0.0 for h in range(9, 18)})
    span = (MIDNIGHT, MIDNIGHT + timedelta(hours=hour))
    async with connect(pg_url) as conn:
        owed = await flexible_owed_kwh(conn, EXAMPLE, "lingang", span)
    assert owed == ({} if owed_kwh is None else {"l04-ev": pytest.approx(owed_kwh)})


async def test_a_charger_on_its_own_rule_owes_nothing(pg_url: str) -> None:
    """No setpoint sent: the device spreads its energy over the window (the demand
    reconstruction's rule), as much by any hour as the rules' pro-rated share of it."""
    await prepare_db(pg_url, EXAMPLE)
    async with connect(pg_url) as conn:
        owed = await flexible_owed_kwh(
            conn, EXAMPLE, "lingang", (MIDNIGHT, MIDNIGHT + timedelta(hours=12))
        )
    assert owed == {}
