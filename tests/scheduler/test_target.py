"""The month's demand target against the real PostgreSQL: a re-plan on an easy day (a Saturday,
the month's first) with working days ahead does not shave below what they will need."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize import plan
from energyhub.optimize.baseline import rules_import_kw
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.network import Context
from energyhub.optimize.scope import Scope, resolve_scope
from energyhub.plans.operations import plan_inputs
from energyhub.plans.store import PlanRecord
from energyhub.scheduler.replan import PlanningConfig, Target, replan
from energyhub.scheduler.target import (
    DemandTargetCache,
    DemandTargetConfig,
    TargetRequest,
    averaged,
    demand_target,
    lowest_peak,
    target_steps,
)
from energyhub.sites import (
    PV,
    ElectricBoiler,
    ElectricChiller,
    GasBoiler,
    HeatPump,
    SiteFile,
    Wind,
    load_site,
    parse_site,
)
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
    assert 500.0 < target < WORKDAY_KW + found["error_at_peak_kw"]  # the battery shaves them
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


@pytest.mark.parametrize(
    ("at", "month_end"),
    [
        ("2026-09-06T05:00:00+00:00", None),  # Santiago's clocks skip this day's midnight
        ("2026-09-28T05:00:00+00:00", "2026-10-01 00:00"),  # the next month starts normally
        ("2026-04-28T05:00:00+00:00", "2026-05-01 00:00"),  # after the April fall-back
    ],
)
def test_the_target_window_holds_where_the_clocks_skip_midnight(
    at: str, month_end: str | None
) -> None:
    """pandas' normalize() raised 'nonexistent time' on a day whose midnight the clocks skip,
    which failed every scheduler tick of that day in such a zone."""
    zone = "America/Santiago"
    steps = target_steps(datetime.fromisoformat(at), 7, zone)
    if month_end is None:
        assert len(steps) == 7 * 24
    else:
        end = steps[-1] + pd.Timedelta(hours=1)
        assert end == pd.Timestamp(month_end, tz=zone).tz_convert("UTC")


def test_the_target_hours_of_a_half_hour_zone_are_its_local_hours() -> None:
    """In India (+05:30) the target's hours were UTC hours: from 23:30 local, the last running
    half an hour into the next month, and an hour's mean straddling two tariff hours."""
    zone = "Asia/Kolkata"
    steps = target_steps(datetime.fromisoformat("2026-03-30T10:40:00+05:30"), 7, zone)
    local = steps.tz_convert(zone)
    assert local[0] == pd.Timestamp("2026-03-30 10:00", tz=zone)
    assert local[-1] + pd.Timedelta(hours=1) == pd.Timestamp("2026-04-01 00:00", tz=zone)
    assert (local.minute == 0).all()
    fine = pd.date_range(
        steps[0], steps[-1] + pd.Timedelta(hours=1), freq="15min", inclusive="left"
    )
    frame = pd.DataFrame({"kw": range(len(fine))}, index=fine, dtype=float)
    hours = averaged(frame, steps)
    assert hours["kw"].tolist()[:2] == [1.5, 5.5]  # each hour the mean of its own four quarters


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml"


def _days(site: SiteFile, scope: Scope, working_kw: list[float]) -> pd.DataFrame:
    """Hourly inputs of one day per entry: every building 200 kW + `working_kw` in 08–18, heat and
    cooling where it has a machine for them, no renewable output."""
    index = pd.date_range(
        "2026-12-07", periods=24 * len(working_kw), freq="1h", tz="Asia/Shanghai", name="ts"
    )
    working = np.repeat(working_kw, 24) * ((index.hour >= 8) & (index.hour < 18))
    columns: dict[str, Any] = {"outdoor_c": 8.0}
    for node in scope.nodes:
        kinds = {type(a) for a in node.assets}
        if site.find_building(node.id) is not None:
            columns[f"{node.id}:electricity_kw"] = 200.0 + working
            if kinds & {HeatPump, GasBoiler, ElectricBoiler}:
                columns[f"{node.id}:heat_kw"] = 50.0 + 0.2 * working
            if ElectricChiller in kinds:
                columns[f"{node.id}:cooling_kw"] = 100.0 + 0.3 * working
        for asset in node.assets:
            if isinstance(asset, PV | Wind):
                columns[f"{asset.id}:available_kw"] = 0.0
    return pd.DataFrame(columns, index=index)


@pytest.mark.parametrize(
    ("level", "site_id"),
    [
        ("building", "l03"),  # an ice store and its chiller, nothing else
        ("building", "l04"),  # a flexible load
        ("park", "expo"),  # a CHP, batteries, heat and cold stores, an absorption chiller
        ("park", "lingang"),  # hydrogen (electrolyzer, store, fuel cell), a battery, ice
    ],
)
def test_a_hard_day_ahead_keeps_an_easy_day_from_shaving_for_every_shape(
    level: str, site_id: str
) -> None:
    """Two easy days and a hard one (900 kW more in working hours, not 400): the target is set
    on the hard day and above the easy day's own peak; the easy day's plan alone shaves below
    its rules' peak, with the target it does not (and bills no demand charge)."""
    site = load_site(EXAMPLE)
    scope = resolve_scope(site, level, site_id)
    node = scope.grid_node
    found = lowest_peak(site, _days(site, scope, [400.0, 400.0, 900.0]), scope, 0.0, 30.0)
    assert found.at.tz_convert("Asia/Shanghai").day == 9  # the hard day
    easy = _days(site, scope, [400.0]).assign(**{f"{node}:month_peak_kw": 0.0})
    alone = plan(site, easy, level=level, site_id=site_id)
    rules = rules_import_kw(Context.bare(scope, read_inputs(easy, site.tz)))
    rules_peak = float(rules[node].max())
    assert found.target_kw > rules_peak
    assert alone.scalars[f"{node}:peak_import_kw"] < rules_peak - 1.0  # shaves its own day
    held = plan(
        site, easy.assign(**{COLUMN.replace("office", node): found.target_kw}), level=level,
        site_id=site_id,
    )  # fmt: skip
    assert held.scalars[f"{node}:peak_import_kw"] == pytest.approx(rules_peak, abs=1e-3)
    assert held.cost_cny["demand"] == pytest.approx(0.0, abs=1e-3)
    assert held.month_peak_kw == {node: 0.0}
