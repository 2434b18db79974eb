"""The month's demand target against the real PostgreSQL: a re-plan on an easy day (a Saturday,
the month's first) with working days ahead does not shave below what they will need."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from energyhub.optimize.scope import resolve_scope
from energyhub.plans.operations import plan_inputs
from energyhub.plans.store import PlanRecord
from energyhub.scheduler.replan import PlanningConfig, Target, replan
from energyhub.scheduler.target import (
    DemandTargetCache,
    DemandTargetConfig,
    TargetRequest,
    demand_target,
    target_steps,
)
from energyhub.sites import parse_site
from energyhub.store.db import Backend, connect

from .conftest import HistorySpec, prepare_db, scheduler_settings, site_doc, write_history

START = datetime.fromisoformat("2025-11-01T00:00:00+08:00")  # a Saturday, the month's first
RATE = 40.0
WORKDAY_KW = 900.0
"""The office's working-hours load (office_load_kw): 300 base + 600; 300 at weekends."""
COLUMN = "office:demand_target_kw"


def site(**grid: Any) -> Any:
    doc = site_doc()
    doc["city"]["parks"][0]["grid"].update({"demand_charge_cny_per_kw": RATE, **grid})
    return parse_site(doc, "test-site")


async def replan_office(
    url: str, the_site: Any, config: PlanningConfig | None = None, **settings: Any
) -> tuple[PlanRecord, pd.DataFrame]:
    if config is None:
        config = PlanningConfig.of(
            scheduler_settings(url, "mqtt://unused:1883", "t", scheduler_horizon_h=24, **settings)
        )
    async with connect(url) as conn:
        record = await replan(
            conn, Backend.POSTGRES, the_site, Target("building", "office"), START, config
        )
        inputs = await plan_inputs(conn, record.id)
    return record, inputs


async def history(url: str, the_site: Any) -> None:
    """Two weeks of the office's load; nothing of November metered yet (month peak 0)."""
    await prepare_db(url, the_site)
    await write_history(url, HistorySpec(START - timedelta(days=14), START))


async def test_working_days_ahead_keep_a_saturday_from_shaving_below_them(pg_url: str) -> None:
    """Without a target the Saturday's plan shaves its own peak (from a month peak of 0) and pays
    for the rise it leaves; with one, the week's working days need more than any Saturday hour
    (900 kW, 2,000 kWh of battery for 10 h of 600 kW above the base), so the Saturday takes its
    import up to the target as free: no demand charge and no cycles spent on shaving."""
    the_site = site()
    await history(pg_url, the_site)
    record, inputs = await replan_office(pg_url, the_site)
    found = record.solver["peak_margin"]["demand_target"]
    target = found["target_kw"]
    assert 500.0 < target <= WORKDAY_KW + found["margin_kw"] + 1.0
    assert found["import_peak_kw"] < WORKDAY_KW  # the battery shaves the working days
    assert target > 300.0 + 1.0  # above anything a weekend hour draws (office_load_kw)
    assert inputs[COLUMN].to_numpy() == pytest.approx(target)
    assert inputs["office:month_peak_kw"].to_numpy() == pytest.approx(0.0)
    assert record.cost_terms_cny["demand"] == pytest.approx(0.0, abs=1e-3)
    assert record.baseline["month_peak_kw"] == {"office": 0.0}  # plan vs actual's stays metered

    off, off_inputs = await replan_office(pg_url, the_site, scheduler_demand_target=False)
    assert COLUMN not in off_inputs.columns
    assert off.solver["peak_margin"]["demand_target"]["reason"].startswith("off")
    assert off.cost_terms_cny["demand"] > RATE * 10  # shaves the Saturday and pays for its rise


async def test_the_target_is_made_once_a_local_day(pg_url: str) -> None:
    the_site = site()
    await history(pg_url, the_site)
    settings = scheduler_settings(pg_url, "mqtt://unused:1883", "t", scheduler_horizon_h=24)
    config = PlanningConfig.of(settings)
    first, _ = await replan_office(pg_url, the_site, config)
    assert isinstance(config.targets, DemandTargetCache) and len(config.targets.found) == 1
    again, _ = await replan_office(pg_url, the_site, config)
    made = (first.solver["peak_margin"]["demand_target"], again.solver["peak_margin"])
    assert made[1]["demand_target"] == made[0]  # the cached one


@pytest.mark.parametrize(
    ("grid", "building", "reason"),
    [
        ({"demand_billing": "daily"}, {}, "demand billed daily"),
        ({"demand_charge_cny_per_kw": 0.0}, {}, "no demand charge"),
        (
            {},
            {
                "assets": [{"id": "office-pv", "type": "pv", "peak_kw": 300}],
                "meters": [
                    {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
                    {"id": "pv", "carrier": "pv", "quantity": "power_kw", "asset": "office-pv"},
                ],
            },
            "no storage",
        ),
    ],
)
async def test_no_target_where_it_cannot_apply(
    pg_url: str, grid: dict[str, Any], building: dict[str, Any], reason: str
) -> None:
    doc = site_doc(**building)
    doc["city"]["parks"][0]["grid"].update({"demand_charge_cny_per_kw": RATE, **grid})
    the_site = parse_site(doc, "test-site")
    await history(pg_url, the_site)
    record, inputs = await replan_office(pg_url, the_site)
    assert record.status != "failed", record.error
    assert COLUMN not in inputs.columns
    assert record.solver["peak_margin"]["demand_target"]["reason"].startswith(reason)
    assert not any(w.startswith("demand target") for w in record.warnings)


async def test_no_history_gives_no_target_and_a_warning_not_an_error(pg_url: str) -> None:
    """Nothing metered: the week's forecast cannot be made; the target says why, raises nothing."""
    the_site = site()
    await prepare_db(pg_url, the_site)
    scope = resolve_scope(the_site, "building", "office")
    config = PlanningConfig.of(scheduler_settings(pg_url, "mqtt://unused:1883", "t"))
    request = TargetRequest(
        scope, START, 100.0, config.history, config.forecast, config.models, 10.0
    )
    async with connect(pg_url) as conn:
        found = await demand_target(conn, Backend.POSTGRES, the_site, request, DemandTargetConfig())
    assert found.target_kw is None
    assert found.warnings and found.warnings[0].startswith("demand target: none for office (")
    assert found.summary["reason"]


def test_the_target_plans_to_the_month_end_at_most() -> None:
    at = datetime.fromisoformat("2025-11-28T10:20:00+08:00")
    steps = target_steps(at, 7, "Asia/Shanghai")
    local = steps.tz_convert("Asia/Shanghai")
    assert local[0] == pd.Timestamp("2025-11-28 10:00", tz="Asia/Shanghai")
    assert local[-1] == pd.Timestamp("2025-11-30 23:00", tz="Asia/Shanghai")
    last = target_steps(datetime.fromisoformat("2025-11-30T23:30:00+08:00"), 7, "Asia/Shanghai")
    assert len(last) == 1  # fewer than the model's two steps: no target (MIN_STEPS)
    assert (steps[1:] - steps[:-1] == pd.Timedelta(hours=1)).all()
